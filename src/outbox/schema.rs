//! The outbox's tables and the migrations that bring an earlier version's database to this one.

/// Schema version stored in `PRAGMA user_version`: [`SCHEMA`] creates version 1's tables,
/// each of [`MIGRATIONS`] brings a database to the next version.
pub(super) const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

/// What brings a database of version `1 + i` to version `2 + i`, applied once each, in the
/// transaction that opens the outbox (a database is at one version or the next, never
/// between). Additive only: columns added.
pub(super) const MIGRATIONS: &[&str] = &[
    // 2: each object's names as Broker's cache last gave them (NULL: never known)
    "ALTER TABLE objects ADD COLUMN host_name TEXT;
     ALTER TABLE objects ADD COLUMN host_address TEXT;
     ALTER TABLE objects ADD COLUMN poller TEXT;
     ALTER TABLE objects ADD COLUMN hostgroups TEXT;        -- JSON array of names
     ALTER TABLE objects ADD COLUMN host_severity INTEGER;
     ALTER TABLE objects ADD COLUMN service_description TEXT;
     ALTER TABLE objects ADD COLUMN servicegroups TEXT;     -- JSON array of names
     ALTER TABLE objects ADD COLUMN service_severity INTEGER;",
    // 3: failed attempts of a pending event, for operators (`pagerduty-event list`, `check`);
    // a rejected event's attempts, rejection included (NULL: rejected before they were kept)
    "ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE outbox ADD COLUMN last_error TEXT;
     ALTER TABLE outbox ADD COLUMN last_attempt INTEGER;    -- Unix milliseconds
     ALTER TABLE rejected ADD COLUMN attempts INTEGER;",
    // 4: the last status handled per object (decision::Handled): NULL when none had a time
    "ALTER TABLE objects ADD COLUMN last_check INTEGER;
     ALTER TABLE objects ADD COLUMN last_state INTEGER;
     ALTER TABLE objects ADD COLUMN last_flags INTEGER;",
];

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    opens     INTEGER NOT NULL,   -- 1: this trigger opens an incident (none was open before)
    summary   TEXT    NOT NULL,
    body      TEXT    NOT NULL,   -- the event without its routing key
    created   INTEGER NOT NULL    -- Unix milliseconds
);
CREATE INDEX IF NOT EXISTS outbox_dedup ON outbox (dedup_key, id);
CREATE TABLE IF NOT EXISTS rejected (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    summary   TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    at        INTEGER NOT NULL    -- Unix milliseconds
);
CREATE TABLE IF NOT EXISTS objects (
    host_id      INTEGER NOT NULL,
    service_id   INTEGER NOT NULL,
    open_state   INTEGER,          -- NULL: no incident open; else the state sent
    acknowledged INTEGER NOT NULL,
    PRIMARY KEY (host_id, service_id)
);
";
