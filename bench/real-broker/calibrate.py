#!/usr/bin/env python3
"""The emulator's cost model against the real cbd: what one field read, one broker_cache call and
one filter() call cost Broker's thread, in both, from the same scripts (README.md, "Scripts").
usage: calibrate.py REAL_RESULTS.jsonl[,MORE.jsonl] EMULATOR.jsonl [EMULATOR_WITH_MODEL.jsonl]
  REAL_RESULTS  perf.sh's results.jsonl files of series with E, E0, F, R, C and S (the real cbd:
                Broker's Lua output thread CPU / N; 10 ms ticks)
  EMULATOR      emulator.sh's lines (the emulator's main thread CPU / N), without and with the
                cost model
Prints a Markdown table, ns per operation (medians over the runs):
  field read = (R - F) / 87, broker_cache call = (C - F) / 27 (the bridge's 9 calls of a
  state change, 3 times), a call answering nil = (S - F) / 9 (get_severity of an object without
  a severity: Broker throws and catches), filter() call = E - E0,
and what the model should add per operation (real - emulator without it)."""
import json, statistics, sys

from cbdthreads import output_thread

real_rows = [json.loads(l) for p in sys.argv[1].split(",") for l in open(p) if l.strip()]
emu_sets = [[json.loads(l) for l in open(p) if l.strip()] for p in sys.argv[2:]]


def out_thread_ns(r):
    return output_thread(r["threads"])["ticks"] / 100.0 / r["n"] * 1e9


def medians(rows, value):
    by = {}
    for r in rows:
        by.setdefault(r.get("name") or r.get("script"), []).append(value(r))
    return {k: statistics.median(v) for k, v in by.items()}


OPS = [("field read", "R", "F", 87), ("broker_cache call (the bridge's 9)", "C", "F", 27),
       ("broker_cache call answering nil (get_severity)", "S", "F", 9), ("filter() call", "E", "E0", 1)]


def per_op(m):
    return {op: (m[a] - m[b]) / n if a in m and b in m else None for op, a, b, n in OPS}


real = per_op(medians([r for r in real_rows if r["status"] == "ok"], out_thread_ns))
emus = [per_op(medians(rows, lambda r: r["cpu_ns"])) for rows in emu_sets]
labels = ["emulator, no cost model", "emulator, cost model cbd-23.10"][:len(emus)]
print("| operation, ns on Broker's thread | real cbd 23.10.16 | " + " | ".join(labels) + " | model should add |")
print("|---|---|" + "---|" * len(emus) + "---|")
f = lambda x: "-" if x is None else f"{x:.0f}"
for op, *_ in OPS:
    add = real[op] - emus[0][op] if real[op] is not None and emus and emus[0][op] is not None else None
    print(f"| {op} | {f(real[op])} | " + " | ".join(f(e[op]) for e in emus) + f" | {f(add)} |")
