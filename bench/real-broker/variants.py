#!/usr/bin/env python3
"""Diagnostic variants of the Lua bridge, for a decomposition series in the real cbd (perf.sh).
usage: variants.py BRIDGE.lua LIB.so OUT_DIR [NAME ...]
Writes OUT_DIR/NAME.lua for each variant (all when none is named) and prints the perf.sh
arguments (NAME=OUT_DIR/NAME.lua:LIB.so). Each variant removes one more part of what the
connector does on Broker's thread, so that paired differences in one series split O - F:

  Obare   the bridge's init() (the library loaded, its threads started, the plan built) and
          filter(); write() only reads host_id, service_id, state and returns true (as F does)
  Ofast   + the bridge's memory of the objects that stay OK (stays_ok), without a library call:
          an OK status is remembered, any other status forgotten; every event acknowledged
  Ofirst  the bridge as it is, except that a status that is not a first OK status nor one of
          an object that stays OK (a problem, a recovery) returns true at once: no status()
          question, no details, no submit
  Osub0   the bridge as it is, except that the details of a state change are read and looked
          up (status(), the reader, the broker_cache lookups) but not submitted
  Onl     the bridge as it is without the broker_cache lookups of complete()
  Oack    the bridge as it is, acknowledging every event at once (true instead of the
          library's verdict): what holding Broker's acknowledgement until the commit costs

Only Onl and Oack deliver anything; none keeps the connector's guarantees: they measure, they
are never installed. Each edit finds its anchor in BRIDGE.lua exactly once, or this script
fails: a changed bridge needs its variants reviewed, not silently mis-edited."""
import os
import sys


def once(src, old, new):
    n = src.count(old)
    if n != 1:
        raise SystemExit(f"variants.py: anchor found {n} times, not once: {old!r}")
    return src.replace(old, new)


def edits(src, pairs):
    """src with each (old, new) of pairs applied in turn, each old found once."""
    for old, new in pairs:
        src = once(src, old, new)
    return src


def write_body(src, body):
    """src with write() replaced by body (write() runs up to the flush() that follows it)."""
    head, sep, rest = src.partition("function write(e)\n")
    if not sep or "\nfunction flush()" not in rest:
        raise SystemExit("variants.py: no write(e) followed by flush() in the bridge")
    return head + body + "\n" + rest[rest.index("function flush()"):]


BARE = """function write(e)
  local _, _, _ = e.host_id, e.service_id, e.state
  return true
end
"""

FAST = """function write(e)
  local p = filtered
  filtered = nil
  if p == nil then p = types[e._type] end
  if p == nil or not p.status then return true end
  local hid, sid, st = e.host_id, 0, e.state
  if p.service then sid = e.service_id end
  local known = stays_ok[hid]
  if st == OK_STATE then
    if known and known[sid] and settled and unseen < UNSEEN_MAX then
      unseen = unseen + 1
      return true
    end
    if not known then known = {}; stays_ok[hid] = known end
    known[sid], settled = true, true
    return true
  end
  if known and known[sid] ~= nil then known[sid] = nil end
  return true
end
"""

KNOWN_FORGOTTEN = "  if known and known[sid] ~= nil then known[sid] = nil end\n"
SUBMIT = "  if d ~= nil then settled = submit_fn(handle, complete(d)) == true end\n"


def variants(src):
    return {
        "Obare": write_body(src, BARE),
        "Ofast": write_body(src, FAST),
        "Ofirst": once(src, KNOWN_FORGOTTEN, KNOWN_FORGOTTEN + "  do return true end\n"),
        "Osub0": once(src, SUBMIT, "  if d ~= nil then complete(d); settled = true end\n"),
        "Onl": once(
            src,
            "  local hid, sid = d.host_id, d.service_id\n  if not hid then return d end\n",
            "  do return d end\n",
        ),
        "Oack": edits(src, [
            ("        waiting, unseen = waiting + 1, unseen + 1\n        return false\n",
             "        waiting, unseen = waiting + 1, unseen + 1\n        return true\n"),
            # answered(), flush() and submitted(): true whatever the library answered
            ("  unseen, waiting, settled = 0, 0, r == A.acknowledged or r == A.stays_ok_acknowledged\n"
             "  return settled\n",
             "  unseen, waiting, settled = 0, 0, r == A.acknowledged or r == A.stays_ok_acknowledged\n"
             "  return true\n"),
            ("== true, 0, 0\n  return settled\nend", "== true, 0, 0\n  return true\nend"),
            ("  return settled\nend\n\nfunction write", "  return true\nend\n\nfunction write"),
        ]),
    }


def main(argv):
    if len(argv) < 4:
        raise SystemExit(__doc__)
    bridge, lib, out = argv[1:4]
    all_variants = variants(open(bridge).read())
    names = argv[4:] or list(all_variants)
    unknown = [n for n in names if n not in all_variants]
    if unknown:
        raise SystemExit(f"variants.py: no variant {', '.join(unknown)} (known: {', '.join(all_variants)})")
    os.makedirs(out, exist_ok=True)
    args = []
    for name in names:
        path = os.path.join(out, name + ".lua")
        with open(path, "w") as f:
            f.write(all_variants[name])
        args.append(f"{name}={os.path.abspath(path)}:{os.path.abspath(lib)}")
    print(" ".join(args))


if __name__ == "__main__":
    main(sys.argv)
