/* bench/fixed_time.c: time() always returns the same instant, preloaded by bench/profile.sh.
 *
 * Lua seeds its string hashes with time(NULL) mixed with a few addresses (luai_makeseed), so
 * every process lays out its tables differently, and building Broker's events (tables of about
 * 35 fields) costs each run a different number of instructions: up to 2,000 per event between
 * two runs of the same script. With the time fixed, the addresses are the same for every
 * script under valgrind, and so are the seeds: runs of different scripts compare exactly.
 * The library is not affected (Rust reads the clock with clock_gettime). */
#include <time.h>

#define FIXED_TIME ((time_t)1764000000) /* 2025-11-24, any constant does */

time_t time(time_t *t) {
  if (t) *t = FIXED_TIME;
  return FIXED_TIME;
}
