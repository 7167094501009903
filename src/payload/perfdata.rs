//! Nagios/Centreon performance data parser: `label=value[UOM];[warn];[crit];[min];[max]` items.

/// One metric of a perfdata string.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// Unit of measure (`%`, `s`, `ms`, `B`, `b/s`...), empty when none.
    pub unit: String,
    /// Warning range as written (`10`, `10:`, `~:10`, `@10:20`...).
    pub warn: Option<String>,
    /// Critical range as written.
    pub crit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Parses a perfdata string. Items that cannot be parsed, with an unknown value (`U`) or a
/// non-finite value are skipped; the function never fails and never panics.
///
/// Labels may be quoted with single quotes (then they may hold spaces and `=`; `''` stands
/// for a quote). Numbers accept `.` or `,` as decimal separator. Units are letters, `%` or
/// `/` (Centreon's `b/s`).
pub fn parse(perfdata: &str) -> Vec<Metric> {
    let mut metrics = Vec::new();
    let mut rest = perfdata;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (item, next) = next_item(rest);
        rest = next;
        if let Some(m) = item {
            metrics.push(m);
        }
    }
    metrics
}

/// Reads one item from the start of `s` (no leading whitespace); returns it (if valid) and
/// the remaining text.
fn next_item(s: &str) -> (Option<Metric>, &str) {
    let (label, after_label) = if let Some(quoted) = s.strip_prefix('\'') {
        match quoted_label(quoted) {
            Some(found) => found,
            // Unterminated quote: nothing after it can be trusted.
            None => return (None, ""),
        }
    } else {
        let end = s
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(s.len());
        (s[..end].to_string(), &s[end..])
    };
    let Some(after_eq) = after_label.strip_prefix('=') else {
        return (None, skip_token(after_label));
    };
    let end = after_eq.find(char::is_whitespace).unwrap_or(after_eq.len());
    let (data, rest) = after_eq.split_at(end);
    (metric(label, data), rest)
}

/// Skips to the next whitespace.
fn skip_token(s: &str) -> &str {
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    &s[end..]
}

/// A quoted label (the text after the opening quote): the unescaped label and the text after
/// the closing quote, or `None` when the quote is never closed.
fn quoted_label(s: &str) -> Option<(String, &str)> {
    let mut label = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\'' {
            label.push(c);
            continue;
        }
        if let Some(&(_, '\'')) = chars.peek() {
            chars.next();
            label.push('\'');
            continue;
        }
        return Some((label, &s[i + 1..]));
    }
    None
}

/// `value[UOM];warn;crit;min;max` for a label.
fn metric(name: String, data: &str) -> Option<Metric> {
    if name.trim().is_empty() {
        return None;
    }
    let mut fields = data.split(';');
    let value_uom = fields.next().unwrap_or("");
    let (number, unit) = split_number(value_uom)?;
    if !unit
        .chars()
        .all(|c| c.is_alphabetic() || c == '%' || c == '/')
    {
        return None;
    }
    let value = number_value(number)?;
    let range = |f: Option<&str>| {
        f.map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
    };
    let bound = |f: Option<&str>| f.and_then(|b| whole_number(b.trim()));
    let warn = range(fields.next());
    let crit = range(fields.next());
    let min = bound(fields.next());
    let max = bound(fields.next());
    Some(Metric {
        name,
        value,
        unit: unit.to_string(),
        warn,
        crit,
        min,
        max,
    })
}

/// Splits `12.5ms` into the longest leading number (`[+-]digits[.,digits][e[+-]digits]`)
/// and the rest; `None` when there are no digits.
fn split_number(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') {
        let frac_start = i + 1;
        let mut j = frac_start;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > frac_start || digits > 0 {
            digits += j - frac_start;
            i = j;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    // Every byte before `i` is ASCII, so `i` is a char boundary.
    Some(s.split_at(i))
}

/// A finite number from text `split_number` accepted.
fn number_value(number: &str) -> Option<f64> {
    let v: f64 = number.replace(',', ".").parse().ok()?;
    v.is_finite().then_some(v)
}

/// A min/max bound: the whole field must be a number (a unit is tolerated).
fn whole_number(s: &str) -> Option<f64> {
    let (number, unit) = split_number(s)?;
    if !unit
        .chars()
        .all(|c| c.is_alphabetic() || c == '%' || c == '/')
    {
        return None;
    }
    number_value(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: f64, unit: &str) -> Metric {
        Metric {
            name: name.into(),
            value,
            unit: unit.into(),
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    #[test]
    fn full_items() {
        let got = parse("used=85.5%;80;90;0;100 'free space'=12,5GB;~:10;@5:20;0; time=0.012s");
        assert_eq!(
            got,
            vec![
                Metric {
                    warn: Some("80".into()),
                    crit: Some("90".into()),
                    min: Some(0.0),
                    max: Some(100.0),
                    ..m("used", 85.5, "%")
                },
                Metric {
                    warn: Some("~:10".into()),
                    crit: Some("@5:20".into()),
                    min: Some(0.0),
                    ..m("free space", 12.5, "GB")
                },
                m("time", 0.012, "s"),
            ]
        );
    }

    #[test]
    fn quoted_labels_with_equals_and_quotes() {
        let got = parse("'a=b c'=1 'it''s'=2c '''x'''=-3e2 'C:\\ used'=4B/s");
        let names: Vec<_> = got.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a=b c", "it's", "'x'", "C:\\ used"]);
        assert_eq!(got[1].unit, "c");
        assert_eq!(got[2].value, -300.0);
        assert_eq!(got[3].unit, "B/s");
    }

    #[test]
    fn ranges_are_kept_as_written() {
        let got = parse("x=1;10:;@10:20;;");
        assert_eq!(got[0].warn.as_deref(), Some("10:"));
        assert_eq!(got[0].crit.as_deref(), Some("@10:20"));
        assert_eq!(got[0].min, None);
        assert_eq!(got[0].max, None);
    }

    #[test]
    fn unknown_and_invalid_items_are_skipped() {
        let got = parse(
            "a=U b=U;1;2 c= d=abc e=1x2 =5 ''=6 f=inf g=NaN h=1e999 i=.5 j=5. k=- noequals l=2 'open=3",
        );
        assert_eq!(got, vec![m("i", 0.5, ""), m("j", 5.0, ""), m("l", 2.0, "")]);
    }

    #[test]
    fn bad_bounds_become_none() {
        let got = parse("x=1;;;zero;1e999");
        assert_eq!(got, vec![m("x", 1.0, "")]);
    }

    #[test]
    fn separators_and_empty() {
        assert!(parse("").is_empty());
        assert!(parse("   \t\n ").is_empty());
        let got = parse("\ta=1\n\nb=2  ");
        assert_eq!(got, vec![m("a", 1.0, ""), m("b", 2.0, "")]);
    }

    /// xorshift64*, enough for fuzz-like inputs.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let alphabet: Vec<char> = "'= ;:@~-+.,eE0123456789U%abcé\t\n\u{0}\u{7f}€/"
            .chars()
            .collect();
        for round in 0..20_000 {
            let len = (rng(&mut seed) % 64) as usize;
            let s = if round % 2 == 0 {
                let bytes: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..len)
                    .map(|_| alphabet[(rng(&mut seed) % alphabet.len() as u64) as usize])
                    .collect()
            };
            for metric in parse(&s) {
                assert!(metric.value.is_finite());
                assert!(!metric.name.trim().is_empty());
                assert!(metric.min.is_none_or(f64::is_finite));
                assert!(metric.max.is_none_or(f64::is_finite));
            }
        }
    }
}
