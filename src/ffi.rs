//! C ABI (`cpd_*`, see `include/centreon_pagerduty.h`): an opaque connector handle for hosts other than Lua.
//!
//! Every function catches panics and reports them as `CPD_PANIC`; NULL arguments give
//! `CPD_NULL_ARGUMENT`; messages are copied into caller buffers, always NUL-terminated.
//! A handle is thread-safe: calls on one handle are serialised by an internal mutex.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_uint};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Duration;

use libc::size_t;

use crate::connector::Connector;
use crate::event::RawEvent;

/// Result codes. Numbers are stable.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cpd_result {
    CPD_OK = 0,
    CPD_NULL_ARGUMENT = 1,
    CPD_INVALID_UTF8 = 2,
    CPD_INVALID_JSON = 3,
    CPD_CONFIG_ERROR = 4,
    CPD_EVENT_ERROR = 5,
    CPD_TIMEOUT = 6,
    CPD_PANIC = 7,
    CPD_INSUFFICIENT_SIZE = 8,
}

use cpd_result::*;

impl cpd_result {
    /// Every result code, in numeric order.
    pub const ALL: [cpd_result; 9] = [
        CPD_OK,
        CPD_NULL_ARGUMENT,
        CPD_INVALID_UTF8,
        CPD_INVALID_JSON,
        CPD_CONFIG_ERROR,
        CPD_EVENT_ERROR,
        CPD_TIMEOUT,
        CPD_PANIC,
        CPD_INSUFFICIENT_SIZE,
    ];

    /// The result of a number a C caller passed (any value is safe).
    fn from_code(code: c_uint) -> Option<cpd_result> {
        Self::ALL.into_iter().find(|r| *r as c_uint == code)
    }

    fn message(self) -> &'static str {
        match self {
            CPD_OK => "ok",
            CPD_NULL_ARGUMENT => "a required argument was NULL",
            CPD_INVALID_UTF8 => "the text is not valid UTF-8",
            CPD_INVALID_JSON => "the text is not valid JSON",
            CPD_CONFIG_ERROR => "the configuration is invalid",
            CPD_EVENT_ERROR => "the event is malformed and was skipped",
            CPD_TIMEOUT => "events are still being delivered",
            CPD_PANIC => "internal error (a bug in centreon-pagerduty)",
            CPD_INSUFFICIENT_SIZE => "the buffer was too small; the message was truncated",
        }
    }
}

/// An opaque connector.
pub struct cpd_connector {
    inner: Mutex<Connector>,
    last_error: Mutex<String>,
}

impl cpd_connector {
    fn set_error(&self, msg: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = msg;
    }
}

fn guard(f: impl FnOnce() -> cpd_result) -> cpd_result {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(CPD_PANIC)
}

/// Copies `msg` into `buf` (NUL-terminated, truncated if needed).
///
/// # Safety
/// `buf` must be NULL or valid for `len` bytes; `written` NULL or valid.
unsafe fn copy_out(msg: &str, buf: *mut c_char, len: size_t, written: *mut size_t) -> cpd_result {
    if buf.is_null() || len == 0 {
        return CPD_NULL_ARGUMENT;
    }
    let n = msg.len().min(len - 1);
    // SAFETY: the caller guarantees `buf` holds `len` bytes; n < len.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
        if !written.is_null() {
            *written = n;
        }
    }
    if n < msg.len() {
        CPD_INSUFFICIENT_SIZE
    } else {
        CPD_OK
    }
}

/// # Safety
/// `ptr` must be valid for `len` bytes when not NULL.
unsafe fn json_arg(ptr: *const u8, len: size_t) -> Result<serde_json::Value, cpd_result> {
    if ptr.is_null() {
        return Err(CPD_NULL_ARGUMENT);
    }
    // SAFETY: per the contract above.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let text = std::str::from_utf8(bytes).map_err(|_| CPD_INVALID_UTF8)?;
    serde_json::from_str(text).map_err(|_| CPD_INVALID_JSON)
}

/// The library version, a static NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn cpd_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Writes the fixed description of `result` into `buf`.
///
/// # Safety
/// See the header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpd_result_message(
    result: c_uint,
    buf: *mut c_char,
    len: size_t,
    written: *mut size_t,
) -> cpd_result {
    let msg = cpd_result::from_code(result).map_or("unknown result code", cpd_result::message);
    // SAFETY: forwarded caller contract.
    guard(|| unsafe { copy_out(msg, buf, len, written) })
}

/// Creates a connector from a JSON object of parameters.
///
/// # Safety
/// See the header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpd_connector_new(
    config_json: *const u8,
    config_len: size_t,
    message: *mut c_char,
    message_len: size_t,
    out: *mut *mut cpd_connector,
) -> cpd_result {
    guard(|| {
        if out.is_null() {
            return CPD_NULL_ARGUMENT;
        }
        // SAFETY: out is valid (checked non-NULL; the caller guarantees it is writable).
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: forwarded caller contract.
        let cfg = match unsafe { json_arg(config_json, config_len) } {
            Ok(v) => v,
            Err(r) => return r,
        };
        match Connector::from_json(&cfg) {
            Ok(c) => {
                let handle = Box::new(cpd_connector {
                    inner: Mutex::new(c),
                    last_error: Mutex::new(String::new()),
                });
                // SAFETY: as above.
                unsafe { *out = Box::into_raw(handle) };
                CPD_OK
            }
            Err(e) => {
                if !message.is_null() {
                    // SAFETY: forwarded caller contract.
                    let _ = unsafe {
                        copy_out(&e.to_string(), message, message_len, std::ptr::null_mut())
                    };
                }
                CPD_CONFIG_ERROR
            }
        }
    })
}

/// Hands one event (a JSON object of Broker fields plus names) to the connector.
///
/// # Safety
/// See the header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpd_connector_push_json(
    connector: *mut cpd_connector,
    event_json: *const u8,
    event_len: size_t,
    acknowledged: *mut bool,
) -> cpd_result {
    guard(|| {
        // SAFETY: a handle from cpd_connector_new, not yet freed (caller contract).
        let Some(c) = (unsafe { connector.as_ref() }) else {
            return CPD_NULL_ARGUMENT;
        };
        // SAFETY: forwarded caller contract.
        let v = match unsafe { json_arg(event_json, event_len) } {
            Ok(v) => v,
            Err(r) => {
                c.set_error(r.message().to_string());
                return r;
            }
        };
        let mut conn = c.inner.lock().unwrap_or_else(|e| e.into_inner());
        let result = RawEvent::from_json(&v).and_then(|raw| conn.submit(&raw));
        let verdict = conn.verdict();
        drop(conn);
        if !acknowledged.is_null() {
            // SAFETY: writable when not NULL (caller contract).
            unsafe { *acknowledged = verdict };
        }
        match result {
            Ok(_) => CPD_OK,
            Err(e) => {
                c.set_error(e.to_string());
                CPD_EVENT_ERROR
            }
        }
    })
}

/// Releases buffered events and waits up to `timeout_ms` for every event to be delivered.
///
/// # Safety
/// See the header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpd_connector_flush(
    connector: *mut cpd_connector,
    timeout_ms: u32,
    done: *mut bool,
) -> cpd_result {
    guard(|| {
        // SAFETY: caller contract.
        let Some(c) = (unsafe { connector.as_ref() }) else {
            return CPD_NULL_ARGUMENT;
        };
        let mut conn = c.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ok = conn.wait_idle(Duration::from_millis(timeout_ms as u64));
        drop(conn);
        if !done.is_null() {
            // SAFETY: caller contract.
            unsafe { *done = ok };
        }
        if ok { CPD_OK } else { CPD_TIMEOUT }
    })
}

/// Number of events handed over and not yet delivered or rejected (0 for NULL).
///
/// # Safety
/// See the header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpd_connector_outstanding(connector: *const cpd_connector) -> u64 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: caller contract.
        unsafe { connector.as_ref() }.map_or(0, |c| {
            c.inner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .outstanding()
        })
    }))
    .unwrap_or(0)
}

/// Copies the message of the last failed call on this handle.
///
/// # Safety
/// See the header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpd_connector_last_error(
    connector: *const cpd_connector,
    buf: *mut c_char,
    len: size_t,
    written: *mut size_t,
) -> cpd_result {
    guard(|| {
        // SAFETY: caller contract.
        let Some(c) = (unsafe { connector.as_ref() }) else {
            return CPD_NULL_ARGUMENT;
        };
        let msg = c
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // SAFETY: forwarded caller contract.
        unsafe { copy_out(&msg, buf, len, written) }
    })
}

/// Stops the connector, joins its threads and frees it. NULL is a no-op.
///
/// # Safety
/// See the header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpd_connector_free(connector: *mut cpd_connector) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !connector.is_null() {
            // SAFETY: a handle from cpd_connector_new, freed once (caller contract).
            drop(unsafe { Box::from_raw(connector) });
        }
    }));
}
