//! The routing key: from `pdy_routing_key`, the file `pdy_routing_key_file` or the environment.

use std::path::Path;

use crate::files;
use crate::params::{ConfigError, Param, ParamReader, Secret, unless_key};

/// The environment variable the routing key is read from when no parameter gives it (for
/// Broker: an `Environment=` line in a systemd drop-in of `centreon-broker`/`cbd`).
pub const ROUTING_KEY_ENV: &str = "PAGERDUTY_ROUTING_KEY";

const ROUTING_KEY: Param = Param::new(
    "pdy_routing_key",
    "integration (routing) key of a PagerDuty Events API v2 integration: 32 letters or digits (required, unless pdy_routing_key_file or the PAGERDUTY_ROUTING_KEY environment variable gives it)",
)
.secret();
const ROUTING_KEY_FILE: Param = Param::new(
    "pdy_routing_key_file",
    "file holding the routing key (surrounding blank space ignored), readable by centreon-broker: keeps the key out of Broker's configuration",
);

/// The routing key's parameters.
pub(crate) const PARAMS: &[Param] = &[ROUTING_KEY, ROUTING_KEY_FILE];

/// Checks a routing key: 32 letters or digits. The message never shows the key.
pub fn routing_key(text: &str) -> Result<Secret, String> {
    let n = text.chars().count();
    if n != 32 {
        return Err(format!(
            "expected 32 alphanumeric characters (got {n} characters)"
        ));
    }
    let other = text.chars().filter(|c| !c.is_ascii_alphanumeric()).count();
    if other > 0 {
        return Err(format!(
            "expected 32 alphanumeric characters (got {other} characters that are not letters or digits)"
        ));
    }
    Ok(Secret::new(text))
}

/// The routing key from `pdy_routing_key` (a Broker `password` parameter), from the file
/// `pdy_routing_key_file`, or from the environment variable [`ROUTING_KEY_ENV`].
pub(crate) fn read(r: &mut ParamReader) -> Result<Secret, ConfigError> {
    match (r.take(&ROUTING_KEY), r.take(&ROUTING_KEY_FILE)) {
        (Some(e), Some(f)) => Err(e.conflict(
            &f,
            format!(
                "cannot be used together with '{}': set one of them",
                f.written
            ),
        )),
        (Some(e), None) => routing_key(&e.text()?).map_err(|m| e.err(m)),
        (None, Some(f)) => {
            let path = f.text()?;
            let shown = unless_key(&path);
            let text =
                files::read_small(Path::new(&path), files::KEY_FILE_MAX_BYTES).map_err(|e| {
                    let hint = if e.is_io() {
                        " (it must be readable by the centreon-broker user)"
                    } else {
                        ""
                    };
                    f.err(format!("{}{hint}", e.about(&shown)))
                })?;
            routing_key(text.trim()).map_err(|m| f.err(format!("{shown}: {m}")))
        }
        (None, None) => match std::env::var(ROUTING_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => routing_key(v.trim()).map_err(|m| ConfigError {
                parameter: ROUTING_KEY.name.into(),
                kind: crate::params::ErrorKind::Value,
                message: format!("from the environment variable {ROUTING_KEY_ENV}: {m}"),
            }),
            _ => Err(ConfigError::missing(
                ROUTING_KEY.name,
                None,
                format!(
                    "is required: the 32-character integration key of a PagerDuty Events API \
                     v2 integration (or pdy_routing_key_file, or the environment variable \
                     {ROUTING_KEY_ENV})"
                ),
            )),
        },
    }
}
