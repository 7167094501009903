"""Which of cbd's threads is which, for the kit's scripts (one place for the rule).

Broker names both failover threads of the kit's configuration `proc_failover`: the simu input's
is created first (the lower tid), the Lua output's later (the higher). A thread is a dict with
at least "comm" and "tid" (run.py's records, or /proc read live)."""


def failovers(threads):
    """Broker's proc_failover threads, the simu input's first."""
    return sorted((t for t in threads if t["comm"] == "proc_failover"), key=lambda t: t["tid"])


def output_thread(threads):
    """Broker's Lua output thread, or None while only one failover thread exists."""
    pf = failovers(threads)
    return pf[-1] if len(pf) >= 2 else None
