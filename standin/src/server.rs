//! Accept loop, per-connection loop and the answers.

use std::io::{self, ErrorKind};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{self, Conn, RawRequest, ReadError};
use crate::model::ModelEvent;
use crate::{
    Answer, CHANGE_ENQUEUE_PATH, ENQUEUE_PATH, PORTAL_PAGE, Shared, THROTTLE_MESSAGE, key_hash,
    last4, validate,
};

/// How often blocked reads and the accept loop look at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// Bound on writing one answer, so a client that never reads cannot stall shutdown.
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

pub(crate) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                let id = shared.new_connection();
                let for_thread = Arc::clone(&shared);
                let spawned = thread::Builder::new()
                    .name(format!("pd-standin-conn-{id}"))
                    .spawn(move || serve(&for_thread, stream, id));
                if let Ok(handle) = spawned {
                    shared.add_worker(handle);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// An answer ready to write.
struct Reply {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn new(status: u16, body: String) -> Reply {
        Reply {
            status,
            body,
            headers: Vec::new(),
        }
    }
}

/// A JSON object with its keys in the given order.
fn object(pairs: &[(&str, Value)]) -> String {
    let fields: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(*k), v))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn invalid(errors: Vec<String>) -> Reply {
    Reply::new(
        400,
        object(&[
            ("status", "invalid event".into()),
            ("message", "Event object is invalid".into()),
            ("errors", Value::from(errors)),
        ]),
    )
}

fn throttled(retry_after: Option<u64>) -> Reply {
    let mut reply = Reply::new(
        429,
        object(&[
            ("status", "throttle event".into()),
            ("message", THROTTLE_MESSAGE.into()),
        ]),
    );
    if let Some(secs) = retry_after {
        reply
            .headers
            .push(("Retry-After".to_string(), secs.to_string()));
    }
    reply
}

fn server_error(status: u16) -> Reply {
    Reply::new(
        status,
        object(&[
            ("status", "error".into()),
            ("message", http::reason(status).into()),
        ]),
    )
}

fn redirect(status: u16, location: String) -> Reply {
    let mut reply = Reply::new(
        status,
        format!(
            "<html><head><title>{status} {}</title></head><body><a href=\"{location}\">here</a></body></html>\n",
            http::reason(status)
        ),
    );
    reply.headers.push(("Location".to_string(), location));
    reply
        .headers
        .push(("Content-Type".to_string(), "text/html".to_string()));
    reply
}

fn page(status: u16, body: String) -> Reply {
    let body = if body.is_empty() {
        PORTAL_PAGE.to_string()
    } else {
        body
    };
    let mut reply = Reply::new(status, body);
    reply.headers.push((
        "Content-Type".to_string(),
        "text/html; charset=utf-8".to_string(),
    ));
    reply
}

/// The request's body quoted back, as a WAF (4xx, PagerDuty's JSON shape) or a proxy's
/// error page (plain text) does.
fn echo(status: u16, req: &RawRequest) -> Reply {
    let quoted = String::from_utf8_lossy(&req.body);
    if (400..=499).contains(&status) {
        let mut reply = invalid(vec![format!("could not process the request: {quoted}")]);
        reply.status = status;
        return reply;
    }
    let mut reply = Reply::new(
        status,
        format!(
            "{status} {} while handling {} {}: {quoted}\n",
            http::reason(status),
            req.method,
            req.target
        ),
    );
    reply
        .headers
        .push(("Content-Type".to_string(), "text/plain".to_string()));
    reply
}

fn serve(shared: &Shared, stream: TcpStream, conn_id: u64) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)));
    if setup.is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream, shared);
    loop {
        let raw = match conn.read_request() {
            Ok(raw) => raw,
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status, message)) => {
                let body = object(&[("status", "error".into()), ("message", message.into())]);
                let _ = http::write_response(&mut conn.stream, status, &[], &body, false, false);
                return;
            }
        };
        let keep_alive = raw.keep_alive();
        let (seq, answer, latency) = shared.arrive(&raw, conn_id);
        if !shared.sleep(latency) {
            shared.finish(seq, 0, "");
            return;
        }
        if !respond(shared, &mut conn, seq, &raw, answer, keep_alive) {
            return;
        }
    }
}

/// Applies one answer; `false` when the connection must end.
fn respond(
    shared: &Shared,
    conn: &mut Conn<'_>,
    seq: u64,
    req: &RawRequest,
    answer: Answer,
    keep_alive: bool,
) -> bool {
    let reply = match answer {
        Answer::Delay(delay, then) => {
            if !shared.sleep(delay) {
                shared.finish(seq, 0, "");
                return false;
            }
            return respond(shared, conn, seq, req, *then, keep_alive);
        }
        Answer::Hang => {
            shared.finish(seq, 0, "");
            conn.wait_until_gone();
            return false;
        }
        Answer::Reset => {
            shared.finish(seq, 0, "");
            if set_linger_zero(&conn.stream).is_err() {
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
            return false;
        }
        Answer::Close => {
            shared.finish(seq, 0, "");
            let _ = conn.stream.shutdown(Shutdown::Both);
            return false;
        }
        Answer::Accept => {
            // Records its own status, together with the incident model update.
            let reply = accept(shared, seq, req);
            return send(conn, &reply, keep_alive, req.http10);
        }
        Answer::Status(status, body) => Reply::new(status, body),
        Answer::Reject(reason) => invalid(vec![reason]),
        Answer::TooMany { retry_after } => throttled(retry_after),
        Answer::ServerError(status) => server_error(status),
        Answer::Redirect(status, location) => redirect(status, location),
        Answer::Page(status, body) => page(status, body),
        Answer::Echo(status) => echo(status, req),
    };
    shared.finish(seq, reply.status, &reply.body);
    send(conn, &reply, keep_alive, req.http10)
}

fn send(conn: &mut Conn<'_>, reply: &Reply, keep_alive: bool, http10: bool) -> bool {
    let written = http::write_response(
        &mut conn.stream,
        reply.status,
        &reply.headers,
        &reply.body,
        keep_alive,
        http10,
    );
    written.is_ok() && keep_alive
}

/// PagerDuty's own behaviour: route, validate, rate-limit, ingest.
fn accept(shared: &Shared, seq: u64, req: &RawRequest) -> Reply {
    let route = req.target.split('?').next().unwrap_or_default();
    let change = match route {
        ENQUEUE_PATH => false,
        CHANGE_ENQUEUE_PATH => true,
        _ => {
            let reply = Reply::new(
                404,
                object(&[
                    ("status", "not found".into()),
                    ("message", format!("No route for {route}").into()),
                ]),
            );
            shared.finish(seq, reply.status, &reply.body);
            return reply;
        }
    };
    if req.method != "POST" {
        let mut reply = Reply::new(
            405,
            object(&[
                ("status", "method not allowed".into()),
                ("message", "Use POST".into()),
            ]),
        );
        reply
            .headers
            .push(("Allow".to_string(), "POST".to_string()));
        shared.finish(seq, reply.status, &reply.body);
        return reply;
    }
    let checked = if change {
        validate::change_event(&req.body)
    } else {
        validate::alert_event(&req.body)
    };
    let event = match checked {
        Ok(event) => event,
        Err(errors) => {
            let reply = invalid(errors);
            shared.finish(seq, reply.status, &reply.body);
            return reply;
        }
    };
    let dedup_key = match &event.dedup_key {
        Some(k) => k.clone(),
        None if !change => shared.generate_dedup_key(),
        None => String::new(),
    };
    let hash = key_hash(&event.routing_key);
    let key_last4 = last4(&event.routing_key);
    let now = Instant::now();
    let mut st = shared.state();
    let reply = if !st.rate_allow(hash, now) {
        throttled(None)
    } else if change {
        Reply::new(
            202,
            object(&[
                ("status", "success".into()),
                ("message", "Change event processed".into()),
            ]),
        )
    } else {
        st.model_mut().apply(
            now,
            &ModelEvent {
                key_hash: hash,
                key_last4: &key_last4,
                action: &event.action,
                dedup_key: &dedup_key,
                summary: event.summary.as_deref(),
                severity: event.severity.as_deref(),
            },
        );
        Reply::new(
            202,
            object(&[
                ("status", "success".into()),
                ("message", "Event processed".into()),
                ("dedup_key", dedup_key.into()),
            ]),
        )
    };
    let rec = st.set_status(seq, reply.status, &reply.body);
    drop(st);
    shared.after(rec);
    reply
}

/// `SOL_SOCKET` and `SO_LINGER` on the systems whose values are known here; `None`
/// elsewhere.
#[cfg(unix)]
const LEVEL_AND_NAME: Option<(std::ffi::c_int, std::ffi::c_int)> = if cfg!(all(
    any(target_os = "linux", target_os = "android"),
    not(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))
)) {
    Some((1, 13))
} else if cfg!(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)) {
    Some((0xffff, 0x0080))
} else {
    None
};

/// Sets `SO_LINGER` to 0 so that closing the socket sends a TCP reset. Where there is no
/// known way to ask for one, `Unsupported`: the caller falls back to a plain close.
#[cfg(unix)]
fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    use std::ffi::{c_int, c_void};
    use std::os::fd::AsRawFd;

    #[repr(C)]
    struct Linger {
        l_onoff: c_int,
        l_linger: c_int,
    }
    unsafe extern "C" {
        fn setsockopt(
            socket: c_int,
            level: c_int,
            name: c_int,
            value: *const c_void,
            len: u32,
        ) -> c_int;
    }
    let Some((level, name)) = LEVEL_AND_NAME else {
        return Err(io::Error::from(ErrorKind::Unsupported));
    };
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open (owned by `stream`), and the pointer and length
    // describe a live `struct linger` for the duration of the call.
    let rc = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            level,
            name,
            (&raw const linger).cast::<c_void>(),
            std::mem::size_of::<Linger>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Not a Unix system: no reset; the caller falls back to a plain close.
#[cfg(not(unix))]
fn set_linger_zero(_stream: &TcpStream) -> io::Result<()> {
    Err(io::Error::from(ErrorKind::Unsupported))
}
