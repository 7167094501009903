//! Routing keys for the command line: from `--routing-key`, `--routing-key-file`, `PAGERDUTY_ROUTING_KEY` or Pandora's `@file` / `env:NAME` forms, checked as the library checks them and never shown.

use std::path::Path;

use crate::config::{Config, ParamValue, Secret, unless_key};
use crate::files;

use super::Stop;
use super::options::Routing;

/// The environment variable a routing key may come from.
pub(crate) use crate::config::ROUTING_KEY_ENV as ENV;

/// A routing key and where it came from (for messages: never the key itself).
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) secret: Secret,
    pub(crate) from: String,
    /// The file name the connector gives this key's outbox: `centreon-pagerduty-<hash>.db`
    /// (a hash of the key, which cannot be turned back into it).
    pub(crate) outbox_file: String,
}

/// The key of `--routing-key` or `--routing-key-file`, else (when `env` is true) of
/// `PAGERDUTY_ROUTING_KEY`; `None` when none is given.
pub(crate) fn from_options(p: &Routing, env: bool) -> Result<Option<Key>, Stop> {
    match (p.routing_key.as_deref(), p.routing_key_file.as_deref()) {
        (Some(_), Some(_)) => Err(Stop::Usage(
            "give either --routing-key or --routing-key-file, not both".into(),
        )),
        (Some(k), None) => check(k, "--routing-key").map(Some),
        (None, Some(path)) => from_file(path).map(Some),
        (None, None) if env => from_env(ENV),
        (None, None) => Ok(None),
    }
}

/// Like [`from_options`], but a key is required.
pub(crate) fn required(p: &Routing) -> Result<Key, Stop> {
    from_options(p, true)?.ok_or_else(|| {
        Stop::Usage(format!(
            "no routing key: give --routing-key-file PATH, set {ENV}, or --routing-key KEY"
        ))
    })
}

/// Pandora FMS's `service_api_key` argument: the key itself, `@PATH` (a file holding it),
/// `env:NAME` (an environment variable), or `-` (the options and `PAGERDUTY_ROUTING_KEY`).
pub(crate) fn from_pandora_argument(arg: &str, p: &Routing) -> Result<Key, Stop> {
    if let Some(path) = arg.strip_prefix('@') {
        return from_file(path);
    }
    if let Some(name) = arg.strip_prefix("env:") {
        return from_env(name)?.ok_or_else(|| {
            Stop::Usage(format!(
                "service_api_key: environment variable {name} is not set"
            ))
        });
    }
    if arg == "-" {
        return required(p);
    }
    check(arg, "service_api_key")
}

fn from_file(path: &str) -> Result<Key, Stop> {
    let shown = unless_key(path);
    let text = files::read_small(Path::new(path), files::KEY_FILE_MAX_BYTES)
        .map_err(|e| Stop::Usage(e.about(&format!("the routing key file {shown}"))))?;
    check(text.trim(), &format!("file {shown}"))
}

fn from_env(name: &str) -> Result<Option<Key>, Stop> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => check(v.trim(), &format!("${name}")).map(Some),
        _ => Ok(None),
    }
}

/// Checks a key exactly as the connector's `pdy_routing_key` is checked; the message names
/// where the key came from, never the key.
pub(crate) fn check(key: &str, from: &str) -> Result<Key, Stop> {
    let params = [("pdy_routing_key".to_string(), ParamValue::Str(key.into()))];
    match Config::from_params(&params) {
        Ok((cfg, _)) => Ok(Key {
            outbox_file: cfg
                .outbox
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            secret: cfg.routing_key,
            from: from.to_string(),
        }),
        Err(e) => Err(Stop::Usage(format!(
            "routing key from {from}: {}",
            e.message
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const KEY: &str = "R0ut1ngKeyABCDEFGHIJKLMNOPQRSTUV";

    #[derive(Parser)]
    struct Words {
        #[command(flatten)]
        routing: Routing,
    }

    fn parsed(words: &[&str]) -> Routing {
        let argv = std::iter::once("test").chain(words.iter().copied());
        Words::try_parse_from(argv).unwrap().routing
    }

    fn message(r: Result<Key, Stop>) -> String {
        match r {
            Err(Stop::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn sources() {
        let dir = crate::files::tests::scratch("cli-key");
        let file = dir.join("key");
        std::fs::write(&file, format!("{KEY}\n")).unwrap();
        let f = file.display().to_string();

        let k = from_options(&parsed(&["--routing-key", KEY]), false)
            .unwrap()
            .unwrap();
        assert_eq!(k.secret.expose(), KEY);
        let k = from_options(&parsed(&["--routing-key-file", &f]), false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (k.secret.expose(), k.from.as_str()),
            (KEY, format!("file {f}").as_str())
        );
        let k = from_pandora_argument(&format!("@{f}"), &parsed(&[])).unwrap();
        assert_eq!(k.secret.expose(), KEY);
        let k = from_pandora_argument("-", &parsed(&["--routing-key-file", &f])).unwrap();
        assert_eq!(k.secret.expose(), KEY);
        assert!(from_options(&parsed(&[]), false).unwrap().is_none());
        let both = from_options(
            &parsed(&["--routing-key", KEY, "--routing-key-file", &f]),
            false,
        );
        assert!(matches!(both, Err(Stop::Usage(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wrong_keys_are_named_by_source_never_shown() {
        let bad = "not-a-key-but-a-secret-anyway-xx";
        let m = message(check(bad, "--routing-key"));
        assert!(
            m.starts_with("routing key from --routing-key: expected 32"),
            "{m}"
        );
        assert!(!m.contains(bad));
        let m = message(from_pandora_argument("short", &parsed(&[])));
        assert!(m.contains("service_api_key") && !m.contains("short"), "{m}");
        let m = message(from_pandora_argument("@/nonexistent/key", &parsed(&[])));
        assert!(m.contains("/nonexistent/key"), "{m}");
        // a key given where a file name belongs is not shown, and a FIFO is not waited on
        let m = message(from_pandora_argument(&format!("@{KEY}"), &parsed(&[])));
        assert!(
            !m.contains(KEY) && m.contains(&Secret::new(KEY).masked()),
            "{m}"
        );
        let dir = crate::files::tests::scratch("cli-key-fifo");
        let fifo = dir.join("key");
        crate::files::tests::mkfifo(&fifo);
        let m = message(
            from_options(
                &parsed(&["--routing-key-file", &fifo.display().to_string()]),
                false,
            )
            .map(|k| k.expect("a key")),
        );
        assert!(
            m.ends_with("is a FIFO, expected a regular file of at most 4096 bytes"),
            "{m}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
