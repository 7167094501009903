//! `pagerduty-event check`: a monitoring plugin (Nagios/centreon-plugins conventions) on the outbox: events waiting, the oldest one's age, events PagerDuty rejected.
//!
//! It reads the outbox read-only ([`crate::outbox::ReadOnly`]): a running connector is not
//! disturbed and a missing outbox is not created. One line on stdout, exit 0 OK, 1 WARNING,
//! 2 CRITICAL, 3 UNKNOWN (the outbox cannot be read, or bad usage).

use super::Stop;
use super::inspect::{self, age, since};
use crate::outbox::{ReadOnly, RejectedRow, Summary};

const UNKNOWN: i32 = 3;

/// Longest error text quoted in the output line.
const QUOTE_MAX: usize = 160;

/// Monitoring plugin (Nagios/Centreon): events waiting in the outbox, the oldest one's age,
/// events PagerDuty rejected; exit 0/1/2/3
///
/// A monitoring plugin (Nagios and centreon-plugins conventions) watching the outbox of the
/// connector that pages for Centreon: how many events wait for PagerDuty, how long the
/// oldest has waited, how many PagerDuty rejected. It only reads the outbox (a running
/// connector is not disturbed; a missing outbox is not created).
///
/// A threshold is a Nagios range: N alerts above N, N: below N, ~:N above N, N:M outside
/// N..M, @N:M inside N..M; an empty value disables it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Output: PAGERDUTY OK|WARNING|CRITICAL|UNKNOWN - <what is wrong> | pending=N;W;C;0
oldest_pending=Ns;W;C;0 rejected=N;W;C;0
Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the outbox cannot be read, bad usage)."
)]
pub(crate) struct Args {
    /// The connector's outbox_path (Broker's output), or a pagerduty-event outbox directory
    /// (default: $PAGERDUTY_EVENT_OUTBOX, else the directory send and flush use)
    #[arg(long, value_name = "PATH")]
    outbox: Option<String>,
    /// Events waiting for PagerDuty
    #[arg(
        long,
        value_name = "N",
        default_value = "100",
        help_heading = "Thresholds"
    )]
    warning_pending: String,
    /// Events waiting for PagerDuty
    #[arg(
        long,
        value_name = "N",
        default_value = "1000",
        help_heading = "Thresholds"
    )]
    critical_pending: String,
    /// Age of the oldest event waiting for PagerDuty
    #[arg(
        long,
        value_name = "SECONDS",
        default_value = "300",
        help_heading = "Thresholds"
    )]
    warning_age: String,
    /// Age of the oldest event waiting for PagerDuty
    #[arg(
        long,
        value_name = "SECONDS",
        default_value = "900",
        help_heading = "Thresholds"
    )]
    critical_age: String,
    /// Events rejected by PagerDuty and kept in the outbox (see `pagerduty-event list
    /// --rejected`, `resend`, `discard`)
    #[arg(
        long,
        value_name = "N",
        default_value = "0",
        help_heading = "Thresholds"
    )]
    warning_rejected: String,
    /// Events rejected by PagerDuty and kept in the outbox (default: none)
    #[arg(long, value_name = "N", help_heading = "Thresholds")]
    critical_rejected: Option<String>,
}

/// A Nagios threshold range.
#[derive(Debug, Clone, PartialEq)]
struct Range {
    /// As given (for the perfdata).
    text: String,
    start: f64,
    end: f64,
    /// `@`: alert inside the range rather than outside.
    inside: bool,
}

impl Range {
    /// `None` for an empty value (no threshold).
    fn parse(text: &str) -> Result<Option<Range>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        let (inside, body) = match t.strip_prefix('@') {
            Some(b) => (true, b),
            None => (false, t),
        };
        let number = |s: &str| -> Result<f64, String> {
            s.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| {
                    format!(
                        "expected a number or a Nagios range (N, N:, ~:N, N:M, @N:M), got {text:?}"
                    )
                })
        };
        let (start, end) = match body.split_once(':') {
            None => (0.0, number(body)?),
            Some((s, e)) => (
                if s == "~" {
                    f64::NEG_INFINITY
                } else {
                    number(s)?
                },
                if e.is_empty() {
                    f64::INFINITY
                } else {
                    number(e)?
                },
            ),
        };
        if start > end {
            return Err(format!("range {text:?} starts after it ends"));
        }
        Ok(Some(Range {
            text: t.to_string(),
            start,
            end,
            inside,
        }))
    }

    fn alerts(&self, v: f64) -> bool {
        let outside = v < self.start || v > self.end;
        outside != self.inside
    }
}

/// Plugin states, in order of gravity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Ok = 0,
    Warning = 1,
    Critical = 2,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
        }
    }
}

/// A metric's warning and critical thresholds.
struct Thresholds {
    warning: Option<Range>,
    critical: Option<Range>,
}

impl Thresholds {
    /// `metric`'s thresholds, as given to `--warning-<metric>` and `--critical-<metric>`.
    fn from(metric: &str, warning: &str, critical: Option<&str>) -> Result<Thresholds, String> {
        let get = |level: &str, value: &str| {
            Range::parse(value).map_err(|e| format!("--{level}-{metric}: {e}"))
        };
        Ok(Thresholds {
            warning: get("warning", warning)?,
            critical: get("critical", critical.unwrap_or(""))?,
        })
    }

    fn state(&self, v: f64) -> State {
        if self.critical.as_ref().is_some_and(|r| r.alerts(v)) {
            State::Critical
        } else if self.warning.as_ref().is_some_and(|r| r.alerts(v)) {
            State::Warning
        } else {
            State::Ok
        }
    }

    /// `label=VALUE;W;C;0`.
    fn perfdata(&self, label: &str, value: String) -> String {
        let text = |r: &Option<Range>| r.as_ref().map_or("", |r| r.text.as_str()).to_string();
        format!(
            "{label}={value};{};{};0",
            text(&self.warning),
            text(&self.critical)
        )
    }
}

/// One line of error text quoted in the output: no newline, no `|` (it starts the perfdata).
fn quote(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() || c == '|' { ' ' } else { c })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() > QUOTE_MAX {
        format!("{}...", clean.chars().take(QUOTE_MAX).collect::<String>())
    } else {
        clean
    }
}

/// The outboxes at `path`, added up.
fn read(path: &std::path::Path) -> Result<(Summary, usize), String> {
    let target = inspect::target(path)?;
    let mut total = Summary::default();
    for db in &target.databases {
        let s = ReadOnly::open(db)
            .and_then(|o| o.summary())
            .map_err(|e| e.to_string())?;
        total.pending += s.pending;
        total.rejected += s.rejected;
        total.oldest = match (total.oldest, s.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        total.last_error = total.last_error.or(s.last_error);
        if s.last_rejected.as_ref().map(|r| r.at) > total.last_rejected.as_ref().map(|r| r.at) {
            total.last_rejected = s.last_rejected;
        }
    }
    Ok((total, target.databases.len()))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The output line and the exit status for what the outbox holds.
fn verdict(
    s: &Summary,
    pending: &Thresholds,
    oldest: &Thresholds,
    rejected: &Thresholds,
) -> (String, i32) {
    let age_s = s.oldest.map_or(0, since);
    let waiting_state = pending
        .state(s.pending as f64)
        .max(oldest.state(age_s as f64));
    let waiting = if s.pending == 0 {
        "no event waiting for PagerDuty".to_string()
    } else {
        let mut t = format!(
            "{} waiting for PagerDuty, oldest {}",
            plural(s.pending, "event", "events"),
            age(age_s)
        );
        if let Some(e) = &s.last_error {
            t.push_str(&format!(" (last error: {})", quote(e)));
        }
        t
    };
    let rejected_state = rejected.state(s.rejected as f64);
    let refused = match (&s.last_rejected, s.rejected) {
        (
            Some(RejectedRow {
                at,
                action,
                dedup_key,
                reason,
                ..
            }),
            n,
        ) if n > 0 => format!(
            "{} rejected by PagerDuty (latest {} ago, {action} {}: {}; see pagerduty-event list --rejected)",
            plural(n, "event", "events"),
            age(since(*at)),
            quote(dedup_key),
            quote(reason)
        ),
        _ => "none rejected".to_string(),
    };
    let mut facts = [(waiting_state, waiting), (rejected_state, refused)];
    // what is wrong first
    facts.sort_by_key(|f| std::cmp::Reverse(f.0));
    let state = facts[0].0;
    let text = facts
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let perf = [
        pending.perfdata("pending", s.pending.to_string()),
        oldest.perfdata("oldest_pending", format!("{age_s}s")),
        rejected.perfdata("rejected", s.rejected.to_string()),
    ]
    .join(" ");
    (
        format!("PAGERDUTY {} - {text} | {perf}", state.word()),
        state as i32,
    )
}

/// Prints the UNKNOWN line (`why` quoted on one line); returns its exit status.
pub(crate) fn unknown(why: &str) -> i32 {
    println!("PAGERDUTY UNKNOWN - {}", quote(why));
    UNKNOWN
}

/// Runs `check`.
pub(crate) fn run(p: &Args) -> Result<i32, Stop> {
    let thresholds = (|| -> Result<_, String> {
        Ok((
            Thresholds::from("pending", &p.warning_pending, Some(&p.critical_pending))?,
            Thresholds::from("age", &p.warning_age, Some(&p.critical_age))?,
            Thresholds::from(
                "rejected",
                &p.warning_rejected,
                p.critical_rejected.as_deref(),
            )?,
        ))
    })();
    let (pending, oldest, rejected) = match thresholds {
        Ok(t) => t,
        Err(m) => return Ok(unknown(&m)),
    };
    let path = inspect::path(p.outbox.as_deref());
    match read(&path) {
        Ok((summary, _)) => {
            let (line, code) = verdict(&summary, &pending, &oldest, &rejected);
            println!("{line}");
            Ok(code)
        }
        Err(why) => Ok(unknown(&why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Range {
        Range::parse(text).unwrap().unwrap()
    }

    #[test]
    fn nagios_ranges() {
        assert!(Range::parse("").unwrap().is_none());
        let plain = r("10");
        assert!(
            !plain.alerts(0.0) && !plain.alerts(10.0) && plain.alerts(11.0) && plain.alerts(-1.0)
        );
        let above = r("10:");
        assert!(above.alerts(9.0) && !above.alerts(10.0) && !above.alerts(1e9));
        let upto = r("~:10");
        assert!(!upto.alerts(-5.0) && upto.alerts(10.5));
        let between = r("5:10");
        assert!(between.alerts(4.0) && !between.alerts(7.0) && between.alerts(11.0));
        let inside = r("@5:10");
        assert!(!inside.alerts(4.0) && inside.alerts(7.0) && !inside.alerts(11.0));
        assert!(Range::parse("abc").is_err());
        assert!(Range::parse("10:5").is_err());
        assert!(Range::parse("1:x").is_err());
    }

    #[test]
    fn quoted_errors_stay_on_one_line_before_the_perfdata() {
        assert_eq!(quote("a\nb | c"), "a b c");
        assert_eq!(quote(&"x".repeat(500)).chars().count(), QUOTE_MAX + 3);
    }
}
