#!/usr/bin/env python3
"""Where a cbd run's CPU goes, per thread group and per symbol, from `perf record` (perf.sh with
PERF_RECORD=NAME) and the run's thread CPU times (run.py's result line).
usage: profile.py RUN.perf.data RESULTS.jsonl NAME [--top K]
Groups: Broker's Lua output thread (cbdthreads.py), the connector's committer
(cpd-commit), its lanes (cpd-lane-*), the script's other threads. For each group: its CPU in
µs/event (from /proc, ticks / N) and its top symbols with their share of the group's samples and
that share in µs/event (the sampled share times the group's CPU; perf itself slows cbd, so read
the µs as a split of the unprofiled figure, not a measure of it)."""
import collections, json, subprocess, sys

from cbdthreads import output_thread

data, results, name = sys.argv[1:4]
top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 15
run = [json.loads(l) for l in open(results) if l.strip() and json.loads(l)["name"] == name][-1]
out_tid = output_thread(run["threads"])["tid"]


def group(comm, tid):
    if tid == out_tid:
        return "Broker's Lua output thread"
    if comm == "cpd-commit":
        return "committer (cpd-commit)"
    if comm.startswith("cpd-lane"):
        return "16 lanes (cpd-lane-*)"
    if comm.startswith("cpd-"):
        return "connector, other"
    return None


ticks = collections.Counter()
for t in run["threads"]:
    g = group(t["comm"], t["tid"])
    if g:
        ticks[g] += t["ticks"]
lines = subprocess.run(["perf", "script", "-i", data, "-G", "-F", "comm,tid,ip,sym,dso"],
                       capture_output=True, text=True).stdout.splitlines()
samples = collections.defaultdict(collections.Counter)
for l in lines:
    parts = l.split()
    if len(parts) < 4:
        continue
    # "comm tid ip sym (dso)": no comm here has a space (Broker's and ours)
    comm, tid = parts[0], int(parts[1])
    g = group(comm, tid)
    if not g:
        continue
    dso = parts[-1].strip("()").rsplit("/", 1)[-1]
    sym = " ".join(parts[3:-1]) or "?"
    if sym == "[unknown]":
        sym = f"[{dso}]"
    samples[g][(sym, dso)] += 1
for g in ("Broker's Lua output thread", "committer (cpd-commit)", "16 lanes (cpd-lane-*)", "connector, other"):
    c = samples.get(g)
    if not c:
        continue
    n = sum(c.values())
    us = ticks[g] / 100.0 / run["n"] * 1e6
    print(f"\n### {g}: {us:.2f} µs/event (CPU from /proc), {n} samples\n")
    by_dso = collections.Counter()
    for (s, d), k in c.items():
        by_dso[d] += k
    print("by object: " + ", ".join(f"{d} {k * 100 / n:.0f} %" for d, k in by_dso.most_common(8)) + "\n")
    print("| symbol | object | share | µs/event |\n|---|---|---|---|")
    for (s, d), k in c.most_common(top):
        print(f"| `{s[:70]}` | {d} | {k * 100 / n:.1f} % | {us * k / n:.3f} |")
