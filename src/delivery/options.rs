//! The delivery's options: buffering, whether events are sent at all, the outbox the committer
//! keeps (where, how many events, commit delay); their parameters.

use std::path::PathBuf;
use std::time::Duration;

use crate::http::options::HttpOptions;
use crate::params::{ConfigError, Param, ParamReader, Secret};
use crate::payload::PayloadOptions;
use crate::stats::StatsOptions;

/// How events are released to the sender.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOptions {
    /// `max_buffer_size`: events held before they are released to the sender.
    pub max_buffer_size: usize,
    /// `max_buffer_age` / `max_all_queues_age`.
    pub max_buffer_age: Duration,
    /// `send_data_test`: 1 = log each payload instead of sending it.
    pub send_data_test: bool,
}

const MAX_BUFFER_SIZE: Param = Param::integer(
    "max_buffer_size",
    1,
    10_000,
    Some(1),
    "events held before they are released to the sender, 1 to 10000 (default 1)",
);
const MAX_BUFFER_AGE: Param = Param::seconds(
    "max_all_queues_age",
    // at most a day (also keeps `Duration::from_secs_f64` in range)
    86_400.0,
    5,
    "seconds an event may wait in the buffer (default 5)",
)
.legacy("max_buffer_age");
const SEND_DATA_TEST: Param = Param::flag(
    "send_data_test",
    false,
    "1 = write each payload to the log instead of sending it (default 0)",
);

/// The delivery's parameters.
pub(crate) const PARAMS: &[Param] = &[MAX_BUFFER_SIZE, MAX_BUFFER_AGE, SEND_DATA_TEST];

impl DeliveryOptions {
    /// Reads the delivery's parameters.
    pub(crate) fn read(r: &mut ParamReader) -> Result<DeliveryOptions, ConfigError> {
        let max_buffer_size = r.integer(&MAX_BUFFER_SIZE)?.unwrap_or(1) as usize;
        let max_buffer_age = r.seconds(&MAX_BUFFER_AGE)?;
        let send_data_test = r.flag(&SEND_DATA_TEST)?;
        Ok(DeliveryOptions {
            max_buffer_size,
            max_buffer_age,
            send_data_test,
        })
    }
}

/// Where the outbox is and what it keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxOptions {
    /// `outbox_path`: the durable outbox (default: one file per routing key under
    /// `/var/lib/centreon-broker/`).
    pub path: PathBuf,
    /// `outbox_max_events`: pending events kept before acknowledgements to Broker stop.
    pub max_events: u64,
    /// `outbox_commit_delay_ms`: how long the events of a burst (the latest 16 events all
    /// arrived within this delay) wait for more before their commit, counted from the oldest
    /// event not yet committed (an event that finds the committer idle, or a slower stream, is
    /// committed at once); also how long delivered events wait to be deleted together.
    pub commit_delay: Duration,
    /// `rejected_max_events`: rejected events kept for inspection (oldest pruned).
    pub rejected_max_events: u64,
}

const DEFAULT_OUTBOX_DIR: &str = "/var/lib/centreon-broker";

const OUTBOX_PATH: Param = Param::text(
    "outbox_path",
    None,
    "durable outbox database (default /var/lib/centreon-broker/centreon-pagerduty-<hash of the routing key>.db); one per output",
);
const OUTBOX_MAX_EVENTS: Param = Param::integer(
    "outbox_max_events",
    1,
    10_000_000,
    Some(100_000),
    "pending events kept in the outbox before acknowledgements to Broker stop, 1 to 10000000 (default 100000)",
);
const OUTBOX_COMMIT_DELAY: Param = Param::integer(
    "outbox_commit_delay_ms",
    0,
    1000,
    Some(10),
    "milliseconds the events of a burst (the latest 16 events all arrived within this delay) wait for more before their commit, counted from the oldest event not yet committed, 0 to 1000 (default 10): an isolated event, or a slower stream, is committed at once; also how long delivered events wait to be deleted together",
);
const REJECTED_MAX_EVENTS: Param = Param::integer(
    "rejected_max_events",
    1,
    1_000_000,
    Some(1000),
    "events rejected by PagerDuty kept for inspection, 1 to 1000000 (default 1000)",
);

/// The outbox's parameters.
pub(crate) const OUTBOX_PARAMS: &[Param] = &[
    OUTBOX_PATH,
    OUTBOX_MAX_EVENTS,
    OUTBOX_COMMIT_DELAY,
    REJECTED_MAX_EVENTS,
];

impl OutboxOptions {
    /// Reads the outbox's parameters; by default the outbox is named after `routing_key`.
    pub(crate) fn read(
        r: &mut ParamReader,
        routing_key: &Secret,
    ) -> Result<OutboxOptions, ConfigError> {
        let path = r
            .text(&OUTBOX_PATH)?
            .map_or_else(|| default_path(routing_key), PathBuf::from);
        let number = |r: &mut ParamReader, row: &Param| -> Result<u64, ConfigError> {
            Ok(r.integer(row)?.unwrap_or_default() as u64)
        };
        let max_events = number(r, &OUTBOX_MAX_EVENTS)?;
        let commit_delay = Duration::from_millis(number(r, &OUTBOX_COMMIT_DELAY)?);
        let rejected_max_events = number(r, &REJECTED_MAX_EVENTS)?;
        Ok(OutboxOptions {
            path,
            max_events,
            commit_delay,
            rejected_max_events,
        })
    }
}

/// The default outbox of a routing key: a file named by a hash of the key (never the key).
fn default_path(key: &Secret) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.expose().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    PathBuf::from(DEFAULT_OUTBOX_DIR).join(format!("centreon-pagerduty-{h:016x}.db"))
}

/// What a delivery starts with: the options of the parts it drives.
pub struct Setup<'a> {
    pub routing_key: &'a Secret,
    pub payload: &'a PayloadOptions,
    pub delivery: &'a DeliveryOptions,
    pub outbox: &'a OutboxOptions,
    pub stats: &'a StatsOptions,
    pub http: &'a HttpOptions,
}
