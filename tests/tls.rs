//! TLS certificate verification: on by default and for `verify_certificate` = 1 (string or
//! number); only an explicit 0 turns it off. The old Lua connector disabled it for "1".
//!
//! A small TLS terminator on 127.0.0.1 (rustls, self-signed certificate for 127.0.0.1 and
//! localhost, trusted by nobody) decrypts and pipes the plaintext to the stand-in.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pd_standin::Standin;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::{Value, json};
use support::*;

/// How long the terminator accepts connections, and how long one connection may live.
const TERMINATOR_LIFETIME: Duration = Duration::from_secs(60);
/// A piped connection with no traffic either way for this long is closed.
const IDLE_LIMIT: Duration = Duration::from_secs(10);
/// How long a failing connector is watched: ample for the first attempt and its retry.
const NOT_DELIVERED_WITHIN: Duration = Duration::from_secs(3);

/// Polls the connector log (up to `timeout`) until `pred` holds; returns the last text read.
fn wait_log(dir: &std::path::Path, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = log_of(dir);
        if pred(&log) || Instant::now() >= deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Server-side outcome of each TLS handshake: `Ok(())` or the error rustls reported.
type Handshakes = Arc<Mutex<Vec<Result<(), String>>>>;

/// TLS on 127.0.0.1 in front of a plain-HTTP upstream (the stand-in).
struct Terminator {
    addr: SocketAddr,
    /// The certificate it presents, as PEM (to trust it through `ca_file`).
    cert_pem: String,
    handshakes: Handshakes,
    stop: Arc<AtomicBool>,
}

impl Terminator {
    fn start(upstream: SocketAddr) -> Terminator {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .expect("self-signed certificate");
        let cert_pem = certified.cert.pem();
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .expect("server certificate");
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes: Handshakes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (record, stopping) = (Arc::clone(&handshakes), Arc::clone(&stop));
        std::thread::spawn(move || {
            // bounded: a deadline, a connection count and the stop flag
            let deadline = Instant::now() + TERMINATOR_LIFETIME;
            let mut accepted = 0;
            while accepted < 64 && Instant::now() < deadline && !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        accepted += 1;
                        let (config, record, stopping) = (
                            Arc::clone(&config),
                            Arc::clone(&record),
                            Arc::clone(&stopping),
                        );
                        std::thread::spawn(move || {
                            serve_tls(client, upstream, config, &record, &stopping)
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Terminator {
            addr,
            cert_pem,
            handshakes,
            stop,
        }
    }

    /// `https://127.0.0.1:PORT/v2/enqueue`.
    fn url(&self) -> String {
        format!("https://{}/v2/enqueue", self.addr)
    }

    fn handshakes(&self) -> Vec<Result<(), String>> {
        self.handshakes.lock().unwrap().clone()
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// One client connection: the handshake, then plaintext piped both ways until either side
/// closes, the connection idles for [`IDLE_LIMIT`], or the terminator stops.
fn serve_tls(
    client: TcpStream,
    upstream: SocketAddr,
    config: Arc<ServerConfig>,
    record: &Handshakes,
    stop: &AtomicBool,
) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = client.set_write_timeout(Some(Duration::from_secs(5)));
    let mut conn = ServerConnection::new(config).unwrap();
    let mut sock = client;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            record.lock().unwrap().push(Err(e.to_string()));
            return;
        }
    }
    record.lock().unwrap().push(Ok(()));

    let Ok(mut up) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
        return;
    };
    let _ = up.set_nodelay(true);
    let _ = up.set_read_timeout(Some(Duration::from_millis(10)));
    let _ = up.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = sock.set_read_timeout(Some(Duration::from_millis(10)));
    let mut tls = StreamOwned::new(conn, sock);

    let started = Instant::now();
    let mut last_traffic = Instant::now();
    let mut buf = [0u8; 16 * 1024];
    while last_traffic.elapsed() < IDLE_LIMIT
        && started.elapsed() < TERMINATOR_LIFETIME
        && !stop.load(Ordering::SeqCst)
    {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if up.write_all(&buf[..n]).is_err() {
                    break;
                }
                last_traffic = Instant::now();
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
        match up.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tls.write_all(&buf[..n]).is_err() || tls.flush().is_err() {
                    break;
                }
                last_traffic = Instant::now();
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = up.shutdown(std::net::Shutdown::Both);
}

/// With `verify_certificate` given as `setting` (or absent), the self-signed certificate is
/// refused: nothing reaches the stand-in, the log names the TLS failure and the retry.
fn assert_refused(setting: Option<Value>, name: &str) {
    let pd = Standin::start().unwrap();
    let tls = Terminator::start(pd.addr());
    let dir = scratch(&format!("tls-refused-{name}"));
    let mut extra = json!({"http_server_url": tls.url()});
    if let Some(v) = setting {
        extra["verify_certificate"] = v;
    }
    let mut c = connector(extra, &dir);
    c.submit(&service(4, 2, 2, 100)).unwrap();
    assert!(
        !c.wait_idle(Duration::from_secs(1)),
        "{name}: {}",
        log_of(&dir)
    );

    let log = wait_log(&dir, Duration::from_secs(10), |l| l.contains("retry"));
    assert!(
        !pd.wait_for_accepted(1, NOT_DELIVERED_WITHIN),
        "{name}: delivered through an untrusted certificate\n{log}"
    );
    assert_eq!(pd.count(), 0, "{name}: the stand-in received nothing");
    assert!(
        !c.wait_idle(Duration::from_millis(100)),
        "{name}: still pending"
    );
    drop(c);

    // the client reached the terminator and aborted the handshake itself
    let handshakes = tls.handshakes();
    assert!(
        !handshakes.is_empty(),
        "{name}: no TLS handshake attempted\n{log}"
    );
    assert!(
        handshakes.iter().all(Result::is_err),
        "{name}: a handshake completed: {handshakes:?}"
    );

    let log = log_of(&dir);
    assert!(
        log.contains("sending trigger 4_2 failed") && log.contains("retry 1 in"),
        "{name}: the failure is retried\n{log}"
    );
    assert!(
        !log.contains(ROUTING_KEY),
        "{name}: the routing key leaked into the log"
    );
    // rustls says "invalid peer certificate: UnknownIssuer"; the operator must see it
    let lower = log.to_ascii_lowercase();
    assert!(
        lower.contains("tls") || lower.contains("certificate"),
        "{name}: the log names the TLS/certificate failure\n{log}"
    );
    assert!(
        lower.contains("certificate") || lower.contains("issuer"),
        "{name}: the log says why the certificate was refused\n{log}"
    );
}

#[test]
fn certificate_is_verified_by_default() {
    assert_refused(None, "default");
}

#[test]
fn verify_certificate_1_as_string_or_number_verifies() {
    assert_refused(Some(json!("1")), "string-1");
    assert_refused(Some(json!(1)), "number-1");
}

#[test]
fn only_verify_certificate_0_skips_verification() {
    for (setting, name) in [(json!(0), "number-0"), (json!("0"), "string-0")] {
        let pd = Standin::start().unwrap();
        let tls = Terminator::start(pd.addr());
        let dir = scratch(&format!("tls-unverified-{name}"));
        let mut c = connector(
            json!({"http_server_url": tls.url(), "verify_certificate": setting}),
            &dir,
        );
        c.submit(&service(4, 3, 2, 100)).unwrap();
        settled(&mut c, 10, &dir, name);
        assert!(
            pd.wait_for_accepted(1, Duration::from_secs(5)),
            "{name}: {}",
            log_of(&dir)
        );
        drop(c);
        let got = pd.accepted();
        assert_eq!(got.len(), 1, "{name}: exactly one event");
        assert_eq!(got[0]["dedup_key"], "4_3", "{name}");
        assert_eq!(got[0]["event_action"], "trigger", "{name}");
        assert!(
            tls.handshakes().iter().any(Result::is_ok),
            "{name}: the event went through the TLS terminator"
        );
        let log = log_of(&dir);
        assert!(log.contains("delivered trigger 4_3"), "{name}: {log}");
        assert!(!log.contains(ROUTING_KEY), "{name}: the routing key leaked");
    }
}

#[test]
fn ca_file_adds_a_trusted_authority() {
    let pd = Standin::start().unwrap();
    let tls = Terminator::start(pd.addr());
    let dir = scratch("tls-ca-file");
    let ca = dir.join("corporate-ca.pem");
    std::fs::write(&ca, &tls.cert_pem).unwrap();
    let mut c = connector(
        json!({"http_server_url": tls.url(), "ca_file": ca.display().to_string()}),
        &dir,
    );
    c.submit(&service(4, 2, 2, 100)).unwrap();
    settled(
        &mut c,
        20,
        &dir,
        "delivered through the authority of ca_file",
    );
    drop(c);
    assert_eq!(pd.accepted().len(), 1);
    assert!(tls.handshakes().iter().any(Result::is_ok));

    // a file without a certificate is refused at init, naming the parameter
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let cfg = json!({
        "pdy_routing_key": ROUTING_KEY,
        "ca_file": empty.display().to_string(),
        "outbox_path": dir.join("o2.db").display().to_string(),
        "log_path": dir.join("o2.log").display().to_string(),
    });
    let err = centreon_pagerduty::connector::Connector::from_json(&cfg)
        .err()
        .expect("init fails")
        .to_string();
    assert!(
        err.starts_with("parameter 'ca_file': no PEM certificate"),
        "{err}"
    );
}
