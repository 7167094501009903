//! A raw `std::net::TcpStream` HTTP/1.1 client for the tests (127.0.0.1 only, always with timeouts).
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};

/// A valid 32-character routing key.
pub const KEY: &str = "0123456789abcdefABCDEF0123456789";
/// Another valid routing key.
pub const OTHER_KEY: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA987654";

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON answer")
    }

    pub fn errors(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .expect("errors array")
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect()
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        assert!(addr.ip().is_loopback());
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        Client {
            reader: BufReader::new(stream),
            writer,
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.writer.set_read_timeout(Some(timeout)).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    pub fn write_post(&mut self, path: &str, body: &str, extra: &str) -> io::Result<()> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        );
        self.send_raw(request.as_bytes())
    }

    pub fn post(&mut self, path: &str, body: &str) -> io::Result<Response> {
        self.write_post(path, body, "")?;
        self.read_response()
    }

    pub fn read_response(&mut self) -> io::Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let mut parts = line.trim_end().splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        assert_eq!(version, "HTTP/1.1", "status line {line:?}");
        let status: u16 = parts.next().unwrap_or_default().parse().expect("status");
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if self.reader.read_line(&mut h)? == 0 {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "closed in head"));
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').expect("header");
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("every answer has Content-Length");
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(Response {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        })
    }

    /// Reads a body-less interim answer (`100 Continue`); returns its status line.
    pub fn read_interim_head(&mut self) -> String {
        let mut first = String::new();
        self.reader.read_line(&mut first).expect("interim answer");
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("interim head");
            if line.trim_end().is_empty() {
                return first.trim_end().to_string();
            }
        }
    }

    /// Reads once: `Ok(0)` at end of stream.
    pub fn read_some(&mut self) -> io::Result<usize> {
        let mut buf = [0u8; 64];
        self.reader.read(&mut buf)
    }
}

/// One request on a fresh connection.
pub fn post(addr: SocketAddr, body: &str) -> Response {
    Client::connect(addr)
        .post("/v2/enqueue", body)
        .expect("an answer")
}

pub fn event(key: &str, action: &str, dedup: &str, summary: &str) -> Value {
    let mut ev = json!({
        "routing_key": key,
        "event_action": action,
        "dedup_key": dedup,
    });
    if action == "trigger" {
        ev["payload"] = json!({
            "summary": summary,
            "source": "srv",
            "severity": "critical",
            "timestamp": "2024-05-01T12:34:56.789+02:00",
        });
    }
    ev
}

pub fn trigger(dedup: &str, summary: &str) -> String {
    event(KEY, "trigger", dedup, summary).to_string()
}
