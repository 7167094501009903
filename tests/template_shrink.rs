//! A `format_file` event made of huge outputs costs work bounded by PagerDuty's 512 KB, however often the template repeats them: the bytes allocated while the event is made are counted (no timing).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use centreon_pagerduty::config::{Config, ParamValue, Secret};
use centreon_pagerduty::decision::Action;
use centreon_pagerduty::event::{Event, RawEvent, StatusEvent};
use centreon_pagerduty::log::{Level, Sink};
use centreon_pagerduty::payload::template::Templates;
use centreon_pagerduty::payload::{self, MAX_BODY, Outgoing, TRUNCATION_MARKER};
use serde_json::{Value, json};

/// Counts the bytes this thread asks the allocator for (allocations and reallocations).
struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    let _ = ALLOCATED.try_with(|c| c.set(c.get() + bytes));
}

// SAFETY: every call is passed on to the system allocator unchanged; counting allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const FIELDS: usize = 200;
const OUTPUT: usize = 400_000;

/// A BBDO 3 service going CRITICAL with a 400 KB output (first line, then the long output).
fn status(t: &Templates, long_output: &str) -> StatusEvent {
    let raw = RawEvent::from_json(&json!({
        "category": 1, "element": 29, "host_id": 12, "service_id": 34,
        "state": 2, "state_type": 1, "last_check": 1_700_000_000,
        "output": "CRITICAL - disk full", "long_output": long_output,
        "host_name": "srv-db", "service_description": "Disk /var",
    }))
    .unwrap();
    let Ok(Some(mut ev)) = Event::from_raw(&raw) else {
        panic!("not an event")
    };
    let ctx = ev.context_mut().unwrap();
    ctx.host_name = Some("srv-db".into());
    ctx.service_description = Some("Disk /var".into());
    t.capture(&raw, ctx);
    let Event::Status(st) = ev else {
        panic!("not a status")
    };
    st
}

fn cfg() -> Config {
    let params = [("pdy_routing_key".to_string(), ParamValue::Str(KEY.into()))];
    Config::from_params(&params).unwrap().0
}

/// The event made from the template, and the bytes allocated to make it.
fn made(value: &str, long_output: &str) -> (Outgoing, usize, Vec<String>) {
    let t = support::shrink_templates(FIELDS, value);
    let st = status(&t, long_output);
    let builtin = payload::status_event(&st, Action::Trigger, &cfg().payload);
    let log = std::sync::Arc::new(Sink::in_memory(Level::Debug));
    let _current = log.enter();
    let before = ALLOCATED.with(Cell::get);
    let out = t.status_event(&st, Action::Trigger, builtin);
    let allocated = ALLOCATED.with(Cell::get) - before;
    (out, allocated, log.lines())
}

/// The work allowed: the output's text put together once (`{long_output}` is the first line
/// and the long output), and a few times the largest body.
fn bound() -> usize {
    2 * OUTPUT + 3 * MAX_BODY
}

fn check(value: &str, macros: usize) {
    let long = "x".repeat(OUTPUT);
    let (out, allocated, log) = made(value, &long);
    assert!(
        allocated <= bound(),
        "{macros} macro(s) per field: {allocated} bytes allocated for one event (at most {} \
         allowed: {FIELDS} fields of {} bytes would be {})",
        bound(),
        macros * OUTPUT,
        FIELDS * macros * OUTPUT
    );
    assert!(log.is_empty(), "{log:?}");
    let body = payload::encode(&out, &Secret::new(KEY));
    assert!(body.len() <= MAX_BODY, "{} bytes", body.len());
    let v: Value = serde_json::from_slice(&body).expect("valid JSON");
    let p = &v["payload"];
    assert_eq!(p["summary"], "srv-db/Disk /var: CRITICAL - disk full");
    assert_eq!(p["source"], "srv-db");
    assert_eq!(p["severity"], "critical");
    let details = p["custom_details"].as_object().unwrap();
    assert_eq!(details.len(), FIELDS, "every field is kept");
    let lens: Vec<usize> = details
        .values()
        .map(|d| {
            let d = d.as_str().unwrap();
            assert!(d.starts_with("CRITICAL - disk full\nxxx"), "{}", &d[..40]);
            assert!(d.ends_with(TRUNCATION_MARKER));
            d.len()
        })
        .collect();
    assert!(
        lens.iter().all(|n| *n == lens[0]),
        "one share for all: {lens:?}"
    );
    // the share is the room left, not much less
    assert!(
        body.len() + FIELDS * 2 > MAX_BODY - 2048,
        "{} bytes sent",
        body.len()
    );
}

#[test]
fn two_hundred_long_outputs_cost_one_body() {
    check("{long_output}", 1);
}

#[test]
fn three_long_outputs_per_field_cost_one_body() {
    check("{long_output}{long_output}{long_output}", 3);
}
