//! The macro language: `{...}` read as the library reads it, checked against the fields of the event.

use super::fields::{
    ACK_FIELDS, COMMON_FIELDS, For, HOST_CACHE_FIELDS, OBJECT_CACHE_FIELDS, SERVICE_CACHE_FIELDS,
    STATUS_FIELDS,
};
use crate::luapattern::Pattern;

/// The transformation flags (`_sc<flag>` at the end of a macro).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flag {
    /// A timestamp as an RFC 3339 date in UTC.
    Date,
    /// 0 -> SOFT, anything else -> HARD.
    Type,
    /// The first line of a text.
    Short,
    /// A state number -> its name (OK, DOWN...).
    State,
    /// A text -> a number.
    Number,
    /// Anything -> a text.
    Text,
}

impl Flag {
    const NAMES: &str = "_scdate, _scstate, _sctype, _scshort, _scnumber, _scstring";

    fn parse(name: &str) -> Option<Flag> {
        Some(match name {
            "date" => Flag::Date,
            "type" => Flag::Type,
            "short" => Flag::Short,
            "state" => Flag::State,
            "number" => Flag::Number,
            "string" => Flag::Text,
            _ => return None,
        })
    }
}

/// Where a macro's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Source {
    /// A field of the event (`{output}`).
    Event(String),
    /// `{cache.host.X}`.
    Host(String),
    /// `{cache.service.X}`.
    Service(String),
    HostSeverity,
    ServiceSeverity,
    InstanceName,
    InstanceId,
    /// `{cache.hostgroups}`, `{cache.servicegroups}`: the names, a list.
    GroupList {
        service: bool,
    },
    /// `{groups(hg|sg,table|inline,PATTERN)}`: the names matching the Lua pattern.
    Groups {
        service: bool,
        table: bool,
        pattern: Pattern,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Macro {
    /// As written, braces included (for messages).
    pub(super) text: String,
    pub(super) source: Source,
    pub(super) flag: Option<Flag>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Piece {
    Lit(String),
    Mac(Macro),
}

/// The macros and text of a string. `{`, one or more of the characters the library's
/// pattern `{[%w_.%(%),%%%+%-%*%?%[%]%^%$]+}` allows, and `}` make a macro.
pub(super) fn pieces(s: &str, what: For) -> Result<Vec<Piece>, String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_.(),%+-*?[]^$".contains(&b);
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let len = bytes[i + 1..].iter().take_while(|b| allowed(**b)).count();
            let end = i + 1 + len;
            if len > 0 && bytes.get(end) == Some(&b'}') {
                if !lit.is_empty() {
                    out.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                out.push(Piece::Mac(parse_macro(&s[i..=end], what)?));
                i = end + 1;
                continue;
            }
        }
        let c = s[i..].chars().next().unwrap_or_default();
        lit.push(c);
        i += c.len_utf8().max(1);
    }
    if !lit.is_empty() || out.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

/// Reads one macro (`{...}`, braces included) as the library does, and checks it.
fn parse_macro(text: &str, what: For) -> Result<Macro, String> {
    let inner = &text[1..text.len() - 1];
    if let Some(args) = inner
        .strip_prefix("groups(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let m = Macro {
            text: text.to_string(),
            source: groups(text, args)?,
            flag: None,
        };
        return check_for(m, what);
    }
    let (name, flag) = split_flag(text, inner)?;
    let source = match name.strip_prefix("cache.") {
        Some(rest) => cache(text, rest)?,
        None => event_field(text, name, what)?,
    };
    check_for(
        Macro {
            text: text.to_string(),
            source,
            flag,
        },
        what,
    )
}

/// `unknown macro {...} (why)`.
fn unknown(text: &str, why: &str) -> String {
    format!("unknown macro {text} ({why})")
}

/// `{groups(hg|sg,table|inline,PATTERN)}`, `args` being what is between the parentheses.
fn groups(text: &str, args: &str) -> Result<Source, String> {
    let mut parts = args.splitn(3, ',');
    let (kind, format, regex) = match (parts.next(), parts.next(), parts.next()) {
        (Some(k), Some(f), Some(r)) => (k, f, r),
        _ => {
            return Err(unknown(
                text,
                "expected {groups(hg|sg,table|inline,PATTERN)}",
            ));
        }
    };
    let service = match kind {
        "hg" => false,
        "sg" => true,
        "bv" => {
            return Err(unknown(
                text,
                "business views are BAM objects, which this connector does not handle",
            ));
        }
        _ => return Err(unknown(text, "the group type must be hg or sg")),
    };
    let table = match format {
        "table" => true,
        "inline" => false,
        _ => return Err(unknown(text, "the format must be table or inline")),
    };
    let pattern = Pattern::new(regex)
        .map_err(|e| format!("macro {text}: {regex:?} is not a valid Lua pattern: {e}"))?;
    Ok(Source::Groups {
        service,
        table,
        pattern,
    })
}

/// The name of a macro and its flag, if it ends with one.
fn split_flag<'a>(text: &str, inner: &'a str) -> Result<(&'a str, Option<Flag>), String> {
    // `(.*)_sc(%w+)$`: only the last `_sc` can be followed by letters and digits alone.
    Ok(match inner.rfind("_sc") {
        Some(i)
            if i + 3 < inner.len() && inner[i + 3..].bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            let f = &inner[i + 3..];
            let flag = Flag::parse(f).ok_or_else(|| {
                format!(
                    "unknown flag _sc{f} in macro {text} (flags: {})",
                    Flag::NAMES
                )
            })?;
            (&inner[..i], Some(flag))
        }
        _ => (inner, None),
    })
}

/// `{cache.<rest>}`: a value of Broker's cache.
fn cache(text: &str, rest: &str) -> Result<Source, String> {
    let unknown = |why: &str| unknown(text, why);
    Ok(match rest.split_once('.') {
        None if rest == "hostgroups" => Source::GroupList { service: false },
        None if rest == "servicegroups" => Source::GroupList { service: true },
        None => return Err(unknown("cache macros are {cache.<type>.<field>}")),
        Some(("host", f)) if OBJECT_CACHE_FIELDS.contains(&f) || HOST_CACHE_FIELDS.contains(&f) => {
            Source::Host(f.into())
        }
        Some(("service", f))
            if OBJECT_CACHE_FIELDS.contains(&f) || SERVICE_CACHE_FIELDS.contains(&f) =>
        {
            Source::Service(f.into())
        }
        Some(("host" | "service", _)) => {
            return Err(unknown(
                "not a field of the hosts or services of Broker's cache",
            ));
        }
        Some(("severity", "host")) => Source::HostSeverity,
        Some(("severity", "service")) => Source::ServiceSeverity,
        Some(("severity", _)) => return Err(unknown("expected severity.host or severity.service")),
        Some(("instance", "name")) => Source::InstanceName,
        Some(("instance", "id")) => Source::InstanceId,
        Some(("instance", _)) => return Err(unknown("expected instance.name or instance.id")),
        Some(_) => {
            return Err(unknown(
                "the cache types are host, service, severity and instance",
            ));
        }
    })
}

/// `{name}`: a field of the events `what` formats.
fn event_field(text: &str, name: &str, what: For) -> Result<Source, String> {
    let known = COMMON_FIELDS.contains(&name)
        || name == "service_id" && what != For::Host
        || match what {
            For::Host | For::Service => STATUS_FIELDS.contains(&name),
            For::Acknowledgement => ACK_FIELDS.contains(&name),
        };
    if !known {
        return Err(unknown(
            text,
            &format!("not a field of the events of {}", what.name()),
        ));
    }
    Ok(Source::Event(name.to_string()))
}

/// Service data has no meaning in a host status template.
fn check_for(m: Macro, what: For) -> Result<Macro, String> {
    let service_only = matches!(
        m.source,
        Source::Service(_)
            | Source::ServiceSeverity
            | Source::GroupList { service: true }
            | Source::Groups { service: true, .. }
    );
    if what == For::Host && service_only {
        return Err(format!(
            "macro {} names service data, which host status events do not have",
            m.text
        ));
    }
    Ok(m)
}
