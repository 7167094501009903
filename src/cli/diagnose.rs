//! `pagerduty-event test`: sends a test trigger and its resolve straight to PagerDuty (no outbox) and explains the answers in plain words.

use serde_json::Map;

use super::options::{self, Network, Routing};
use super::{EXIT_FAILED, EXIT_OK, Stop, key};
use crate::config::{Config, Severity};
use crate::payload::{self, Action, Custom};
use crate::retry::{self, Outcome};
use crate::send::{Failure, Reply, Sender};

const US: &str = "https://events.pagerduty.com/v2/enqueue";
const EU: &str = "https://events.eu.pagerduty.com/v2/enqueue";

/// Send a test trigger and its resolve; explain PagerDuty's answer
///
/// Sends a test event ("centreon-pagerduty test event from <this machine>") straight to
/// PagerDuty, then its resolve, and explains what PagerDuty answered: a wrong key, a wrong
/// region, a proxy needed, a TLS failure... The outbox is not used. An incident opens and
/// closes on the service of the routing key (it may notify whoever is on call).
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 PagerDuty accepted both events, 1 it did not, 2 bad usage.")]
pub struct Args {
    #[command(flatten)]
    routing: Routing,
    #[command(flatten)]
    network: Network,
}

/// Runs `test`.
pub fn run(p: &Args) -> Result<i32, Stop> {
    let key = key::required(&p.routing)?;
    let mut params = p.network.params(None);
    params.insert("pdy_routing_key".into(), key.secret.expose().into());
    let (cfg, _) =
        Config::from_json(&serde_json::Value::Object(params)).map_err(options::config_error)?;
    let sender = Sender::new(&cfg, 1).map_err(|e| {
        Stop::Usage(if e.starts_with("environment variable") {
            e
        } else {
            format!("--proxy: {e}")
        })
    })?;
    let host = super::hostname();
    let now = crate::timefmt::now_unix();
    let dedup_key = format!("pagerduty-event-test-{host}-{now}");
    let summary = format!("centreon-pagerduty test event from {host}");
    println!(
        "Sending a test event to {} with routing key {} ({}), {}.",
        sender.endpoint(),
        key.secret.masked(),
        key.from,
        if sender.proxied() {
            "through a proxy"
        } else {
            "without a proxy"
        }
    );
    for action in [Action::Trigger, Action::Resolve] {
        let mut details = Map::new();
        details.insert(
            "Note".into(),
            "sent by `pagerduty-event test`; resolved right away".into(),
        );
        let event = payload::custom_event(&Custom {
            action,
            dedup_key: &dedup_key,
            summary: &summary,
            source: &host,
            severity: Severity::Info,
            timestamp: Some(now),
            component: Some("pagerduty-event"),
            group: None,
            class: Some("test"),
            details,
            links: Vec::new(),
            client: Some("pagerduty-event"),
            client_url: None,
        });
        let reply = sender.post(&payload::encode(&event, &key.secret));
        let (ok, text) = explain(action, &reply, &sender, &cfg);
        println!("{}: {text}", action.as_str());
        if !ok {
            return Ok(EXIT_FAILED);
        }
    }
    println!(
        "OK: PagerDuty accepted the test incident \"{summary}\" and its resolve; this machine can send events with this routing key."
    );
    Ok(EXIT_OK)
}

/// Whether PagerDuty took the event, and what the answer means.
fn explain(action: Action, reply: &Reply, sender: &Sender, cfg: &Config) -> (bool, String) {
    let region = if sender.endpoint() == US {
        format!("if your PagerDuty account is in the EU, use --url {EU}")
    } else if sender.endpoint() == EU {
        format!("if your PagerDuty account is in the US, use --url {US} (the default)")
    } else {
        format!("PagerDuty's endpoints are {US} (US) and {EU} (EU)")
    };
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
            let outcome = retry::classify(*status, body, None, location.as_deref());
            let said = answer_text(&outcome, *status);
            match status {
                200..=299 if outcome != Outcome::Accepted => (
                    false,
                    format!(
                        "NOT delivered: {said}. PagerDuty answers 202 with {{\"status\":\"success\"}}; {proxy_hint}; {region}."
                    ),
                ),
                300..=399 => (
                    false,
                    format!(
                        "NOT delivered: the request was redirected ({}). PagerDuty's Events API never redirects, so the redirect was not followed: a captive portal or a proxy's login page intercepts this machine's traffic, or the URL is wrong (http:// instead of https://, a wrong host or path). Open that address in a browser from this machine to see which; {proxy_hint}; {region}.",
                        match location {
                            Some(l) => format!("HTTP {status} to {l}"),
                            None => format!("HTTP {status}, without a Location"),
                        }
                    ),
                ),
                200..=299 => (
                    true,
                    match action {
                        Action::Trigger => format!(
                            "accepted ({said}): an incident opened on the service of this routing key"
                        ),
                        _ => format!("accepted ({said}): the test incident is resolved"),
                    },
                ),
                400 if mentions_routing_key(body) => {
                    (
                        false,
                        format!(
                            "PagerDuty refused the routing key ({said}). Use the Integration Key of an \"Events API V2\" integration (Service > Integrations in PagerDuty), not a REST API key or a service id; {region}."
                        ),
                    )
                }
                400 => (
                    false,
                    format!("PagerDuty rejected the event as invalid ({said})."),
                ),
                404 => (
                    false,
                    format!(
                        "nothing at this URL ({said}): {} is not PagerDuty's Events API v2 endpoint; {region}.",
                        sender.endpoint()
                    ),
                ),
                401 | 403 => (
                    false,
                    format!(
                        "access refused ({said}): PagerDuty's Events API needs no credentials, so a proxy or firewall on the way probably refused it; {proxy_hint}."
                    ),
                ),
                407 => (
                    false,
                    "the proxy wants a user name and password (HTTP 407): give them in the proxy URL, e.g. HTTPS_PROXY=http://user:password@proxy:3128."
                        .to_string(),
                ),
                429 => (
                    false,
                    format!(
                        "rate limited ({said}): the routing key works, but PagerDuty receives too many events for it right now; try again in a minute."
                    ),
                ),
                500..=599 => (
                    false,
                    format!(
                        "server error ({said}): PagerDuty (or a proxy) has a problem; events sent through the outbox are retried. Try again later; see https://status.pagerduty.com."
                    ),
                ),
                _ => (false, format!("unexpected answer ({said}).")),
            }
        }
        Reply::Failed { kind, detail } => {
            let host = sender
                .endpoint()
                .split_once("://")
                .map_or(sender.endpoint(), |(_, r)| r)
                .split(['/', ':'])
                .next()
                .unwrap_or("");
            let text = match kind {
                Failure::HostNotFound => format!(
                    "cannot resolve the name {host} ({detail}): check the URL and this machine's DNS; {proxy_hint}."
                ),
                Failure::Refused => format!(
                    "connection refused ({detail}): nothing accepts connections at {}; check the URL, or outgoing connections are blocked and a proxy is needed: {proxy_hint}.",
                    sender.endpoint()
                ),
                Failure::Timeout => format!(
                    "no answer within {} s ({detail}): a firewall probably drops outgoing HTTPS; {proxy_hint}.",
                    cfg.timeout.as_secs_f64()
                ),
                Failure::Tls => format!(
                    "TLS failure ({detail}): PagerDuty's certificate was not trusted. A proxy that inspects TLS, or a wrong system clock, causes this; --insecure shows whether the certificate is the only problem (do not keep it)."
                ),
                Failure::Proxy => format!("the proxy failed ({detail}): {proxy_hint}."),
                Failure::Other => format!("network error ({detail}): {proxy_hint}."),
            };
            (false, text)
        }
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

/// `HTTP 400: message: errors`, as the retry policy words PagerDuty's answer.
fn answer_text(outcome: &Outcome, status: u16) -> String {
    match outcome {
        Outcome::Rejected(r) | Outcome::Failed(r) | Outcome::Misdirected(r) => r.clone(),
        Outcome::Accepted | Outcome::RateLimited { .. } => format!("HTTP {status}"),
    }
}
