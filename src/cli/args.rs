//! Hand-written argument parsing for `pagerduty-event`: `--name value`, `--name=value`, flags, repeatable options, positionals.

use super::Stop;

/// One option a subcommand accepts.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// The long name, without `--`.
    pub name: &'static str,
    /// Takes a value (`--name value` or `--name=value`).
    pub value: bool,
    /// May be given more than once.
    pub repeat: bool,
}

/// An option that takes one value.
pub const fn value(name: &'static str) -> Opt {
    Opt {
        name,
        value: true,
        repeat: false,
    }
}

/// An option that takes a value and may be repeated.
pub const fn repeated(name: &'static str) -> Opt {
    Opt {
        name,
        value: true,
        repeat: true,
    }
}

/// An option without a value.
pub const fn flag(name: &'static str) -> Opt {
    Opt {
        name,
        value: false,
        repeat: false,
    }
}

/// The arguments of one subcommand.
#[derive(Debug, Default)]
pub struct Parsed {
    /// `--help` or `-h` was given (nothing else is checked then).
    pub help: bool,
    values: Vec<(&'static str, String)>,
    pub positionals: Vec<String>,
}

impl Parsed {
    /// The one positional argument; `missing` says what it is when absent.
    pub fn one_positional(&self, missing: &str) -> Result<&str, Stop> {
        match self.positionals.as_slice() {
            [one] => Ok(one.as_str()),
            [] => Err(Stop::Usage(format!("missing {missing}"))),
            [_, extra, ..] => Err(Stop::Usage(format!("unexpected argument {extra:?}"))),
        }
    }

    /// True when the flag (or an option of that name) was given.
    pub fn flag(&self, name: &str) -> bool {
        self.values.iter().any(|(n, _)| *n == name)
    }

    /// The value of a non-repeatable option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable option, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A number of seconds: `--name 2.5`; `max` is the largest value allowed.
    pub fn seconds(&self, name: &str, default: f64, max: f64) -> Result<f64, Stop> {
        let Some(v) = self.value(name) else {
            return Ok(default);
        };
        match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 && s <= max => Ok(s),
            _ => Err(Stop::Usage(format!(
                "--{name}: expected a number of seconds between 0 and {max}, got {v:?}"
            ))),
        }
    }
}

/// Parses a command that takes options only: `None` when `--help` was asked for (and
/// printed), a usage error for any positional argument.
pub fn parse_options(
    args: &[String],
    opts: &[Opt],
    help: impl Fn() -> String,
) -> Result<Option<Parsed>, Stop> {
    let p = parse(args, opts, false)?;
    if p.help {
        print!("{}", help());
        return Ok(None);
    }
    if let Some(extra) = p.positionals.first() {
        return Err(Stop::Usage(format!("unexpected argument {extra:?}")));
    }
    Ok(Some(p))
}

/// Parses `args` (the words after the subcommand) against `opts`. With `options_first`,
/// everything from the first positional argument on is positional (Pandora FMS passes
/// values such as `-5` or `--x` that must not be read as options); `--` always ends the
/// options.
pub fn parse(args: &[String], opts: &[Opt], options_first: bool) -> Result<Parsed, Stop> {
    let mut parsed = Parsed::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            parsed.positionals.extend(it.cloned());
            break;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(Parsed {
                help: true,
                ..Parsed::default()
            });
        }
        let Some(long) = arg.strip_prefix("--") else {
            if arg.starts_with('-') && arg.len() > 1 && arg != "-" {
                return Err(Stop::Usage(format!(
                    "unknown option {arg:?} (options are spelled --name)"
                )));
            }
            parsed.positionals.push(arg.clone());
            if options_first {
                parsed.positionals.extend(it.cloned());
                break;
            }
            continue;
        };
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let Some(opt) = opts.iter().find(|o| o.name == name) else {
            return Err(Stop::Usage(format!("unknown option --{name}")));
        };
        if !opt.repeat && parsed.flag(opt.name) {
            return Err(Stop::Usage(format!("--{name} given twice")));
        }
        let v = match (opt.value, inline) {
            (true, Some(v)) => v,
            (true, None) => it
                .next()
                .cloned()
                .ok_or_else(|| Stop::Usage(format!("--{name} needs a value")))?,
            (false, None) => String::new(),
            (false, Some(_)) => {
                return Err(Stop::Usage(format!("--{name} takes no value")));
            }
        };
        parsed.values.push((opt.name, v));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[Opt] = &[value("url"), repeated("detail"), flag("insecure")];

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn usage(r: Result<Parsed, Stop>) -> String {
        match r {
            Err(Stop::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn values_flags_and_positionals() {
        let p = parse(
            &words("--url=http://x --detail a=1 pos --detail b=2 --insecure"),
            OPTS,
            false,
        )
        .unwrap();
        assert_eq!(p.value("url"), Some("http://x"));
        assert_eq!(p.values("detail"), ["a=1", "b=2"]);
        assert!(p.flag("insecure"));
        assert_eq!(p.positionals, ["pos"]);
        assert!(!p.help);
    }

    #[test]
    fn options_first_keeps_dashes_in_values() {
        let p = parse(&words("--insecure key 12 trigger -5 --url"), OPTS, true).unwrap();
        assert_eq!(p.positionals, ["key", "12", "trigger", "-5", "--url"]);
        let p = parse(&words("-- -x"), OPTS, false).unwrap();
        assert_eq!(p.positionals, ["-x"]);
        let p = parse(&words("- x"), OPTS, false).unwrap();
        assert_eq!(p.positionals, ["-", "x"]);
    }

    #[test]
    fn help_wins() {
        assert!(
            parse(&words("--url x --help --bogus"), OPTS, false)
                .unwrap()
                .help
        );
        assert!(parse(&words("-h"), OPTS, true).unwrap().help);
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert!(usage(parse(&words("--bogus"), OPTS, false)).contains("--bogus"));
        assert!(usage(parse(&words("-x"), OPTS, false)).contains("-x"));
        assert!(usage(parse(&words("--url"), OPTS, false)).contains("needs a value"));
        assert!(usage(parse(&words("--url a --url b"), OPTS, false)).contains("twice"));
        assert!(usage(parse(&words("--insecure=1"), OPTS, false)).contains("no value"));
    }

    #[test]
    fn seconds() {
        let p = parse(&words("--url 2.5"), OPTS, false).unwrap();
        assert_eq!(p.seconds("url", 1.0, 10.0).unwrap(), 2.5);
        assert_eq!(p.seconds("other", 1.0, 10.0).unwrap(), 1.0);
        let p = parse(&words("--url 11"), OPTS, false).unwrap();
        assert!(p.seconds("url", 1.0, 10.0).is_err());
    }
}
