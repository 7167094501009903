//! `pagerduty-event test`: sends a change event (or, with `--incident`, a test trigger and its resolve) straight to PagerDuty (no outbox) and explains the answers in plain words.

use serde_json::Map;

use super::options::{self, Network, Routing};
use super::{EXIT_FAILED, EXIT_OK, Stop, key};
use crate::config::Config;
use crate::decision::Action;
use crate::http::send::{AgentError, Failure, Reply, Sender};
use crate::http::verdict::{self, Verdict};
use crate::payload::Severity;
use crate::payload::{self, Custom};

const US: &str = "https://events.pagerduty.com/v2/enqueue";
const EU: &str = "https://events.eu.pagerduty.com/v2/enqueue";

/// Prove the routing key with a change event (no incident); explain PagerDuty's answer
///
/// Proves that this machine can reach PagerDuty with this routing key: sends a change event
/// ("centreon-pagerduty test from <this machine>") straight to PagerDuty and explains what
/// PagerDuty answered: a wrong key, a wrong region, a proxy needed, a TLS failure... PagerDuty
/// takes change events with the same Integration Key; they show in the service's change
/// timeline and open no incident, so nobody is paged. The outbox is not used.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 PagerDuty accepted the event(s), 1 it did not, 2 bad usage."
)]
pub(crate) struct Args {
    #[command(flatten)]
    routing: Routing,
    #[command(flatten)]
    network: Network,
    /// Change events endpoint (default: --url with its /v2/enqueue replaced by
    /// /v2/change/enqueue)
    #[arg(long, value_name = "URL", conflicts_with = "incident")]
    change_url: Option<String>,
    /// Send a test trigger and its resolve instead: an incident opens and closes on the
    /// service of the routing key (it may notify whoever is on call)
    #[arg(long)]
    incident: bool,
}

/// The alert events endpoint's path, which the change events endpoint sits next to.
const ENQUEUE_PATH: &str = "/v2/enqueue";
/// The change events endpoint's path.
const CHANGE_PATH: &str = "/v2/change/enqueue";

/// The change events URL next to the alert events URL `url`.
fn change_url(url: &str) -> Option<String> {
    let base = url.strip_suffix(ENQUEUE_PATH)?;
    Some(format!("{base}{CHANGE_PATH}"))
}

/// What one test request sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Change,
    Alert(Action),
}

impl Probe {
    fn label(self) -> &'static str {
        match self {
            Probe::Change => "change event",
            Probe::Alert(a) => a.as_str(),
        }
    }
}

/// Runs `test`.
pub(crate) fn run(p: &Args) -> Result<i32, Stop> {
    let key = key::required(&p.routing)?;
    let events_url = p.network.url.as_deref().unwrap_or(US).to_string();
    let url = if p.incident {
        None
    } else {
        match &p.change_url {
            Some(u) => Some(u.clone()),
            None => Some(change_url(&events_url).ok_or_else(|| {
                Stop::Usage(format!(
                    "--url {events_url} does not end with {ENQUEUE_PATH}: give the change events URL with --change-url (PagerDuty's is https://events.pagerduty.com{CHANGE_PATH}), or test with --incident"
                ))
            })?),
        }
    };
    let mut params = p.network.params(None);
    if let Some(u) = &url {
        params.insert("http_server_url".into(), u.as_str().into());
    }
    params.insert("pdy_routing_key".into(), key.secret.expose().into());
    let (cfg, _) = Config::from_json(&serde_json::Value::Object(params)).map_err(|e| {
        if e.parameter == "http_server_url" && p.change_url.is_some() {
            Stop::Usage(format!("--change-url: {}", e.message))
        } else {
            options::config_error(e)
        }
    })?;
    // without --proxy, the proxy comes from the environment: the error names its variable
    let sender = Sender::new(&cfg.http, &cfg.routing_key, 1).map_err(|e| {
        Stop::Usage(match e {
            AgentError::ProxyEnv(_) => e.to_string(),
            _ => format!("--proxy: {e}"),
        })
    })?;
    let host = super::hostname();
    let now = crate::timefmt::now_unix();
    let route = if sender.proxied() {
        "through a proxy"
    } else {
        "without a proxy"
    };
    let test = Test {
        sender: &sender,
        cfg: &cfg,
        events_url: &events_url,
        key: &key,
        host: &host,
        now,
    };
    if url.is_some() {
        return Ok(send_change_event(&test, route));
    }
    Ok(send_test_incident(&test, route))
}

/// What every test request shares.
struct Test<'a> {
    sender: &'a Sender,
    cfg: &'a Config,
    /// The alert events URL (`--url`), the one the region hints speak of.
    events_url: &'a str,
    key: &'a key::Key,
    host: &'a str,
    now: i64,
}

impl Test<'_> {
    /// Says what is about to be sent (`what`: "a change event"...), where and with which key.
    fn announce(&self, what: &str, route: &str) {
        println!(
            "Sending {what} to {} with routing key {} ({}), {route}.",
            self.sender.endpoint(),
            self.key.secret.masked(),
            self.key.from,
        );
    }

    /// Posts `body`, prints what the answer means; whether PagerDuty took it.
    fn post(&self, probe: Probe, body: &[u8]) -> bool {
        let reply = self.sender.post(body);
        let (ok, text) = explain(probe, &reply, self.sender, self.cfg, self.events_url);
        println!("{}: {text}", probe.label());
        ok
    }
}

/// Sends the change event; the exit status.
fn send_change_event(t: &Test, route: &str) -> i32 {
    let summary = format!("centreon-pagerduty test from {}", t.host);
    t.announce("a change event", route);
    let mut details = Map::new();
    details.insert(
        "Note".into(),
        // no "routing key" in this text: a WAF echoing the request must not read as PagerDuty refusing the key
        "sent by `pagerduty-event test` (opens no incident)".into(),
    );
    let body = payload::change_event(&summary, t.host, t.now, details);
    if !t.post(Probe::Change, &payload::encode_body(&body, &t.key.secret)) {
        return EXIT_FAILED;
    }
    println!(
        "OK: PagerDuty accepted the change event \"{summary}\" (no incident opened); this machine can send events with this routing key."
    );
    EXIT_OK
}

/// Sends a test trigger, then its resolve; the exit status.
fn send_test_incident(t: &Test, route: &str) -> i32 {
    let dedup_key = format!("pagerduty-event-test-{}-{}", t.host, t.now);
    let summary = format!("centreon-pagerduty test event from {}", t.host);
    t.announce("a test incident", route);
    for action in [Action::Trigger, Action::Resolve] {
        let mut details = Map::new();
        details.insert(
            "Note".into(),
            "sent by `pagerduty-event test --incident`; resolved right away".into(),
        );
        let event = payload::custom_event(&Custom {
            action,
            dedup_key: &dedup_key,
            summary: &summary,
            source: t.host,
            severity: Severity::Info,
            timestamp: Some(t.now),
            component: Some("pagerduty-event"),
            group: None,
            class: Some("test"),
            details,
            links: Vec::new(),
            client: Some("pagerduty-event"),
            client_url: None,
        });
        if !t.post(
            Probe::Alert(action),
            &payload::encode(&event, &t.key.secret),
        ) {
            return EXIT_FAILED;
        }
    }
    println!(
        "OK: PagerDuty accepted the test incident \"{summary}\" and its resolve; this machine can send events with this routing key."
    );
    EXIT_OK
}

/// Whether PagerDuty took the event, and what the answer means.
/// `events_url` is the alert events URL (`--url`), the one the region hints speak of.
fn explain(
    probe: Probe,
    reply: &Reply,
    sender: &Sender,
    cfg: &Config,
    events_url: &str,
) -> (bool, String) {
    let proxy_hint = if sender.proxied() {
        "check the proxy address (--proxy, HTTPS_PROXY)".to_string()
    } else {
        "if this network needs a proxy to reach the Internet, set HTTPS_PROXY=http://proxy:3128 or give --proxy".to_string()
    };
    match reply {
        Reply::Answered {
            status,
            body,
            location,
            ..
        } => {
            let hints = Hints {
                region: region_hint(events_url),
                proxy: proxy_hint,
            };
            let answer = Answer {
                status: *status,
                body,
                location: location.as_deref(),
            };
            explain_answer(probe, &answer, sender, &hints)
        }
        Reply::Failed { kind, detail } => (
            false,
            explain_failure(*kind, detail, sender, cfg, &proxy_hint),
        ),
    }
}

/// Where PagerDuty's endpoints are, for the alert events URL `events_url`.
fn region_hint(events_url: &str) -> String {
    if events_url == US {
        format!("if your PagerDuty account is in the EU, use --url {EU}")
    } else if events_url == EU {
        format!("if your PagerDuty account is in the US, use --url {US} (the default)")
    } else {
        format!("PagerDuty's endpoints are {US} (US) and {EU} (EU)")
    }
}

/// What to check next: the region, the proxy.
struct Hints {
    region: String,
    proxy: String,
}

/// An HTTP answer.
struct Answer<'a> {
    status: u16,
    body: &'a str,
    location: Option<&'a str>,
}

/// Whether PagerDuty took the event, and what its HTTP answer means.
fn explain_answer(probe: Probe, a: &Answer, sender: &Sender, hints: &Hints) -> (bool, String) {
    let Hints {
        region,
        proxy: proxy_hint,
    } = hints;
    let status = a.status;
    let outcome = verdict::classify(status, a.body, None, a.location);
    let said = answer_text(&outcome, status);
    let refused = |text: String| (false, text);
    match status {
        200..=299 if outcome != Verdict::Accepted => refused(format!(
            "NOT delivered: {said}. PagerDuty answers 202 with {{\"status\":\"success\"}}; {proxy_hint}; {region}."
        )),
        300..=399 => refused(format!(
            "NOT delivered: the request was redirected ({}). PagerDuty's Events API never redirects, so the redirect was not followed: a captive portal or a proxy's login page intercepts this machine's traffic, or the URL is wrong (http:// instead of https://, a wrong host or path). Open that address in a browser from this machine to see which; {proxy_hint}; {region}.",
            match a.location {
                Some(l) => format!("HTTP {status} to {l}"),
                None => format!("HTTP {status}, without a Location"),
            }
        )),
        200..=299 => (true, accepted_text(probe, &said)),
        400 if mentions_routing_key(a.body) => refused(format!(
            "PagerDuty refused the routing key ({said}). Use the Integration Key of an \"Events API V2\" integration (Service > Integrations in PagerDuty), not a REST API key or a service id; {region}."
        )),
        400 => refused(format!(
            "PagerDuty rejected the event as invalid ({said})."
        )),
        404 => refused(format!(
            "nothing at this URL ({said}): {} is not PagerDuty's Events API v2 {} endpoint; {region}.",
            sender.endpoint(),
            match probe {
                Probe::Change => "change events",
                Probe::Alert(_) => "alert events",
            }
        )),
        401 | 403 => refused(format!(
            "access refused ({said}): PagerDuty's Events API needs no credentials, so a proxy or firewall on the way probably refused it; {proxy_hint}."
        )),
        407 => refused(
            "the proxy wants a user name and password (HTTP 407): give them in the proxy URL, e.g. HTTPS_PROXY=http://user:password@proxy:3128."
                .to_string(),
        ),
        429 => refused(format!(
            "rate limited ({said}): the routing key works, but PagerDuty receives too many events for it right now; try again in a minute."
        )),
        500..=599 => refused(format!(
            "server error ({said}): PagerDuty (or a proxy) has a problem; events sent through the outbox are retried. Try again later; see https://status.pagerduty.com."
        )),
        _ => refused(format!("unexpected answer ({said}).")),
    }
}

/// What an accepted `probe` did.
fn accepted_text(probe: Probe, said: &str) -> String {
    match probe {
        Probe::Change => format!(
            "accepted ({said}): it shows in the change timeline of the service of this routing key"
        ),
        Probe::Alert(Action::Trigger) => {
            format!("accepted ({said}): an incident opened on the service of this routing key")
        }
        Probe::Alert(_) => format!("accepted ({said}): the test incident is resolved"),
    }
}

/// What a request that got no HTTP answer means.
fn explain_failure(
    kind: Failure,
    detail: &str,
    sender: &Sender,
    cfg: &Config,
    proxy_hint: &str,
) -> String {
    let host = sender
        .endpoint()
        .split_once("://")
        .map_or(sender.endpoint(), |(_, r)| r)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    match kind {
        Failure::HostNotFound => format!(
            "cannot resolve the name {host} ({detail}): check the URL and this machine's DNS; {proxy_hint}."
        ),
        Failure::Refused => format!(
            "connection refused ({detail}): nothing accepts connections at {}; check the URL, or outgoing connections are blocked and a proxy is needed: {proxy_hint}.",
            sender.endpoint()
        ),
        Failure::Timeout => format!(
            "no answer within {} s ({detail}): a firewall probably drops outgoing HTTPS; {proxy_hint}.",
            cfg.http.timeout.as_secs_f64()
        ),
        Failure::Tls => format!(
            "TLS failure ({detail}): PagerDuty's certificate was not trusted. A proxy that inspects TLS, or a wrong system clock, causes this; --insecure shows whether the certificate is the only problem (do not keep it)."
        ),
        Failure::Proxy => format!("the proxy failed ({detail}): {proxy_hint}."),
        Failure::Other => format!("network error ({detail}): {proxy_hint}."),
    }
}

/// PagerDuty's answer speaks of the routing key (not merely quoting the request's field, as
/// a WAF echoing the event does).
fn mentions_routing_key(body: &str) -> bool {
    let said = body
        .to_ascii_lowercase()
        .replace("\"routing_key\":", "")
        .replace("\\\"routing_key\\\":", "");
    said.contains("routing key") || said.contains("routing_key")
}

/// `HTTP 400: message: errors`, as [`verdict::classify`] words PagerDuty's answer.
fn answer_text(outcome: &Verdict, status: u16) -> String {
    match outcome {
        Verdict::Rejected(r) | Verdict::Failed(r) | Verdict::Misdirected(r) => r.clone(),
        Verdict::Accepted | Verdict::RateLimited { .. } => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_url_sits_next_to_the_events_url() {
        assert_eq!(
            change_url(US).as_deref(),
            Some("https://events.pagerduty.com/v2/change/enqueue")
        );
        assert_eq!(
            change_url(EU).as_deref(),
            Some("https://events.eu.pagerduty.com/v2/change/enqueue")
        );
        assert_eq!(
            change_url("http://127.0.0.1:8080/pd/v2/enqueue").as_deref(),
            Some("http://127.0.0.1:8080/pd/v2/change/enqueue")
        );
        for other in [
            "https://events.pagerduty.com/v2/enqueue/",
            "https://events.pagerduty.com/v1/enqueue",
            "https://events.pagerduty.com/",
        ] {
            assert_eq!(change_url(other), None, "{other}");
        }
    }
}
