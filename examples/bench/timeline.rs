//! Timelines of the storm and outage benchmarks: what the stand-in and the connector measured per time bucket, drawn as a hand-written SVG chart.
//!
//! A [`Recording`] holds the raw measurements of one run, in seconds since its start: when
//! each event was handed to the connector, each request the stand-in received with its
//! answer (its own request log), samples of the outbox backlog (the connector's `pending`
//! counter) and the periods to shade (PagerDuty down, rate-limiting). [`chart`] buckets them
//! (about 120 buckets, a round length) into two panels sharing the time axis: request rates
//! per second (sent, 202, 429, failures) and event counts (handed over and accepted, both
//! cumulative, and the outbox backlog). [`svg`] draws a [`Chart`]: axes with round ticks,
//! a legend, step lines, shaded periods, a title and units. No plotting program, no crate.

use std::fmt::Write as _;
use std::time::Instant;

use pd_standin::Request;

/// A period to shade, in seconds since the run's start, with what happened then.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

/// What one run measured, in seconds since its start.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    /// When each event was handed to the connector.
    pub queued: Vec<f64>,
    /// When each request had reached the stand-in, and the status it answered (0: no
    /// answer, as for a connection reset).
    pub requests: Vec<(f64, u16)>,
    /// Samples of the outbox backlog: time and rows pending (`Counters::pending`).
    pub backlog: Vec<(f64, u64)>,
    /// Periods to shade.
    pub periods: Vec<Period>,
}

impl Recording {
    /// Adds the stand-in's request log (arrival times relative to `t0`, and answers).
    pub fn add_requests(&mut self, t0: Instant, requests: &[Request]) {
        self.requests.extend(
            requests
                .iter()
                .map(|r| (r.at.saturating_duration_since(t0).as_secs_f64(), r.status)),
        );
    }

    /// The last time anything was recorded (0 when nothing was).
    pub fn end(&self) -> f64 {
        let times = self.queued.iter().copied();
        let times = times.chain(self.requests.iter().map(|r| r.0));
        let times = times.chain(self.backlog.iter().map(|b| b.0));
        let times = times.chain(self.periods.iter().map(|p| p.to));
        times.filter(|t| t.is_finite()).fold(0.0, f64::max)
    }

    /// Shades, as `label`, the buckets of `bucket_s` seconds in which the stand-in answered
    /// `status` at least once (adjacent buckets merged into one period).
    pub fn shade_status(&mut self, status: u16, bucket_s: f64, label: &str) {
        let mut hit: Vec<usize> = self
            .requests
            .iter()
            .filter(|r| r.1 == status)
            .map(|r| (r.0 / bucket_s) as usize)
            .collect();
        hit.sort_unstable();
        hit.dedup();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for b in hit {
            match spans.last_mut() {
                Some(last) if last.1 + 1 == b => last.1 = b,
                _ => spans.push((b, b)),
            }
        }
        self.periods.extend(spans.into_iter().map(|(a, b)| Period {
            from: a as f64 * bucket_s,
            to: (b + 1) as f64 * bucket_s,
            label: label.to_string(),
        }));
    }
}

/// Did the request fail on PagerDuty's side (5xx, or no answer at all)?
pub fn is_failure(status: u16) -> bool {
    status == 0 || status >= 500
}

/// The bucket length for a run of `end` seconds: a round length giving at most 120 buckets.
pub fn bucket_len(end: f64) -> f64 {
    const ROUND: [f64; 15] = [
        0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0,
    ];
    let end = if end.is_finite() { end.max(0.0) } else { 0.0 };
    ROUND
        .iter()
        .copied()
        .find(|b| end / b <= 120.0)
        .unwrap_or(end / 120.0)
}

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// Points in time order (seconds, value), joined by straight segments.
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// One plot area with its own y axis.
#[derive(Debug, Clone)]
pub struct Panel {
    pub y_label: String,
    pub series: Vec<Series>,
    /// `Some(bucket length)`: the series are stacked bars, one point per bucket (its
    /// start, its value), the first series at the bottom; `None`: lines.
    pub stacked: Option<f64>,
}

impl Panel {
    /// The largest value drawn: of a point, or of a stack of bars.
    pub fn max(&self) -> f64 {
        let mut sums: Vec<f64> = Vec::new();
        let mut max = 0.0f64;
        for se in &self.series {
            for (i, p) in se.points.iter().enumerate() {
                let v = if p.1.is_finite() { p.1.max(0.0) } else { 0.0 };
                if self.stacked.is_some() {
                    sums.resize(sums.len().max(i + 1), 0.0);
                    sums[i] += v;
                    max = max.max(sums[i]);
                } else {
                    max = max.max(v);
                }
            }
        }
        max
    }
}

/// A whole figure: panels stacked on one time axis.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub x_label: String,
    pub x_max: f64,
    pub panels: Vec<Panel>,
    pub periods: Vec<Period>,
}

/// Colours of the shaded periods, by order of first appearance of their label.
const SHADES: [&str; 3] = ["#f4a6a6", "#f9d38c", "#c9b3e6"];

/// Counts per bucket of the requests whose status passes `keep`, as rates per second:
/// one point per bucket (its start, its rate).
fn rate(rec: &Recording, n: usize, bucket: f64, keep: impl Fn(u16) -> bool) -> Vec<(f64, f64)> {
    let mut counts = vec![0u64; n];
    for &(t, status) in &rec.requests {
        if keep(status) {
            counts[((t / bucket) as usize).min(n - 1)] += 1;
        }
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as f64 * bucket, c as f64 / bucket))
        .collect()
}

/// How many of `times` fall at or before the end of each bucket (a cumulative line).
fn cumulative(times: &[f64], n: usize, bucket: f64) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut points = vec![(0.0, 0.0)];
    let mut k = 0;
    for i in 0..n {
        let end = (i + 1) as f64 * bucket;
        while k < sorted.len() && sorted[k] <= end {
            k += 1;
        }
        points.push((end, k as f64));
    }
    points
}

/// The two panels of a run: request rates, and event counts with the outbox backlog.
pub fn chart(title: &str, subtitle: &str, rec: &Recording) -> Chart {
    let end = rec.end();
    let bucket = bucket_len(end);
    let n = ((end / bucket).ceil() as usize).max(1);
    let accepted: Vec<f64> = rec
        .requests
        .iter()
        .filter(|r| r.1 == 202)
        .map(|r| r.0)
        .collect();
    let mut backlog: Vec<(f64, f64)> = rec.backlog.iter().map(|&(t, p)| (t, p as f64)).collect();
    backlog.sort_by(|a, b| a.0.total_cmp(&b.0));
    let series = |name: &str, color, points, dashed| Series {
        name: name.to_string(),
        color,
        points,
        dashed,
    };
    let rates = Panel {
        y_label: "requests sent per second".into(),
        stacked: Some(bucket),
        series: vec![
            series(
                "accepted (202)",
                "#2ca02c",
                rate(rec, n, bucket, |s| s == 202),
                false,
            ),
            series(
                "rate-limited (429)",
                "#ff7f0e",
                rate(rec, n, bucket, |s| s == 429),
                false,
            ),
            series(
                "failed (5xx, reset)",
                "#d62728",
                rate(rec, n, bucket, is_failure),
                false,
            ),
            series(
                "other",
                "#7f7f7f",
                rate(rec, n, bucket, |s| s != 202 && s != 429 && !is_failure(s)),
                false,
            ),
        ],
    };
    // answers other than 202, 429 and failures (a 400) only when there were some
    let mut rates = rates;
    rates
        .series
        .retain(|se| se.name != "other" || se.points.iter().any(|p| p.1 > 0.0));
    let counts = Panel {
        y_label: "events".into(),
        stacked: None,
        series: vec![
            series(
                "handed to the connector (cumulative)",
                "#7f7f7f",
                cumulative(&rec.queued, n, bucket),
                true,
            ),
            series(
                "accepted (cumulative)",
                "#2ca02c",
                cumulative(&accepted, n, bucket),
                true,
            ),
            series("outbox backlog (rows pending)", "#9467bd", backlog, false),
        ],
    };
    let bucket_text = if bucket >= 1.0 {
        format!("{bucket} s")
    } else {
        format!("{} ms", (bucket * 1000.0).round())
    };
    Chart {
        title: title.to_string(),
        subtitle: format!("{subtitle} Rates per second over {bucket_text} buckets."),
        x_label: "seconds since the first event was handed to the connector".into(),
        x_max: n as f64 * bucket,
        panels: vec![rates, counts],
        periods: rec.periods.clone(),
    }
}

/// A round axis for values up to `max`: (top, step), `top` a multiple of `step` at least
/// `max`, about `ticks` steps (an empty or zero range gives 0..1).
pub fn axis(max: f64, ticks: usize) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|f| f * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let top = (max / step - 1e-9).ceil().max(1.0) * step;
    (top, step)
}

/// A tick's label: thousands separated, as many decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    // the fewest decimals that write the step exactly (0.25 needs 2, 5 none)
    let dec = (0..4)
        .find(|d| {
            let x = step * 10f64.powi(*d);
            (x - x.round()).abs() < 1e-6
        })
        .unwrap_or(4) as usize;
    let s = format!("{v:.dec$}");
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(i, f)| (i, f));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// Text made safe for XML character data and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c < ' ' && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Figure width and the plot area's margins, in pixels.
pub const WIDTH: f64 = 960.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 24.0;
/// Height of one panel's plot area, and the room above it for its legend.
pub const PANEL_H: f64 = 210.0;
const LEGEND_H: f64 = 44.0;
const HEAD_H: f64 = 62.0;
const AXIS_H: f64 = 34.0;

/// Where a panel's plot area is: (top, bottom) in pixels.
pub fn panel_box(i: usize) -> (f64, f64) {
    let top = HEAD_H + i as f64 * (LEGEND_H + PANEL_H + AXIS_H) + LEGEND_H;
    (top, top + PANEL_H)
}

/// Pixel x of time `t` on a chart ending at `x_max`.
pub fn x_px(t: f64, x_max: f64) -> f64 {
    let x_max = if x_max.is_finite() && x_max > 0.0 {
        x_max
    } else {
        1.0
    };
    LEFT + t.clamp(0.0, x_max) / x_max * (WIDTH - LEFT - RIGHT)
}

/// Pixel y of `v` on an axis from 0 to `top` in the box (`box_top`, `box_bottom`).
pub fn y_px(v: f64, top: f64, (box_top, box_bottom): (f64, f64)) -> f64 {
    box_bottom - v.clamp(0.0, top) / top * (box_bottom - box_top)
}

/// The chart as a standalone SVG document.
pub fn svg(c: &Chart) -> String {
    let height = HEAD_H + c.panels.len() as f64 * (LEGEND_H + PANEL_H + AXIS_H) + 28.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"##
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="24" font-size="17" font-weight="bold" fill="#222">{}</text>"##,
        escape(&c.title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="44" fill="#555">{}</text>"##,
        escape(&c.subtitle)
    );
    // the shaded periods' colours, one per label
    let mut labels: Vec<&str> = Vec::new();
    for p in &c.periods {
        if !labels.contains(&p.label.as_str()) {
            labels.push(&p.label);
        }
    }
    let shade_of = |label: &str| {
        let i = labels.iter().position(|l| *l == label).unwrap_or(0);
        SHADES[i % SHADES.len()]
    };
    let (x_top, x_step) = axis(c.x_max, 10);
    let x_max = x_top.max(c.x_max);
    let right = WIDTH - RIGHT;
    for (i, panel) in c.panels.iter().enumerate() {
        let bx = panel_box(i);
        let (top, bottom) = bx;
        // legend: the panel's series, then (first panel) the shaded periods; wraps
        let mut items: Vec<(&str, String, Swatch)> = panel
            .series
            .iter()
            .map(|se| {
                let swatch = match (panel.stacked, se.dashed) {
                    (Some(_), _) => Swatch::Box(0.9),
                    (None, true) => Swatch::Dashed,
                    (None, false) => Swatch::Line,
                };
                (se.color, se.name.clone(), swatch)
            })
            .collect();
        if i == 0 {
            items.extend(
                labels
                    .iter()
                    .map(|l| (shade_of(l), format!("shaded: {l}"), Swatch::Box(0.5))),
            );
        }
        let mut lx = LEFT;
        let mut ly = top - LEGEND_H + 14.0;
        for (color, name, swatch) in items {
            let w = 27.0 + text_width(&name) + 18.0;
            if lx > LEFT && lx + w - 18.0 > right {
                lx = LEFT;
                ly += 16.0;
            }
            match swatch {
                Swatch::Box(opacity) => {
                    let _ = writeln!(
                        s,
                        r##"<rect x="{lx:.1}" y="{:.1}" width="22" height="11" fill="{color}" fill-opacity="{opacity}"/>"##,
                        ly - 10.0
                    );
                }
                Swatch::Line | Swatch::Dashed => {
                    let dash = if matches!(swatch, Swatch::Dashed) {
                        r#" stroke-dasharray="6 3""#
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        s,
                        r##"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2.5"{dash}/>"##,
                        ly - 4.0,
                        lx + 22.0,
                        ly - 4.0
                    );
                }
            }
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{ly:.1}" fill="#222">{}</text>"##,
                lx + 27.0,
                escape(&name)
            );
            lx += w;
        }
        // shaded periods under everything else
        for p in &c.periods {
            let (a, b) = (x_px(p.from, x_max), x_px(p.to, x_max));
            if b > a {
                let _ = writeln!(
                    s,
                    r##"<rect x="{a:.1}" y="{top:.1}" width="{:.1}" height="{PANEL_H:.1}" fill="{}" fill-opacity="0.35"/>"##,
                    b - a,
                    shade_of(&p.label)
                );
            }
        }
        // y axis: grid lines and labels
        let (y_top, y_step) = axis(panel.max(), 5);
        let mut k = 0.0;
        while k <= y_top / y_step + 1e-9 {
            let v = k * y_step;
            let y = y_px(v, y_top, bx);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#dddddd"/>"##
            );
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#333">{}</text>"##,
                LEFT - 6.0,
                y + 4.0,
                tick_label(v, y_step)
            );
            k += 1.0;
        }
        let mid = (top + bottom) / 2.0;
        let _ = writeln!(
            s,
            r##"<text x="18" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 18 {mid:.1})" fill="#333">{}</text>"##,
            escape(&panel.y_label)
        );
        // x axis: ticks and labels under every panel
        let mut k = 0.0;
        while k <= x_max / x_step + 1e-9 {
            let v = k * x_step;
            let x = x_px(v, x_max);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333"/>"##,
                bottom + 5.0
            );
            let _ = writeln!(
                s,
                r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#333">{}</text>"##,
                bottom + 18.0,
                tick_label(v, x_step)
            );
            k += 1.0;
        }
        // stacked bars, bottom up, or lines
        if let Some(bucket) = panel.stacked {
            let mut base: Vec<f64> = Vec::new();
            for se in &panel.series {
                for (k, &(t, v)) in se.points.iter().enumerate() {
                    base.resize(base.len().max(k + 1), 0.0);
                    if !(v.is_finite() && t.is_finite() && v > 0.0) {
                        continue;
                    }
                    let (x0, x1) = (x_px(t, x_max), x_px(t + bucket, x_max));
                    let (y0, y1) = (y_px(base[k] + v, y_top, bx), y_px(base[k], y_top, bx));
                    base[k] += v;
                    let _ = writeln!(
                        s,
                        r##"<rect class="bar" x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"##,
                        x1 - x0,
                        y1 - y0,
                        se.color
                    );
                }
            }
        } else {
            for se in &panel.series {
                let pts: Vec<String> = se
                    .points
                    .iter()
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .map(|&(t, v)| format!("{:.1},{:.1}", x_px(t, x_max), y_px(v, y_top, bx)))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                let dash = if se.dashed {
                    r#" stroke-dasharray="6 3""#
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"{dash}/>"##,
                    pts.join(" "),
                    se.color
                );
            }
        }
        // the frame last, over the shading
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{PANEL_H:.1}" fill="none" stroke="#333"/>"##,
            right - LEFT
        );
    }
    let (_, last_bottom) = panel_box(c.panels.len().saturating_sub(1));
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333">{}</text>"##,
        (LEFT + right) / 2.0,
        last_bottom + 36.0,
        escape(&c.x_label)
    );
    s.push_str("</svg>\n");
    s
}

/// How a legend entry shows its series or period.
enum Swatch {
    Line,
    Dashed,
    /// A filled box of this opacity (bars, shaded periods).
    Box(f64),
}

/// Rough width of `text` at 12 px (for laying the legend out).
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 6.8
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A small well-formedness check: one root, every tag closed in order, attributes
    /// quoted, `&` only in the five entities, no `<` in text or attributes.
    pub fn check_xml(doc: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = doc.trim();
        let mut roots = 0;
        while !rest.is_empty() {
            let Some(lt) = rest.find('<') else {
                check_text(rest)?;
                break;
            };
            check_text(&rest[..lt])?;
            if stack.is_empty() && !rest[..lt].trim().is_empty() {
                return Err(format!("text outside the root: {:?}", &rest[..lt]));
            }
            let gt = rest[lt..].find('>').ok_or("unclosed tag")? + lt;
            let tag = &rest[lt + 1..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
                if open != name.trim() {
                    return Err(format!("<{open}> closed by </{name}>"));
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let body = tag.trim_end_matches('/');
            let (name, attrs) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-')
            {
                return Err(format!("bad tag name {name:?}"));
            }
            check_attrs(attrs)?;
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name.to_string());
            }
        }
        if let Some(open) = stack.pop() {
            return Err(format!("<{open}> never closed"));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(())
    }

    fn check_text(text: &str) -> Result<(), String> {
        let mut rest = text;
        while let Some(amp) = rest.find('&') {
            rest = &rest[amp..];
            if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| rest.starts_with(e))
            {
                return Err(format!("bare & in {text:?}"));
            }
            rest = &rest[1..];
        }
        if text.contains('<') || text.contains('>') {
            return Err(format!("bare < or > in {text:?}"));
        }
        Ok(())
    }

    fn check_attrs(attrs: &str) -> Result<(), String> {
        let mut rest = attrs.trim();
        let mut seen = Vec::new();
        while !rest.is_empty() {
            let (name, after) = rest
                .split_once('=')
                .ok_or(format!("attribute without value: {rest:?}"))?;
            let name = name.trim();
            if seen.contains(&name) {
                return Err(format!("attribute {name} twice"));
            }
            seen.push(name);
            let after = after.trim_start();
            let q = after.chars().next().ok_or("no value")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted value of {name}"));
            }
            let end = after[1..]
                .find(q)
                .ok_or(format!("unterminated value of {name}"))?
                + 1;
            check_text(&after[1..end])?;
            rest = after[end + 1..].trim_start();
        }
        Ok(())
    }

    /// Every `<polyline>`'s points, in pixels.
    fn polylines(doc: &str) -> Vec<Vec<(f64, f64)>> {
        doc.split("<polyline points=\"")
            .skip(1)
            .map(|p| {
                p.split('"')
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    fn recording() -> Recording {
        // 2 s of 202s, 1 s of 429s, 1 s of 500s and resets, then 202s again
        let requests = (0..500)
            .map(|i| {
                let status = match i {
                    0..=199 => 202,
                    200..=299 => 429,
                    300..=349 => 500,
                    350..=399 => 0,
                    _ => 202,
                };
                (f64::from(i) * 0.01 + 0.001, status)
            })
            .collect();
        Recording {
            queued: (0..200).map(|i| f64::from(i) * 0.01).collect(),
            requests,
            backlog: (0..50u32)
                .map(|i| (f64::from(i) * 0.1, u64::from(200 - 4 * i)))
                .collect(),
            periods: vec![Period {
                from: 3.0,
                to: 4.0,
                label: "PagerDuty down (<500> & resets)".into(),
            }],
        }
    }

    #[test]
    fn the_svg_is_well_formed_and_escapes_its_text() {
        let mut rec = recording();
        rec.shade_status(429, 0.05, "429 \"rate limit\"");
        let doc = svg(&chart("Storm <10,000> & drain", "What 'this' shows.", &rec));
        check_xml(&doc).unwrap();
        assert!(doc.contains("Storm &lt;10,000&gt; &amp; drain"), "{doc}");
        assert!(doc.contains("PagerDuty down (&lt;500&gt; &amp; resets)"));
        assert!(doc.contains("429 &quot;rate limit&quot;"));
        // the checker itself rejects what it must
        for bad in [
            "<svg><g></svg>",
            "<svg a=1/>",
            "<svg>a & b</svg>",
            "<svg/><svg/>",
            "<svg><text>x</g></svg>",
            "<svg a=\"1\" a=\"2\"/>",
        ] {
            assert!(check_xml(bad).is_err(), "{bad}");
        }
    }

    /// Every bar's (x, top y, width, height), in pixels.
    fn bars(doc: &str) -> Vec<(f64, f64, f64, f64)> {
        let attr = |tag: &str, name: &str| -> f64 {
            let v = tag.split(&format!(" {name}=\"")).nth(1).unwrap();
            v.split('"').next().unwrap().parse().unwrap()
        };
        doc.split("<rect class=\"bar\"")
            .skip(1)
            .map(|t| {
                let t = t.split('>').next().unwrap();
                (
                    attr(t, "x"),
                    attr(t, "y"),
                    attr(t, "width"),
                    attr(t, "height"),
                )
            })
            .collect()
    }

    #[test]
    fn every_series_stays_in_its_panel_and_its_maximum_reaches_near_the_top() {
        let rec = recording();
        let c = chart("t", "s", &rec);
        let doc = svg(&c);
        let inside_x = |x: f64| (LEFT - 0.05..=WIDTH - RIGHT + 0.05).contains(&x);
        // panel 0: stacked bars (each bucket's stack is its requests per second)
        let (top, bottom) = panel_box(0);
        let bars = bars(&doc);
        let drawn: usize = c.panels[0]
            .series
            .iter()
            .map(|se| se.points.iter().filter(|p| p.1 > 0.0).count())
            .sum();
        assert_eq!(bars.len(), drawn);
        for &(x, y, w, h) in &bars {
            assert!(inside_x(x) && inside_x(x + w) && w > 0.0, "bar x {x} w {w}");
            assert!(
                y >= top - 0.05 && y + h <= bottom + 0.05 && h > 0.0,
                "bar y {y} h {h}"
            );
        }
        let highest = bars.iter().map(|b| b.1).fold(f64::INFINITY, f64::min);
        assert!(
            highest <= top + PANEL_H * 0.5,
            "panel 0: {highest} vs top {top}"
        );
        // 5 requests in every 0.05 s bucket, whatever their answers: every stack is 100/s,
        // and the axis ends at 100
        assert_eq!(c.panels[0].max(), 100.0);
        assert!((highest - top).abs() < 0.06, "{highest} vs {top}");
        let lowest = bars.iter().map(|b| b.1 + b.3).fold(0.0, f64::max);
        assert!((lowest - bottom).abs() < 0.06, "{lowest} vs {bottom}");
        // panel 1: lines
        let (top, bottom) = panel_box(1);
        let lines = polylines(&doc);
        assert_eq!(lines.len(), c.panels[1].series.len());
        for (pts, se) in lines.iter().zip(&c.panels[1].series) {
            assert_eq!(pts.len(), se.points.len(), "{}", se.name);
            for &(x, y) in pts {
                assert!(inside_x(x), "{} x {x}", se.name);
                assert!(
                    (top - 0.05..=bottom + 0.05).contains(&y),
                    "{} y {y}",
                    se.name
                );
            }
        }
        // the largest count (300 accepted) ends the axis: drawn at the top, zeros at the bottom
        let ys = lines.iter().flatten().map(|p| p.1);
        let highest = ys.clone().fold(f64::INFINITY, f64::min);
        let lowest = ys.fold(0.0, f64::max);
        assert_eq!(c.panels[1].max(), 300.0);
        assert!((highest - top).abs() < 0.06, "{highest} vs {top}");
        assert!((lowest - bottom).abs() < 0.06, "{lowest} vs {bottom}");
        // the time axis: the last bucket (4.95 to 5 s) ends on the plot's right edge
        let last_x = bars.iter().map(|b| b.0 + b.2).fold(0.0, f64::max);
        assert!((last_x - (WIDTH - RIGHT)).abs() < 0.11, "{last_x}");
        assert!(c.x_max >= 4.99 && c.x_max <= 5.0 + bucket_len(4.99));
    }

    #[test]
    fn rates_and_counts_come_from_the_recording() {
        let rec = recording();
        let c = chart("t", "s", &rec);
        let bucket = bucket_len(rec.end());
        assert_eq!(bucket, 0.05);
        let rate_of = |name: &str| -> f64 {
            let se = c.panels[0].series.iter().find(|s| s.name == name).unwrap();
            // per-bucket counts back from the rates
            se.points.iter().map(|p| p.1 * bucket).sum()
        };
        // the stacks are what was sent: no request missing, none counted twice
        let sent: f64 = c.panels[0]
            .series
            .iter()
            .flat_map(|se| se.points.iter().map(|p| p.1 * bucket))
            .sum();
        assert!((sent - 500.0).abs() < 1e-6, "{sent}");
        assert_eq!(
            c.panels[0].series.len(),
            3,
            "no 'other' series without other answers"
        );
        assert!((rate_of("accepted (202)") - 300.0).abs() < 1e-6);
        assert!((rate_of("rate-limited (429)") - 100.0).abs() < 1e-6);
        assert!((rate_of("failed (5xx, reset)") - 100.0).abs() < 1e-6);
        let last = |name: &str| {
            let se = c.panels[1].series.iter().find(|s| s.name == name).unwrap();
            se.points.last().unwrap().1
        };
        assert_eq!(last("handed to the connector (cumulative)"), 200.0);
        assert_eq!(last("accepted (cumulative)"), 300.0);
        assert_eq!(last("outbox backlog (rows pending)"), 4.0);
        let mut shaded = Recording {
            requests: rec.requests.clone(),
            ..Recording::default()
        };
        shaded.shade_status(429, 0.05, "429");
        assert_eq!(
            shaded.periods,
            vec![Period {
                from: 2.0,
                to: 3.0,
                label: "429".into()
            }]
        );
    }

    #[test]
    fn an_empty_recording_and_a_single_point_draw_without_dividing_by_zero() {
        let empty = svg(&chart("empty", "nothing measured.", &Recording::default()));
        check_xml(&empty).unwrap();
        assert!(!empty.contains("NaN") && !empty.contains("inf"), "{empty}");
        let one = Recording {
            queued: vec![0.0],
            requests: vec![(0.0, 202)],
            backlog: vec![(0.0, 1)],
            periods: vec![Period {
                from: 0.0,
                to: 0.0,
                label: "none".into(),
            }],
        };
        let doc = svg(&chart("one", "one point.", &one));
        check_xml(&doc).unwrap();
        assert!(!doc.contains("NaN") && !doc.contains("inf"), "{doc}");
        for pts in polylines(&doc) {
            for (x, y) in pts {
                assert!(x.is_finite() && y.is_finite());
            }
        }
        assert_eq!(axis(0.0, 5), (1.0, 0.2));
        assert_eq!(axis(f64::NAN, 5), (1.0, 0.2));
    }

    #[test]
    fn axes_end_on_round_values_with_readable_labels() {
        assert_eq!(axis(15_000.0, 5), (15_000.0, 5_000.0));
        assert_eq!(axis(123.0, 5), (125.0, 25.0));
        assert_eq!(axis(46.2, 10), (50.0, 5.0));
        assert_eq!(axis(1.0, 10), (1.0, 0.1));
        assert_eq!(tick_label(15_000.0, 5_000.0), "15,000");
        assert_eq!(tick_label(0.3, 0.1), "0.3");
        assert_eq!(tick_label(0.75, 0.25), "0.75");
        assert_eq!(tick_label(1_234_567.0, 1.0), "1,234,567");
        assert_eq!(bucket_len(0.0), 0.01);
        assert_eq!(bucket_len(46.0), 0.5);
        assert_eq!(bucket_len(12.0), 0.1);
    }
}
