//! Lua 5.3/5.4 patterns as `string.match` reads them, byte for byte: `accepted_hosts`, `accepted_services` and the split of their lists.
//!
//! The Centreon stream-connectors library filters host and service names with
//! `string.match(name, pattern)`. Users wrote those patterns for Lua, so they are matched here
//! with Lua's own algorithm (a port of `lstrlib.c`: character classes of the C locale, sets,
//! `*`, `+`, `-`, `?`, anchors, captures and back-references, `%b`, `%f`), including its
//! limits (32 captures, a recursion depth of 200). A pattern Lua would reject ("malformed
//! pattern...") is refused when the configuration is read, with Lua's message, instead of
//! failing on the first event that reaches the faulty part.

use std::fmt;

/// `LUA_MAXCAPTURES`.
const MAX_CAPTURES: usize = 32;
/// `MAXCCALLS`: how deep the matcher may recurse.
const MAX_DEPTH: usize = 200;

/// A pattern Lua would refuse, with Lua's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

fn err<T>(msg: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(msg.into()))
}

/// A checked Lua pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
}

impl Pattern {
    /// Checks `text` the way Lua would while matching it, for every item (not only the items
    /// some subject happens to reach).
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        validate(text.as_bytes())?;
        Ok(Pattern {
            text: text.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `string.match(subject, pattern) ~= nil`.
    pub fn is_match(&self, subject: &str) -> bool {
        find(subject.as_bytes(), self.text.as_bytes(), 0)
            .ok()
            .flatten()
            .is_some()
    }
}

/// Splits a list as the library's `sc_common:split` does: the pieces `string.gmatch(text,
/// "([^" .. separator .. "]+)")` gives (every character of `separator` separates; empty
/// pieces are skipped; nothing is trimmed). An empty separator means ",".
pub fn split(text: &str, separator: &str) -> Result<Vec<String>, PatternError> {
    let separator = if separator.is_empty() { "," } else { separator };
    let pattern = format!("([^{separator}]+)");
    validate(pattern.as_bytes())?;
    let (s, p) = (text.as_bytes(), pattern.as_bytes());
    let mut pieces = Vec::new();
    let mut at = 0;
    while at <= s.len() {
        match find(s, p, at)? {
            Some((start, end)) if end > start => {
                pieces.push(String::from_utf8_lossy(&s[start..end]).into_owned());
                at = end;
            }
            Some((start, _)) => at = start + 1,
            None => break,
        }
    }
    Ok(pieces)
}

/// Lua's `str_find_aux` for `match`: the first match at or after `init`, as `(start, end)`.
fn find(s: &[u8], p: &[u8], init: usize) -> Result<Option<(usize, usize)>, PatternError> {
    let (anchor, p) = match p.first() {
        Some(b'^') => (true, &p[1..]),
        _ => (false, p),
    };
    let mut start = init;
    loop {
        let mut m = Matcher {
            s,
            p,
            depth: MAX_DEPTH,
            captures: Vec::new(),
        };
        if let Some(end) = m.do_match(start, 0)? {
            if m.captures.iter().any(|c| c.len == CAP_UNFINISHED) {
                return err("unfinished capture");
            }
            return Ok(Some((start, end)));
        }
        start += 1;
        if anchor || start > s.len() {
            return Ok(None);
        }
    }
}

const CAP_UNFINISHED: isize = -1;
const CAP_POSITION: isize = -2;

#[derive(Debug, Clone, Copy)]
struct Capture {
    init: usize,
    len: isize,
}

struct Matcher<'a> {
    s: &'a [u8],
    p: &'a [u8],
    depth: usize,
    captures: Vec<Capture>,
}

/// `match_class` with the C locale's `<ctype.h>`.
fn match_class(c: u8, class: u8) -> bool {
    let res = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t'..=b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        _ => return class == c,
    };
    if class.is_ascii_uppercase() {
        !res
    } else {
        res
    }
}

/// Index just after the single-character class starting at `p` (`classEnd`).
fn class_end(pat: &[u8], mut p: usize) -> Result<usize, PatternError> {
    let c = pat[p];
    p += 1;
    match c {
        b'%' => {
            if p >= pat.len() {
                return err("malformed pattern (ends with '%')");
            }
            Ok(p + 1)
        }
        b'[' => {
            if pat.get(p) == Some(&b'^') {
                p += 1;
            }
            loop {
                if p >= pat.len() {
                    return err("malformed pattern (missing ']')");
                }
                let c = pat[p];
                p += 1;
                if c == b'%' && p < pat.len() {
                    p += 1;
                }
                if pat.get(p) == Some(&b']') {
                    return Ok(p + 1);
                }
            }
        }
        _ => Ok(p),
    }
}

/// `matchbracketclass`: `p` at `[`, `ec` at the closing `]`.
fn match_bracket_class(c: u8, pat: &[u8], mut p: usize, ec: usize) -> bool {
    let mut sig = true;
    if pat[p + 1] == b'^' {
        sig = false;
        p += 1;
    }
    p += 1;
    while p < ec {
        if pat[p] == b'%' {
            p += 1;
            if match_class(c, pat[p]) {
                return sig;
            }
        } else if pat[p + 1] == b'-' && p + 2 < ec {
            if pat[p] <= c && c <= pat[p + 2] {
                return sig;
            }
            p += 2;
        } else if pat[p] == c {
            return sig;
        }
        p += 1;
    }
    !sig
}

impl Matcher<'_> {
    fn single_match(&self, s: usize, p: usize, ep: usize) -> bool {
        let Some(&c) = self.s.get(s) else {
            return false;
        };
        match self.p[p] {
            b'.' => true,
            b'%' => match_class(c, self.p[p + 1]),
            b'[' => match_bracket_class(c, self.p, p, ep - 1),
            pc => pc == c,
        }
    }

    fn do_match(&mut self, s: usize, p: usize) -> Result<Option<usize>, PatternError> {
        if self.depth == 0 {
            return err("pattern too complex");
        }
        self.depth -= 1;
        let r = self.match_items(s, p);
        self.depth += 1;
        r
    }

    fn match_items(&mut self, mut s: usize, mut p: usize) -> Result<Option<usize>, PatternError> {
        let pat = self.p;
        loop {
            if p == pat.len() {
                return Ok(Some(s));
            }
            match pat[p] {
                b'(' => {
                    return if pat.get(p + 1) == Some(&b')') {
                        self.start_capture(s, p + 2, CAP_POSITION)
                    } else {
                        self.start_capture(s, p + 1, CAP_UNFINISHED)
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == pat.len() => {
                    return Ok((s == self.s.len()).then_some(s));
                }
                b'%' if pat.get(p + 1) == Some(&b'b') => match self.match_balance(s, p + 2)? {
                    Some(e) => {
                        s = e;
                        p += 4;
                        continue;
                    }
                    None => return Ok(None),
                },
                b'%' if pat.get(p + 1) == Some(&b'f') => {
                    p += 2;
                    if pat.get(p) != Some(&b'[') {
                        return err("missing '[' after '%f' in pattern");
                    }
                    let ep = class_end(pat, p)?;
                    let prev = if s == 0 { 0 } else { self.s[s - 1] };
                    let cur = self.s.get(s).copied().unwrap_or(0);
                    if !match_bracket_class(prev, pat, p, ep - 1)
                        && match_bracket_class(cur, pat, p, ep - 1)
                    {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                b'%' if pat.get(p + 1).is_some_and(u8::is_ascii_digit) => {
                    match self.match_capture(s, pat[p + 1])? {
                        Some(e) => {
                            s = e;
                            p += 2;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                _ => {}
            }
            let ep = class_end(pat, p)?;
            let quantifier = pat.get(ep).copied();
            if !self.single_match(s, p, ep) {
                if matches!(quantifier, Some(b'*' | b'?' | b'-')) {
                    p = ep + 1;
                    continue;
                }
                return Ok(None);
            }
            match quantifier {
                Some(b'?') => {
                    if let Some(e) = self.do_match(s + 1, ep + 1)? {
                        return Ok(Some(e));
                    }
                    p = ep + 1;
                }
                Some(b'+') => return self.max_expand(s + 1, p, ep),
                Some(b'*') => return self.max_expand(s, p, ep),
                Some(b'-') => return self.min_expand(s, p, ep),
                _ => {
                    s += 1;
                    p = ep;
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Result<Option<usize>, PatternError> {
        let mut i = 0;
        while self.single_match(s + i, p, ep) {
            i += 1;
        }
        loop {
            if let Some(e) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(e));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(
        &mut self,
        mut s: usize,
        p: usize,
        ep: usize,
    ) -> Result<Option<usize>, PatternError> {
        loop {
            if let Some(e) = self.do_match(s, ep + 1)? {
                return Ok(Some(e));
            }
            if self.single_match(s, p, ep) {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(
        &mut self,
        s: usize,
        p: usize,
        what: isize,
    ) -> Result<Option<usize>, PatternError> {
        if self.captures.len() >= MAX_CAPTURES {
            return err("too many captures");
        }
        self.captures.push(Capture { init: s, len: what });
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.captures.pop();
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Result<Option<usize>, PatternError> {
        let Some(l) = self.captures.iter().rposition(|c| c.len == CAP_UNFINISHED) else {
            return err("invalid pattern capture");
        };
        self.captures[l].len = (s - self.captures[l].init) as isize;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.captures[l].len = CAP_UNFINISHED;
        }
        Ok(r)
    }

    fn match_balance(&self, s: usize, p: usize) -> Result<Option<usize>, PatternError> {
        if p + 1 >= self.p.len() {
            return err("malformed pattern (missing arguments to '%b')");
        }
        let (b, e) = (self.p[p], self.p[p + 1]);
        if self.s.get(s) != Some(&b) {
            return Ok(None);
        }
        let mut depth = 1;
        for (i, &c) in self.s.iter().enumerate().skip(s + 1) {
            if c == e {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == b {
                depth += 1;
            }
        }
        Ok(None)
    }

    fn match_capture(&self, s: usize, digit: u8) -> Result<Option<usize>, PatternError> {
        let l = (digit as isize) - (b'1' as isize);
        let cap = match usize::try_from(l).ok().and_then(|l| self.captures.get(l)) {
            Some(c) if c.len != CAP_UNFINISHED => *c,
            _ => return err(format!("invalid capture index %{}", l + 1)),
        };
        let Ok(len) = usize::try_from(cap.len) else {
            return Ok(None); // a position capture never matches text
        };
        let sub = &self.s[cap.init..cap.init + len];
        Ok(self
            .s
            .get(s..s + len)
            .filter(|t| *t == sub)
            .map(|_| s + len))
    }
}

/// Rejects what Lua would reject on some subject: a `%` at the end, a set without `]`, `%b`
/// without two characters, `%f` without a set, unbalanced parentheses, a back-reference to a
/// capture that is not closed yet, more than 32 captures.
fn validate(p: &[u8]) -> Result<(), PatternError> {
    let mut i = usize::from(p.first() == Some(&b'^'));
    let mut open: Vec<usize> = Vec::new();
    let mut closed: Vec<bool> = Vec::new();
    while i < p.len() {
        match p[i] {
            b'(' => {
                if closed.len() >= MAX_CAPTURES {
                    return err("too many captures");
                }
                if p.get(i + 1) == Some(&b')') {
                    closed.push(true);
                    i += 2;
                } else {
                    open.push(closed.len());
                    closed.push(false);
                    i += 1;
                }
                continue;
            }
            b')' => {
                let Some(l) = open.pop() else {
                    return err("invalid pattern capture");
                };
                closed[l] = true;
                i += 1;
                continue;
            }
            b'$' if i + 1 == p.len() => break,
            b'%' if p.get(i + 1) == Some(&b'b') => {
                if i + 3 >= p.len() {
                    return err("malformed pattern (missing arguments to '%b')");
                }
                i += 4;
                continue;
            }
            b'%' if p.get(i + 1) == Some(&b'f') => {
                if p.get(i + 2) != Some(&b'[') {
                    return err("missing '[' after '%f' in pattern");
                }
                i = class_end(p, i + 2)?;
                continue;
            }
            b'%' if p.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let l = (p[i + 1] as isize) - (b'1' as isize);
                if !usize::try_from(l)
                    .ok()
                    .and_then(|l| closed.get(l))
                    .is_some_and(|c| *c)
                {
                    return err(format!("invalid capture index %{}", l + 1));
                }
                i += 2;
                continue;
            }
            _ => {}
        }
        i = class_end(p, i)?;
        if matches!(p.get(i), Some(b'*' | b'+' | b'-' | b'?')) {
            i += 1;
        }
    }
    if !open.is_empty() {
        return err("unfinished capture");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str, p: &str) -> bool {
        Pattern::new(p).unwrap().is_match(s)
    }

    #[test]
    fn common_host_patterns() {
        assert!(m("srv-db-01", "^srv%-db"));
        assert!(!m("web-srv-db", "^srv%-db"));
        assert!(m("host_42", "host_%d+"));
        assert!(m("anything", ".*"));
        assert!(m("", ".*"));
        assert!(m("db01.paris", "^db%d%d%.paris$"));
        assert!(!m("db01.paris.fr", "^db%d%d%.paris$"));
        assert!(m("a.b", "a.b"));
        assert!(m("[x]", "%[x%]"));
        assert!(m("f(a(b)c)", "%b()"));
        assert!(m("THE (quick) fox", "%f[%a]%a+"));
        assert!(m("hello hello", "(h%a+) %1"));
        assert!(!m("hello world", "^(h%a+) %1$"));
        assert!(m("x]", "[]]"));
        assert!(m("-", "[a-]"));
        assert!(m("é", "é"));
    }

    #[test]
    fn lua_errors_at_configuration_time() {
        for (p, want) in [
            ("abc%", "malformed pattern (ends with '%')"),
            ("[a", "malformed pattern (missing ']')"),
            ("x[a", "malformed pattern (missing ']')"),
            ("%b(", "malformed pattern (missing arguments to '%b')"),
            ("%fx", "missing '[' after '%f' in pattern"),
            ("(a", "unfinished capture"),
            ("a)", "invalid pattern capture"),
            ("(a)%2", "invalid capture index %2"),
            ("(a%1)", "invalid capture index %1"),
        ] {
            assert_eq!(Pattern::new(p).unwrap_err().0, want, "{p}");
        }
        let many = "()".repeat(33);
        assert_eq!(Pattern::new(&many).unwrap_err().0, "too many captures");
    }

    #[test]
    fn too_complex_is_no_match_not_a_crash() {
        let p = Pattern::new(&"a?".repeat(300)).unwrap();
        assert!(!p.is_match(&"a".repeat(300)));
    }

    #[test]
    fn split_like_the_library() {
        assert_eq!(split("a,b,,c", ",").unwrap(), ["a", "b", "c"]);
        assert_eq!(split(" a , b", "").unwrap(), [" a ", " b"]);
        assert_eq!(split("a;b,c", ";,").unwrap(), ["a", "b", "c"]);
        assert_eq!(split("", ",").unwrap(), Vec::<String>::new());
        assert!(split("a", "%").is_err());
    }
}
