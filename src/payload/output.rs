//! The plugin output as sent: the Lua library's output options (`use_long_output`, `output_size_limit`, `remove_line_break_in_output`).
//!
//! The library (`sc_event.lua`, `build_outputs`) rewrites the event's `output` before it is
//! formatted: without `use_long_output` only the short output is kept, with
//! `remove_line_break_in_output` line breaks are replaced, and `output_size_limit` cuts it.
//! Here the same options shape the `Output` and `LongOutput` details of the built-in events
//! (so the summary, made of the first line, too) and the `{output}` / `{short_output}` macros
//! of `format_file` templates.
//!
//! Where we differ from the library, on purpose:
//! - The short output is the first line; the library kept everything before the last line
//!   break (`^(.*)\n` is greedy in Lua).
//! - `remove_line_break_in_output` replaces the line breaks of the output sent; the library
//!   only ran the replacement on outputs that had no line break, so the option never changed
//!   anything there, whatever its value. Its default is therefore 0 here (the library's
//!   documented default, 1, was the behaviour of 0): outputs keep their line breaks unless it
//!   is set. A Windows line break (`\r\n`) counts as one.
//! - `output_size_limit` counts characters, never cutting one in two (the library counted
//!   bytes), and a cut text ends with [`crate::payload::TRUNCATION_MARKER`] when the limit
//!   leaves room for it (more than its 12 characters); the text sent never exceeds the limit.

use crate::params::{ConfigError, Given, Param, ParamReader, ParamValue};
use crate::payload::{TRUNCATION_MARKER, truncate_chars};

/// How the plugin output goes into events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputOptions {
    /// `use_long_output`: true (default) = the long output is sent too; false = the first
    /// line only.
    pub long: bool,
    /// `output_size_limit`: at most this many characters of output, first line and long
    /// output together (`None`, the default: no limit but PagerDuty's).
    pub size_limit: Option<usize>,
    /// `remove_line_break_in_output = 1`: the line breaks of the output are replaced with
    /// this text (`output_line_break_replacement_character`, default a space).
    pub line_break: Option<String>,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            long: true,
            size_limit: None,
            line_break: None,
        }
    }
}

impl OutputOptions {
    /// The `Output` detail (the first line, given without its line break) and the
    /// `LongOutput` detail (the lines after it; `None` when there are none or they are not
    /// sent) of a status, as sent: at most `output_size_limit` characters together, counting
    /// one line break between them.
    pub fn details(&self, first: &str, long: &str) -> (String, Option<String>) {
        let long = (self.long && !long.trim().is_empty()).then(|| self.replace(long));
        let Some(limit) = self.size_limit else {
            return (first.to_string(), long);
        };
        let output = cut(first, limit);
        let separator = self.line_break.as_deref().map_or(1, |r| r.chars().count());
        let room = limit.saturating_sub(output.chars().count() + separator);
        let long = long.filter(|_| output == first && room > 0);
        (output, long.map(|l| cut(&l, room)))
    }

    /// A whole output text (the `{output}` and `{short_output}` macros): the first line only
    /// without `use_long_output`, line breaks replaced, cut to `output_size_limit`.
    pub fn text(&self, output: &str) -> String {
        let chosen = if self.long {
            output
        } else {
            first_line(output)
        };
        let replaced = self.replace(chosen);
        match self.size_limit {
            Some(limit) => cut(&replaced, limit),
            None => replaced,
        }
    }

    /// `text` with its line breaks replaced (`remove_line_break_in_output`).
    fn replace(&self, text: &str) -> String {
        match &self.line_break {
            Some(r) => text.replace("\r\n", "\n").replace('\n', r),
            None => text.to_string(),
        }
    }
}

/// The text before the first line break (without a `\r` before it).
pub(crate) fn first_line(s: &str) -> &str {
    let line = s.split('\n').next().unwrap_or_default();
    line.strip_suffix('\r').unwrap_or(line)
}

/// At most `limit` characters of `s`: with the truncation marker when there is room for more
/// than the marker, else its first `limit` characters.
fn cut(s: &str, limit: usize) -> String {
    if s.chars().nth(limit).is_none() {
        s.to_string()
    } else if limit > TRUNCATION_MARKER.chars().count() {
        truncate_chars(s, limit)
    } else {
        s.chars().take(limit).collect()
    }
}

/// Largest `output_size_limit`, in characters (PagerDuty takes 512 KB in all).
const MAX_OUTPUT_SIZE_LIMIT: i64 = 1_000_000;

impl OutputOptions {
    /// Reads the output options.
    pub(crate) fn read(r: &mut ParamReader) -> Result<OutputOptions, ConfigError> {
        let long = r.flag(&USE_LONG_OUTPUT)?;
        let size_limit = r.integer(&OUTPUT_SIZE_LIMIT)?.map(|n| n as usize);
        let remove = r.flag(&REMOVE_LINE_BREAK)?;
        let replacement = match r.take(&LINE_BREAK_REPLACEMENT) {
            None => None,
            // Kept as written (" | " is not trimmed); a blank value is the default space.
            Some(Given {
                value: ParamValue::Str(s),
                ..
            }) => Some((s, remove)),
            Some(e) => Some((e.text()?, remove)),
        };
        let line_break = match replacement {
            Some((text, true)) => Some(text),
            Some((_, false)) => {
                r.warn(
                    "parameter 'output_line_break_replacement_character' has no effect without \
                     remove_line_break_in_output=1",
                );
                None
            }
            None => remove.then(|| " ".to_string()),
        };
        Ok(OutputOptions {
            long,
            size_limit,
            line_break,
        })
    }
}

const USE_LONG_OUTPUT: Param = Param::flag(
    "use_long_output",
    true,
    "1 (default) = the long output is sent (custom_details.LongOutput); 0 = the first line only",
);
const OUTPUT_SIZE_LIMIT: Param = Param::integer(
    "output_size_limit",
    1,
    MAX_OUTPUT_SIZE_LIMIT,
    None,
    "at most this many characters of plugin output in an event, first line and long output together, 1 to 1000000 (default: no limit but PagerDuty's)",
);
const REMOVE_LINE_BREAK: Param = Param::flag(
    "remove_line_break_in_output",
    false,
    "1 = the line breaks of the output sent are replaced with output_line_break_replacement_character (default 0: kept)",
);
const LINE_BREAK_REPLACEMENT: Param = Param::new(
    "output_line_break_replacement_character",
    "what replaces a line break with remove_line_break_in_output=1 (default a space)",
);

/// The output options' parameters.
pub(crate) const PARAMS: &[Param] = &[
    OUTPUT_SIZE_LIMIT,
    USE_LONG_OUTPUT,
    REMOVE_LINE_BREAK,
    LINE_BREAK_REPLACEMENT,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(long: bool, size_limit: Option<usize>, line_break: Option<&str>) -> OutputOptions {
        OutputOptions {
            long,
            size_limit,
            line_break: line_break.map(str::to_string),
        }
    }

    #[test]
    fn details_table() {
        let first = "CRITICAL - /var 97%";
        let long = "inodes 50%\nmounted ro";
        // (use_long_output, output_size_limit, replacement, Output, LongOutput)
        type Row = (
            bool,
            Option<usize>,
            Option<&'static str>,
            &'static str,
            Option<&'static str>,
        );
        let table: &[Row] = &[
            (true, None, None, first, Some(long)),
            (false, None, None, first, None),
            (true, None, Some(" "), first, Some("inodes 50% mounted ro")),
            (
                true,
                None,
                Some(" | "),
                first,
                Some("inodes 50% | mounted ro"),
            ),
            // the limit covers the first line, one line break and the long output
            (true, Some(19), None, first, None),
            (true, Some(20), None, first, None),
            (true, Some(21), None, first, Some("i")),
            (true, Some(30), None, first, Some("inodes 50%")),
            (true, Some(41), None, first, Some(long)),
            (
                true,
                Some(1000),
                Some(" "),
                first,
                Some("inodes 50% mounted ro"),
            ),
            // a replacement of three characters takes three
            (true, Some(24), Some(" | "), first, Some("in")),
            // a first line over the limit is cut, with the marker when there is room
            (true, Some(13), None, "C…[truncated]", None),
            (true, Some(5), None, "CRITI", None),
            (false, Some(8), None, "CRITICAL", None),
        ];
        for (i, (l, limit, r, want_out, want_long)) in table.iter().enumerate() {
            let o = opts(*l, *limit, *r);
            let (out, lo) = o.details(first, long);
            assert_eq!(
                (out.as_str(), lo.as_deref()),
                (*want_out, *want_long),
                "row {i}"
            );
            let total = out.chars().count() + lo.as_ref().map_or(0, |l| l.chars().count() + 1);
            if let (Some(limit), None) = (limit, r) {
                assert!(total <= *limit, "row {i}: {total} > {limit}");
            }
        }
        // no long output: none sent, whatever the options
        assert_eq!(
            opts(true, None, None).details("OK", "  \n"),
            ("OK".to_string(), None)
        );
    }

    #[test]
    fn text_table() {
        let output = "DOWN - no route\r\nping 10.0.0.1\nlost 100%";
        // (use_long_output, output_size_limit, replacement, {output})
        let table: &[(bool, Option<usize>, Option<&str>, &str)] = &[
            (true, None, None, output),
            (false, None, None, "DOWN - no route"),
            (
                true,
                None,
                Some(" "),
                "DOWN - no route ping 10.0.0.1 lost 100%",
            ),
            (false, None, Some(" "), "DOWN - no route"),
            (true, Some(4), None, "DOWN"),
            (true, Some(20), Some("/"), "DOWN - n…[truncated]"),
            (false, Some(100), None, "DOWN - no route"),
        ];
        for (i, (l, limit, r, want)) in table.iter().enumerate() {
            assert_eq!(opts(*l, *limit, *r).text(output), *want, "row {i}");
        }
        // characters, not bytes: an accent is never cut in two
        assert_eq!(opts(true, Some(3), None).text("été chaud"), "été");
    }

    #[test]
    fn defaults_change_nothing() {
        let o = OutputOptions::default();
        assert_eq!(o.text("a\nb"), "a\nb");
        assert_eq!(o.details("a", "b\nc"), ("a".into(), Some("b\nc".into())));
    }
}
