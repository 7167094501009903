#!/usr/bin/env python3
"""Summary of perf.sh results: per script, median (min-max) over its runs, and what it adds over
E (the empty API 2 script) and, when it ran, over F (floor.lua: the three field reads the
connector cannot avoid).
usage: summarize.py [--json] results.jsonl [more.jsonl ...]
- cbd CPU/event: cbd's whole CPU time (utime+stime at the end) / N. Includes the simu input,
  which makes the events and varies by a few µs/event from run to run.
- output thread: Broker's Lua output thread (it runs filter() and write()), / N.
- own threads: the threads the script started (the connector's cpd-*), / N.
- output + own: the two together, the figure for a connector's cost.
- trail: how long the last delivery came after the feed handed over its last status.
- Broker's queue: the most unacknowledged events Broker's muxer of the output held (its own
  statistics, gRPC GetProcessingStats, refreshed by Broker at most once a second), and the most
  events in that queue (read or not).
--json prints one JSON object per script instead of the table (make bench's report).
--against NAME (repeatable; F by default when it ran) adds a table of paired differences: per
round, each script's output thread and own threads minus NAME's in the same round, their
median and the rounds' values (the way to compare variants: runs of one script move by more
than most differences between scripts).
- what the output thread's time is made of (runs that recorded it): its time on a CPU
  (schedstat, ns: the precise figure), user and system time (ticks; the kernel charges an
  interrupt that lands on the thread's CPU to the thread, as system time), its wait for a CPU,
  its page faults, sleeps (voluntary switches) and preemptions; each with its median paired
  difference against the first --against script (F by default).
- the machine's interrupts per 1,000 events (both CPUs): device lines (the disk's completions)
  and inter-processor ones (CAL: function calls, among them a wake-up of a thread on another
  CPU; RES: rescheduling; LOC: the timer tick of a CPU that is not idle).
Which thread is Broker's Lua output thread: cbdthreads.py."""
import json, statistics, sys

from cbdthreads import failovers as failover_threads, output_thread as output_of

args = sys.argv[1:]
as_json = bool(args) and args[0] == "--json"
if as_json:
    args = args[1:]
against = []
while "--against" in args:
    i = args.index("--against")
    against.append(args[i + 1])
    del args[i:i + 2]
rows = [json.loads(l) for p in args for l in open(p) if l.strip()]
# Broker's threads (the gRPC ones answer run.py's statistics requests); the rest are the script's
BROKER = ("cbd", "pool_thread", "proc_failover", "timer_manager", "grpc", "default-executo",
          "event_engine", "resolver-execut")
TICK = 100.0
MUXER = "PagerDuty"


def failovers(r):
    """Broker's proc_failover threads of run r, the simu input's first (cbdthreads.py)."""
    return failover_threads(r["threads"])


def split(r):
    """(input thread, output thread, Broker's other threads, script's own threads), ticks."""
    th = r["threads"]
    pf = failovers(r)
    other = sum(t["ticks"] for t in th if t["comm"] != "proc_failover" and t["comm"].startswith(BROKER))
    own = sum(t["ticks"] for t in th if not t["comm"].startswith(BROKER))
    return pf[0]["ticks"], pf[-1]["ticks"] if len(pf) > 1 else 0, other, own


def mm(xs, d=1):
    return f"{statistics.median(xs):.{d}f} ({min(xs):.{d}f}-{max(xs):.{d}f})" if xs else "-"


def queue(r, key):
    q = (r.get("broker_queues") or {}).get(MUXER)
    return q[key] if q else None


names = list(dict.fromkeys(r["name"] for r in rows))
by = {v: [r for r in rows if r["name"] == v and r["status"] == "ok"] for v in names}
N = rows[0]["n"]
rate = rows[0].get("rate") or 0
stat = {}
for v, rs in by.items():
    per = lambda ticks, r: ticks / TICK / r["n"] * 1e6
    stat[v] = {
        "cpu": [r["cpu_at_detect_s"] / r["n"] * 1e6 for r in rs],
        "out": [per(split(r)[1], r) for r in rs],
        "own": [per(split(r)[3], r) for r in rs],
        "thr": [per(split(r)[1] + split(r)[3], r) for r in rs],
        "inp": [split(r)[0] / TICK for r in rs],
        "wall": [max(r["wall_s"], r["last_request_s"] or 0) for r in rs],
        "trail": [r["last_request_s"] - r["wall_to_feed_done_s"] for r in rs if r.get("last_request_s")],
        "rss": [r["vmhwm_kb"] / 1024 for r in rs],
        "req": [r["requests"] for r in rs],
        "unack": [queue(r, "max_unack") for r in rs if queue(r, "max_unack") is not None],
        "queued": [queue(r, "max_total") for r in rs if queue(r, "max_total") is not None],
    }
med = statistics.median
ok_runs = {(r["name"], r["rep"]): r for r in rows if r["status"] == "ok"}


def paired(v, base, part):
    """Per round where both ran ok: v's thread group `part` (1 output, 3 own) minus base's, µs/event."""
    per = lambda r: split(r)[part] / TICK / r["n"] * 1e6
    return [per(r) - per(ok_runs[(base, rep)]) for (name, rep), r in sorted(ok_runs.items(), key=lambda x: x[0][1])
            if name == v and (base, rep) in ok_runs]


def added(v, col, base):
    b = stat.get(base)
    if v == base or not b or not b[col] or not stat[v][col]:
        return None
    return med(stat[v][col]) - med(b[col])


if as_json:
    for v in names:
        s = stat[v]
        if not s["cpu"]:
            continue
        o = {"bench": "real_broker", "script": v, "n": N, "rate": rate, "runs": len(s["cpu"])}
        for k in ("cpu", "out", "own", "thr", "trail", "rss", "unack", "queued"):
            if s[k]:
                o[k] = round(med(s[k]), 3)
                o[k + "_min"], o[k + "_max"] = round(min(s[k]), 3), round(max(s[k]), 3)
        for base in ("E", "F"):
            for k in ("cpu", "out", "own", "thr"):
                a = added(v, k, base)
                if a is not None:
                    o[f"{k}_over_{base}"] = round(a, 3)
        print(json.dumps(o))
    sys.exit(0)

print(f"N = {N:,} statuses per run (after 10,501 definitions), "
      f"{'as fast as simu goes' if not rate else f'{rate:,} statuses/s'}; "
      + ", ".join(f"{v}: {len(by[v])}/{sum(r['name'] == v for r in rows)} runs ok" for v in names))
print()
print("| script | output thread, µs/event | own threads, µs/event | output + own, µs/event | "
      "added over E | added over F | cbd CPU/event, µs | cbd added over E | trail, s | "
      "Broker's queue: most unacknowledged | most queued | peak RSS, MiB | requests |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def fmt(a, d=1):
    return "-" if a is None else f"{a:+.{d}f}"


for v in names:
    s = stat[v]
    if not s["cpu"]:
        print(f"| {v} | no run ended ok |" + " |" * 11); continue
    print(f"| {v} | {mm(s['out'], 2)} | {mm(s['own'], 2)} | {mm(s['thr'], 2)} | "
          f"{fmt(added(v, 'thr', 'E'), 2)} | {fmt(added(v, 'thr', 'F'), 2)} | {mm(s['cpu'])} | "
          f"{fmt(added(v, 'cpu', 'E'))} | {mm(s['trail'], 2)} | {mm(s['unack'], 0)} | "
          f"{mm(s['queued'], 0)} | {mm(s['rss'], 0)} | {'/'.join(map(str, s['req']))} |")
print()
for base in against or (["F"] if "F" in by else []):
    print(f"Paired by round, minus {base} in the same round (µs/event): median (each round)")
    print()
    print(f"| script | output thread - {base} | own threads - {base} |")
    print("|---|---|---|")
    for v in names:
        o, w = paired(v, base, 1), paired(v, base, 3)
        if v != base and o:
            print(f"| {v} | {med(o):+.2f} ({', '.join(f'{x:+.2f}' for x in o)}) | {med(w):+.2f} |")
    print()
# what the output thread's time is made of (runs recorded since run.py reads schedstat)
DETAIL = (("run_ns", "on a CPU, µs/event", 1e-3), ("utime", "user, µs/event", 1e6 / TICK),
          ("stime", "system, µs/event", 1e6 / TICK), ("wait_ns", "waiting for a CPU, µs/event", 1e-3),
          ("minflt", "page faults /1000 events", 1e3), ("vcsw", "sleeps /1000 events", 1e3),
          ("nvcsw", "preemptions /1000 events", 1e3))


def output_thread(r):
    """Broker's Lua output thread as recorded with its detail, or None."""
    t = output_of(r["threads"])
    return t if t is not None and "run_ns" in t else None


def detail(r, key, scale):
    t = output_thread(r)
    return t[key] * scale / r["n"] if t else None


if any(output_thread(r) for rs in by.values() for r in rs):
    base = (against or ["F"])[0]
    print(f"Broker's output thread, what its time is made of: median (paired with {base}, median of the rounds' differences)")
    print()
    print("| script | " + " | ".join(h for _, h, _ in DETAIL) + " |")
    print("|---|" + "---|" * len(DETAIL))
    for v in names:
        cells = []
        for key, _, scale in DETAIL:
            xs = [x for x in (detail(r, key, scale) for r in by[v]) if x is not None]
            ds = [detail(r, key, scale) - detail(ok_runs[(base, r["rep"])], key, scale) for r in by[v]
                  if (base, r["rep"]) in ok_runs and output_thread(ok_runs[(base, r["rep"])]) and output_thread(r)]
            cells.append("-" if not xs else f"{med(xs):.2f}" + (f" ({med(ds):+.2f})" if ds and v != base else ""))
        print(f"| {v} | " + " | ".join(cells) + " |")
    print()
# the machine's interrupts during each run (runs recorded since run.py reads /proc/interrupts)
kinds = sorted({k for rs in by.values() for r in rs for k in r.get("interrupts", {})})
irq = {v: {k: [r["interrupts"].get(k, 0) * 1e3 / r["n"] for r in rs if "interrupts" in r] for k in kinds}
       for v, rs in by.items()}
kinds = [k for k in kinds if any(xs[k] and med(xs[k]) >= 1 for xs in irq.values())]
if kinds:
    print("The machine's interrupts per 1,000 events (both CPUs; median of the runs)")
    print()
    print("| script | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for v in names:
        print(f"| {v} | " + " | ".join(f"{med(irq[v][k]):.1f}" if irq[v][k] else "-" for k in kinds) + " |")
    print()
for r in rows:
    cs = r.get("connector_stats")
    extra = ""
    if isinstance(cs, dict) and cs.get("routing_keys"):
        k = next(iter(cs["routing_keys"].values()))
        extra = f", connector events_seen={k.get('events_seen')} delivered={k.get('delivered')} pending={k.get('pending')}"
    print(f"- {r['name']} round {r['rep']}: {r['status']}, wall {r.get('wall_s')} s, feed done "
          f"{r.get('wall_to_feed_done_s')} s, last request {r.get('last_request_s')} s, cbd CPU "
          f"{r.get('cpu_at_detect_s')} s, queue max unacked {queue(r, 'max_unack')} queued "
          f"{queue(r, 'max_total')}, stop {r.get('stop_s')} s (exit {r.get('exit_status')}), "
          f"requests {r.get('by_code_action')}{extra}")
