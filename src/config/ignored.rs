//! Parameters of the Lua connectors and their library that mean nothing here, with the reason:
//! accepted with a warning saying why.

const BAM: &str = "ignored: BAM events are not turned into incidents";
const METRICS: &str = "ignored: metrics are not sent to PagerDuty";
const TIME: &str = "ignored: timestamps are sent to PagerDuty with an explicit time zone";
const CENTREON_DB: &str = "ignored: the native connector does not query the Centreon database";

/// (name, "ignored: why").
pub(crate) const IGNORED: &[(&str, &str)] = &[
    ("ba_status", BAM),
    ("accepted_bvs", BAM),
    ("rejected_bvs", BAM),
    ("enable_bam_host", BAM),
    (
        "ack_host_status",
        "ignored: acknowledgements are not filtered by state",
    ),
    (
        "ack_service_status",
        "ignored: acknowledgements are not filtered by state",
    ),
    (
        "dt_host_status",
        "ignored: downtimes are not filtered by state",
    ),
    (
        "dt_service_status",
        "ignored: downtimes are not filtered by state",
    ),
    (
        "accepted_authors",
        "ignored: acknowledgements and downtimes are not filtered by author",
    ),
    (
        "rejected_authors",
        "ignored: acknowledgements and downtimes are not filtered by author",
    ),
    ("accepted_metrics", METRICS),
    ("metric_name_regex", METRICS),
    ("metric_replacement_character", METRICS),
    (
        "max_stored_events",
        "ignored: workaround for an old Broker issue; buffering follows max_buffer_size",
    ),
    (
        "send_mixed_events",
        "ignored: PagerDuty takes one event per request",
    ),
    (
        "allow_insecure_connection",
        "ignored: use verify_certificate (1 verifies TLS certificates, 0 does not)",
    ),
    (
        "custom_code_file",
        "ignored: Lua custom code cannot run in the native connector",
    ),
    ("local_time_diff_from_utc", TIME),
    ("timestamp_conversion_format", TIME),
    ("timezone", TIME),
    ("date_format", TIME),
    ("enable_broker_cache_counter_check", CENTREON_DB),
    ("centreon_db_name", CENTREON_DB),
    ("centreon_db_user", CENTREON_DB),
    ("centreon_db_password", CENTREON_DB),
    ("centreon_db_address", CENTREON_DB),
    ("centreon_db_port", CENTREON_DB),
    (
        "filter_type",
        "ignored: legacy setting without effect; use accepted_elements",
    ),
];
