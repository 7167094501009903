/*
 * broker_host.c - a test host that emulates Centreon Broker's Lua output ("cbd").
 *
 * It runs a *scenario* (a Lua script, in its own "control" lua_State) that drives
 * one or more emulated Lua outputs ("Generic - Stream connector"). Each output gets
 * its own lua_State, loaded exactly as Broker's lua module does it, and receives
 * events with Broker's acknowledgement, filtering, flush, back-pressure, reload and
 * stop semantics. Every rule implemented here comes from
 *     /work/shared/reference/broker-lua-contract.md
 * (section numbers below refer to it). In short:
 *   - loading (s.1): luaL_newstate + luaL_openlibs, package.path += <dir>/?.lua,
 *     package.cpath += <dir>/lib/?.so, run the chunk (an error there is reported
 *     only as "could not be compiled"), THEN set broker_log / broker, read
 *     broker_api_version, call init(conf), THEN set broker_cache, probe filter(1, 2);
 *   - acknowledgement (s.2): every event handed to the script is counted; `true`
 *     from write() or flush() acknowledges everything counted so far;
 *   - back-pressure (s.2): with event_queue_max_size unacknowledged events, write()
 *     is no longer called, only flush() every flush_interval;
 *   - lifecycle (s.3): reload/stop = flush() once + lua_close(); unacknowledged
 *     events are replayed into the next instance (at-least-once);
 *   - broker_log / broker / broker_cache (s.4) and event shapes (s.5, api 1: plain
 *     tables, api 2: read-only userdata whose fields, like Broker's cache, live outside the
 *     script's Lua heap until their __gc runs; Broker's full collections).
 *
 * The program links liblua dynamically (like cbd's 70-lua.so), so lua_* symbols
 * are in the global scope and a Lua C module loaded with require() resolves them
 * against this host. Single-threaded.
 *
 * Usage: broker_host <scenario.lua> [args...]
 * The scenario sees a global `host` table (see host_funcs / output_methods below)
 * and `arg`. Exit status 0 if it returns normally, 1 (message + traceback on
 * stderr) if it raises.
 */

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#if LUA_VERSION_NUM < 503
#error "Lua 5.3 or 5.4 required"
#endif

#define OUTPUT_MT "broker_host.output"
#define EVENT_MT "broker_event"
#define MAX_LIST 100000 /* cap on recorded logs / errors per output */
#define MAX_DEPTH 32    /* max table nesting copied between states */

/* ------------------------------------------------------------------------ */
/* small utilities                                                          */
/* ------------------------------------------------------------------------ */

typedef struct {
  char **v;
  size_t n, cap;
  size_t dropped;
} strlist;

static void strlist_add(strlist *l, const char *s) {
  if (l->n >= MAX_LIST) {
    l->dropped++;
    return;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **v = realloc(l->v, cap * sizeof(char *));
    if (!v) return;
    l->v = v;
    l->cap = cap;
  }
  char *c = strdup(s);
  if (c) l->v[l->n++] = c;
}

static void strlist_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = l->dropped = 0;
}

static void strlist_push(lua_State *L, const strlist *l) {
  lua_createtable(L, (int)l->n, 0);
  for (size_t i = 0; i < l->n; i++) {
    lua_pushstring(L, l->v[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* growable byte buffer (used by json_encode: no Lua error may happen while it
 * owns malloc'ed memory). */
typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t len) {
  if (b->oom) return;
  if (b->n + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + len + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, len);
  b->n += len;
  b->p[b->n] = 0;
}

static void sb_adds(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
  if (!(s > 0)) return;
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/* message of an error object at idx (never NULL) */
static const char *errmsg(lua_State *L, int idx) {
  const char *m = lua_tostring(L, idx);
  return m ? m : "(error object is not a string)";
}

/*
 * Push onto `to` a deep copy of the value at `idx` in `from` (which may be the
 * same state). nil, booleans, integers, floats, strings and tables are copied;
 * anything else (functions, userdata, ...) becomes nil. Integers stay integers.
 */
static void copy_value(lua_State *from, int idx, lua_State *to, int depth) {
  idx = lua_absindex(from, idx);
  luaL_checkstack(to, 4, "copy_value");
  switch (lua_type(from, idx)) {
  case LUA_TBOOLEAN:
    lua_pushboolean(to, lua_toboolean(from, idx));
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(from, idx))
      lua_pushinteger(to, lua_tointeger(from, idx));
    else
      lua_pushnumber(to, lua_tonumber(from, idx));
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(from, idx, &len);
    lua_pushlstring(to, s, len);
    break;
  }
  case LUA_TTABLE: {
    if (depth > MAX_DEPTH) {
      lua_pushnil(to);
      break;
    }
    lua_newtable(to);
    int dst = lua_gettop(to);
    luaL_checkstack(from, 4, "copy_value");
    lua_pushnil(from);
    while (lua_next(from, idx)) {
      int vidx = lua_gettop(from), kidx = vidx - 1;
      copy_value(from, kidx, to, depth + 1);
      copy_value(from, vidx, to, depth + 1);
      if (lua_isnil(to, -2) || lua_isnil(to, -1))
        lua_pop(to, 2);
      else
        lua_rawset(to, dst);
      lua_pop(from, 1);
    }
    break;
  }
  default:
    lua_pushnil(to);
    break;
  }
}

/* ------------------------------------------------------------------------ */
/* the emulated output                                                      */
/* ------------------------------------------------------------------------ */

typedef enum { ST_STOPPED, ST_RUNNING, ST_FAILED, ST_INIT_FAILED } ostate;

typedef struct output {
  lua_State *L; /* the output's own state; NULL when closed */
  char *script, *script_dir, *name, *bbdo;
  lua_Integer queue_max;
  double flush_interval, stall_timeout;
  int params_ref;    /* control registry: conf table given to init() */
  int cache_ref;     /* control registry: cache data (or LUA_NOREF) */
  int unacked_ref;   /* control registry: list of counted, unacked events */
  ostate state;
  int api_version;
  int filter_enabled;
  int has_flush; /* flush() existed when the script was loaded (Broker decides it once) */
  lua_Integer unacked, acked, written, filtered, flushes;
  lua_Integer max_unacked; /* the most events ever retained at once */
  /* Broker's broker_event::_gc_info for this state (see create_event): api 2 event objects not
     yet finalized (Broker's _broker_event_cpt), the most at once, the time of its last full
     collection and how many it made */
  lua_Integer live_events, peak_live_events, full_collects;
  time_t last_full_collect;
  char *last_error;
  strlist errors, logs;
  int log_level;
  char *log_path;
} output;

/* the scenario's state, where Broker's C++ side lives: the events handed to the scripts and
   Broker's cache (single-threaded host) */
static lua_State *control;

static void set_error(output *o, const char *msg) {
  free(o->last_error);
  o->last_error = strdup(msg);
  strlist_add(&o->errors, msg);
}

static output *get_output(lua_State *C, int idx) {
  return (output *)luaL_checkudata(C, idx, OUTPUT_MT);
}

/* acknowledge everything counted so far (write/flush returned true) */
static void ack_all(lua_State *C, output *o) {
  o->acked += o->unacked;
  o->unacked = 0;
  if (C) {
    luaL_unref(C, LUA_REGISTRYINDEX, o->unacked_ref);
    lua_newtable(C);
    o->unacked_ref = luaL_ref(C, LUA_REGISTRYINDEX);
  }
}

/* ---- broker_log (s.4) --------------------------------------------------- */
/* A userdata whose metatable "lua_broker_log" is its own __index, as Broker's broker_log_reg
 * (broker_log.cc): every method checks its self with luaL_checkudata, so broker_log.info(0, m)
 * (a dot call) raises. */

#define LOG_MT "lua_broker_log"
#define CACHE_MT "lua_broker_cache"

static output *log_self(lua_State *L) { return *(output **)luaL_checkudata(L, 1, LOG_MT); }

/* Broker: level = lua_tointeger (a non-number is 0), a level outside 0..3 raises. The path is
 * lua_tostring: nil is undefined behaviour in Broker (a std::string from NULL), so the
 * emulator raises instead. */
static int bl_set_parameters(lua_State *L) {
  output *o = log_self(L);
  lua_Integer level = lua_tointeger(L, 2);
  const char *path = luaL_checkstring(L, 3);
  if (level < 0 || level > 3)
    return luaL_error(L, "set_parameters expects the first argument to be 0, 1, 2 or 3.");
  o->log_level = (int)level;
  free(o->log_path);
  o->log_path = strdup(path);
  return 0;
}

/* Broker's _log_func: info, warning and error alike are written only when
 * level <= the configured level (lua_tointeger: a non-number is 0); a nil text is "(null)". */
static int bl_write(lua_State *L, const char *kind) {
  output *o = log_self(L);
  lua_Integer level = lua_tointeger(L, 2);
  const char *msg = lua_tostring(L, 3);
  if (!msg) msg = "(null)";
  if (level > o->log_level) return 0;
  lua_pushfstring(L, "%s: %s", kind, msg);
  const char *line = lua_tostring(L, -1);
  strlist_add(&o->logs, line);
  if (o->log_path && *o->log_path) {
    /* Broker opens and closes the file on every call */
    FILE *f = fopen(o->log_path, "a");
    if (f) {
      time_t t = time(NULL);
      char ts[64];
      struct tm tmv;
      localtime_r(&t, &tmv);
      strftime(ts, sizeof ts, "%a %b %e %H:%M:%S %Y", &tmv);
      fprintf(f, "%s: %s\n", ts, line);
      fclose(f);
    }
  }
  lua_pop(L, 1);
  return 0;
}

static int bl_info(lua_State *L) { return bl_write(L, "INFO"); }
static int bl_warning(lua_State *L) { return bl_write(L, "WARNING"); }
static int bl_error(lua_State *L) { return bl_write(L, "ERROR"); }

/* ---- broker table (s.4) -------------------------------------------------- */

static int b_bbdo_version(lua_State *L) {
  output *o = (output *)lua_touserdata(L, lua_upvalueindex(1));
  lua_pushstring(L, o->bbdo);
  return 1;
}

static int b_url_encode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      luaL_addchar(&b, (char)c);
    } else {
      luaL_addchar(&b, '%');
      luaL_addchar(&b, hex[c >> 4]);
      luaL_addchar(&b, hex[c & 15]);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

static void json_string(sbuf *b, const char *s, size_t len) {
  sb_add(b, "\"", 1);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char tmp[8];
    switch (c) {
    case '"': sb_add(b, "\\\"", 2); break;
    case '\\': sb_add(b, "\\\\", 2); break;
    case '\n': sb_add(b, "\\n", 2); break;
    case '\r': sb_add(b, "\\r", 2); break;
    case '\t': sb_add(b, "\\t", 2); break;
    case '\b': sb_add(b, "\\b", 2); break;
    case '\f': sb_add(b, "\\f", 2); break;
    default:
      if (c < 0x20) {
        snprintf(tmp, sizeof tmp, "\\u%04x", c);
        sb_adds(b, tmp);
      } else {
        sb_add(b, (const char *)&s[i], 1);
      }
    }
  }
  sb_add(b, "\"", 1);
}

/* never raises a Lua error (the buffer owns malloc'ed memory) */
static void json_value(lua_State *L, int idx, sbuf *b, int depth) {
  char tmp[64];
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, 4)) {
    sb_adds(b, "null");
    return;
  }
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    sb_adds(b, lua_toboolean(L, idx) ? "true" : "false");
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, idx));
    else
      snprintf(tmp, sizeof tmp, "%.14g", (double)lua_tonumber(L, idx)); /* nan possible, like Broker */
    sb_adds(b, tmp);
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    json_string(b, s, len);
    break;
  }
  case LUA_TTABLE: {
    if (depth > MAX_DEPTH) {
      sb_adds(b, "null");
      break;
    }
    size_t n = (size_t)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      count++;
      lua_pop(L, 1);
    }
    if (count == 0 || count == n) { /* empty table -> [] (as Broker) */
      sb_add(b, "[", 1);
      for (size_t i = 1; i <= n; i++) {
        if (i > 1) sb_add(b, ",", 1);
        lua_rawgeti(L, idx, (lua_Integer)i);
        json_value(L, -1, b, depth + 1);
        lua_pop(L, 1);
      }
      sb_add(b, "]", 1);
    } else {
      int first = 1;
      sb_add(b, "{", 1);
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING || kt == LUA_TNUMBER) {
          if (!first) sb_add(b, ",", 1);
          first = 0;
          lua_pushvalue(L, -2); /* tolstring on a copy: keeps lua_next happy */
          size_t len;
          const char *k = lua_tolstring(L, -1, &len);
          json_string(b, k, len);
          lua_pop(L, 1);
          sb_add(b, ":", 1);
          json_value(L, -1, b, depth + 1);
        }
        lua_pop(L, 1);
      }
      sb_add(b, "}", 1);
    }
    break;
  }
  default:
    sb_adds(b, "null");
  }
}

static int b_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  sbuf b = {0};
  json_value(L, 1, &b, 0);
  if (b.oom) {
    free(b.p);
    return luaL_error(L, "json_encode: out of memory");
  }
  lua_pushlstring(L, b.p ? b.p : "", b.n);
  free(b.p);
  return 1;
}

static int b_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)st.st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)st.st_gid);
  lua_setfield(L, -2, "gid");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st.st_mtime);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, (lua_Integer)st.st_ctime);
  lua_setfield(L, -2, "ctime");
  return 1;
}

/* ---- cost model (tests/host/README.md "Cost model"; benchmarks only) ------- */
/* What the real Broker's calls cost its Lua output thread on top of this emulator's own work,
 * in ns, measured in a real cbd 23.10.16 (Release -O2, Lua 5.3, BBDO 2 statuses) with the
 * scripts of bench/real-broker/ run there and here (issue 34, bench/HISTORY.md section 15).
 * Off (all 0) unless the environment sets BROKER_HOST_COST: "cbd-23.10" for the figures
 * below, or "read=N,cache=N,miss=N,filter=N" (any subset, ns). Each cost is spent
 * busy-waiting on Broker's thread (wall clock), where Broker spends it:
 *   read    each read of a field of an event or of a cache object (broker_event's __index:
 *           BBDO 2 walks the type's mapping with strcmp, BBDO 3 goes through protobuf
 *           reflection),
 *   cache   each broker_cache call,
 *   miss    each nil answer of broker_cache on top (Broker throws a C++ exception with a
 *           formatted message and catches it: an unknown object, a severity not set),
 *   filter  each filter() call.
 * Handing an event over is not modelled: the baseline script pays it too, and the benchmarks
 * report what a script adds over its baseline. The tests run without the model: their
 * verdicts never depend on time. */
typedef struct {
  long read, cache, miss, filter;
} cost_model;
static const cost_model CBD_23_10 = {.read = 100, .cache = 0, .miss = 1430, .filter = 300};
static cost_model cost;

static void spend(long ns) {
  if (ns <= 0) return;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  long long end = (long long)t.tv_sec * 1000000000LL + t.tv_nsec + ns;
  do {
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((long long)t.tv_sec * 1000000000LL + t.tv_nsec < end);
}

/* BROKER_HOST_COST: 0 when unset or valid, -1 (message on stderr) when malformed */
static int cost_from_env(void) {
  const char *v = getenv("BROKER_HOST_COST");
  if (!v || !*v) return 0;
  if (strcmp(v, "cbd-23.10") == 0) {
    cost = CBD_23_10;
    return 0;
  }
  char buf[256];
  snprintf(buf, sizeof buf, "%s", v);
  for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    char name[16], end;
    long ns;
    if (sscanf(item, "%15[a-z]=%ld%c", name, &ns, &end) != 2 || ns < 0) goto bad;
    if (strcmp(name, "read") == 0) cost.read = ns;
    else if (strcmp(name, "cache") == 0) cost.cache = ns;
    else if (strcmp(name, "miss") == 0) cost.miss = ns;
    else if (strcmp(name, "filter") == 0) cost.filter = ns;
    else goto bad;
  }
  return 0;
bad:
  fprintf(stderr, "BROKER_HOST_COST: \"%s\": expected cbd-23.10 or read=NS,cache=NS,miss=NS,filter=NS\n", v);
  return -1;
}

/* ---- broker_cache (s.4) -------------------------------------------------- */
/* Data: opts.cache, in the control state's registry (o->cache_ref), as Broker keeps its cache
 * in C++, outside the script's Lua heap:
 *   { hosts = { [id] = {...} }, services = { ["h:s"] = {...} }, instances = { [id] = "name" } } */

/* push onto L a copy of cache[section][key] if it is a table/string (integer key, then string
   key): a lookup puts into the script's heap only what it found, as Broker builds each answer */
static int cache_lookup(lua_State *L, output *o, const char *section, lua_Integer ikey, const char *skey) {
  if (o->cache_ref == LUA_NOREF || o->cache_ref == LUA_REFNIL) return 0;
  lua_State *C = control;
  luaL_checkstack(C, 4, "broker_cache");
  int top = lua_gettop(C), found = 0;
  lua_rawgeti(C, LUA_REGISTRYINDEX, o->cache_ref);
  if (lua_getfield(C, -1, section) == LUA_TTABLE) {
    int t;
    if (skey) {
      t = lua_getfield(C, -1, skey);
    } else {
      t = lua_rawgeti(C, -1, ikey);
      if (t == LUA_TNIL) {
        lua_pop(C, 1);
        lua_pushfstring(C, "%I", (LUAI_UACINT)ikey);
        t = lua_rawget(C, -2);
      }
    }
    if (t == LUA_TTABLE || t == LUA_TSTRING) {
      copy_value(C, -1, L, 0);
      found = 1;
    }
  }
  lua_settop(C, top);
  return found;
}

static int cache_host(lua_State *L, output *o, lua_Integer hid) {
  if (!cache_lookup(L, o, "hosts", hid, NULL)) return 0;
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

static int cache_service(lua_State *L, output *o, lua_Integer hid, lua_Integer sid) {
  char key[64];
  snprintf(key, sizeof key, "%lld:%lld", (long long)hid, (long long)sid);
  if (!cache_lookup(L, o, "services", 0, key)) return 0;
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* Broker's get_severity, get_notes_url, get_action_url, get_notes, get_check_command: arg 2 =
 * host_id; a service_id is read only when there are 3 or more arguments (lua_gettop), with
 * luaL_checkinteger, so an explicit nil there raises; 0 is the host. */
static int cache_object(lua_State *L, output *o) {
  lua_Integer hid = luaL_checkinteger(L, 2);
  lua_Integer sid = lua_gettop(L) >= 3 ? luaL_checkinteger(L, 3) : 0;
  return sid ? cache_service(L, o, hid, sid) : cache_host(L, o, hid);
}

/* broker_cache's nil answer (Broker: an exception thrown and caught, cost model "miss") */
static int cache_nil(lua_State *L) {
  spend(cost.miss);
  lua_pushnil(L);
  return 1;
}

static int push_field(lua_State *L, int has, const char *field) {
  if (!has) return cache_nil(L);
  lua_getfield(L, -1, field);
  lua_remove(L, -2);
  return 1;
}

/* A string field of a known object: Broker returns the object's std::string, "" when it was
 * never set (macro_cache::get_notes_url & co.); nil only when the object is unknown. */
static int push_string_field(lua_State *L, int has, const char *field) {
  push_field(L, has, field);
  if (has && lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
  }
  return 1;
}

static output *cache_self(lua_State *L) {
  spend(cost.cache);
  return *(output **)luaL_checkudata(L, 1, CACHE_MT);
}

static int bc_get_hostname(lua_State *L) {
  output *o = cache_self(L);
  return push_string_field(L, cache_host(L, o, luaL_checkinteger(L, 2)), "name");
}

static int bc_get_service_description(lua_State *L) {
  output *o = cache_self(L);
  lua_Integer h = luaL_checkinteger(L, 2), s = luaL_checkinteger(L, 3);
  return push_string_field(L, cache_service(L, o, h, s), "description");
}

static int bc_get_instance_name(lua_State *L) {
  output *o = cache_self(L);
  if (!cache_lookup(L, o, "instances", luaL_checkinteger(L, 2), NULL)) return cache_nil(L);
  if (lua_istable(L, -1)) return push_string_field(L, 1, "name");
  return 1;
}

/* A fresh array of fresh { group_id, group_name } tables (the script may modify them), built
 * as Broker's l_broker_cache_get_hostgroups / _get_servicegroups build it: lua_newtable, then
 * per group lua_createtable(L, 0, 2) and the two fields. Broker reads the group members, not
 * the host: an unknown object gives an empty table, never nil. A group entry that is not a
 * table is skipped; a field of another type is copied as it is. */
static int push_groups(lua_State *L, int has) {
  if (!has) {
    lua_newtable(L);
    return 1;
  }
  int obj = lua_gettop(L);
  lua_newtable(L);
  int dst = obj + 1;
  if (lua_getfield(L, obj, "groups") == LUA_TTABLE) {
    int src = dst + 1;
    lua_Integer n = (lua_Integer)lua_rawlen(L, src), out = 0;
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, src, i) == LUA_TTABLE) {
        lua_createtable(L, 0, 2);
        lua_getfield(L, -2, "group_id");
        lua_setfield(L, -2, "group_id");
        lua_getfield(L, -2, "group_name");
        lua_setfield(L, -2, "group_name");
        lua_rawseti(L, dst, ++out);
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_remove(L, obj);
  return 1;
}

static int bc_get_hostgroups(lua_State *L) {
  output *o = cache_self(L);
  return push_groups(L, cache_host(L, o, luaL_checkinteger(L, 2)));
}

static int bc_get_servicegroups(lua_State *L) {
  output *o = cache_self(L);
  lua_Integer h = luaL_checkinteger(L, 2), s = luaL_checkinteger(L, 3);
  return push_groups(L, cache_service(L, o, h, s));
}

/* The CRITICALITY_LEVEL custom variable (macro_cache::get_severity): an integer; nil when the
 * object has none (Broker keeps only non-zero levels: a severity of 0 is nil too). */
static int bc_get_severity(lua_State *L) {
  output *o = cache_self(L);
  int has = cache_object(L, o);
  if (!has) return cache_nil(L);
  lua_getfield(L, -1, "severity");
  lua_remove(L, -2);
  if (lua_isnumber(L, -1) && (lua_Integer)lua_tonumber(L, -1) != 0) {
    lua_Integer v = (lua_Integer)lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_pushinteger(L, v);
  } else {
    lua_pop(L, 1);
    cache_nil(L);
  }
  return 1;
}

static int bc_field(lua_State *L, const char *field) {
  output *o = cache_self(L);
  return push_string_field(L, cache_object(L, o), field);
}
static int bc_get_notes_url(lua_State *L) { return bc_field(L, "notes_url"); }
static int bc_get_action_url(lua_State *L) { return bc_field(L, "action_url"); }
static int bc_get_notes(lua_State *L) { return bc_field(L, "notes"); }
static int bc_get_check_command(lua_State *L) { return bc_field(L, "check_command"); }

/* The string fields Broker's host and service objects always have ("" when unset): BBDO 2's
 * neb::host / neb::service mappings and BBDO 3's Host / Service messages (neb.proto). */
static const char *const HOST_STRINGS[] = {
    "name", "alias", "address", "display_name", "notes", "notes_url", "action_url",
    "check_command", "check_period", "notification_period", "event_handler", "icon_image",
    "icon_image_alt", "statusmap_image", "timezone", "output", "perfdata", NULL};
static const char *const SERVICE_STRINGS[] = {
    "description", "display_name", "notes", "notes_url", "action_url", "check_command",
    "check_period", "notification_period", "event_handler", "icon_image", "icon_image_alt",
    "output", "perfdata", NULL};

static void wrap_userdata(lua_State *L, output *o);

/* The full object, as Broker's get_host / get_service build it from the cached neb::host /
 * pb_host (neb::service / pb_service): `_type`, `category`, `element` of that event type, the
 * ids, every string field ("" when unset), the scenario's other scalar fields; not `groups`
 * nor `severity` (Broker keeps those apart: group members, custom variables). BBDO 2 gives
 * nil for a zero instance_id (invalid_on_zero), BBDO 3 gives 0. API 1: a fresh table
 * (create_as_table); API 2: a read-only broker_event userdata (broker_event::create). */
static int push_object(lua_State *L, output *o, int has, lua_Integer hid, lua_Integer sid) {
  if (!has) return cache_nil(L);
  int v3 = o->bbdo[0] != '2';
  int obj = lua_gettop(L);
  lua_newtable(L);
  int dst = obj + 1;
  lua_pushnil(L);
  while (lua_next(L, obj)) {
    if (lua_type(L, -2) == LUA_TSTRING && !lua_istable(L, -1) &&
        strcmp(lua_tostring(L, -2), "severity") != 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, dst);
    } else {
      lua_pop(L, 1);
    }
  }
  for (const char *const *f = sid ? SERVICE_STRINGS : HOST_STRINGS; *f; f++) {
    if (lua_getfield(L, dst, *f) == LUA_TNIL) {
      lua_pushliteral(L, "");
      lua_setfield(L, dst, *f);
    }
    lua_pop(L, 1);
  }
  if (sid && v3 && lua_getfield(L, dst, "long_output") == LUA_TNIL) {
    lua_pushliteral(L, "");
    lua_setfield(L, dst, "long_output");
  }
  if (sid && v3) lua_pop(L, 1);
  if (!sid) {
    int t = lua_getfield(L, dst, "instance_id");
    if (v3 && t == LUA_TNIL) {
      lua_pushinteger(L, 0);
      lua_setfield(L, dst, "instance_id");
    } else if (!v3 && lua_isnumber(L, -1) && lua_tointeger(L, -1) == 0) {
      lua_pushnil(L);
      lua_setfield(L, dst, "instance_id");
    }
    lua_pop(L, 1);
  }
  lua_Integer element = sid ? (v3 ? 27 : 23) : (v3 ? 30 : 12);
  lua_pushinteger(L, (1 << 16) | element);
  lua_setfield(L, dst, "_type");
  lua_pushinteger(L, 1);
  lua_setfield(L, dst, "category");
  lua_pushinteger(L, element);
  lua_setfield(L, dst, "element");
  lua_pushinteger(L, hid);
  lua_setfield(L, dst, "host_id");
  if (sid) {
    lua_pushinteger(L, sid);
    lua_setfield(L, dst, "service_id");
  }
  lua_remove(L, obj);
  if (o->api_version == 2) wrap_userdata(L, o);
  return 1;
}

static int bc_get_host(lua_State *L) {
  output *o = cache_self(L);
  lua_Integer h = luaL_checkinteger(L, 2);
  return push_object(L, o, cache_host(L, o, h), h, 0);
}

static int bc_get_service(lua_State *L) {
  output *o = cache_self(L);
  lua_Integer h = luaL_checkinteger(L, 2), s = luaL_checkinteger(L, 3);
  return push_object(L, o, cache_service(L, o, h, s), h, s);
}

/* ---- events given to write() (s.5) --------------------------------------- */

/* api 2: read-only userdata, as Broker's broker_event::create makes them: Broker's holds a
   std::shared_ptr<io::data> (16 bytes) and the event itself lives in C++ memory, which Lua's
   collector neither sees nor paces itself by; only the finalizer (__gc) releases it. Here an
   event handed to write() lives likewise outside the output's state: its fields stay in the
   control state's table (`ref` in its registry) and every read copies one field across, as
   Broker pushes a fresh value per read. A broker_cache object keeps its field table as the
   uservalue (ref LUA_NOREF). Every read of an event handed to write() is counted
   (host.field_reads(): what a script costs Broker in calls, for the tests). */
typedef struct {
  output *o;             /* whose live_events count it is in */
  int ref;               /* control registry: the event's field table, or LUA_NOREF */
  unsigned char counted; /* an event handed to write() (1) or a broker_cache object (0) */
} event_ud;

static lua_Integer field_reads;

/* Broker's broker_event::create: the object, then Broker's own collection rule. Since Lua sees
   only 16 bytes per event, Broker counts the objects not yet finalized and forces a full
   collection once more than event_queue_max_size are alive and the last one is 10 s old, or
   every 60 s (broker/lua/src/broker_event.cc, 23.10); a new state starts with no collection
   made, so its first event makes one. Leaves the object on top of L. */
static void create_event(lua_State *L, output *o, unsigned char counted, int ref) {
  event_ud *u = (event_ud *)lua_newuserdata(L, sizeof *u); /* 5.4: one user value, as Broker */
  u->o = o;
  u->ref = ref;
  u->counted = counted;
  luaL_setmetatable(L, EVENT_MT);
  if (++o->live_events > o->peak_live_events) o->peak_live_events = o->live_events;
  time_t now = time(NULL);
  if ((o->live_events > o->queue_max && o->last_full_collect + 10 < now) ||
      o->last_full_collect + 60 < now) {
    o->last_full_collect = now;
    o->full_collects++;
    lua_gc(L, LUA_GCCOLLECT, 0);
  }
}

/* Broker's l_broker_event_destructor: releases the event, one fewer alive */
static int ev_gc(lua_State *L) {
  event_ud *u = (event_ud *)lua_touserdata(L, 1); /* a finalizer must not raise */
  if (!u) return 0;
  if (u->ref != LUA_NOREF) luaL_unref(control, LUA_REGISTRYINDEX, u->ref);
  u->ref = LUA_NOREF;
  if (u->o && u->o->live_events > 0) u->o->live_events--;
  u->o = NULL;
  return 0;
}

static int ev_index(lua_State *L) {
  event_ud *u = (event_ud *)lua_touserdata(L, 1);
  if (u->counted) field_reads++;
  spend(cost.read); /* a cache object's fields are read through the same __index in Broker */
  int strict;
  if (u->ref == LUA_NOREF) {
    lua_getuservalue(L, 1);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_getfield(L, -2, "__strict");
    strict = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else {
    lua_State *C = control;
    lua_rawgeti(C, LUA_REGISTRYINDEX, u->ref);
    copy_value(L, 2, C, 0);
    if (lua_rawget(C, -2) != LUA_TNIL) {
      copy_value(C, -1, L, 0);
      lua_pop(C, 2);
      return 1;
    }
    lua_getfield(C, -2, "__strict");
    strict = lua_toboolean(C, -1);
    lua_pop(C, 3);
    lua_pushnil(L);
  }
  /* an event built with __strict = true raises on a field it lacks (tests: a Broker whose
     reads of unknown fields fail) */
  if (strict) return luaL_error(L, "broker_event: no field '%s'", lua_tostring(L, 2));
  return 1;
}

/* Broker's metatable (broker_event_reg): __gc, __index, __next, __pairs; no __newindex (an
 * assignment raises Lua's own "attempt to index a userdata value") and no __tostring
 * (tostring() names it by __name: "broker_event: 0x..."). pairs() walks the fields. */
static int ev_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

static int ev_pairs(lua_State *L) {
  event_ud *u = (event_ud *)luaL_checkudata(L, 1, EVENT_MT);
  lua_pushcfunction(L, ev_next);
  if (u->ref == LUA_NOREF) {
    lua_getuservalue(L, 1);
  } else {
    lua_rawgeti(control, LUA_REGISTRYINDEX, u->ref);
    copy_value(control, -1, L, 0);
    lua_pop(control, 1);
  }
  lua_pushnil(L);
  return 3;
}

static void register_event_mt(lua_State *L) {
  static const luaL_Reg mt[] = {
      {"__gc", ev_gc}, {"__index", ev_index}, {"__pairs", ev_pairs}, {NULL, NULL}};
  luaL_newmetatable(L, EVENT_MT); /* also sets __name = "broker_event" */
  luaL_setfuncs(L, mt, 0);
  lua_pop(L, 1);
}

/* replace the table at the top of L (a broker_cache object) by a read-only broker_event
   userdata holding it */
static void wrap_userdata(lua_State *L, output *o) {
  create_event(L, o, 0, LUA_NOREF);
  lua_insert(L, -2);
#if LUA_VERSION_NUM >= 504
  lua_setiuservalue(L, -2, 1);
#else
  lua_setuservalue(L, -2);
#endif
}

/* push onto the output state the event at evidx of the control state (api 1: a copy, a plain
   table; api 2: a broker_event whose fields stay in the control state) */
static void push_event(lua_State *C, output *o, int evidx) {
  if (o->api_version != 2) {
    copy_value(C, evidx, o->L, 0);
    return;
  }
  lua_pushvalue(C, evidx);
  create_event(o->L, o, 1, luaL_ref(C, LUA_REGISTRYINDEX));
}

/* ---- loading (s.1) -------------------------------------------------------- */

static void append_path(lua_State *L, const char *field, const char *dir, const char *pat) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, field);
  const char *cur = lua_tostring(L, -1);
  lua_pushfstring(L, "%s;%s/%s", cur ? cur : "", dir, pat);
  lua_setfield(L, -3, field);
  lua_pop(L, 2);
}

/* a userdata holding o whose metatable `mt` (methods `f`) is its own __index, as Broker
   registers broker_log and broker_cache */
static void push_self_object(lua_State *L, output *o, const char *mt, const luaL_Reg *f) {
  output **u = (output **)lua_newuserdata(L, sizeof(output *));
  *u = o;
  luaL_newmetatable(L, mt);
  luaL_setfuncs(L, f, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
}

/* Broker's _load_script, after the api version: broker_log (userdata), the broker_event
   metatable as a global, broker (a plain table of functions) */
static void set_globals(output *o) {
  lua_State *L = o->L;
  static const luaL_Reg log_f[] = {{"set_parameters", bl_set_parameters},
                                   {"info", bl_info},
                                   {"warning", bl_warning},
                                   {"error", bl_error},
                                   {NULL, NULL}};
  static const luaL_Reg broker_f[] = {{"bbdo_version", b_bbdo_version},
                                      {"url_encode", b_url_encode},
                                      {"json_encode", b_json_encode},
                                      {"stat", b_stat},
                                      {NULL, NULL}};
  push_self_object(L, o, LOG_MT, log_f);
  lua_setglobal(L, "broker_log");
  luaL_getmetatable(L, EVENT_MT);
  lua_setglobal(L, "broker_event");
  lua_newtable(L);
  lua_pushlightuserdata(L, o);
  luaL_setfuncs(L, broker_f, 1);
  lua_setglobal(L, "broker");
}

/* copy the control-side cache data into the output state's registry */
static void set_cache_global(output *o) {
  lua_State *L = o->L;
  static const luaL_Reg cache_f[] = {{"get_hostname", bc_get_hostname},
                                     {"get_service_description", bc_get_service_description},
                                     {"get_hostgroups", bc_get_hostgroups},
                                     {"get_servicegroups", bc_get_servicegroups},
                                     {"get_instance_name", bc_get_instance_name},
                                     {"get_severity", bc_get_severity},
                                     {"get_notes_url", bc_get_notes_url},
                                     {"get_action_url", bc_get_action_url},
                                     {"get_notes", bc_get_notes},
                                     {"get_check_command", bc_get_check_command},
                                     {"get_host", bc_get_host},
                                     {"get_service", bc_get_service},
                                     {NULL, NULL}};
  push_self_object(L, o, CACHE_MT, cache_f);
  lua_setglobal(L, "broker_cache");
}

/* lua_close the output state (no flush) */
static void close_state(output *o) {
  if (o->L) {
    lua_State *L = o->L;
    o->L = NULL;
    lua_close(L);
  }
}

/* Steps 1-7 of the brief / contract s.1. Leaves o->state set. */
static void output_load(lua_State *C, output *o) {
  close_state(o);
  lua_State *L = luaL_newstate();
  if (!L) luaL_error(C, "luaL_newstate failed");
  luaL_openlibs(L);
  o->L = L;
  o->api_version = 1;
  o->filter_enabled = 0;
  o->has_flush = 0;
  o->last_full_collect = 0; /* Broker forgets a closed state's _gc_info */
  o->log_level = 0;
  free(o->log_path);
  o->log_path = NULL;

  /* 1. paths */
  append_path(L, "path", o->script_dir, "?.lua");
  append_path(L, "cpath", o->script_dir, "lib/?.so");
  register_event_mt(L);

  /* 2. the chunk (luabinding::_load_script): a syntax error keeps its message ("could not be
     loaded: ..."), an error while running it is reported only as "could not be compiled" */
  if (luaL_loadfile(L, o->script) != LUA_OK) {
    char buf[1024];
    snprintf(buf, sizeof buf, "could not be loaded: %s", errmsg(L, -1));
    lua_pop(L, 1);
    set_error(o, buf);
    o->state = ST_FAILED;
    return;
  }
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    char buf[1024];
    snprintf(buf, sizeof buf, "could not be compiled (real message, dropped by Broker: %s)",
             errmsg(L, -1));
    lua_pop(L, 1);
    strlist_add(&o->errors, buf);
    free(o->last_error);
    o->last_error = strdup("could not be compiled");
    o->state = ST_FAILED;
    return;
  }

  /* 3. init() then write() must exist */
  const char *missing = NULL;
  if (lua_getglobal(L, "init") != LUA_TFUNCTION)
    missing = "init() global function is missing";
  else if (lua_getglobal(L, "write") != LUA_TFUNCTION)
    missing = "write() global function is missing";
  lua_settop(L, 0);
  if (missing) {
    set_error(o, missing);
    o->state = ST_FAILED;
    return;
  }

  /* 4. the filter probe, filter(1, 2): before init() and before broker_log, broker and
     broker_cache exist; an error or a non-boolean disables filtering for the whole run */
  if (lua_getglobal(L, "filter") == LUA_TFUNCTION) {
    lua_pushinteger(L, 1);
    lua_pushinteger(L, 2);
    if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_isboolean(L, -1)) o->filter_enabled = 1;
  }
  lua_settop(L, 0);

  /* 5. flush() is looked for once */
  o->has_flush = lua_getglobal(L, "flush") == LUA_TFUNCTION;
  lua_pop(L, 1);

  /* 6. broker_api_version (1 unless it is 2) */
  lua_getglobal(L, "broker_api_version");
  if (lua_isnumber(L, -1) && lua_tonumber(L, -1) == 2) o->api_version = 2;
  lua_pop(L, 1);

  /* 7. globals, only now */
  set_globals(o);

  /* 8. init(conf) */
  lua_getglobal(L, "init");
  lua_rawgeti(C, LUA_REGISTRYINDEX, o->params_ref);
  copy_value(C, -1, L, 0);
  lua_pop(C, 1);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    set_error(o, errmsg(L, -1));
    lua_pop(L, 1);
    o->state = ST_INIT_FAILED;
    return;
  }

  /* 9. broker_cache. Broker registers it before init() (step 7), but it must not be used in
     init(): from 24.04 the macro_cache behind it is constructed after the Lua state (member
     order in lua::stream), so the emulator leaves it nil until init() has returned. */
  set_cache_global(o);

  o->state = ST_RUNNING;
}

/* ---- event handling (s.2) ------------------------------------------------- */

/* one flush() call. Returns 1 when it returned true (everything acked),
 * 0 otherwise, -1 when there is no flush function / no running state. */
static int call_flush(lua_State *C, output *o) {
  if (!o->L || o->state != ST_RUNNING) return -1;
  lua_State *L = o->L;
  if (!o->has_flush) return -1;
  lua_getglobal(L, "flush");
  o->flushes++;
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    set_error(o, errmsg(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  int ok = lua_isboolean(L, -1) && lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (ok) ack_all(C, o);
  return ok;
}

/* memory queue full: no write(), only flush() every flush_interval */
static void back_pressure(lua_State *C, output *o) {
  double start = now_mono();
  for (;;) {
    if (call_flush(C, o) == 1) return;
    double left = o->stall_timeout - (now_mono() - start);
    if (left <= 0) {
      luaL_error(C, "output stalled: flush() never returned true");
      return;
    }
    sleep_s(left < o->flush_interval ? left : o->flush_interval);
  }
}

static lua_Integer int_field(lua_State *C, int idx, const char *f, int *ok) {
  lua_getfield(C, idx, f);
  int isnum;
  lua_Integer v = lua_tointegerx(C, -1, &isnum);
  lua_pop(C, 1);
  if (!isnum) *ok = 0;
  return v;
}

/* Hand the (control-state, already copied, with _type) event at evidx to the
 * output. Returns 1 if it led to an acknowledgement. May raise (stall). */
static int do_send(lua_State *C, output *o, int evidx) {
  evidx = lua_absindex(C, evidx);
  if (o->state == ST_RUNNING && o->unacked >= o->queue_max) back_pressure(C, o);

  /* count it */
  lua_rawgeti(C, LUA_REGISTRYINDEX, o->unacked_ref);
  lua_pushvalue(C, evidx);
  lua_rawseti(C, -2, (lua_Integer)lua_rawlen(C, -2) + 1);
  lua_pop(C, 1);
  o->unacked++;
  if (o->unacked > o->max_unacked) o->max_unacked = o->unacked;
  if (o->state != ST_RUNNING) return 0;

  int ok = 1; /* checked by send_user_event */
  lua_Integer cat = int_field(C, evidx, "category", &ok);
  lua_Integer elem = int_field(C, evidx, "element", &ok);
  (void)ok;
  lua_State *L = o->L;

  if (o->filter_enabled) {
    spend(cost.filter);
    lua_getglobal(L, "filter");
    lua_pushinteger(L, cat);
    lua_pushinteger(L, elem);
    int pass = 0;
    if (lua_pcall(L, 2, 1, 0) != LUA_OK)
      set_error(o, errmsg(L, -1));
    else if (!lua_isboolean(L, -1))
      set_error(o, "`filter' must return a boolean"); /* Broker: no write(), counted */
    else
      pass = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!pass) {
      o->filtered++;
      return 0;
    }
  }

  lua_getglobal(L, "write");
  push_event(C, o, evidx);
  o->written++;
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    set_error(o, errmsg(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  int acked = lua_isboolean(L, -1) && lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (acked) ack_all(C, o);
  return acked;
}

/* user-facing send: copy the scenario's table, add _type, hand it over */
static int send_user_event(lua_State *C, output *o, int idx) {
  idx = lua_absindex(C, idx);
  luaL_checktype(C, idx, LUA_TTABLE);
  copy_value(C, idx, C, 0);
  int ok = 1;
  lua_Integer cat = int_field(C, -1, "category", &ok);
  lua_Integer elem = int_field(C, -1, "element", &ok);
  if (!ok) luaL_error(C, "event needs integer fields 'category' and 'element'");
  lua_pushinteger(C, (cat << 16) | elem);
  lua_setfield(C, -2, "_type");
  int r = do_send(C, o, -1);
  lua_pop(C, 1);
  return r;
}

/* hand every unacknowledged event again, in order, counting them again */
static void replay(lua_State *C, output *o) {
  lua_rawgeti(C, LUA_REGISTRYINDEX, o->unacked_ref);
  int old = lua_gettop(C);
  luaL_unref(C, LUA_REGISTRYINDEX, o->unacked_ref);
  lua_newtable(C);
  o->unacked_ref = luaL_ref(C, LUA_REGISTRYINDEX);
  o->unacked = 0;
  lua_Integer n = (lua_Integer)lua_rawlen(C, old);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(C, old, i);
    do_send(C, o, -1);
    lua_pop(C, 1);
  }
  lua_pop(C, 1);
}

/* ------------------------------------------------------------------------ */
/* control-state API: output methods                                        */
/* ------------------------------------------------------------------------ */

static const char *state_name(ostate s) {
  switch (s) {
  case ST_RUNNING: return "running";
  case ST_FAILED: return "failed";
  case ST_INIT_FAILED: return "init_failed";
  default: return "stopped";
  }
}

static int o_state(lua_State *C) {
  lua_pushstring(C, state_name(get_output(C, 1)->state));
  return 1;
}

static int o_error(lua_State *C) {
  output *o = get_output(C, 1);
  if (o->last_error)
    lua_pushstring(C, o->last_error);
  else
    lua_pushnil(C);
  return 1;
}

static int o_errors(lua_State *C) {
  strlist_push(C, &get_output(C, 1)->errors);
  return 1;
}

static int o_logs(lua_State *C) {
  strlist_push(C, &get_output(C, 1)->logs);
  return 1;
}

/* (re)start a non-running output: new state, load, replay queued events */
static int o_start(lua_State *C) {
  output *o = get_output(C, 1);
  if (o->state != ST_RUNNING) {
    output_load(C, o);
    if (o->state == ST_RUNNING) replay(C, o);
  }
  lua_pushboolean(C, o->state == ST_RUNNING);
  return 1;
}

static int o_send(lua_State *C) {
  output *o = get_output(C, 1);
  lua_pushboolean(C, send_user_event(C, o, 2));
  return 1;
}

static int o_flush(lua_State *C) {
  output *o = get_output(C, 1);
  lua_pushboolean(C, call_flush(C, o) == 1);
  return 1;
}

static int o_idle(lua_State *C) {
  output *o = get_output(C, 1);
  double secs = luaL_optnumber(C, 2, 0);
  double start = now_mono(), deadline = start + secs, next = start + o->flush_interval;
  call_flush(C, o);
  for (;;) {
    double t = now_mono();
    if (next >= deadline) {
      sleep_s(deadline - t);
      break;
    }
    sleep_s(next - t);
    call_flush(C, o);
    next += o->flush_interval;
  }
  return 0;
}

static int o_idle_until(lua_State *C) {
  output *o = get_output(C, 1);
  luaL_checktype(C, 2, LUA_TFUNCTION);
  double timeout = luaL_optnumber(C, 3, 10);
  double deadline = now_mono() + timeout;
  for (;;) {
    call_flush(C, o);
    lua_pushvalue(C, 2);
    lua_call(C, 0, 1);
    int done = lua_toboolean(C, -1);
    lua_pop(C, 1);
    if (done) {
      lua_pushboolean(C, 1);
      return 1;
    }
    double left = deadline - now_mono();
    if (left <= 0) break;
    sleep_s(left < o->flush_interval ? left : o->flush_interval);
  }
  lua_pushboolean(C, 0);
  return 1;
}

#define COUNTER(fn, field)                                                                         \
  static int fn(lua_State *C) {                                                                    \
    lua_pushinteger(C, get_output(C, 1)->field);                                                   \
    return 1;                                                                                      \
  }
COUNTER(o_unacked, unacked)
COUNTER(o_max_unacked, max_unacked)
COUNTER(o_acked, acked)
COUNTER(o_written, written)
COUNTER(o_filtered, filtered)
COUNTER(o_flushes, flushes)
COUNTER(o_api_version, api_version)
COUNTER(o_live_events, live_events)
COUNTER(o_peak_live_events, peak_live_events)
COUNTER(o_full_collects, full_collects)

/* out:gc("stop" | "restart" | "collect"): the output state's garbage collector (profiling:
   bench/profile.sh --gc stop counts instructions without the collector's phase) */
static int o_collector(lua_State *C) {
  output *o = get_output(C, 1);
  static const char *const what[] = {"stop", "restart", "collect", NULL};
  static const int op[] = {LUA_GCSTOP, LUA_GCRESTART, LUA_GCCOLLECT};
  int i = luaL_checkoption(C, 2, NULL, what);
  if (o->L) lua_gc(o->L, op[i], 0);
  return 0;
}

static int o_filtering(lua_State *C) {
  lua_pushboolean(C, get_output(C, 1)->filter_enabled);
  return 1;
}

/* SIGHUP: flush once, lua_close, load again, replay unacked events */
static int o_reload(lua_State *C) {
  output *o = get_output(C, 1);
  call_flush(C, o);
  close_state(o);
  output_load(C, o);
  if (o->state == ST_RUNNING) replay(C, o);
  lua_pushboolean(C, o->state == ST_RUNNING);
  return 1;
}

/* clean stop: flush once, lua_close; unacked events are kept */
static int o_stop(lua_State *C) {
  output *o = get_output(C, 1);
  call_flush(C, o);
  close_state(o);
  o->state = ST_STOPPED;
  return 0;
}

static int o_pending(lua_State *C) {
  output *o = get_output(C, 1);
  lua_rawgeti(C, LUA_REGISTRYINDEX, o->unacked_ref);
  copy_value(C, -1, C, 0);
  lua_remove(C, -2);
  return 1;
}

static int o_set_cache(lua_State *C) {
  output *o = get_output(C, 1);
  if (!lua_isnoneornil(C, 2)) luaL_checktype(C, 2, LUA_TTABLE);
  luaL_unref(C, LUA_REGISTRYINDEX, o->cache_ref);
  o->cache_ref = LUA_NOREF;
  if (lua_istable(C, 2)) {
    copy_value(C, 2, C, 0);
    o->cache_ref = luaL_ref(C, LUA_REGISTRYINDEX);
  }
  return 0;
}

static int o_tostring(lua_State *C) {
  output *o = get_output(C, 1);
  lua_pushfstring(C, "output(%s, %s)", o->name, state_name(o->state));
  return 1;
}

static int o_gc(lua_State *C) {
  output *o = (output *)lua_touserdata(C, 1);
  close_state(o); /* no flush: call out:stop() for a clean Broker stop */
  free(o->script);
  free(o->script_dir);
  free(o->name);
  free(o->bbdo);
  free(o->last_error);
  free(o->log_path);
  o->script = o->script_dir = o->name = o->bbdo = o->last_error = o->log_path = NULL;
  strlist_free(&o->errors);
  strlist_free(&o->logs);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* control-state API: host.*                                                */
/* ------------------------------------------------------------------------ */

static char *opt_string(lua_State *C, int t, const char *f, const char *def) {
  lua_getfield(C, t, f);
  const char *s = lua_isnil(C, -1) ? def : lua_tostring(C, -1);
  if (!s) luaL_error(C, "host.output: option '%s' must be a string", f);
  char *r = strdup(s);
  lua_pop(C, 1);
  return r;
}

static double opt_number(lua_State *C, int t, const char *f, double def) {
  lua_getfield(C, t, f);
  double v = def;
  if (!lua_isnil(C, -1)) {
    if (!lua_isnumber(C, -1)) luaL_error(C, "host.output: option '%s' must be a number", f);
    v = lua_tonumber(C, -1);
  }
  lua_pop(C, 1);
  return v;
}

/* Broker's lua_parameter list -> conf table (s.2 / s.6); pushes the table */
static void build_conf(lua_State *C, output *o, int popt) {
  if (lua_isnoneornil(C, popt)) {
    lua_newtable(C);
    return;
  }
  luaL_checktype(C, popt, LUA_TTABLE);
  int is_list = 0;
  if (lua_rawgeti(C, popt, 1) == LUA_TTABLE) {
    lua_getfield(C, -1, "name");
    is_list = !lua_isnil(C, -1);
    lua_pop(C, 1);
  }
  lua_pop(C, 1);
  if (!is_list) { /* plain map, passed as-is */
    copy_value(C, popt, C, 0);
    return;
  }
  lua_newtable(C);
  int conf = lua_gettop(C);
  lua_Integer n = (lua_Integer)lua_rawlen(C, popt);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(C, popt, i) != LUA_TTABLE) {
      lua_pop(C, 1);
      continue;
    }
    int p = lua_gettop(C);
    lua_getfield(C, p, "type");
    lua_getfield(C, p, "name");
    lua_getfield(C, p, "value");
    const char *type = lua_tostring(C, p + 1);
    const char *name = lua_tostring(C, p + 2);
    if (type && name) {
      if (!strcmp(type, "string") || !strcmp(type, "password")) {
        if (lua_type(C, p + 3) == LUA_TSTRING || lua_type(C, p + 3) == LUA_TNUMBER) {
          lua_pushstring(C, lua_tostring(C, p + 3));
          lua_setfield(C, conf, name);
        }
      } else if (!strcmp(type, "number")) {
        if (lua_type(C, p + 3) == LUA_TNUMBER) {
          lua_pushvalue(C, p + 3);
          lua_setfield(C, conf, name);
        } else if (lua_type(C, p + 3) == LUA_TSTRING) {
          const char *s = lua_tostring(C, p + 3);
          char *end;
          errno = 0;
          long long ll = strtoll(s, &end, 10);
          if (*s && !*end && !errno) {
            lua_pushinteger(C, (lua_Integer)ll);
            lua_setfield(C, conf, name);
          } else {
            errno = 0;
            double d = strtod(s, &end);
            if (*s && !*end && !errno) {
              lua_pushnumber(C, d);
              lua_setfield(C, conf, name);
            } else {
              char buf[512];
              snprintf(buf, sizeof buf, "lua parameter '%s' is not a number: dropped", name);
              strlist_add(&o->errors, buf);
            }
          }
        }
      } /* unknown types are dropped silently */
    }
    lua_settop(C, p - 1);
  }
}

static int h_output(lua_State *C) {
  static const luaL_Reg methods[] = {{"state", o_state},
                                     {"error", o_error},
                                     {"errors", o_errors},
                                     {"logs", o_logs},
                                     {"start", o_start},
                                     {"restart", o_start},
                                     {"send", o_send},
                                     {"flush", o_flush},
                                     {"idle", o_idle},
                                     {"idle_until", o_idle_until},
                                     {"unacked", o_unacked},
                                     {"max_unacked", o_max_unacked},
                                     {"acked", o_acked},
                                     {"written", o_written},
                                     {"filtered", o_filtered},
                                     {"flushes", o_flushes},
                                     {"api_version", o_api_version},
                                     {"live_events", o_live_events},
                                     {"peak_live_events", o_peak_live_events},
                                     {"full_collects", o_full_collects},
                                     {"filtering", o_filtering},
                                     {"gc", o_collector},
                                     {"reload", o_reload},
                                     {"stop", o_stop},
                                     {"pending", o_pending},
                                     {"set_cache", o_set_cache},
                                     {NULL, NULL}};
  luaL_checktype(C, 1, LUA_TTABLE);
  lua_getfield(C, 1, "script");
  if (!lua_isstring(C, -1)) luaL_error(C, "host.output: option 'script' (string) is required");
  lua_pop(C, 1);

  output *o = (output *)lua_newuserdata(C, sizeof(output));
  memset(o, 0, sizeof *o);
  o->params_ref = o->cache_ref = o->unacked_ref = LUA_NOREF;
  o->state = ST_STOPPED;
  if (luaL_newmetatable(C, OUTPUT_MT)) {
    lua_newtable(C);
    luaL_setfuncs(C, methods, 0);
    lua_setfield(C, -2, "__index");
    lua_pushcfunction(C, o_gc);
    lua_setfield(C, -2, "__gc");
    lua_pushcfunction(C, o_tostring);
    lua_setfield(C, -2, "__tostring");
  }
  lua_setmetatable(C, -2);
  int ud = lua_gettop(C);

  o->script = opt_string(C, 1, "script", NULL);
  o->name = opt_string(C, 1, "name", "PagerDuty");
  o->bbdo = opt_string(C, 1, "bbdo", "3.0.0");
  o->queue_max = (lua_Integer)opt_number(C, 1, "queue_max", 10000);
  o->flush_interval = opt_number(C, 1, "flush_interval", 1.0);
  o->stall_timeout = opt_number(C, 1, "stall_timeout", 30.0);
  if (o->queue_max < 1) o->queue_max = 1;
  if (!(o->flush_interval > 0)) o->flush_interval = 0.001;
  const char *slash = strrchr(o->script, '/');
  if (!slash)
    o->script_dir = strdup(".");
  else if (slash == o->script)
    o->script_dir = strdup("/");
  else
    o->script_dir = strndup(o->script, (size_t)(slash - o->script));

  lua_getfield(C, 1, "params");
  build_conf(C, o, lua_gettop(C));
  o->params_ref = luaL_ref(C, LUA_REGISTRYINDEX);
  lua_pop(C, 1);

  lua_getfield(C, 1, "cache");
  if (lua_istable(C, -1)) {
    copy_value(C, -1, C, 0);
    o->cache_ref = luaL_ref(C, LUA_REGISTRYINDEX);
  }
  lua_pop(C, 1);

  lua_newtable(C);
  o->unacked_ref = luaL_ref(C, LUA_REGISTRYINDEX);

  output_load(C, o);
  lua_settop(C, ud);
  return 1;
}

static int h_send_many(lua_State *C) {
  output *o = get_output(C, 1);
  lua_Integer n = luaL_checkinteger(C, 2);
  luaL_checktype(C, 3, LUA_TFUNCTION);
  lua_Integer acks = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_pushvalue(C, 3);
    lua_pushinteger(C, i);
    lua_call(C, 1, 1);
    acks += send_user_event(C, o, -1);
    lua_pop(C, 1);
  }
  lua_pushinteger(C, acks);
  return 1;
}

static int h_sleep(lua_State *C) {
  sleep_s(luaL_checknumber(C, 1));
  return 0;
}

static int h_now(lua_State *C) {
  lua_pushnumber(C, now_mono());
  return 1;
}

static int h_time(lua_State *C) {
  lua_pushinteger(C, (lua_Integer)time(NULL));
  return 1;
}

static int h_rss_kb(lua_State *C) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  if (f) {
    while (fgets(line, sizeof line, f))
      if (!strncmp(line, "VmRSS:", 6)) {
        kb = strtol(line + 6, NULL, 10);
        break;
      }
    fclose(f);
  }
  if (kb < 0) lua_pushnil(C);
  else lua_pushinteger(C, kb);
  return 1;
}

/* the C heap (mallinfo2, all arenas): bytes in use, free but kept, mapped directly */
static int h_heap(lua_State *C) {
  struct mallinfo2 m = mallinfo2();
  lua_createtable(C, 0, 3);
  lua_pushinteger(C, (lua_Integer)m.uordblks);
  lua_setfield(C, -2, "in_use");
  lua_pushinteger(C, (lua_Integer)m.fordblks);
  lua_setfield(C, -2, "free");
  lua_pushinteger(C, (lua_Integer)m.hblkhd);
  lua_setfield(C, -2, "mmapped");
  return 1;
}

static int h_field_reads(lua_State *C) {
  lua_pushinteger(C, field_reads);
  return 1;
}

static int h_getenv(lua_State *C) {
  const char *v = getenv(luaL_checkstring(C, 1));
  if (v) lua_pushstring(C, v);
  else lua_pushnil(C);
  return 1;
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Broker is a multi-threaded process (its I/O threads, a thread per output), so glibc's malloc
 * there always takes its arena locks. One idle thread for the whole run puts the emulator in
 * the same case whatever the script: without it, a script that starts no thread (the
 * benchmark's baseline) gets glibc's cheaper single-threaded malloc, and a library that starts
 * threads is charged for the difference on every allocation Lua makes. */
static int broker_pipe[2] = {-1, -1};

static void *broker_thread(void *arg) {
  char c;
  (void)arg;
  while (read(broker_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
  return NULL;
}

int main(int argc, char **argv) {
  static const luaL_Reg host_f[] = {{"output", h_output}, {"send_many", h_send_many},
                                    {"sleep", h_sleep},   {"now", h_now},
                                    {"time", h_time},     {"rss_kb", h_rss_kb},
                                    {"heap", h_heap},     {"getenv", h_getenv},
                                    {"field_reads", h_field_reads}, {NULL, NULL}};
  if (argc < 2) {
    fprintf(stderr, "usage: %s <scenario.lua> [args...]\n", argv[0]);
    return 2;
  }
  if (cost_from_env() != 0) return 2;
  pthread_t broker;
  int have_broker = pipe(broker_pipe) == 0 && pthread_create(&broker, NULL, broker_thread, NULL) == 0;
  lua_State *C = luaL_newstate();
  control = C;
  if (!C) return 2;
  luaL_openlibs(C);

  luaL_newlib(C, host_f);
  lua_setglobal(C, "host");

  /* arg table, as the standalone interpreter does */
  lua_createtable(C, argc, 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(C, argv[i]);
    lua_rawseti(C, -2, i - 1);
  }
  lua_setglobal(C, "arg");

  /* let scenarios require() helpers next to them (events.lua) */
  const char *slash = strrchr(argv[1], '/');
  if (slash) {
    lua_pushlstring(C, argv[1], (size_t)(slash - argv[1]));
    append_path(C, "path", lua_tostring(C, -1), "?.lua");
    lua_pop(C, 1);
  } else {
    append_path(C, "path", ".", "?.lua");
  }

  int rc = 0;
  lua_pushcfunction(C, msgh);
  if (luaL_loadfile(C, argv[1]) != LUA_OK) {
    fprintf(stderr, "%s\n", errmsg(C, -1));
    rc = 1;
  } else {
    for (int i = 2; i < argc; i++) lua_pushstring(C, argv[i]);
    if (lua_pcall(C, argc - 2, 0, 1) != LUA_OK) {
      fprintf(stderr, "%s\n", errmsg(C, -1));
      rc = 1;
    }
  }
  lua_close(C);
  if (have_broker) {
    close(broker_pipe[1]);
    pthread_join(broker, NULL);
    close(broker_pipe[0]);
  }
  return rc;
}
