//! What to send for an event: remembers, per object, what was observed, which incident is open and which problem waits.
//!
//! The rules (README, "How Centreon states become PagerDuty incidents"):
//! - a problem that passes the filters and has no open incident, or whose state differs from
//!   the one sent, triggers (same `dedup_key`, so PagerDuty updates the open incident);
//! - a problem already sent is not sent again; when it becomes acknowledged in Centreon (flag
//!   of a status, adaptive status or acknowledgement event) the open incident is acknowledged,
//!   unless `send_acknowledgements = 0`; removing the acknowledgement only logs (PagerDuty
//!   has no un-acknowledge);
//! - a recovery resolves the open incident whatever the filters say (downtime, flapping,
//!   acknowledgement): an incident is never left open by a filter;
//! - a problem held back by a condition that ends by itself (downtime, flapping,
//!   acknowledgement, a DOWN host with `suppress_services_of_down_hosts`) is kept, and
//!   triggered when the condition ends if the object is still failing: a problem that starts
//!   in a downtime is never lost;
//! - `downtime_action = resolve`: an open incident is resolved when its object enters a
//!   downtime;
//! - a recovery of an object we have no memory of (first event after a start) is resolved
//!   when the event is the state change itself, so incidents opened before a restart or by
//!   the old Lua connector still close; other OK statuses of unknown objects send nothing.

pub mod filter;
pub mod options;
pub mod seen;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::decision::seen::Seen;
use crate::event::{
    AdaptiveEvent, CheckTimes, Context, Flags, Kind, Names, ObjectKey, StatusEvent,
};
use filter::Rejection;
pub use options::{DecisionOptions, DowntimeAction};

/// The part of a status that can change a decision. Two statuses with the same `Observed`
/// lead to the same decision, so the fast path can skip an unchanged object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub state: i64,
    pub hard: bool,
    pub flags: Flags,
}

impl Observed {
    pub fn of(ev: &StatusEvent) -> Observed {
        Observed {
            state: ev.state,
            hard: ev.hard,
            flags: ev.flags,
        }
    }
}

/// What is sent about an object: PagerDuty's `event_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Trigger => "trigger",
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
        }
    }
}

/// The last status with a check time handled for an object, kept durably with its incident
/// state: Broker hands again, after a crash, every event it was not told was safe, and a
/// status that is not newer than this one changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// Its check time ([`StatusEvent::observed_at`]).
    pub at: i64,
    pub observed: Observed,
}

impl Handled {
    fn of(ev: &StatusEvent) -> Option<Handled> {
        Some(Handled {
            at: ev.observed_at()?,
            observed: Observed::of(ev),
        })
    }

    /// `ev` was checked before this status, or is this status again (same check time, state,
    /// state type and flags). Within one check time a status may still change its flags
    /// (an acknowledgement or a downtime does, without a new check): that one is handled.
    fn supersedes(&self, ev: &StatusEvent) -> bool {
        ev.observed_at()
            .is_some_and(|at| at < self.at || (at == self.at && Observed::of(ev) == self.observed))
    }
}

/// The incident state of an object as the outbox persists it: what [`Memory::restore`] reads
/// back at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub key: ObjectKey,
    /// `Some(state)` when an incident is open.
    pub open_state: Option<i64>,
    pub acknowledged: bool,
    /// Its names as Broker's cache last gave them (`None`: never known).
    pub names: Option<Arc<Names>>,
    /// The last status with a check time handled for the object.
    pub last: Option<Handled>,
}

/// The incident we believe PagerDuty holds for an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incident {
    None,
    Open { state: i64, acknowledged: bool },
}

impl Incident {
    fn is_open(self) -> bool {
        matches!(self, Incident::Open { .. })
    }
}

#[derive(Debug, Clone)]
struct ObjectMemory {
    incident: Incident,
    /// A problem not sent because of a condition that ends by itself ([`Rejection::waits`]).
    held: Option<Box<StatusEvent>>,
    /// The status the open incident was triggered with: held again when a downtime resolves
    /// the incident (`downtime_action = resolve`), and re-sent by a host whose list of
    /// suppressed services changes. Kept only where one of these can happen ([`kept`]).
    sent: Option<Box<StatusEvent>>,
    /// Its names as Broker's cache last gave them with an event sent for it (persisted with
    /// its incident state): used when Broker's cache no longer knows it.
    names: Option<Arc<Names>>,
    /// The last status with a check time handled.
    last: Option<Handled>,
}

/// A copy of the status an incident was triggered with, when the configuration can use it
/// again (about a kilobyte per open incident, not spent otherwise).
fn kept(cfg: &DecisionOptions, ev: &StatusEvent) -> Option<Box<StatusEvent>> {
    let used = cfg.downtime_action == DowntimeAction::Resolve
        || (cfg.suppress_services_of_down_hosts && ev.kind() == Kind::Host);
    used.then(|| Box::new(ev.clone()))
}

impl ObjectMemory {
    fn unseen(incident: Incident) -> ObjectMemory {
        ObjectMemory {
            incident,
            held: None,
            sent: None,
            names: None,
            last: None,
        }
    }
}

/// Why nothing is sent for a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Same state as the one already sent.
    AlreadySent,
    /// A status checked before the last one handled, or that one again (Broker's replay).
    NotNewer,
    /// A recovery with no incident to resolve.
    NoIncident,
    /// PENDING: no check result yet.
    Pending,
    /// The problem does not pass the filters.
    Filtered(Rejection),
    /// The problem waits for its condition to end (downtime, flapping...).
    Held(Rejection),
    /// An acknowledgement with no open incident, or one `send_acknowledgements = 0` turns off.
    NoAcknowledgement,
    /// An event that changes nothing we act on.
    Nothing,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::AlreadySent => f.write_str("state already sent"),
            Skip::NotNewer => f.write_str("not newer than the status already handled"),
            Skip::NoIncident => f.write_str("recovery with no open incident"),
            Skip::Pending => f.write_str("pending state"),
            Skip::Filtered(r) => write!(f, "filtered: {r}"),
            Skip::Held(r) => write!(f, "held until it ends: {r}"),
            Skip::NoAcknowledgement => {
                f.write_str("no open incident to acknowledge (or send_acknowledgements=0)")
            }
            Skip::Nothing => f.write_str("nothing to act on"),
        }
    }
}

/// Which status an outgoing event is built from.
#[derive(Debug, Clone, PartialEq)]
pub enum BuiltFrom {
    /// The event being decided.
    Event,
    /// A status remembered earlier: a held problem now released, or a host's incident
    /// re-sent with its updated list of services.
    Stored(Box<StatusEvent>),
    /// No status: an acknowledgement, or a resolve when a downtime starts.
    Bare,
}

/// One event to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub key: ObjectKey,
    pub action: Action,
    pub source: BuiltFrom,
    /// The trigger opens an incident (none was open before it).
    pub opens: bool,
}

/// What an event leads to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub steps: Vec<Step>,
    /// Why nothing was sent for the event's own object (when nothing was).
    pub skip: Option<Skip>,
    /// The acknowledgement of an open, acknowledged incident was removed in Centreon.
    pub ack_removed: bool,
}

impl Outcome {
    fn skip(why: Skip) -> Outcome {
        Outcome {
            skip: Some(why),
            ..Outcome::default()
        }
    }

    /// The actions sent for the event's own object, in order (tests, logs).
    pub fn actions(&self) -> Vec<Action> {
        self.steps.iter().map(|s| s.action).collect()
    }
}

/// A fast hasher for [`ObjectKey`]s (two integers Broker assigns, so no flooding to fear):
/// the multiply-rotate mix of rustc's `FxHasher`. The details path's lookups are on Broker's
/// thread, where SipHash cost about 200 instructions each (the per-event one is in
/// [`crate::decision::seen`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }

    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// Per-object memory of one connector.
#[derive(Debug, Default)]
pub struct Memory {
    objects: HashMap<ObjectKey, ObjectMemory, BuildHasherDefault<KeyHasher>>,
    /// What was last observed of each object: apart, for the fast path (crate::decision::seen).
    seen: Seen,
}

/// What an object never observed (or only restored from the outbox) counts as.
const UNSEEN: Observed = Observed {
    state: -1,
    hard: false,
    flags: Flags {
        acknowledged: false,
        in_downtime: false,
        flapping: false,
    },
};

impl Memory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fast path: true when this object was seen with exactly this observation, so the
    /// decision is "nothing to send" without looking at the rest of the event.
    pub fn unchanged(&self, key: ObjectKey, observed: Observed) -> bool {
        self.seen.get(key) == Some(observed)
    }

    /// Fast path without the flags and the state type: true when this object was last seen
    /// OK (UP for a host) and is OK again. Neither its acknowledgement, downtime and flapping
    /// flags nor its state type (HARD or SOFT) can change a decision: an OK status only ever
    /// resolves, and an object seen OK has no open incident and nothing held (the status that
    /// made it OK resolved and cleared them, whatever its flags and type). What is remembered
    /// of it is left as it was: that only matters again for a problem, which is a state change
    /// and is examined in full.
    pub fn stays_ok(&self, key: ObjectKey, state: i64) -> bool {
        state == 0 && matches!(self.seen.get(key), Some(o) if o.state == 0)
    }

    /// Does this memory know anything of `key` (seen, or restored from the outbox)?
    pub fn knows(&self, key: ObjectKey) -> bool {
        self.objects.contains_key(&key)
    }

    /// Fast path for the first status of an object this memory knows nothing of (not seen,
    /// not restored from the outbox), when it is OK (UP): records it and answers true when the
    /// decision is "nothing to send", as [`Memory::decide`] would after reading the whole
    /// event: an OK status of an unknown object resolves only when it is the state change
    /// itself (`times`), and otherwise changes nothing but what is remembered of the object
    /// (observed OK, its check time as the last status handled). Its state type and flags are
    /// not known here and change no decision of an OK status: they are remembered as HARD
    /// and none. False (nothing recorded): ask about the whole event.
    pub fn first_ok(&mut self, key: ObjectKey, times: CheckTimes) -> bool {
        if self.knows(key) || times.is_state_change() {
            return false;
        }
        let observed = Observed {
            state: 0,
            hard: true,
            flags: Flags::default(),
        };
        self.seen.insert(key, observed);
        let mut entry = ObjectMemory::unseen(Incident::None);
        entry.last = times.observed_at().map(|at| Handled { at, observed });
        self.objects.insert(key, entry);
        true
    }

    /// The incident we believe is open for `key`.
    pub fn incident(&self, key: ObjectKey) -> Incident {
        self.objects
            .get(&key)
            .map_or(Incident::None, |e| e.incident)
    }

    /// Restores incident states persisted by an earlier run. The objects count as known, and
    /// their first status is examined in full.
    pub fn restore(&mut self, states: impl IntoIterator<Item = ObjectState>) {
        for s in states {
            let incident = match s.open_state {
                Some(state) => Incident::Open {
                    state,
                    acknowledged: s.acknowledged,
                },
                None => Incident::None,
            };
            let mut entry = ObjectMemory::unseen(incident);
            entry.names = s.names;
            entry.last = s.last;
            self.objects.insert(s.key, entry);
        }
    }

    /// Completes `ctx` with the names remembered for `key` where Broker's cache did not know
    /// the object (after a crash Broker forgets what was defined since its last clean stop).
    /// True when something was taken from memory.
    pub fn recall(&self, key: ObjectKey, ctx: &mut Context) -> bool {
        match self.objects.get(&key).and_then(|e| e.names.as_deref()) {
            Some(names) => names.fill(key, ctx),
            None => false,
        }
    }

    /// Remembers the names Broker's cache gave for `key` (an object something is sent for),
    /// when it knew the whole object and they changed.
    pub fn remember(&mut self, key: ObjectKey, ctx: &Context) {
        let Some(entry) = self.objects.get_mut(&key) else {
            return;
        };
        if entry.names.as_deref().is_some_and(|n| n.same_as(ctx)) {
            return;
        }
        if let Some(names) = Names::of(key, ctx) {
            entry.names = Some(Arc::new(names));
        }
    }

    /// The incident state of `key`, as persisted.
    pub fn state(&self, key: ObjectKey) -> ObjectState {
        let entry = self.objects.get(&key);
        let (open_state, acknowledged) = match entry.map_or(Incident::None, |e| e.incident) {
            Incident::Open {
                state,
                acknowledged,
            } => (Some(state), acknowledged),
            Incident::None => (None, false),
        };
        ObjectState {
            key,
            open_state,
            acknowledged,
            names: entry.and_then(|e| e.names.clone()),
            last: entry.and_then(|e| e.last),
        }
    }

    /// Number of objects remembered.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Service problems of `host_id` held because the host is DOWN, by service id.
    pub fn suppressed_services(&self, host_id: u64) -> Vec<&StatusEvent> {
        let mut list: Vec<&StatusEvent> = self
            .objects
            .iter()
            .filter(|(k, _)| k.host_id == host_id && k.service_id != 0)
            .filter_map(|(_, e)| e.held.as_deref())
            .collect();
        list.sort_by_key(|ev| ev.key.service_id);
        list
    }

    /// Is the host known to be DOWN or UNREACHABLE?
    fn host_down(&self, host_id: u64) -> bool {
        self.seen
            .get(ObjectKey {
                host_id,
                service_id: 0,
            })
            .is_some_and(|o| matches!(o.state, 1 | 2))
    }

    /// Why a problem may not open an incident now, including a DOWN host.
    fn rejection(&self, cfg: &DecisionOptions, ev: &StatusEvent) -> Option<Rejection> {
        filter::problem_filter(&cfg.filter, ev).or_else(|| {
            (cfg.suppress_services_of_down_hosts
                && ev.kind() == Kind::Service
                && self.host_down(ev.key.host_id))
            .then_some(Rejection::HostDown)
        })
    }

    /// Decides what to send for a host or service status, and records it.
    pub fn decide(&mut self, cfg: &DecisionOptions, ev: &StatusEvent) -> Outcome {
        let last = self.objects.get(&ev.key).and_then(|e| e.last);
        if last.is_some_and(|l| l.supersedes(ev)) {
            return Outcome::skip(Skip::NotNewer);
        }
        let known = self.knows(ev.key);
        let rejection = (ev.state != 0).then(|| self.rejection(cfg, ev)).flatten();
        let before = self.seen.get(ev.key).unwrap_or(UNSEEN);
        self.seen.insert(ev.key, Observed::of(ev));
        let entry = self
            .objects
            .entry(ev.key)
            .or_insert_with(|| ObjectMemory::unseen(Incident::None));
        // a status without a check time leaves the last one with a time as the reference
        if let Some(handled) = Handled::of(ev) {
            entry.last = Some(handled);
        }
        let mut out = decide_status(cfg, ev, known, before.flags, rejection, entry);
        if ev.kind() == Kind::Host
            && cfg.suppress_services_of_down_hosts
            && ev.state == 0
            && matches!(before.state, 1 | 2)
        {
            out.steps.extend(self.release_services(cfg, ev.key.host_id));
        }
        if out.skip == Some(Skip::Held(Rejection::HostDown)) {
            out.steps.extend(self.host_update(ev.key.host_id));
        }
        out
    }

    /// Applies a BBDO 3 adaptive status (acknowledgement or downtime depth changed).
    pub fn adapt(&mut self, cfg: &DecisionOptions, ad: &AdaptiveEvent) -> Outcome {
        let Some(entry) = self.objects.get_mut(&ad.key) else {
            return Outcome::skip(Skip::Nothing);
        };
        let mut out = Outcome::default();
        let mut observed = self.seen.get(ad.key).unwrap_or(UNSEEN);
        if let Some(ack) = ad.acknowledged {
            observed.flags.acknowledged = ack;
        }
        if let Some(dt) = ad.in_downtime {
            observed.flags.in_downtime = dt;
        }
        self.seen.insert(ad.key, observed);
        let flags = observed.flags;
        if let Incident::Open {
            state,
            acknowledged,
        } = entry.incident
        {
            if flags.in_downtime && cfg.downtime_action == DowntimeAction::Resolve {
                entry.incident = Incident::None;
                // still failing: triggered again when the downtime ends
                entry.held = entry.sent.take();
                out.steps.push(bare(ad.key, Action::Resolve));
            } else if flags.acknowledged && !acknowledged && cfg.send_acknowledgements {
                entry.incident = Incident::Open {
                    state,
                    acknowledged: true,
                };
                out.steps.push(bare(ad.key, Action::Acknowledge));
            } else if ad.acknowledged == Some(false) && acknowledged {
                entry.incident = Incident::Open {
                    state,
                    acknowledged: false,
                };
                out.ack_removed = true;
            }
        }
        if let Some(held) = entry.held.as_mut() {
            held.flags = flags;
        }
        if let Some(step) = self.release(cfg, ad.key) {
            out.steps.push(step);
        }
        if out.steps.is_empty() && !out.ack_removed {
            out.skip = Some(Skip::Nothing);
        }
        out
    }

    /// Applies a Centreon acknowledgement event: true when the open, not yet acknowledged
    /// incident must now be acknowledged in PagerDuty (`send_acknowledgements` permitting).
    pub fn acknowledge(&mut self, cfg: &DecisionOptions, key: ObjectKey) -> bool {
        match self.objects.get_mut(&key) {
            Some(ObjectMemory {
                incident: Incident::Open { acknowledged, .. },
                ..
            }) if !*acknowledged && cfg.send_acknowledgements => {
                *acknowledged = true;
                true
            }
            _ => false,
        }
    }

    /// An acknowledgement removed in Centreon: true when it concerned an open, acknowledged
    /// incident (which PagerDuty keeps acknowledged). A later acknowledgement is sent again.
    pub fn unacknowledge(&mut self, key: ObjectKey) -> bool {
        match self.objects.get_mut(&key) {
            Some(ObjectMemory {
                incident: Incident::Open { acknowledged, .. },
                ..
            }) if *acknowledged => {
                *acknowledged = false;
                true
            }
            _ => false,
        }
    }

    /// Sends the held problem of `key` if nothing holds it back any more.
    fn release(&mut self, cfg: &DecisionOptions, key: ObjectKey) -> Option<Step> {
        let held = self.objects.get(&key)?.held.as_deref()?;
        match self.rejection(cfg, held) {
            Some(_) => None,
            None => {
                let entry = self.objects.get_mut(&key)?;
                let held = entry.held.take()?;
                let opens = !entry.incident.is_open();
                entry.incident = Incident::Open {
                    state: held.state,
                    acknowledged: false,
                };
                entry.sent = kept(cfg, &held);
                Some(Step {
                    key,
                    action: Action::Trigger,
                    source: BuiltFrom::Stored(held),
                    opens,
                })
            }
        }
    }

    /// The host is UP again: its held service problems are sent if nothing else holds them.
    fn release_services(&mut self, cfg: &DecisionOptions, host_id: u64) -> Vec<Step> {
        let mut keys: Vec<ObjectKey> = self
            .objects
            .iter()
            .filter(|(k, e)| k.host_id == host_id && k.service_id != 0 && e.held.is_some())
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys.into_iter()
            .filter_map(|k| self.release(cfg, k))
            .collect()
    }

    /// The host's open incident, re-sent so that it lists its suppressed services.
    fn host_update(&self, host_id: u64) -> Option<Step> {
        let key = ObjectKey {
            host_id,
            service_id: 0,
        };
        let entry = self.objects.get(&key)?;
        let sent = entry.sent.as_ref().filter(|_| entry.incident.is_open())?;
        Some(Step {
            key,
            action: Action::Trigger,
            source: BuiltFrom::Stored(sent.clone()),
            opens: false,
        })
    }
}

fn bare(key: ObjectKey, action: Action) -> Step {
    Step {
        key,
        action,
        source: BuiltFrom::Bare,
        opens: false,
    }
}

fn current(ev: &StatusEvent, action: Action, opens: bool) -> Outcome {
    Outcome {
        steps: vec![Step {
            key: ev.key,
            action,
            source: BuiltFrom::Event,
            opens,
        }],
        ..Outcome::default()
    }
}

/// The rules for one status of one object; `entry` is updated in place.
fn decide_status(
    cfg: &DecisionOptions,
    ev: &StatusEvent,
    known: bool,
    flags_before: Flags,
    rejection: Option<Rejection>,
    entry: &mut ObjectMemory,
) -> Outcome {
    let pending = ev.kind() == Kind::Service && ev.state == 4;
    if ev.state == 0 {
        entry.held = None;
        entry.sent = None;
        return match entry.incident {
            Incident::Open { .. } => {
                entry.incident = Incident::None;
                current(ev, Action::Resolve, false)
            }
            Incident::None if !known && ev.is_state_change() => current(ev, Action::Resolve, false),
            Incident::None => Outcome::skip(Skip::NoIncident),
        };
    }
    if pending {
        return Outcome::skip(Skip::Pending);
    }
    let mut ack_removed = false;
    if let Incident::Open {
        state,
        acknowledged: true,
    } = entry.incident
        && !ev.flags.acknowledged
        && flags_before.acknowledged
    {
        entry.incident = Incident::Open {
            state,
            acknowledged: false,
        };
        ack_removed = true;
    }
    let mut out = decide_problem(cfg, ev, rejection, entry);
    out.ack_removed = ack_removed;
    out
}

fn decide_problem(
    cfg: &DecisionOptions,
    ev: &StatusEvent,
    rejection: Option<Rejection>,
    entry: &mut ObjectMemory,
) -> Outcome {
    let hold = |entry: &mut ObjectMemory, r: Rejection| {
        entry.held = Some(Box::new(ev.clone()));
        Outcome::skip(Skip::Held(r))
    };
    if let Incident::Open {
        state,
        acknowledged,
    } = entry.incident
    {
        if ev.flags.in_downtime && cfg.downtime_action == DowntimeAction::Resolve {
            entry.incident = Incident::None;
            entry.sent = None;
            entry.held = Some(Box::new(ev.clone()));
            return Outcome {
                steps: vec![bare(ev.key, Action::Resolve)],
                ..Outcome::default()
            };
        }
        if state == ev.state {
            entry.held = None;
            if ev.flags.acknowledged && !acknowledged && cfg.send_acknowledgements {
                entry.incident = Incident::Open {
                    state,
                    acknowledged: true,
                };
                return current(ev, Action::Acknowledge, false);
            }
            if !cfg.dedup(ev.kind()) && rejection.is_none() {
                // enable_*_status_dedup = 0: every status of the problem is sent again
                entry.sent = kept(cfg, ev);
                return current(ev, Action::Trigger, false);
            }
            return Outcome::skip(Skip::AlreadySent);
        }
    }
    match rejection {
        Some(r) if r.waits() => hold(entry, r),
        Some(r) => {
            entry.held = None;
            Outcome::skip(Skip::Filtered(r))
        }
        None => {
            let opens = !entry.incident.is_open();
            entry.held = None;
            entry.incident = Incident::Open {
                state: ev.state,
                acknowledged: false,
            };
            entry.sent = kept(cfg, ev);
            current(ev, Action::Trigger, opens)
        }
    }
}

#[cfg(test)]
mod tests;
