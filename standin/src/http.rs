//! Minimal HTTP/1.1 request reading and response writing over a polled `TcpStream`.

use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;

use crate::Shared;

/// Largest request head (request line and header fields) read.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest body read at all (bodies over 512 KB are still read, then refused).
pub(crate) const MAX_READ_BODY: usize = 16 * 1024 * 1024;
const MAX_HEADERS: usize = 256;
const MAX_LEADING_EMPTY_LINES: usize = 16;

/// A complete request as read from the wire.
pub(crate) struct RawRequest {
    pub method: String,
    pub target: String,
    pub http10: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// Whether the connection stays open after the answer.
    pub fn keep_alive(&self) -> bool {
        let tokens: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        if tokens.iter().any(|t| t == "close") {
            return false;
        }
        !self.http10 || tokens.iter().any(|t| t == "keep-alive")
    }
}

/// First header with this name (case-insensitive).
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why no request could be read.
pub(crate) enum ReadError {
    /// The client left, an I/O error happened, or shutdown began: just close.
    Closed,
    /// Malformed request: answer this status and message, then close.
    Bad(u16, String),
}

fn bad(status: u16, msg: &str) -> ReadError {
    ReadError::Bad(status, msg.to_string())
}

/// One server-side connection with its read buffer.
pub(crate) struct Conn<'a> {
    pub stream: TcpStream,
    buf: Vec<u8>,
    shared: &'a Shared,
}

impl<'a> Conn<'a> {
    /// Wraps a stream whose read timeout is short, so shutdown is noticed promptly.
    pub fn new(stream: TcpStream, shared: &'a Shared) -> Conn<'a> {
        Conn {
            stream,
            buf: Vec::new(),
            shared,
        }
    }

    /// Reads at least one more byte into the buffer.
    fn fill(&mut self) -> Result<(), ReadError> {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            if self.shared.stopping() {
                return Err(ReadError::Closed);
            }
            match self.stream.read(&mut tmp) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => return Err(ReadError::Closed),
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    fn read_exact_n(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.take(n))
    }

    /// One line without its CRLF (or LF).
    fn read_line(&mut self, limit: usize) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line = self.take(i + 1);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > limit {
                return Err(bad(431, "request line or header field too large"));
            }
            self.fill()?;
        }
    }

    /// Reads one whole request (head and body).
    pub fn read_request(&mut self) -> Result<RawRequest, ReadError> {
        let mut skipped = 0;
        let line = loop {
            let line = self.read_line(MAX_HEAD_BYTES)?;
            if !line.is_empty() {
                break line;
            }
            skipped += 1;
            if skipped > MAX_LEADING_EMPTY_LINES {
                return Err(bad(400, "too many empty lines before the request line"));
            }
        };
        let mut head_bytes = line.len();
        let line = String::from_utf8(line).map_err(|_| bad(400, "request line is not UTF-8"))?;
        let parts: Vec<&str> = line.split(' ').collect();
        let [method, target, version] = parts[..] else {
            return Err(bad(400, "malformed request line"));
        };
        if method.is_empty() || target.is_empty() {
            return Err(bad(400, "malformed request line"));
        }
        let http10 = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            v if v.starts_with("HTTP/") => return Err(bad(505, "HTTP version not supported")),
            _ => return Err(bad(400, "malformed request line")),
        };
        let (method, target) = (method.to_string(), target.to_string());

        let mut headers = Vec::new();
        loop {
            let line = self.read_line(MAX_HEAD_BYTES)?;
            head_bytes += line.len() + 2;
            if head_bytes > MAX_HEAD_BYTES {
                return Err(bad(431, "request header fields too large"));
            }
            if line.is_empty() {
                break;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                return Err(bad(400, "obsolete header line folding"));
            }
            let line = String::from_utf8_lossy(&line);
            let Some((name, value)) = line.split_once(':') else {
                return Err(bad(400, "malformed header field"));
            };
            if name.is_empty() || name.contains(|c: char| c.is_whitespace()) {
                return Err(bad(400, "malformed header field name"));
            }
            headers.push((name.to_string(), value.trim().to_string()));
            if headers.len() > MAX_HEADERS {
                return Err(bad(431, "too many header fields"));
            }
        }

        let body = if let Some(te) = header(&headers, "transfer-encoding") {
            let last = te.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(bad(501, "unsupported transfer-encoding"));
            }
            self.maybe_continue(&headers, http10)?;
            self.read_chunked()?
        } else {
            let mut length: Option<usize> = None;
            for (_, v) in headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            {
                let n: usize = v
                    .trim()
                    .parse()
                    .map_err(|_| bad(400, "invalid content-length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(bad(400, "conflicting content-length fields"));
                }
                length = Some(n);
            }
            match length {
                Some(n) if n > MAX_READ_BODY => return Err(bad(413, "request body too large")),
                Some(n) if n > 0 => {
                    self.maybe_continue(&headers, http10)?;
                    self.read_exact_n(n)?
                }
                _ => Vec::new(),
            }
        };
        Ok(RawRequest {
            method,
            target,
            http10,
            headers,
            body,
        })
    }

    /// Answers `Expect: 100-continue` when the body has not started arriving.
    fn maybe_continue(
        &mut self,
        headers: &[(String, String)],
        http10: bool,
    ) -> Result<(), ReadError> {
        let expects =
            header(headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expects && !http10 && self.buf.is_empty() {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| ReadError::Closed)?;
        }
        Ok(())
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(4096)?;
            let line = String::from_utf8_lossy(&line);
            let size = line.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| bad(400, "invalid chunk size"))?;
            if size == 0 {
                // Trailer fields, up to the empty line.
                let mut trailer_bytes = 0;
                loop {
                    let line = self.read_line(MAX_HEAD_BYTES)?;
                    if line.is_empty() {
                        return Ok(body);
                    }
                    trailer_bytes += line.len();
                    if trailer_bytes > MAX_HEAD_BYTES {
                        return Err(bad(431, "trailer fields too large"));
                    }
                }
            }
            if body.len().saturating_add(size) > MAX_READ_BODY {
                return Err(bad(413, "request body too large"));
            }
            let data = self.read_exact_n(size)?;
            body.extend_from_slice(&data);
            if !self.read_line(2)?.is_empty() {
                return Err(bad(400, "chunk data not followed by CRLF"));
            }
        }
    }

    /// After an unanswered request: waits until the client leaves or shutdown begins.
    pub fn wait_until_gone(&mut self) {
        let mut tmp = [0u8; 4096];
        loop {
            if self.shared.stopping() {
                return;
            }
            match self.stream.read(&mut tmp) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => return,
            }
        }
    }
}

/// Standard reason phrase of a status code.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Writes a complete response: JSON unless `extra_headers` give a `Content-Type`.
pub(crate) fn write_response(
    stream: &mut TcpStream,
    status: u16,
    extra_headers: &[(String, String)],
    body: &str,
    keep_alive: bool,
    http10: bool,
) -> io::Result<()> {
    let mut out = String::with_capacity(256 + body.len());
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
    out.push_str("Server: pd-standin\r\n");
    if header(extra_headers, "content-type").is_none() {
        out.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in extra_headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n", body.len());
    if !keep_alive {
        out.push_str("Connection: close\r\n");
    } else if http10 {
        out.push_str("Connection: keep-alive\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    stream.write_all(out.as_bytes())?;
    stream.flush()
}
