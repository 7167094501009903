//! The sender lanes give way to Broker's thread: `SCHED_BATCH`, at the niceness they were started with.
//!
//! A lane the committer wakes preempts the thread running on that CPU at once under the
//! default policy; on a small machine that thread is often Broker's own. `SCHED_BATCH`
//! (sched(7)) keeps the thread's share of CPU time and its niceness but gives up that wake-up
//! preemption: it runs when the CPU is free or at the next scheduling tick. A lane only
//! delivers, so a few milliseconds later changes nothing. The committer keeps the default
//! policy: Broker may acknowledge only once every event handed over is committed, and while
//! a state change waits for its commit every event behind it waits with it; as a batch thread
//! on a busy machine (Broker's output thread and `simu` on both cores) its commits came late
//! often enough that Broker held up to 6,165 events (108 ms) unacknowledged, against at most
//! 1,001 (18 ms) with the committer at the default policy, for the same cost on Broker's
//! thread (bench/HISTORY.md section 18: real cbd 23.10, 10,000 services, 1 state change in 100
//! statuses, unthrottled, 8 interleaved rounds). Lanes and committer as batch threads against
//! neither: Broker's output thread -0.6 µs per event unthrottled (median of 6 rounds'
//! differences), -0.1 at 5,000 statuses/s.

use thread_priority::unix::{
    NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
    thread_native_id,
};
use thread_priority::{ThreadPriority, ThreadPriorityValue};

const BATCH: ThreadSchedulePolicy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);

/// Makes the calling thread (a lane) a `SCHED_BATCH` thread when it runs at the default niceness (0);
/// any other niceness (an administrator's `nice`) is left as it is, with the policy. Best
/// effort: a system that refuses leaves the thread as it was.
pub(super) fn give_way() {
    if niceness() != Some(0) {
        return;
    }
    // the crate sets the niceness with the policy, from its 0..=99 scale: the value it maps to 0
    let nice_0 = (0..=99u8)
        .filter_map(|p| ThreadPriorityValue::try_from(p).ok())
        .map(ThreadPriority::Crossplatform)
        .find(|p| p.to_posix(BATCH).ok() == Some(0));
    if let Some(p) = nice_0 {
        let _ = set_thread_priority_and_policy(thread_native_id(), p, BATCH);
    }
}

/// The calling thread's niceness.
fn niceness() -> Option<i64> {
    stat_field(19)
}

/// Field `n` (1-based, as proc(5) numbers them) of `/proc/thread-self/stat`.
fn stat_field(n: usize) -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // the fields after the command name (field 2), which is in parentheses and may hold spaces
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(n - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At the default niceness the thread becomes a batch thread; under `nice` (a test run
    /// with `nice make test`) it is left as it is. Either way its niceness is kept.
    #[test]
    fn a_thread_at_the_default_niceness_becomes_batch_and_keeps_it() {
        std::thread::spawn(|| {
            let nice = niceness();
            // field 41, the policy: 0 SCHED_OTHER, 3 SCHED_BATCH
            assert_eq!(stat_field(41), Some(0), "SCHED_OTHER before");
            give_way();
            let want = if nice == Some(0) { 3 } else { 0 };
            assert_eq!(stat_field(41), Some(want), "niceness {nice:?}");
            assert_eq!(niceness(), nice, "the niceness kept");
        })
        .join()
        .unwrap();
    }
}
