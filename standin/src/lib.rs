//! PagerDuty Events API v2 stand-in: a real HTTP/1.1 server on 127.0.0.1 with scripted answers, request recording and an incident model.
//!
//! Start one with [`Standin::start`], point the sender at [`Standin::url`], script
//! answers with [`Standin::push_answers`], then inspect [`Standin::requests`],
//! [`Standin::accepted`], [`Standin::incidents`] and [`Standin::timeline`].
//! Dropping the [`Standin`] stops and joins every thread it started.
//!
//! ```no_run
//! use std::time::Duration;
//! use pd_standin::{Answer, Standin};
//!
//! let pd = Standin::start().unwrap();
//! pd.push_answers([Answer::TooMany { retry_after: Some(1) }, Answer::ServerError(503)]);
//! // ... make the code under test send events to pd.url() ...
//! assert!(pd.wait_for_accepted(1, Duration::from_secs(5)));
//! assert_eq!(pd.open_incident_count(), 1);
//! ```
//!
//! The full routing key is never stored outside the recorded request bodies: the
//! incident model, the timeline, error messages and `Debug` output only show its last
//! four characters.
#![warn(missing_docs)]

mod http;
mod model;
mod server;
mod validate;

pub use model::{Incident, IncidentStatus, TimelineEntry};

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of the alert events endpoint (`POST`).
pub const ENQUEUE_PATH: &str = "/v2/enqueue";
/// Path of the change events endpoint (`POST`).
pub const CHANGE_ENQUEUE_PATH: &str = "/v2/change/enqueue";
/// Largest accepted event body, in bytes (512 KB).
pub const MAX_BODY_BYTES: usize = 524_288;
/// Longest accepted `payload.summary`, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// Longest accepted `dedup_key`, in characters.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;
/// Length of a valid `routing_key` (ASCII letters and digits only).
pub const ROUTING_KEY_CHARS: usize = 32;
/// The `message` of a 429 answer, as PagerDuty words it.
pub const THROTTLE_MESSAGE: &str =
    "Requests for this service are arriving too quickly. Please retry later.";
/// Default length of the rate-limit sliding window.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// What the stand-in does with one request.
///
/// Answers queued with [`Standin::push_answers`] are consumed one per request (any
/// path), in order; when the queue is empty the default answer
/// ([`Standin::set_default`], initially [`Answer::Accept`]) applies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Answer {
    /// Behave like PagerDuty: route, validate, rate-limit, answer 202 (or 400, 404,
    /// 405, 429) and update the incident model.
    #[default]
    Accept,
    /// Answer this raw status code with this body (sent as `application/json`); no
    /// validation, no incident model.
    Status(u16, String),
    /// Answer 400 `invalid event` with this single error.
    Reject(String),
    /// Answer 429 `throttle event`, with a `Retry-After` header (seconds) when given.
    TooMany {
        /// Value of the `Retry-After` header, in seconds; `None` sends no header.
        retry_after: Option<u64>,
    },
    /// Answer this server error status (typically 500, 502 or 503) with a JSON body.
    ServerError(u16),
    /// Wait this long, then apply the inner answer.
    Delay(Duration, Box<Answer>),
    /// Read the request and never answer, until shutdown or until the client leaves.
    Hang,
    /// Close the connection with `SO_LINGER` 0, so the client sees a connection reset.
    Reset,
    /// Close the connection without answering (the client sees end of stream).
    Close,
    /// Answer this redirect status (300..=399) with this `Location` header and a short
    /// HTML body, as a captive portal, a proxy's login page or a moved URL does.
    /// PagerDuty's Events API never redirects.
    Redirect(u16, String),
    /// Answer this status with this body as `text/html` (a captive portal's or a proxy's
    /// page); an empty body sends [`PORTAL_PAGE`]. No validation, no incident model.
    Page(u16, String),
    /// Answer this status with a body that quotes the request's body, routing key
    /// included, as a WAF or a proxy's error page does: for 400..=499 PagerDuty's JSON
    /// error shape with the quote in `errors`, otherwise a plain-text page. No
    /// validation, no incident model.
    Echo(u16),
}

/// The page of [`Answer::Page`] when none is given: a captive portal's login page.
pub const PORTAL_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Guest Wi-Fi - Please log in</title></head>\n<body><form method=\"post\" action=\"/login\"><input name=\"user\"><input name=\"password\" type=\"password\"><button>Log in</button></form></body></html>\n";

impl Answer {
    /// `Answer::Delay(delay, Box::new(then))`.
    pub fn delay(delay: Duration, then: Answer) -> Answer {
        Answer::Delay(delay, Box::new(then))
    }

    /// Parses one answer line as used by the binary's `--answers` file.
    ///
    /// Forms (case-insensitive keywords): `202` or `accept`; `400 reason`;
    /// `429`; `429 retry-after=N`; `500`, `502`, `503` (any 5xx) for
    /// [`Answer::ServerError`]; `hang`; `reset`; `close`; `delay MS ANSWER`;
    /// `redirect NNN URL` (300..=399) for [`Answer::Redirect`]; `html NNN [body]` for
    /// [`Answer::Page`]; `echo NNN` for [`Answer::Echo`]; any other status `NNN [body]`
    /// (200..=599) for [`Answer::Status`]; `202 body` is also a raw [`Answer::Status`].
    pub fn parse(line: &str) -> Result<Answer, String> {
        let line = line.trim();
        let (head, rest) = match line.split_once(char::is_whitespace) {
            Some((head, rest)) => (head, rest.trim()),
            None => (line, ""),
        };
        let no_rest = |answer: Answer| {
            if rest.is_empty() {
                Ok(answer)
            } else {
                Err(format!("unexpected text after {head:?} in {line:?}"))
            }
        };
        match head.to_ascii_lowercase().as_str() {
            "" => Err("empty answer".to_string()),
            "accept" => no_rest(Answer::Accept),
            "hang" => no_rest(Answer::Hang),
            "reset" => no_rest(Answer::Reset),
            "close" => no_rest(Answer::Close),
            "redirect" => {
                let (code, url) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| format!("expected `redirect NNN URL` in {line:?}"))?;
                let code = status_in(code, 300..=399, line)?;
                Ok(Answer::Redirect(code, url.trim().to_string()))
            }
            "html" => {
                let (code, body) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let code = status_in(code, 200..=599, line)?;
                Ok(Answer::Page(code, body.trim().to_string()))
            }
            "echo" => Ok(Answer::Echo(status_in(rest, 200..=599, line)?)),
            "delay" => {
                let (ms, then) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| format!("expected `delay MS ANSWER` in {line:?}"))?;
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("bad delay milliseconds {ms:?} in {line:?}"))?;
                Ok(Answer::delay(
                    Duration::from_millis(ms),
                    Answer::parse(then)?,
                ))
            }
            code => {
                let code: u16 = code
                    .parse()
                    .map_err(|_| format!("unknown answer {line:?}"))?;
                if !(200..=599).contains(&code) {
                    return Err(format!("status {code} out of range 200..=599 in {line:?}"));
                }
                match code {
                    202 if rest.is_empty() => Ok(Answer::Accept),
                    400 if rest.is_empty() => Ok(Answer::Reject(
                        "rejected by the stand-in script".to_string(),
                    )),
                    400 => Ok(Answer::Reject(rest.to_string())),
                    429 if rest.is_empty() => Ok(Answer::TooMany { retry_after: None }),
                    429 => {
                        let secs = rest
                            .to_ascii_lowercase()
                            .strip_prefix("retry-after=")
                            .and_then(|s| s.trim().parse::<u64>().ok())
                            .ok_or_else(|| format!("expected `429 retry-after=N` in {line:?}"))?;
                        Ok(Answer::TooMany {
                            retry_after: Some(secs),
                        })
                    }
                    500..=599 if rest.is_empty() => Ok(Answer::ServerError(code)),
                    _ => Ok(Answer::Status(code, rest.to_string())),
                }
            }
        }
    }
}

/// A status code of an answer line, within `range`.
fn status_in(code: &str, range: std::ops::RangeInclusive<u16>, line: &str) -> Result<u16, String> {
    let code: u16 = code
        .parse()
        .map_err(|_| format!("expected a status code, got {code:?} in {line:?}"))?;
    if range.contains(&code) {
        Ok(code)
    } else {
        Err(format!(
            "status {code} out of range {}..={} in {line:?}",
            range.start(),
            range.end()
        ))
    }
}

impl FromStr for Answer {
    type Err = String;

    /// Same as [`Answer::parse`].
    fn from_str(s: &str) -> Result<Answer, String> {
        Answer::parse(s)
    }
}

/// One request received by the stand-in, with what it answered.
#[derive(Clone)]
pub struct Request {
    /// When the complete request had been read.
    pub at: Instant,
    /// Arrival number, starting at 1 and never reused (not even after [`Standin::clear`]).
    pub seq: u64,
    /// HTTP method, as sent.
    pub method: String,
    /// Request target as sent (path, with any query string).
    pub path: String,
    /// Header fields in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Body, de-chunked when it was sent chunked.
    pub body: Vec<u8>,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// Status code answered; 0 while unanswered or when no answer was sent
    /// ([`Answer::Hang`], [`Answer::Reset`], [`Answer::Close`], shutdown).
    pub status: u16,
    /// Body answered (empty when no answer was sent).
    pub response_body: String,
    /// Which TCP connection carried it (starts at 1, counts every accepted connection).
    pub connection_id: u64,
}

impl Request {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }

    /// The JSON body with `routing_key` replaced by `...` and its last four characters.
    pub fn redacted_json(&self) -> Option<Value> {
        self.json.as_ref().map(redact)
    }

    /// The body answered, with the request's routing key (which [`Answer::Echo`] quotes)
    /// replaced by `...` and its last four characters.
    pub fn redacted_response_body(&self) -> String {
        let key = self
            .json
            .as_ref()
            .and_then(|j| j.get("routing_key"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty());
        match key {
            Some(key) => self
                .response_body
                .replace(key, &format!("...{}", last4(key))),
            None => self.response_body.clone(),
        }
    }
}

impl fmt::Debug for Request {
    /// Shows the body length and the redacted JSON, never the full routing key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("at", &self.at)
            .field("seq", &self.seq)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("json", &self.redacted_json())
            .field("status", &self.status)
            .field("response_body", &self.redacted_response_body())
            .field("connection_id", &self.connection_id)
            .finish()
    }
}

fn redact(value: &Value) -> Value {
    let mut value = value.clone();
    let masked = value
        .get("routing_key")
        .and_then(Value::as_str)
        .map(|key| format!("...{}", last4(key)));
    if let (Some(masked), Some(obj)) = (masked, value.as_object_mut()) {
        obj.insert("routing_key".to_string(), Value::String(masked));
    }
    value
}

/// Last four characters of a routing key (the whole key when shorter).
pub(crate) fn last4(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// A one-way digest of a routing key, so the state never holds the key itself.
pub(crate) fn key_hash(key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

type Observer = Arc<dyn Fn(&Request) + Send + Sync>;

pub(crate) struct State {
    answers: VecDeque<Answer>,
    default: Answer,
    latency: Duration,
    rate_limit: Option<u32>,
    rate_window: Duration,
    rate_hits: HashMap<u64, VecDeque<Instant>>,
    requests: Vec<Request>,
    next_seq: u64,
    connections: usize,
    model: model::Model,
}

impl State {
    /// Records the answer of request `seq`; returns a copy for the observer.
    pub(crate) fn set_status(&mut self, seq: u64, status: u16, body: &str) -> Option<Request> {
        let req = self.requests.iter_mut().rev().find(|r| r.seq == seq)?;
        req.status = status;
        req.response_body = body.to_string();
        Some(req.clone())
    }

    /// Sliding-window rate limit per routing key: `true` (and counted) when allowed.
    pub(crate) fn rate_allow(&mut self, key: u64, now: Instant) -> bool {
        let Some(limit) = self.rate_limit else {
            return true;
        };
        let window = self.rate_window;
        let hits = self.rate_hits.entry(key).or_default();
        while hits
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            hits.pop_front();
        }
        if hits.len() >= limit as usize {
            return false;
        }
        hits.push_back(now);
        true
    }

    pub(crate) fn model_mut(&mut self) -> &mut model::Model {
        &mut self.model
    }
}

pub(crate) struct Shared {
    stop: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
    observer: Mutex<Option<Observer>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    next_conn_id: AtomicU64,
    key_counter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn new() -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                answers: VecDeque::new(),
                default: Answer::Accept,
                latency: Duration::ZERO,
                rate_limit: None,
                rate_window: DEFAULT_RATE_WINDOW,
                rate_hits: HashMap::new(),
                requests: Vec::new(),
                next_seq: 1,
                connections: 0,
                model: model::Model::default(),
            }),
            changed: Condvar::new(),
            observer: Mutex::new(None),
            workers: Mutex::new(Vec::new()),
            next_conn_id: AtomicU64::new(1),
            key_counter: AtomicU64::new(1),
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Counts a newly accepted connection and returns its id.
    pub(crate) fn new_connection(&self) -> u64 {
        self.state().connections += 1;
        self.changed.notify_all();
        self.next_conn_id.fetch_add(1, Ordering::SeqCst)
    }

    pub(crate) fn add_worker(&self, handle: JoinHandle<()>) {
        let mut workers = lock(&self.workers);
        let (done, live): (Vec<_>, Vec<_>) = workers.drain(..).partition(|h| h.is_finished());
        for h in done {
            let _ = h.join();
        }
        *workers = live;
        workers.push(handle);
    }

    /// Records an arrived request; returns its seq, the answer to apply and the latency.
    pub(crate) fn arrive(&self, raw: &http::RawRequest, conn_id: u64) -> (u64, Answer, Duration) {
        let json = serde_json::from_slice(&raw.body).ok();
        let mut st = self.state();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.requests.push(Request {
            at: Instant::now(),
            seq,
            method: raw.method.clone(),
            path: raw.target.clone(),
            headers: raw.headers.clone(),
            body: raw.body.clone(),
            json,
            status: 0,
            response_body: String::new(),
            connection_id: conn_id,
        });
        let answer = st.answers.pop_front().unwrap_or_else(|| st.default.clone());
        let latency = st.latency;
        drop(st);
        self.changed.notify_all();
        (seq, answer, latency)
    }

    /// Records the answer of `seq` (status 0 for none), then wakes waiters and calls the observer.
    pub(crate) fn finish(&self, seq: u64, status: u16, body: &str) {
        let rec = self.state().set_status(seq, status, body);
        self.after(rec);
    }

    /// Wakes waiters and calls the observer with an updated request.
    pub(crate) fn after(&self, rec: Option<Request>) {
        self.changed.notify_all();
        if let Some(rec) = rec {
            let observer = lock(&self.observer).clone();
            if let Some(observer) = observer {
                observer(&rec);
            }
        }
    }

    /// A fresh 32-hex-digit dedup key for triggers that came without one.
    pub(crate) fn generate_dedup_key(&self) -> String {
        let n = self.key_counter.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        format!("{nanos:016x}{n:016x}")
    }

    /// Sleeps `d` in short steps; `false` when shutdown began meanwhile.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            thread::sleep((end - now).min(Duration::from_millis(10)));
        }
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state();
        loop {
            if done(&st) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// A running stand-in server on 127.0.0.1. Dropping it shuts it down.
pub struct Standin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl fmt::Debug for Standin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Standin")
            .field("addr", &self.addr)
            .field("running", &self.acceptor.is_some())
            .finish()
    }
}

impl Standin {
    /// Starts a stand-in on 127.0.0.1 with a port chosen by the system.
    pub fn start() -> io::Result<Standin> {
        Standin::start_on(0)
    }

    /// Starts a stand-in on 127.0.0.1:`port` (0 lets the system choose).
    pub fn start_on(port: u16) -> io::Result<Standin> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new());
        let for_thread = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("pd-standin-accept".to_string())
            .spawn(move || server::accept_loop(listener, for_thread))?;
        Ok(Standin {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The listening address (127.0.0.1 and the bound port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v2/enqueue`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, ENQUEUE_PATH)
    }

    /// `http://127.0.0.1:PORT/v2/change/enqueue`.
    pub fn change_url(&self) -> String {
        format!("http://{}{}", self.addr, CHANGE_ENQUEUE_PATH)
    }

    /// Queues answers, consumed one per request (FIFO) before the default applies.
    pub fn push_answers(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.state().answers.extend(answers);
    }

    /// Queues one answer (same as `push_answers([answer])`).
    pub fn push_answer(&self, answer: Answer) {
        self.push_answers([answer]);
    }

    /// How many queued answers are still unused.
    pub fn pending_answers(&self) -> usize {
        self.shared.state().answers.len()
    }

    /// Sets the answer used when the queue is empty (initially [`Answer::Accept`]).
    pub fn set_default(&self, answer: Answer) {
        self.shared.state().default = answer;
    }

    /// Waits this long before every answer (applies to requests read from now on).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.state().latency = latency;
    }

    /// Limits accepted events to `per_minute` per routing key within the sliding
    /// window ([`DEFAULT_RATE_WINDOW`] unless [`Standin::set_rate_window`]); events over
    /// the limit get 429 and are not ingested. 0 throttles every valid event.
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.shared.state().rate_limit = Some(per_minute);
    }

    /// Removes the rate limit.
    pub fn clear_rate_limit(&self) {
        let mut st = self.shared.state();
        st.rate_limit = None;
        st.rate_hits.clear();
    }

    /// Sets the length of the rate-limit sliding window (60 s by default).
    pub fn set_rate_window(&self, window: Duration) {
        self.shared.state().rate_window = window;
    }

    /// Calls `observer` (on the connection's thread) each time a request's outcome is
    /// settled: answered, or left unanswered (status 0). Replaces any earlier observer.
    pub fn on_request(&self, observer: impl Fn(&Request) + Send + Sync + 'static) {
        *lock(&self.shared.observer) = Some(Arc::new(observer));
    }

    /// Every request recorded since start or the last [`Standin::clear`], in arrival order.
    /// Malformed HTTP (answered 4xx/5xx at once and closed) is not recorded.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state().requests.clone()
    }

    /// JSON bodies of the requests answered 202, in arrival order.
    pub fn accepted(&self) -> Vec<Value> {
        self.shared
            .state()
            .requests
            .iter()
            .filter(|r| r.status == 202)
            .filter_map(|r| r.json.clone())
            .collect()
    }

    /// Number of recorded requests.
    pub fn count(&self) -> usize {
        self.shared.state().requests.len()
    }

    /// Waits until at least `n` requests were answered 202; `false` on timeout.
    pub fn wait_for_accepted(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |st| {
            st.requests.iter().filter(|r| r.status == 202).count() >= n
        })
    }

    /// Waits until at least `n` requests were recorded (answered or not); `false` on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |st| st.requests.len() >= n)
    }

    /// Number of TCP connections accepted since start or the last [`Standin::clear`].
    pub fn connections(&self) -> usize {
        self.shared.state().connections
    }

    /// Forgets recorded requests, the connection count, the incident model and the
    /// rate-limit history; keeps queued answers and settings.
    pub fn clear(&self) {
        let mut st = self.shared.state();
        st.requests.clear();
        st.connections = 0;
        st.rate_hits.clear();
        st.model = model::Model::default();
    }

    /// Every incident (open or not), in opening order.
    pub fn incidents(&self) -> Vec<Incident> {
        self.shared.state().model.incidents()
    }

    /// What each accepted alert event did to the incident model, in order.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        self.shared.state().model.timeline().to_vec()
    }

    /// Number of incidents that are open or acknowledged.
    pub fn open_incident_count(&self) -> usize {
        self.shared.state().model.open_count()
    }

    /// Stops accepting, ends every connection (hanging ones included) and joins all
    /// threads. Recordings stay readable. Idempotent; also done on drop.
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for worker in workers {
            let _ = worker.join();
        }
        self.shared.changed.notify_all();
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.shutdown();
    }
}
