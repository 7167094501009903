//! The Lua module `centreon_pagerduty` (`luaopen_centreon_pagerduty`): error-free glue from the bridge script to a [`Connector`].
//!
//! One binary serves Lua 5.3 and 5.4: only the C API functions whose ABI is identical in
//! both are called ([`sys`]), the running version is checked at load (`_VERSION`, 64-bit
//! integers and double floats), and the one version-specific function is found with `dlsym`.
//!
//! No Lua error ever crosses a Rust frame that owns anything: arguments are read with calls
//! that cannot raise (`lua_type`, `lua_toboolean`, `lua_tointegerx`, `lua_next`,
//! `lua_tolstring` on strings only), and every call that may allocate (and so raise an
//! out-of-memory error) runs in a small trampoline under `lua_pcallk` whose frame holds
//! nothing to drop. Every entry point catches panics. Failures are returned as `nil, message`
//! and the script decides what to do.
//!
//! Functions (the handle `h` is a full userdata; its `__gc` stops and joins the threads; `t` is
//! an event's `_type`, `unseen` the events the script answered itself since its last call,
//! counted in the statistics):
//! - `new(conf) -> h | nil, msg`;
//! - `plan(h) -> table`: everything the bridge needs, as data ([`plan`]): the accepted types
//!   with the fields to read at each step, the `broker_cache` lookups, the answer codes and
//!   the fast path's constants;
//! - `state(h, t, host_id, service_id, state, unseen) -> answer`: a status asked about with
//!   its ids and state alone;
//! - `status(h, t, host_id, service_id, state, state_type, acknowledgement, downtime_depth,
//!   flapping, unseen) -> answer`: with the fields the plan's `flags` names, as read;
//! - `event(h, t, unseen) -> answer`: any other event;
//! - answers ([`plan::Answer`]): 0 pending, 1 acknowledged, 2 hand over the details with
//!   `submit`, 3 ask again with `status`, 4 and 5: pending / acknowledged, and the object
//!   stays OK (its next OK status needs no call while the last answer was "acknowledged");
//! - `submit(h, fields) -> verdict [, msg]`, `flush(h, unseen) -> verdict`,
//!   `outstanding(h) -> n`, `log(h, level, msg)`, `close(h)`, `version()`.

mod plan;
mod sys;

use std::ffi::{CStr, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use sys::*;

use crate::connector::{Connector, Quick};
use crate::decision::Observed;
use crate::event::{CheckTimes, Flags, ObjectKey, RawEvent, RawValue, is_hard};
use crate::log::Level;
use crate::params::ParamValue;
use plan::{Answer, Tree};

/// Upvalues shared by every function of the module.
const UV_METATABLE: c_int = lua_upvalueindex(1);
const UV_NEWUD: c_int = lua_upvalueindex(2);
const UV_MINOR: c_int = lua_upvalueindex(3);

type CFunction = unsafe extern "C" fn(*mut lua_State) -> c_int;

const FUNCTIONS: &[(&CStr, CFunction)] = &[
    (c"new", l_new),
    (c"plan", l_plan),
    (c"state", l_state),
    (c"status", l_status),
    (c"event", l_event),
    (c"submit", l_submit),
    (c"flush", l_flush),
    (c"outstanding", l_outstanding),
    (c"log", l_log),
    (c"close", l_close),
    (c"version", l_version),
];

// ---------------------------------------------------------------------------------------
// Protected trampolines: plain frames (nothing to drop) that may be left by a Lua error.
// ---------------------------------------------------------------------------------------

/// Runs `f` under `lua_pcallk` with the `nargs` values on top of the stack as arguments.
/// On error the error value is popped and `false` returned.
unsafe fn protected(l: *mut lua_State, f: CFunction, nargs: c_int, nresults: c_int) -> bool {
    // SAFETY: the caller pushed `nargs` values; pushing a light C function never allocates,
    // and lua_rotate only moves stack slots.
    unsafe {
        lua_pushcclosure(l, f, 0);
        lua_rotate(l, -(nargs + 1), 1);
        if lua_pcallk(l, nargs, nresults, 0, 0, None) != 0 {
            lua_settop(l, -2);
            return false;
        }
    }
    true
}

unsafe extern "C" fn t_push_bytes(l: *mut lua_State) -> c_int {
    // SAFETY: argument 1 is a light userdata pointing at a live `&[u8]` of the caller.
    unsafe {
        let s = &*(lua_touserdata(l, 1) as *const &[u8]);
        lua_pushlstring(l, s.as_ptr().cast(), s.len());
    }
    1
}

/// Pushes a string; false (nothing pushed) when Lua is out of memory.
unsafe fn push_str(l: *mut lua_State, s: &str) -> bool {
    let bytes: &[u8] = s.as_bytes();
    // SAFETY: `bytes` outlives the protected call that reads it.
    unsafe {
        lua_pushlightuserdata(l, &bytes as *const &[u8] as *mut c_void);
        protected(l, t_push_bytes, 1, 1)
    }
}

unsafe extern "C" fn t_push_tree(l: *mut lua_State) -> c_int {
    // SAFETY: argument 1 is a light userdata pointing at a live `Tree` of the caller; its
    // frames hold borrows only (nothing to drop if a Lua error leaves them).
    unsafe {
        let tree = &*(lua_touserdata(l, 1) as *const Tree);
        push_tree(l, tree);
    }
    1
}

/// Pushes `tree` (under `protected`: may raise an out-of-memory error).
unsafe fn push_tree(l: *mut lua_State, tree: &Tree) {
    // SAFETY: each level uses 2 stack slots, checked; a table being filled is at -2 when its
    // value is at -1.
    unsafe {
        lua_checkstack(l, 4);
        match tree {
            Tree::Int(i) => lua_pushinteger(l, *i),
            Tree::Bool(b) => lua_pushboolean(l, *b as c_int),
            Tree::Str(s) => {
                lua_pushlstring(l, s.as_ptr().cast(), s.len());
            }
            Tree::List(items) => {
                lua_createtable(l, items.len() as c_int, 0);
                for (i, item) in items.iter().enumerate() {
                    push_tree(l, item);
                    lua_rawseti(l, -2, i as lua_Integer + 1);
                }
            }
            Tree::Record(fields) => {
                lua_createtable(l, 0, fields.len() as c_int);
                for (name, value) in fields {
                    push_tree(l, value);
                    lua_setfield(l, -2, name.as_ptr());
                }
            }
            Tree::ByInt(entries) => {
                lua_createtable(l, 0, entries.len() as c_int);
                for (key, value) in entries {
                    push_tree(l, value);
                    lua_rawseti(l, -2, *key);
                }
            }
        }
    }
}

/// Returns `nil, msg` to Lua.
unsafe fn nil_msg(l: *mut lua_State, msg: &str) -> c_int {
    // SAFETY: C functions have LUA_MINSTACK free slots.
    unsafe {
        lua_pushnil(l);
        if push_str(l, msg) { 2 } else { 1 }
    }
}

/// Runs an entry point body, turning a panic into `nil, message`.
unsafe fn guarded(l: *mut lua_State, body: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(n) => n,
        // SAFETY: the state is valid for the whole call.
        Err(_) => unsafe {
            lua_settop(l, 0);
            nil_msg(
                l,
                "centreon_pagerduty: internal error (a bug); the event was not acknowledged",
            )
        },
    }
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

unsafe extern "C" fn t_probe(l: *mut lua_State) -> c_int {
    // SAFETY: plain API calls under pcall; results: _VERSION, math, tostring(math.maxinteger), tostring(0.5).
    unsafe {
        lua_getglobal(l, c"_VERSION".as_ptr());
        if lua_getglobal(l, c"math".as_ptr()) == LUA_TTABLE {
            lua_getfield(l, -1, c"maxinteger".as_ptr());
            lua_tolstring(l, -1, ptr::null_mut());
        } else {
            lua_pushnil(l);
        }
        lua_pushinteger(l, 1);
        lua_tolstring(l, -1, ptr::null_mut()); // "1": integers convert without ".0"
        lua_pushnumber(l, 0.5);
        lua_tolstring(l, -1, ptr::null_mut()); // "0.5" only when lua_Number is a double
    }
    5
}

unsafe extern "C" fn t_open(l: *mut lua_State) -> c_int {
    // SAFETY: under pcall; arguments: 1 newuserdata pointer (light userdata), 2 minor version.
    unsafe {
        lua_createtable(l, 0, FUNCTIONS.len() as c_int + 2); // 3: module
        lua_createtable(l, 0, 2); // 4: metatable of handles
        for (name, f) in FUNCTIONS {
            lua_pushvalue(l, 4);
            lua_pushvalue(l, 1);
            lua_pushvalue(l, 2);
            lua_pushcclosure(l, *f, 3);
            lua_setfield(l, 3, name.as_ptr());
        }
        lua_pushvalue(l, 4);
        lua_pushvalue(l, 1);
        lua_pushvalue(l, 2);
        lua_pushcclosure(l, l_gc, 3);
        lua_setfield(l, 4, c"__gc".as_ptr());
        lua_pushlstring(l, c"locked".as_ptr(), 6);
        lua_setfield(l, 4, c"__metatable".as_ptr());
        let v = crate::VERSION;
        lua_pushlstring(l, v.as_ptr().cast(), v.len());
        lua_setfield(l, 3, c"VERSION".as_ptr());
        lua_pushvalue(l, 3);
    }
    1
}

/// Entry point called by `require("centreon_pagerduty")`. Returns the module table, or a
/// string explaining why the module cannot run in this Lua (the bridge logs it).
///
/// # Safety
/// Called by Lua with a valid state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn luaopen_centreon_pagerduty(l: *mut lua_State) -> c_int {
    // SAFETY: a valid state from Lua; see the module documentation for the error rules.
    unsafe { guarded(l, || open(l)) }
}

unsafe fn open(l: *mut lua_State) -> c_int {
    // Without the host's Lua functions nothing can be pushed: `require` then returns `true`
    // and the bridge reports that the library could not bind to this Lua.
    if sys::resolve().is_err() {
        return 0;
    }
    // SAFETY: as above; every Lua function is resolved.
    unsafe {
        if lua_checkstack(l, 16) == 0 {
            return 0;
        }
        let base = lua_gettop(l);
        if !protected(l, t_probe, 0, 5) {
            return fail(
                l,
                "centreon_pagerduty: cannot inspect the Lua runtime (out of memory?)",
            );
        }
        let version = string_at(l, base + 1);
        let maxint = string_at(l, base + 3);
        let one = string_at(l, base + 4);
        let half = string_at(l, base + 5);
        lua_settop(l, base);
        let minor = match version.as_deref() {
            Some("Lua 5.3") => 3,
            Some("Lua 5.4") => 4,
            other => {
                return fail(
                    l,
                    &format!(
                        "centreon_pagerduty: needs Lua 5.3 or 5.4, running {}",
                        other.unwrap_or("an unknown Lua")
                    ),
                );
            }
        };
        if maxint.as_deref() != Some("9223372036854775807")
            || one.as_deref() != Some("1")
            || half.as_deref() != Some("0.5")
        {
            return fail(
                l,
                "centreon_pagerduty: this Lua is not built with 64-bit integers and double floats",
            );
        }
        let Some(newud) = find_newuserdata(minor) else {
            return fail(
                l,
                "centreon_pagerduty: the Lua userdata constructor is not exported by the host",
            );
        };
        lua_pushlightuserdata(l, newud.address());
        lua_pushinteger(l, minor as lua_Integer);
        if !protected(l, t_open, 2, 1) {
            return fail(l, "centreon_pagerduty: out of memory while loading");
        }
        1
    }
}

unsafe fn fail(l: *mut lua_State, msg: &str) -> c_int {
    // SAFETY: pushes a string (protected).
    unsafe { if push_str(l, msg) { 1 } else { 0 } }
}

/// The string at `idx`, if it is one (never converts numbers in place).
unsafe fn string_at(l: *mut lua_State, idx: c_int) -> Option<String> {
    // SAFETY: lua_tolstring is only called on strings, where it neither allocates nor raises.
    unsafe {
        if lua_type(l, idx) != LUA_TSTRING {
            return None;
        }
        let mut len = 0usize;
        let p = lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            return None;
        }
        let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len);
        // valid UTF-8 (nearly always) is copied as it is; only invalid bytes take the lossy path
        Some(match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------------------

/// The block of a handle (a full userdata): a tag, then the connector (null once closed).
/// The metatable alone does not prove a userdata is a handle: `debug.setmetatable` can give
/// it to any userdata (`io.stdout`'s, another library's). A handle is a block of exactly
/// this size whose tag is [`HANDLE_TAG`] mixed with the block's own address, which no other
/// userdata holds by chance.
#[repr(C)]
struct HandleBlock {
    tag: usize,
    conn: *mut Connector,
}

/// "cpd-hndl" in ASCII.
const HANDLE_TAG: usize = 0x6370_642d_686e_646c;

fn tag_of(block: *const HandleBlock) -> usize {
    HANDLE_TAG ^ block as usize
}

/// The block of the handle at argument 1, if it is one of ours (open or closed).
unsafe fn handle_block(l: *mut lua_State) -> Option<*mut HandleBlock> {
    // SAFETY: only non-raising calls; a block is read only once it is known to be at least
    // as large as a HandleBlock.
    unsafe {
        if lua_type(l, 1) != LUA_TUSERDATA || lua_getmetatable(l, 1) == 0 {
            return None;
        }
        let ours = lua_rawequal(l, -1, UV_METATABLE) != 0;
        lua_settop(l, -2);
        if !ours || lua_rawlen(l, 1) as usize != std::mem::size_of::<HandleBlock>() {
            return None;
        }
        let block = lua_touserdata(l, 1) as *mut HandleBlock;
        if block.is_null() || block.align_offset(std::mem::align_of::<HandleBlock>()) != 0 {
            return None;
        }
        ((*block).tag == tag_of(block)).then_some(block)
    }
}

/// The connector behind argument 1, if it is one of our live handles.
unsafe fn connector<'a>(l: *mut lua_State) -> Result<&'a mut Connector, &'static str> {
    // SAFETY: handle_block checked the block; its connector pointer was written by
    // t_new_handle and is nulled when the connector is taken out.
    unsafe {
        let Some(block) = handle_block(l) else {
            return Err("centreon_pagerduty: argument 1 is not a connector handle");
        };
        let p = (*block).conn;
        if p.is_null() {
            return Err("centreon_pagerduty: the connector is closed");
        }
        Ok(&mut *p)
    }
}

/// Takes the connector out of the handle at argument 1 (close and `__gc`).
unsafe fn take_connector(l: *mut lua_State) -> Option<Box<Connector>> {
    // SAFETY: as `connector`; the pointer is nulled so the box is freed once.
    unsafe {
        let block = handle_block(l)?;
        let p = std::mem::replace(&mut (*block).conn, ptr::null_mut());
        (!p.is_null()).then(|| Box::from_raw(p))
    }
}

struct NewHandle {
    newud: NewUserdata,
    conn: *mut Connector,
}

unsafe extern "C" fn t_new_handle(l: *mut lua_State) -> c_int {
    // SAFETY: under pcall; arg 1 points at a live NewHandle, arg 2 is the metatable.
    unsafe {
        let ctx = &*(lua_touserdata(l, 1) as *const NewHandle);
        let size = std::mem::size_of::<HandleBlock>();
        let block = match ctx.newud {
            NewUserdata::V53(f) => f(l, size),
            NewUserdata::V54(f) => f(l, size, 0),
        } as *mut HandleBlock;
        block.write(HandleBlock {
            tag: tag_of(block),
            conn: ctx.conn,
        });
        lua_pushvalue(l, 2);
        lua_setmetatable(l, -2);
    }
    1
}

unsafe fn newud_of_upvalues(l: *mut lua_State) -> Option<NewUserdata> {
    // SAFETY: upvalues 2 and 3 were set by t_open from find_newuserdata's result.
    unsafe {
        NewUserdata::from_address(
            lua_tointegerx(l, UV_MINOR, ptr::null_mut()),
            lua_touserdata(l, UV_NEWUD),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Reading arguments (no call here can raise a Lua error)
// ---------------------------------------------------------------------------------------

/// A count of events (`unseen`): absent or not a positive number is 0.
unsafe fn unseen_arg(l: *mut lua_State, idx: c_int) -> u64 {
    // SAFETY: as int_arg; idx is at most 11, within the stack space Lua guarantees a C function.
    unsafe { int_arg(l, idx).map_or(0, |n| n.max(0) as u64) }
}

unsafe fn int_arg(l: *mut lua_State, idx: c_int) -> Option<i64> {
    // SAFETY: lua_tointegerx never raises.
    unsafe {
        let mut ok = 0;
        let v = lua_tointegerx(l, idx, &mut ok);
        if ok != 0 {
            return Some(v);
        }
        if lua_type(l, idx) == LUA_TNUMBER {
            let f = lua_tonumberx(l, idx, &mut ok);
            if ok != 0 && f.is_finite() {
                return Some(f as i64);
            }
        }
        None
    }
}

unsafe fn value_at(l: *mut lua_State, idx: c_int) -> Option<RawValue> {
    // SAFETY: type-checked reads only; nested tables are walked with lua_next.
    unsafe {
        match lua_type(l, idx) {
            LUA_TSTRING => string_at(l, idx).map(RawValue::Str),
            LUA_TNUMBER => {
                if lua_isinteger(l, idx) != 0 {
                    Some(RawValue::Int(lua_tointegerx(l, idx, ptr::null_mut())))
                } else {
                    Some(RawValue::Float(lua_tonumberx(l, idx, ptr::null_mut())))
                }
            }
            LUA_TBOOLEAN => Some(RawValue::Bool(lua_toboolean(l, idx) != 0)),
            LUA_TTABLE => {
                let t = abs_index(l, idx);
                let mut names = Vec::new();
                lua_pushnil(l);
                while lua_next(l, t) != 0 {
                    if let Some(s) = string_at(l, -1).or_else(|| group_name_at(l, -1)) {
                        names.push(s);
                    }
                    lua_settop(l, -2);
                }
                Some(RawValue::List(names))
            }
            _ => None,
        }
    }
}

/// The `group_name` of a `broker_cache` group (a table `{group_id, group_name}`) at `idx`,
/// read raw (no metamethod runs).
unsafe fn group_name_at(l: *mut lua_State, idx: c_int) -> Option<String> {
    // SAFETY: lua_next over a table (raw, never raises on keys it gave); string keys and
    // values read with string_at only.
    unsafe {
        if lua_type(l, idx) != LUA_TTABLE || lua_checkstack(l, 3) == 0 {
            return None;
        }
        let t = abs_index(l, idx);
        let mut name = None;
        lua_pushnil(l);
        while lua_next(l, t) != 0 {
            if name.is_none() && string_at(l, -2).as_deref() == Some("group_name") {
                name = string_at(l, -1);
            }
            lua_settop(l, -2);
        }
        name
    }
}

unsafe fn abs_index(l: *mut lua_State, idx: c_int) -> c_int {
    // SAFETY: plain arithmetic on the stack top.
    if idx > 0 || idx <= LUA_REGISTRYINDEX {
        idx
    } else {
        unsafe { lua_gettop(l) + idx + 1 }
    }
}

/// `(name, value)` pairs of the table at `idx` with string keys.
unsafe fn fields_of(l: *mut lua_State, idx: c_int) -> Vec<(String, RawValue)> {
    // SAFETY: lua_next over a table, keys read only when they are strings.
    unsafe {
        let t = abs_index(l, idx);
        // room for the bridge's details (its FIELDS and the names from Broker's cache) at once
        let mut out = Vec::with_capacity(48);
        if lua_type(l, t) != LUA_TTABLE || lua_checkstack(l, 6) == 0 {
            return out;
        }
        lua_pushnil(l);
        while lua_next(l, t) != 0 {
            if let (Some(k), Some(v)) = (string_at(l, -2), value_at(l, -1)) {
                out.push((k, v));
            }
            lua_settop(l, -2);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Module functions
// ---------------------------------------------------------------------------------------

unsafe extern "C" fn l_new(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua.
    unsafe {
        guarded(l, || {
            if lua_type(l, 1) != LUA_TTABLE {
                return nil_msg(
                    l,
                    "centreon_pagerduty.new: expected the init() parameter table",
                );
            }
            let params: Vec<(String, ParamValue)> = fields_of(l, 1)
                .into_iter()
                .filter_map(|(k, v)| {
                    let p = match v {
                        RawValue::Str(s) => ParamValue::Str(s),
                        RawValue::Int(i) => ParamValue::Int(i),
                        RawValue::Float(f) => ParamValue::Float(f),
                        RawValue::Bool(b) => ParamValue::Bool(b),
                        RawValue::List(_) => return None,
                    };
                    Some((k, p))
                })
                .collect();
            let Some(newud) = newud_of_upvalues(l) else {
                return nil_msg(
                    l,
                    "centreon_pagerduty.new: module not loaded through require",
                );
            };
            let conn = match Connector::from_params(&params) {
                Ok(c) => Box::into_raw(Box::new(c)),
                Err(e) => return nil_msg(l, &e.to_string()),
            };
            let ctx = NewHandle { newud, conn };
            lua_settop(l, 1);
            lua_pushlightuserdata(l, &ctx as *const NewHandle as *mut c_void);
            lua_pushvalue(l, UV_METATABLE);
            if protected(l, t_new_handle, 2, 1) {
                1
            } else {
                drop(Box::from_raw(conn));
                nil_msg(l, "centreon_pagerduty.new: out of memory")
            }
        })
    }
}

unsafe extern "C" fn l_plan(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua.
    unsafe {
        guarded(l, || match connector(l) {
            Ok(c) => {
                let tree = plan::plan(c);
                lua_settop(l, 1);
                lua_pushlightuserdata(l, &tree as *const Tree as *mut c_void);
                if protected(l, t_push_tree, 1, 1) {
                    1
                } else {
                    nil_msg(l, "centreon_pagerduty.plan: out of memory")
                }
            }
            Err(m) => nil_msg(l, m),
        })
    }
}

/// `(category, element)` of the `_type` at `idx`, if it is one.
unsafe fn type_arg(l: *mut lua_State, idx: c_int) -> Option<(u32, u32)> {
    // SAFETY: as int_arg.
    unsafe { int_arg(l, idx) }
        .filter(|t| (0..=0xffff_ffff).contains(t))
        .map(|t| ((t >> 16) as u32, (t & 0xffff) as u32))
}

/// The object of a status: the host id at `idx` (positive), the service id after it (absent: 0).
unsafe fn key_arg(l: *mut lua_State, idx: c_int) -> Option<ObjectKey> {
    // SAFETY: as int_arg.
    unsafe {
        let host_id = int_arg(l, idx).filter(|h| *h > 0)?;
        Some(ObjectKey {
            host_id: host_id as u64,
            service_id: int_arg(l, idx + 1).unwrap_or(0).max(0) as u64,
        })
    }
}

/// Pushes the answer of a fast-path question (or the error of a bad handle).
unsafe fn answer(l: *mut lua_State, q: Result<Quick, &str>) -> c_int {
    // SAFETY: pushing an integer never raises.
    unsafe {
        match q {
            Ok(q) => {
                lua_pushinteger(l, Answer::of(q) as lua_Integer);
                1
            }
            Err(m) => nil_msg(l, m),
        }
    }
}

unsafe extern "C" fn l_state(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua (Broker's hot path: reads numbers, no allocation).
    // Arguments: h, t, host_id, service_id, state, unseen; asked again after `need_times`,
    // the status's check times after them (last_check, last_state_change).
    unsafe {
        guarded(l, || {
            let q = connector(l).map(|c| {
                c.count_answered_by_script(unseen_arg(l, 6));
                match (type_arg(l, 2), key_arg(l, 3)) {
                    (Some((cat, elem)), Some(key)) => {
                        let state = int_arg(l, 5).unwrap_or(-1);
                        let q = if lua_gettop(l) >= 7 && state == 0 {
                            let times = CheckTimes {
                                last_check: int_arg(l, 7),
                                last_state_change: int_arg(l, 8),
                            };
                            c.quick_first_ok(cat, elem, key, times)
                        } else {
                            c.quick_state(cat, elem, key, state)
                        };
                        // the bridge keeps the object by its ids: integers only
                        let keyed = lua_isinteger(l, 3) != 0 && lua_isinteger(l, 4) != 0;
                        match q {
                            Quick::StaysOk(v) if !keyed => Quick::Done(v),
                            q => q,
                        }
                    }
                    // let submit() report what is wrong with the event
                    _ => Quick::NeedDetails,
                }
            });
            answer(l, q)
        })
    }
}

/// The flag at `idx` as Broker gives it: a boolean or a number (0 = false); absent: `None`.
unsafe fn flag_arg(l: *mut lua_State, idx: c_int) -> Option<bool> {
    // SAFETY: non-raising reads.
    unsafe {
        match lua_type(l, idx) {
            LUA_TNUMBER => Some(int_arg(l, idx).unwrap_or(0) != 0),
            LUA_TBOOLEAN => Some(lua_toboolean(l, idx) != 0),
            _ => None,
        }
    }
}

unsafe extern "C" fn l_status(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua (Broker's hot path: reads numbers, no allocation).
    // Arguments: h, t, host_id, service_id, state, state_type, acknowledgement,
    // downtime_depth, flapping, unseen.
    unsafe {
        guarded(l, || {
            let q = connector(l).map(|c| {
                c.count_answered_by_script(unseen_arg(l, 10));
                match (type_arg(l, 2), key_arg(l, 3)) {
                    (Some((cat, elem)), Some(key)) => {
                        // the acknowledgement as its BBDO version carries it: BBDO 2's boolean
                        // acknowledged, BBDO 3's acknowledgement_type
                        let (acknowledged, acknowledgement_type) = match lua_type(l, 7) {
                            LUA_TBOOLEAN => (flag_arg(l, 7), None),
                            _ => (None, int_arg(l, 7)),
                        };
                        let flags = Flags::normalise(
                            acknowledged,
                            acknowledgement_type,
                            int_arg(l, 8),
                            flag_arg(l, 9),
                        );
                        let observed = Observed {
                            state: int_arg(l, 5).unwrap_or(-1),
                            hard: is_hard(int_arg(l, 6)),
                            flags,
                        };
                        c.quick_status(cat, elem, key, observed)
                    }
                    _ => Quick::NeedDetails,
                }
            });
            answer(l, q)
        })
    }
}

unsafe extern "C" fn l_event(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua. Arguments: h, t, unseen.
    unsafe {
        guarded(l, || {
            let q = connector(l).map(|c| {
                c.count_answered_by_script(unseen_arg(l, 3));
                match type_arg(l, 2) {
                    Some((cat, elem)) => c.quick_event(cat, elem),
                    None => Quick::Done(c.verdict()),
                }
            });
            answer(l, q)
        })
    }
}

unsafe extern "C" fn l_submit(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua.
    unsafe {
        guarded(l, || match connector(l) {
            Ok(c) => {
                let raw = RawEvent {
                    fields: fields_of(l, 2),
                };
                match c.submit_details(&raw) {
                    Ok(v) => {
                        lua_pushboolean(l, v as c_int);
                        1
                    }
                    Err(e) => {
                        lua_pushboolean(l, c.verdict() as c_int);
                        if push_str(l, &e.to_string()) { 2 } else { 1 }
                    }
                }
            }
            Err(m) => nil_msg(l, m),
        })
    }
}

unsafe extern "C" fn l_flush(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua.
    unsafe {
        guarded(l, || match connector(l) {
            Ok(c) => {
                c.count_answered_by_script(unseen_arg(l, 2));
                lua_pushboolean(l, c.flush() as c_int);
                1
            }
            Err(m) => nil_msg(l, m),
        })
    }
}

unsafe extern "C" fn l_outstanding(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua.
    unsafe {
        guarded(l, || match connector(l) {
            Ok(c) => {
                lua_pushinteger(l, c.outstanding() as lua_Integer);
                1
            }
            Err(m) => nil_msg(l, m),
        })
    }
}

unsafe extern "C" fn l_log(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua.
    unsafe {
        guarded(l, || match connector(l) {
            Ok(c) => {
                let level = Level::from_number(int_arg(l, 2).unwrap_or(3));
                let msg = string_at(l, 3).unwrap_or_default();
                c.log(level, &msg);
                0
            }
            Err(m) => nil_msg(l, m),
        })
    }
}

unsafe extern "C" fn l_close(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua; joins the connector's threads.
    unsafe {
        guarded(l, || {
            let closed = take_connector(l).is_some();
            lua_pushboolean(l, closed as c_int);
            1
        })
    }
}

unsafe extern "C" fn l_gc(l: *mut lua_State) -> c_int {
    // SAFETY: `__gc` of a handle (also run by lua_close before the library is unloaded).
    unsafe {
        guarded(l, || {
            drop(take_connector(l));
            0
        })
    }
}

unsafe extern "C" fn l_version(l: *mut lua_State) -> c_int {
    // SAFETY: entry point called by Lua.
    unsafe { guarded(l, || if push_str(l, crate::VERSION) { 1 } else { 0 }) }
}
