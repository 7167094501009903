#!/usr/bin/env python3
"""One measured cbd run: simu input (genfeed.lua, N statuses after 10,501 definitions) -> one
Lua output (SCRIPT), with a loopback receiver. Appends one JSON line to --results.
usage: run.py NAME SCRIPT N RUN_DIR --cbd CBD --moddir DIR [--params none|pd] [--port P]
              [--grpc-port P] [--rate R] [--rep K] [--results FILE] [--rpc DIR]
              [--perf-record FILE] [--pin] [--syscalls FILE] [--outbox-dir DIR]
              [--number NAME=VALUE ...]
--params pd gives the script PagerDuty parameters (routing key, URLs, logfile, outbox...);
none gives it nothing (the empty script).
The end of processing: genfeed.lua has written RUN_DIR/feed.done (all N statuses handed to
Broker) AND cbd's CPU time has not grown by 4 ticks or more in any 0.2 s window for 1.0 s AND
the receiver's log has not changed for 1.0 s. Then cbd gets SIGTERM; wait4 gives CPU and RSS
at exit."""
import argparse, json, os, shutil, signal, subprocess, sys, time

from cbdthreads import output_thread

KIT = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("name"); ap.add_argument("script"); ap.add_argument("n", type=int); ap.add_argument("run")
ap.add_argument("--cbd", required=True); ap.add_argument("--moddir", required=True)
ap.add_argument("--params", choices=("none", "pd"), default="pd")
ap.add_argument("--port", type=int, default=18301); ap.add_argument("--grpc-port", type=int, default=51097)
ap.add_argument("--rate", type=int, default=0, help="statuses per second (0: as fast as simu goes)")
ap.add_argument("--rep", type=int, default=0); ap.add_argument("--results")
ap.add_argument("--rpc", help="dir of broker_pb2*.py (rpc.sh): sample Broker's muxer statistics over gRPC")
ap.add_argument("--perf-record", help="perf.data path: `perf record -g` on cbd from its start to the end")
ap.add_argument("--pin", action="store_true",
                help="Broker's Lua output thread alone on CPU 0, every other cbd thread on the other CPUs")
ap.add_argument("--syscalls", help="file for `strace -c` of Broker's Lua output thread from its start to the "
                "end: which system calls it makes (slows it: not for the CPU figures)")
ap.add_argument("--outbox-dir", help="where the connector's outbox goes (default RUN_DIR); /dev/shm: "
                "commits without a disk (tmpfs: fsync writes nothing), a diagnostic")
ap.add_argument("--number", action="append", default=[], metavar="NAME=VALUE",
                help="one more number parameter for the script (--params pd), e.g. outbox_commit_delay_ms=5")
a = ap.parse_args()
run = os.path.abspath(a.run)
for d in ("log", "cache"):
    os.makedirs(f"{run}/{d}", exist_ok=True)
done, reqlog = f"{run}/feed.done", f"{run}/requests.jsonl"
for f in (done, reqlog):
    if os.path.exists(f): os.remove(f)
params = []
outbox_dir = run
if a.outbox_dir:
    outbox_dir = os.path.join(os.path.abspath(a.outbox_dir), os.path.basename(run))
    shutil.rmtree(outbox_dir, ignore_errors=True)
    os.makedirs(outbox_dir)
if a.params == "pd":
    params = [("password", "pdy_routing_key", "abcdef0123456789abcdef0123456789"),
              ("string", "pdy_centreon_url", "https://centreon.example.test"),
              ("string", "http_server_url", f"http://127.0.0.1:{a.port}/v2/enqueue"),
              ("string", "logfile", f"{run}/connector.log"), ("number", "log_level", "1"),
              ("string", "outbox_path", f"{outbox_dir}/outbox.db"), ("string", "stats_path", f"{run}/stats.json"),
              ("number", "stats_interval", "1")]
    params += [("number", *p.split("=", 1)) for p in a.number]
conf = {"centreonBroker": {
    "broker_id": 1, "broker_name": "central-broker-master", "poller_id": 1, "poller_name": "Central",
    "module_directory": os.path.abspath(a.moddir), "event_queue_max_size": 5000000,
    "cache_directory": f"{run}/cache",
    "log": {"log_pid": True, "flush_period": 0, "directory": f"{run}/log", "filename": "central-broker-master.log",
            "max_size": 0, "loggers": {k: "error" for k in ("core", "config", "processing", "lua", "neb", "bbdo")}},
    "input": [{"name": "feed", "type": "simu", "path": f"{KIT}/genfeed.lua",
               "lua_parameter": [{"type": "number", "name": "n", "value": str(a.n)},
                                 {"type": "string", "name": "done", "value": done},
                                 {"type": "number", "name": "rate", "value": str(a.rate)}]}],
    "output": [{"name": "PagerDuty", "type": "lua", "path": os.path.abspath(a.script),
                "filters": {"category": ["neb"]},
                "lua_parameter": [{"type": t, "name": k, "value": v} for t, k, v in params]}],
    "grpc": {"rpc_port": a.grpc_port, "listen_address": "127.0.0.1"}}}
json.dump(conf, open(f"{run}/central-broker.json", "w"), indent=2)

rec = subprocess.Popen([sys.executable, f"{KIT}/receiver.py", str(a.port), reqlog, f"{run}/fail500"],
                       stdout=subprocess.PIPE, stderr=open(f"{run}/receiver.out", "a"), text=True)
# its own "listening" line, not an answer on the port: the receiver of an interrupted run may
# still hold the port (then this one exits and its line never comes)
if rec.stdout.readline().strip() != f"listening on {a.port}":
    rec.wait()
    sys.exit(f"run.py: the receiver did not start (see {run}/receiver.out): is port {a.port} "
             "held by another run's receiver?")
open(reqlog, "a").close()


def stat(path):
    """A /proc stat file: (comm, the fields after it; f[7] minflt, f[11] utime, f[12] stime)."""
    s = open(path).read()
    return s[s.index("(") + 1:s.rindex(")")], s[s.rindex(")") + 2:].split()


def ticks(pid, tid=None):
    comm, f = stat(f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat")
    return int(f[11]) + int(f[12]), comm


def thread_detail(pid, tid):
    """One thread: its ticks (utime + stime) and what its time is made of: utime and stime,
    minor page faults, voluntary and involuntary context switches, and the scheduler's own
    counts (schedstat: ns on a CPU, ns waiting for one, time slices)."""
    base = f"/proc/{pid}/task/{tid}"
    comm, f = stat(f"{base}/stat")
    d = {"ticks": int(f[11]) + int(f[12]), "comm": comm, "tid": int(tid),
         "utime": int(f[11]), "stime": int(f[12]), "minflt": int(f[7])}
    for l in open(f"{base}/status"):
        if l.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
            d["vcsw" if l[0] == "v" else "nvcsw"] = int(l.split()[1])
    run_ns, wait_ns, slices = open(f"{base}/schedstat").read().split()
    d.update({"run_ns": int(run_ns), "wait_ns": int(wait_ns), "slices": int(slices)})
    return d


def threads(pid):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out.append(thread_detail(pid, tid))
        except (OSError, ValueError):
            pass
    return sorted(out, key=lambda t: -t["ticks"])


def vmhwm(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmHWM"): return int(l.split()[1])


def interrupts():
    """The machine's interrupts so far, by kind, summed over its CPUs (/proc/interrupts: each
    device's line, and the IPIs: RES rescheduling, CAL function calls, TLB shootdowns...): the
    kernel charges one to whichever thread it interrupts, as system time (no
    IRQ_TIME_ACCOUNTING) and as the cache and TLB it costs."""
    out = {}
    with open("/proc/interrupts") as f:
        ncpu = len(f.readline().split())
        for l in f:
            p = l.split()
            counts = [int(x) for x in p[1:1 + ncpu] if x.isdigit()]
            if len(counts) == ncpu:
                name = p[0].rstrip(":") if not p[0][:-1].isdigit() else p[-1]
                out[name] = out.get(name, 0) + sum(counts)
    return out


env = {k: v for k, v in os.environ.items() if not k.startswith(("LUA_PATH", "LUA_CPATH"))}
TICK = os.sysconf("SC_CLK_TCK")
rec0, irq0 = ticks(rec.pid)[0], interrupts()
t0, t0_wall = time.monotonic(), time.time()
cbd = subprocess.Popen([a.cbd, f"{run}/central-broker.json"], cwd=run, env=env,
                       stdout=open(f"{run}/cbd.out", "w"), stderr=subprocess.STDOUT)
pid = cbd.pid
queue = {}                                     # muxer -> {"max_unack", "max_total", "samples"}
sampling = [True]


def sample_queues():
    """Broker's own statistics (GetProcessingStats over gRPC, every 0.1 s): each muxer's
    unacknowledged_events (read by the output, not yet acknowledged) and total_events (in its
    queue). Broker refreshes them at most once a second, at a queue operation."""
    sys.path.insert(0, a.rpc)
    try:
        import grpc, broker_pb2_grpc
        from google.protobuf import empty_pb2
    except ImportError as e:
        queue["_error"] = str(e)
        return
    ch = grpc.insecure_channel(f"127.0.0.1:{a.grpc_port}")
    stub = broker_pb2_grpc.BrokerStub(ch)
    while sampling[0]:
        try:
            st = stub.GetProcessingStats(empty_pb2.Empty(), timeout=1)
            t = round(time.monotonic() - t0, 2)
            for name, m in st.muxers.items():
                q = queue.setdefault(name, {"max_unack": 0, "max_total": 0, "samples": []})
                q["max_unack"] = max(q["max_unack"], m.unacknowledged_events)
                q["max_total"] = max(q["max_total"], m.total_events)
                if not q["samples"] or q["samples"][-1][1:] != [m.unacknowledged_events, m.total_events]:
                    q["samples"].append([t, m.unacknowledged_events, m.total_events])
        except grpc.RpcError:                 # not listening yet, or stopping
            pass
        time.sleep(0.1)
    ch.close()


sampler = None
if a.rpc:
    import threading
    sampler = threading.Thread(target=sample_queues, daemon=True)
    sampler.start()


def started_threads():
    """cbd's threads once all are started (at most 10 s): Broker's two proc_failover threads
    (the simu input's and the Lua output's), then the threads the script starts at init (no new
    thread for 0.2 s)."""
    seen, since, th = None, None, []
    for _ in range(500):
        try:
            th = threads(pid)
        except OSError:
            th = []
        names = sorted(t["tid"] for t in th)
        if names != seen:
            seen, since = names, time.monotonic()
        elif output_thread(th) is not None and time.monotonic() - since >= 0.2:
            break
        time.sleep(0.02)
    return th


pinned = None
if a.pin:
    # Broker's Lua output thread (cbdthreads.py); threads started afterwards inherit their
    # creator's CPUs
    th = started_threads()
    out = output_thread(th)
    others = set(range(1, os.cpu_count())) or {0}
    pinned = {"output": out["tid"] if out else None, "others": 0}
    for t in th:
        try:
            os.sched_setaffinity(t["tid"], {0} if t["tid"] == pinned["output"] else others)
            pinned["others"] += t["tid"] != pinned["output"]
        except OSError:
            pass
prec = None
if a.perf_record:
    # `perf record -p` samples only the threads that exist when it attaches
    started_threads()
    prec = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "999", "-p", str(pid), "-o", a.perf_record],
                            stdout=subprocess.DEVNULL, stderr=open(f"{run}/perf-record.err", "w"))
strace = None
if a.syscalls:
    out = output_thread(started_threads())
    if out:
        strace = subprocess.Popen(["strace", "-c", "-S", "calls", "-p", str(out["tid"]), "-o", a.syscalls],
                                  stdout=subprocess.DEVNULL, stderr=open(f"{run}/strace.err", "w"))
samples = []                                   # (time, cbd ticks)
reqsize, t_req = -1, t0
t_done, t_active, cpu_active, status = None, t0, 0, "timeout"
while time.monotonic() - t0 < 900:
    time.sleep(0.05)
    if cbd.poll() is not None:
        status = f"cbd exited early, status {cbd.returncode}"; break
    t = time.monotonic()
    try:
        c = ticks(pid)[0]
    except OSError:
        continue
    samples.append((t, c))
    k = len(samples) - 1
    while k > 0 and samples[k][0] > t - 0.2: k -= 1
    if c - samples[k][1] >= 4:                 # active: >= 4 ticks over the last 0.2 s
        t_active, cpu_active = t, c
    sz = os.path.getsize(reqlog)
    if sz != reqsize: reqsize, t_req = sz, t
    if t_done is None and os.path.exists(done): t_done = t
    if t_done is not None and t - t_active >= 1.0 and t - t_req >= 1.0:
        status = "ok"; break
if status == "ok" and rec.poll() is not None:
    status = f"the receiver exited during the run (see {run}/receiver.out)"
res = {"name": a.name, "script": os.path.abspath(a.script), "rep": a.rep, "n": a.n, "rate": a.rate,
       "status": status, "receiver_cpu_s": (ticks(rec.pid)[0] - rec0) / TICK}
if pinned is not None:
    res["pinned"] = pinned
    if pinned["output"] is None:
        res["status"] = status = "pin: Broker's Lua output thread not found"
if status == "ok":
    res.update({"wall_to_feed_done_s": round(t_done - t0, 3), "wall_s": round(t_active - t0, 3),
                "cpu_end_s": round(cpu_active / TICK, 3), "cpu_at_detect_s": round(samples[-1][1] / TICK, 3),
                "vmhwm_kb": vmhwm(pid), "threads": threads(pid),
                "interrupts": {k: v - irq0.get(k, 0) for k, v in interrupts().items() if v > irq0.get(k, 0)}})
sampling[0] = False
if sampler:
    sampler.join(5)
    res["broker_queues"] = queue
for p in (prec, strace):
    if p:
        p.send_signal(signal.SIGINT); p.wait(60)
ts = time.monotonic()
if cbd.poll() is None:
    os.kill(pid, signal.SIGTERM)
    try:
        cbd.wait(60)
    except subprocess.TimeoutExpired:
        cbd.kill(); cbd.wait(); res["killed"] = True
res["stop_s"], res["exit_status"] = round(time.monotonic() - ts, 3), cbd.returncode
time.sleep(0.3)
rec.send_signal(signal.SIGTERM); rec.wait()
acts, last = {}, None
for l in open(reqlog):
    q = json.loads(l); b = q.get("body") or {}
    key = f"{q['code']}:{b.get('event_action')}"
    acts[key] = acts.get(key, 0) + 1
    last = max(last or 0, q["t"])
res["requests"], res["by_code_action"] = sum(acts.values()), acts
res["last_request_s"] = round(last - t0_wall, 3) if last else None
if os.path.exists(f"{run}/stats.json"):
    try: res["connector_stats"] = json.load(open(f"{run}/stats.json"))
    except ValueError as e: res["connector_stats"] = str(e)
line = json.dumps(res)
print(line)
if a.results:
    with open(a.results, "a") as f: f.write(line + "\n")
sys.exit(0 if status == "ok" else 1)
