//! The part of the Lua C API whose ABI is identical in Lua 5.3 and 5.4 (resolved against the host at load).
//!
//! Nothing here links liblua: the symbols come from the process that loads us (Broker's
//! `70-lua.so` is loaded with `RTLD_GLOBAL`). Only functions with the same signature in both
//! versions are declared; the one that differs (`lua_newuserdata` in 5.3,
//! `lua_newuserdatauv` in 5.4) is looked up with `dlsym` after the version check.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

/// Opaque Lua state.
#[repr(C)]
pub struct lua_State {
    _private: [u8; 0],
}

pub type lua_Integer = i64;
pub type lua_Number = f64;
pub type lua_KContext = isize;
pub type lua_CFunction = unsafe extern "C" fn(*mut lua_State) -> c_int;
pub type lua_KFunction = Option<unsafe extern "C" fn(*mut lua_State, c_int, lua_KContext) -> c_int>;

pub const LUA_TBOOLEAN: c_int = 1;
pub const LUA_TNUMBER: c_int = 3;
pub const LUA_TSTRING: c_int = 4;
pub const LUA_TTABLE: c_int = 5;
pub const LUA_TUSERDATA: c_int = 7;

/// `LUAI_MAXSTACK` is 1,000,000 in both versions (32-bit and larger builds).
pub const LUA_REGISTRYINDEX: c_int = -1_000_000 - 1000;

pub const fn lua_upvalueindex(i: c_int) -> c_int {
    LUA_REGISTRYINDEX - i
}

unsafe extern "C" {
    pub fn lua_gettop(l: *mut lua_State) -> c_int;
    pub fn lua_settop(l: *mut lua_State, idx: c_int);
    pub fn lua_pushvalue(l: *mut lua_State, idx: c_int);
    pub fn lua_checkstack(l: *mut lua_State, n: c_int) -> c_int;
    pub fn lua_type(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_isinteger(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_tonumberx(l: *mut lua_State, idx: c_int, isnum: *mut c_int) -> lua_Number;
    pub fn lua_tointegerx(l: *mut lua_State, idx: c_int, isnum: *mut c_int) -> lua_Integer;
    pub fn lua_toboolean(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_tolstring(l: *mut lua_State, idx: c_int, len: *mut usize) -> *const c_char;
    pub fn lua_touserdata(l: *mut lua_State, idx: c_int) -> *mut c_void;
    pub fn lua_rawequal(l: *mut lua_State, a: c_int, b: c_int) -> c_int;
    pub fn lua_pushnil(l: *mut lua_State);
    pub fn lua_rotate(l: *mut lua_State, idx: c_int, n: c_int);
    pub fn lua_pushinteger(l: *mut lua_State, n: lua_Integer);
    pub fn lua_pushnumber(l: *mut lua_State, n: lua_Number);
    pub fn lua_pushlstring(l: *mut lua_State, s: *const c_char, len: usize) -> *const c_char;
    pub fn lua_pushboolean(l: *mut lua_State, b: c_int);
    pub fn lua_pushlightuserdata(l: *mut lua_State, p: *mut c_void);
    pub fn lua_pushcclosure(l: *mut lua_State, f: lua_CFunction, n: c_int);
    pub fn lua_createtable(l: *mut lua_State, narr: c_int, nrec: c_int);
    pub fn lua_setfield(l: *mut lua_State, idx: c_int, k: *const c_char);
    pub fn lua_getfield(l: *mut lua_State, idx: c_int, k: *const c_char) -> c_int;
    pub fn lua_getglobal(l: *mut lua_State, name: *const c_char) -> c_int;
    pub fn lua_next(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_getmetatable(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_setmetatable(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_pcallk(
        l: *mut lua_State,
        nargs: c_int,
        nresults: c_int,
        errfunc: c_int,
        ctx: lua_KContext,
        k: lua_KFunction,
    ) -> c_int;
}

/// `lua_newuserdata` of Lua 5.3.
pub type NewUserdata53 = unsafe extern "C" fn(*mut lua_State, usize) -> *mut c_void;
/// `lua_newuserdatauv` of Lua 5.4.
pub type NewUserdata54 = unsafe extern "C" fn(*mut lua_State, usize, c_int) -> *mut c_void;

/// `lua_newuserdata` (5.3) or `lua_newuserdatauv` (5.4), whichever the host has.
#[derive(Clone, Copy)]
pub enum NewUserdata {
    V53(NewUserdata53),
    V54(NewUserdata54),
}

impl NewUserdata {
    /// Rebuilds the constructor from its address and the Lua minor version (3 or 4).
    ///
    /// # Safety
    /// `p` must be the address [`NewUserdata::address`] gave for the same `minor`.
    pub unsafe fn from_address(minor: i64, p: *mut c_void) -> Option<NewUserdata> {
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` is the address of the function of that signature (caller contract).
        unsafe {
            match minor {
                3 => Some(NewUserdata::V53(std::mem::transmute::<
                    *mut c_void,
                    NewUserdata53,
                >(p))),
                4 => Some(NewUserdata::V54(std::mem::transmute::<
                    *mut c_void,
                    NewUserdata54,
                >(p))),
                _ => None,
            }
        }
    }

    /// The function's address (kept as a light userdata upvalue).
    pub fn address(self) -> *mut c_void {
        match self {
            NewUserdata::V53(f) => f as *mut c_void,
            NewUserdata::V54(f) => f as *mut c_void,
        }
    }
}

unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// glibc's `RTLD_DEFAULT`: search the global scope, where the host's Lua symbols are.
const RTLD_DEFAULT: *mut c_void = std::ptr::null_mut();

/// Looks up the userdata constructor of Lua `minor` (3 or 4) in the process's global scope.
///
/// # Safety
/// The symbol found must be the one of the running Lua (checked by the caller through `_VERSION`).
pub unsafe fn find_newuserdata(minor: u32) -> Option<NewUserdata> {
    let name = match minor {
        3 => c"lua_newuserdata",
        4 => c"lua_newuserdatauv",
        _ => return None,
    };
    // SAFETY: dlsym with a NUL-terminated name; the address has the signature the Lua
    // headers of that version declare.
    unsafe { NewUserdata::from_address(minor as i64, dlsym(RTLD_DEFAULT, name.as_ptr())) }
}
