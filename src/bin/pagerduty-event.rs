//! `pagerduty-event`: Pandora FMS alerts, scripts and operators' events to PagerDuty through the durable outbox (see `pagerduty-event --help`).

#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(centreon_pagerduty::cli::run(&args));
}
