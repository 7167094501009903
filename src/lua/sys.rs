//! The part of the Lua C API whose ABI is identical in Lua 5.3 and 5.4 (resolved against the host at load).
//!
//! Nothing here links liblua: the functions are looked up with libc's `dlsym(RTLD_DEFAULT, ..)`
//! in the process that loads us (Broker's `70-lua.so` is loaded with `RTLD_GLOBAL`). Only
//! functions with the same signature in both versions are declared; the one that differs
//! (`lua_newuserdata` in 5.3, `lua_newuserdatauv` in 5.4) is looked up after the version check.
//! C types come from std (`c_int`...) and libc (`size_t`); the `lua_*` types are Lua's.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

use libc::{RTLD_DEFAULT, dlsym, size_t};

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

/// Declares the Lua C API functions we call. Each is looked up by name in the process's
/// global scope by [`resolve`] (called by `luaopen_centreon_pagerduty` before anything else),
/// so the library has no undefined `lua_*` symbol: a C program that only uses the `cpd_*`
/// ABI links and loads it without any Lua. The addresses are process-wide facts about the
/// host's Lua, not per-output state.
macro_rules! lua_api {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        #[allow(non_upper_case_globals)]
        mod addr {
            use std::ffi::c_void;
            use std::sync::atomic::AtomicPtr;
            $(pub static $name: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());)*
        }

        /// Looks every function up in the global scope; `Err` names the first one missing.
        pub fn resolve() -> Result<(), &'static str> {
            use std::sync::atomic::Ordering;
            $(
                if addr::$name.load(Ordering::Acquire).is_null() {
                    // SAFETY: dlsym with a NUL-terminated name.
                    let p = unsafe { dlsym(RTLD_DEFAULT, concat!(stringify!($name), "\0").as_ptr().cast()) };
                    if p.is_null() {
                        return Err(stringify!($name));
                    }
                    addr::$name.store(p, Ordering::Release);
                }
            )*
            Ok(())
        }

        $(
            /// The Lua C API function of that name (identical in Lua 5.3 and 5.4).
            ///
            /// # Safety
            /// As the C function; only callable once [`resolve`] succeeded, which holds for
            /// every function reachable from Lua (they exist only after `luaopen_*` resolved).
            #[inline]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                let p = addr::$name.load(std::sync::atomic::Ordering::Relaxed);
                debug_assert!(!p.is_null());
                // SAFETY: `p` is the host's function of this name and signature.
                unsafe {
                    std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($ty),*) $(-> $ret)?>(p)($($arg),*)
                }
            }
        )*
    };
}

lua_api! {
    fn lua_gettop(l: *mut lua_State) -> c_int;
    fn lua_settop(l: *mut lua_State, idx: c_int);
    fn lua_pushvalue(l: *mut lua_State, idx: c_int);
    fn lua_checkstack(l: *mut lua_State, n: c_int) -> c_int;
    fn lua_type(l: *mut lua_State, idx: c_int) -> c_int;
    fn lua_isinteger(l: *mut lua_State, idx: c_int) -> c_int;
    fn lua_tonumberx(l: *mut lua_State, idx: c_int, isnum: *mut c_int) -> lua_Number;
    fn lua_tointegerx(l: *mut lua_State, idx: c_int, isnum: *mut c_int) -> lua_Integer;
    fn lua_toboolean(l: *mut lua_State, idx: c_int) -> c_int;
    fn lua_tolstring(l: *mut lua_State, idx: c_int, len: *mut size_t) -> *const c_char;
    fn lua_touserdata(l: *mut lua_State, idx: c_int) -> *mut c_void;
    // size_t in 5.3, lua_Unsigned (64 bits) in 5.4: the same on the 64-bit targets we load on
    fn lua_rawlen(l: *mut lua_State, idx: c_int) -> u64;
    fn lua_rawequal(l: *mut lua_State, a: c_int, b: c_int) -> c_int;
    fn lua_pushnil(l: *mut lua_State);
    fn lua_rotate(l: *mut lua_State, idx: c_int, n: c_int);
    fn lua_pushinteger(l: *mut lua_State, n: lua_Integer);
    fn lua_pushnumber(l: *mut lua_State, n: lua_Number);
    fn lua_pushlstring(l: *mut lua_State, s: *const c_char, len: size_t) -> *const c_char;
    fn lua_pushboolean(l: *mut lua_State, b: c_int);
    fn lua_pushlightuserdata(l: *mut lua_State, p: *mut c_void);
    fn lua_pushcclosure(l: *mut lua_State, f: lua_CFunction, n: c_int);
    fn lua_createtable(l: *mut lua_State, narr: c_int, nrec: c_int);
    fn lua_setfield(l: *mut lua_State, idx: c_int, k: *const c_char);
    fn lua_rawseti(l: *mut lua_State, idx: c_int, n: lua_Integer);
    fn lua_getfield(l: *mut lua_State, idx: c_int, k: *const c_char) -> c_int;
    fn lua_getglobal(l: *mut lua_State, name: *const c_char) -> c_int;
    fn lua_next(l: *mut lua_State, idx: c_int) -> c_int;
    fn lua_getmetatable(l: *mut lua_State, idx: c_int) -> c_int;
    fn lua_setmetatable(l: *mut lua_State, idx: c_int) -> c_int;
    fn lua_pcallk(
        l: *mut lua_State,
        nargs: c_int,
        nresults: c_int,
        errfunc: c_int,
        ctx: lua_KContext,
        k: lua_KFunction,
    ) -> c_int;
}

/// `lua_newuserdata` of Lua 5.3.
pub type NewUserdata53 = unsafe extern "C" fn(*mut lua_State, size_t) -> *mut c_void;
/// `lua_newuserdatauv` of Lua 5.4.
pub type NewUserdata54 = unsafe extern "C" fn(*mut lua_State, size_t, c_int) -> *mut c_void;

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
