//! One output's connector: configuration, per-object memory and delivery, behind the Lua module and the C ABI.

use std::sync::Arc;

use crate::config::{Config, ConfigError, ParamValue, Warning};
use crate::decision::Action;
use crate::decision::{BuiltFrom, Memory, Observed, Outcome, Skip, Step};
use crate::delivery::{Body, Delivery, NewEvent, Transport};
use crate::event::{
    CheckTimes, Context, Event, EventClass, EventError, Kind, ObjectKey, RawEvent, StatusEvent,
    event_type, state_name,
};
use crate::http::send::Sender;
use crate::log::{Level, Sink};
use crate::outbox::{Outbox, OutboxError};
use crate::payload::{self, Note, Outgoing};

/// Answer of the fast path for a status event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quick {
    /// Nothing to send: the acknowledgement verdict for Broker.
    Done(bool),
    /// Nothing to send (the verdict), and the object stays OK ([`Memory::stays_ok`]): its
    /// next OK status would be answered the same, so a host may answer it itself while every
    /// event is stored (the Lua bridge's `stays_ok` table).
    StaysOk(bool),
    /// The object changed: hand over the whole event with its cache context ([`Connector::submit`]).
    NeedDetails,
    /// Asked without the flags ([`Connector::quick_state`]) and they may matter: ask again
    /// with them ([`Connector::quick_status`]).
    NeedFlags,
    /// Asked about the OK status of an object never seen ([`Connector::quick_state`]): ask
    /// again with its check times ([`Connector::quick_first_ok`]).
    NeedTimes,
}

/// Why a connector could not be created, by the part that failed. The message names the
/// parameter and never holds a secret.
#[derive(Debug)]
pub enum InitError {
    /// A parameter is wrong.
    Config(ConfigError),
    /// `log_path` cannot be used: why.
    Log(String),
    /// The HTTP client cannot be set up (CA file, proxy): the message names the parameter or
    /// variable.
    Http(String),
    /// The outbox cannot be opened or read.
    Outbox(OutboxError),
    /// The delivery threads could not be started.
    Threads(std::io::Error),
}

impl InitError {
    /// Another running output or `pagerduty-event` holds the outbox.
    pub fn outbox_in_use(&self) -> bool {
        matches!(self, InitError::Outbox(e) if e.is_in_use())
    }
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Config(e) => write!(f, "{e}"),
            InitError::Log(why) => write!(f, "parameter 'log_path': {why}"),
            InitError::Http(why) => f.write_str(why),
            InitError::Outbox(e) => write!(f, "{e}"),
            InitError::Threads(e) => write!(f, "cannot start threads: {e}"),
        }
    }
}

impl std::error::Error for InitError {}

impl From<ConfigError> for InitError {
    fn from(e: ConfigError) -> Self {
        InitError::Config(e)
    }
}

impl From<OutboxError> for InitError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::Threads(e) => InitError::Threads(e),
            e => InitError::Outbox(e),
        }
    }
}

/// The state of one output. Methods taking `&mut self` run on the caller's thread
/// (Broker's output thread for Lua) and never do network I/O.
pub struct Connector {
    cfg: Config,
    log: Arc<Sink>,
    memory: Memory,
    delivery: Delivery,
    /// Accepted `_type`s, indexed for the hot path.
    accepted: Vec<u32>,
    /// Events decided, kept when asked ([`Connector::keep_decided`]: `replay --dry-run`).
    decided: Option<Vec<Outgoing>>,
}

impl Connector {
    /// Creates a connector from Broker's parameters.
    pub fn from_params(params: &[(String, ParamValue)]) -> Result<Connector, InitError> {
        let (cfg, warnings) = Config::from_params(params)?;
        Self::build(cfg, &warnings, None, true)
    }

    /// Creates a connector from a JSON object of parameters (C ABI, command line).
    pub fn from_json(v: &serde_json::Value) -> Result<Connector, InitError> {
        let (cfg, warnings) = Config::from_json(v)?;
        Self::new(cfg, &warnings, None)
    }

    /// Creates a connector; `log` overrides the log file (tests).
    pub fn new(
        cfg: Config,
        warnings: &[Warning],
        log: Option<Arc<Sink>>,
    ) -> Result<Connector, InitError> {
        Self::build(cfg, warnings, log, false)
    }

    /// `broker`: Broker's output, whose outbox rows of an earlier run may have been
    /// delivered before a kill -9 ([`Outbox::settle_resumed`]); the command line's queued
    /// events are kept as they are (a later invocation sends them in order).
    fn build(
        cfg: Config,
        warnings: &[Warning],
        log: Option<Arc<Sink>>,
        broker: bool,
    ) -> Result<Connector, InitError> {
        let log = match log {
            Some(l) => l,
            None => {
                let level = Level::from_number(cfg.log.level as i64);
                if let Some(dir) = cfg.log.path.parent()
                    && !dir.as_os_str().is_empty()
                    && !dir.is_dir()
                {
                    return Err(InitError::Log(format!(
                        "directory {} does not exist",
                        crate::params::unless_key(&dir.display().to_string())
                    )));
                }
                crate::log::check_path(&cfg.log.path).map_err(InitError::Log)?;
                Arc::new(Sink::to_file(&cfg.log.path, level).formatted(cfg.log.format))
            }
        };
        let _log = log.enter();
        for w in warnings {
            log::warn!("{}", w.0);
        }
        let transport = if cfg.delivery.send_data_test {
            Transport::LogOnly
        } else {
            Transport::Http(
                Sender::new(&cfg.http, &cfg.routing_key, crate::delivery::LANES)
                    .map_err(|e| InitError::Http(e.to_string()))?,
            )
        };
        let (mut outbox, moved_aside) = Outbox::open(&cfg.outbox.path)?;
        if let Some(msg) = moved_aside {
            log::error!("{}", msg);
        }
        if broker {
            let dropped = outbox.settle_resumed()?;
            if dropped > 0 {
                log::info!(
                    "{dropped} event(s) left by an earlier run superseded by a later one of their incident; not sent again"
                );
            }
        }
        let mut memory = Memory::new();
        memory.restore(outbox.objects()?);
        let delivery = Delivery::start(&cfg.delivery_setup(), outbox, Arc::clone(&log), transport)?;
        // a notice: written at the default log_level 1, but not a WARNING (an alert on
        // WARNING lines would fire on every reload)
        log::warn!(target: crate::log::NOTICE, "centreon-pagerduty {} started: endpoint {}, routing key {}, log level {}",
            crate::VERSION,
            cfg.http.endpoint,
            cfg.routing_key,
            cfg.log.level
        );
        let mut accepted = cfg.accepted_types.clone();
        accepted.sort_unstable();
        Ok(Connector {
            cfg,
            log,
            memory,
            delivery,
            accepted,
            decided: None,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Writes `msg` to this output's log at `level` (the Lua bridge's own lines).
    pub fn log(&self, level: Level, msg: &str) {
        let _log = self.log.enter();
        log::log!(level.into(), "{msg}");
    }

    /// The raw fields the `format_file` templates read beyond the usual ones, space separated
    /// (`None` without templates): the Lua bridge reads them from the event and from
    /// `broker_cache` (`cache.host.X`, `cache.service.X`) only then.
    pub fn template_fields(&self) -> Option<String> {
        self.cfg.payload.templates.as_ref().map(|t| t.fields())
    }

    /// Is this event type one we act on? (`filter()`; cheap.)
    pub fn accepts(&self, category: u32, element: u32) -> bool {
        self.accepted
            .binary_search(&event_type(category, element))
            .is_ok()
    }

    /// Broker's acknowledgement verdict: every relevant event handed over so far is durably
    /// stored in the outbox.
    pub fn verdict(&self) -> bool {
        self.delivery.acknowledged()
    }

    /// Events an earlier run left in the outbox, found at start (sent first).
    pub fn resumed(&self) -> u64 {
        self.delivery.resumed()
    }

    /// Events handed over and not yet delivered or rejected.
    pub fn outstanding(&self) -> u64 {
        self.delivery.outstanding()
    }

    /// Fast path for a status event: decides from the few fields that can change a decision.
    pub fn quick_status(
        &self,
        category: u32,
        element: u32,
        key: ObjectKey,
        observed: Observed,
    ) -> Quick {
        self.quick(category, element, key, |c| {
            let resend = observed.state > 0
                && !c.cfg.decision.dedup(key.kind())
                && !(key.kind() == Kind::Service && observed.state == 4);
            if !resend && c.memory.unchanged(key, observed) {
                Quick::Done(c.verdict())
            } else {
                Quick::NeedDetails
            }
        })
    }

    /// The fast path's first question, before the state type and the acknowledgement,
    /// downtime and flapping fields are read (each field costs Broker a call): an object that
    /// stays OK (or UP) is done, as neither its flags nor its state type change a decision
    /// ([`Memory::stays_ok`], answered [`Quick::StaysOk`]); the first OK status of an object
    /// the library has no memory of answers [`Quick::NeedTimes`] (the host asks
    /// [`Connector::quick_first_ok`]); anything else answers [`Quick::NeedFlags`], and the
    /// host asks [`Connector::quick_status`].
    pub fn quick_state(&self, category: u32, element: u32, key: ObjectKey, state: i64) -> Quick {
        self.quick(category, element, key, |c| {
            if c.memory.stays_ok(key, state) {
                Quick::StaysOk(c.verdict())
            } else if state == 0 && !c.memory.knows(key) {
                Quick::NeedTimes
            } else {
                Quick::NeedFlags
            }
        })
    }

    /// The fast path's second question about the first OK status of an object never seen
    /// (after [`Quick::NeedTimes`]), with its check times: when it is not the state change
    /// itself the decision is "nothing to send" without the rest of the event
    /// ([`Memory::first_ok`]: remembered, answered [`Quick::StaysOk`]); otherwise (a recovery
    /// that may close an incident opened before a restart) [`Quick::NeedFlags`], and the
    /// host goes on as for any status.
    pub fn quick_first_ok(
        &mut self,
        category: u32,
        element: u32,
        key: ObjectKey,
        times: CheckTimes,
    ) -> Quick {
        let first = self.is_status_of(category, element, key) && self.memory.first_ok(key, times);
        if !first {
            return Quick::NeedFlags;
        }
        if self.log.level() >= Level::Debug {
            let _log = self.log.enter();
            // as `apply` logs it; the names are not looked up on this path
            let state = state_name(key.kind(), 0);
            log::debug!("{key} {state}: nothing sent ({})", Skip::NoIncident);
        }
        self.delivery.seen();
        Quick::StaysOk(self.verdict())
    }

    /// The fast path's question for an event that is not a status (acknowledgement, downtime,
    /// adaptive status): [`Quick::NeedDetails`] when its type is accepted, else the verdict.
    pub fn quick_event(&self, category: u32, element: u32) -> Quick {
        let nobody = ObjectKey {
            host_id: 0,
            service_id: 0,
        };
        self.quick(category, element, nobody, |_| Quick::NeedDetails)
    }

    /// Counts events a host answered itself, without asking (the Lua bridge's objects that
    /// stay OK): statistics `events_seen` and `events_answered_by_script`.
    pub fn count_answered_by_script(&self, events: u64) {
        if events > 0 {
            self.delivery.answered_by_script(events);
        }
    }

    /// The part of both fast-path questions that does not depend on the status: answers for
    /// the types that are not statuses, and counts the event (once: not when the answer is
    /// [`Quick::NeedFlags`] or [`Quick::NeedTimes`], as the same event is asked about again).
    fn quick(
        &self,
        category: u32,
        element: u32,
        key: ObjectKey,
        status: impl FnOnce(&Self) -> Quick,
    ) -> Quick {
        let answer = if self.is_status_of(category, element, key) {
            status(self)
        } else if EventClass::of(category, element).is_some() && self.accepts(category, element) {
            Quick::NeedDetails
        } else {
            Quick::Done(self.verdict())
        };
        if !matches!(answer, Quick::NeedFlags | Quick::NeedTimes) {
            self.delivery.seen();
        }
        answer
    }

    /// Is this an accepted status type about an object of `key`'s kind? A key of the other
    /// kind (a service status without a service id, read as 0) is never another object's
    /// memory: the details report what is wrong with the event.
    fn is_status_of(&self, category: u32, element: u32, key: ObjectKey) -> bool {
        matches!(EventClass::of(category, element), Some(EventClass::Status(kind, _)) if kind == key.kind())
            && self.accepts(category, element)
    }

    /// Handles a whole event handed over by a host (C ABI, tools). A malformed event is
    /// logged and skipped (it never blocks the acknowledgement); the verdict is returned either way.
    pub fn submit(&mut self, raw: &RawEvent) -> Result<bool, EventError> {
        self.delivery.seen();
        self.submit_details(raw)
    }

    /// Like [`Connector::submit`], for the details of an event already counted by
    /// [`Connector::quick_status`] (the Lua bridge's second call).
    pub fn submit_details(&mut self, raw: &RawEvent) -> Result<bool, EventError> {
        let _log = self.log.enter();
        let result = self.handle(raw);
        match &result {
            Err(e) if e.is_missing_id() => {
                let level = crate::decision::filter::nil_id_level(&self.cfg.decision.filter);
                log::log!(
                    level.into(),
                    "{e}; event skipped (skip_nil_id={}: an event without its ids cannot \
                         become an incident)",
                    self.cfg.decision.filter.skip_nil_id as u8
                );
            }
            Err(e) => log::error!("{e}; event skipped"),
            Ok(()) => {}
        }
        result.map(|()| self.verdict())
    }

    fn handle(&mut self, raw: &RawEvent) -> Result<(), EventError> {
        let (category, element) = raw.category_element()?;
        if !self.accepts(category, element) {
            return Ok(());
        }
        let mut event = Event::from_raw(raw)?;
        // names Broker's cache no longer knows (it forgets, after a crash, what was defined
        // since its last clean stop) come from what was remembered with the incident
        let (key, ctx) = match &mut event {
            Some(Event::Status(e)) => (e.key, Some(&mut e.ctx)),
            Some(Event::Adaptive(e)) => (e.key, Some(&mut e.ctx)),
            Some(Event::Acknowledgement(e)) => (e.key, Some(&mut e.ctx)),
            Some(Event::Downtime(k)) => (*k, None),
            None => return Ok(()),
        };
        if let Some(ctx) = ctx
            && self.memory.recall(key, ctx)
            && log::log_enabled!(log::Level::Debug)
        {
            log::debug!(
                "{} is unknown to Broker's cache; named as when it was last sent",
                label(key, ctx)
            );
        }
        if let (Some(t), Some(ctx)) = (
            self.cfg.payload.templates.as_deref(),
            event.as_mut().and_then(Event::context_mut),
        ) {
            t.capture(raw, ctx);
        }
        match event {
            Some(Event::Status(ev)) => {
                let outcome = self.memory.decide(&self.cfg.decision, &ev);
                self.apply(ev.key, &ev.ctx, Some(&ev), outcome, None);
            }
            Some(Event::Adaptive(ad)) => {
                let outcome = self.memory.adapt(&self.cfg.decision, &ad);
                self.apply(ad.key, &ad.ctx, None, outcome, None);
            }
            Some(Event::Acknowledgement(ack)) => {
                let mut outcome = Outcome::default();
                if ack.deletion_time.is_some() {
                    outcome.ack_removed = self.memory.unacknowledge(ack.key);
                } else if self.memory.acknowledge(&self.cfg.decision, ack.key) {
                    outcome.steps.push(Step {
                        key: ack.key,
                        action: Action::Acknowledge,
                        source: BuiltFrom::Bare,
                        opens: false,
                    });
                } else {
                    outcome.skip = Some(Skip::NoAcknowledgement);
                }
                let note = Note::acknowledged(
                    ack.author.as_deref(),
                    ack.comment.as_deref(),
                    ack.entry_time,
                );
                self.apply(ack.key, &ack.ctx, None, outcome, Some(note));
            }
            Some(Event::Downtime(_)) | None => {}
        }
        Ok(())
    }

    /// Turns a decision into outgoing events, and logs it. `ev` is the status decided on (if
    /// any); `ack` the acknowledgement event's note (if any).
    fn apply(
        &mut self,
        key: ObjectKey,
        ctx: &Context,
        ev: Option<&StatusEvent>,
        outcome: Outcome,
        ack: Option<Note>,
    ) {
        if outcome.ack_removed {
            log::warn!(
                "acknowledgement of {} removed in Centreon while its incident is open; PagerDuty \
                 has no un-acknowledge: the incident stays acknowledged there (a new \
                 acknowledgement is sent again)",
                label(key, ctx)
            );
        }
        if let Some(why) = outcome.skip
            && log::log_enabled!(log::Level::Debug)
        {
            let state = ev.map_or("", |e| e.state_name());
            log::debug!("{} {state}: nothing sent ({why})", label(key, ctx));
        }
        for step in outcome.steps {
            let Step {
                key,
                action,
                source,
                opens,
            } = step;
            self.memory.remember(
                key,
                match (&source, ev) {
                    (BuiltFrom::Stored(held), _) => &held.ctx,
                    (BuiltFrom::Event, Some(st)) => &st.ctx,
                    _ => ctx,
                },
            );
            let body = match (source, ev) {
                (BuiltFrom::Stored(held), _) => match self.status_out(key, action, &held) {
                    Some(out) => self.stored(out),
                    None => Body::Status(held, action),
                },
                (BuiltFrom::Event, Some(st)) => match self.status_out(key, action, st) {
                    Some(out) => self.stored(out),
                    None => Body::Status(Box::new(st.clone()), action),
                },
                (BuiltFrom::Event | BuiltFrom::Bare, _) => {
                    let note = match (action, ack) {
                        (Action::Acknowledge, Some(note)) => note,
                        (Action::Acknowledge, None) => Note::acknowledged(None, None, None),
                        _ => Note::downtime_started(),
                    };
                    let out = payload::Builder::new(&self.cfg.payload).note(key, ctx, &note);
                    self.log_step(key, action, None, ctx, &out.dedup_key);
                    self.stored(out)
                }
            };
            self.push(key, body, opens);
        }
    }

    /// The event for status `st` when it is built on this thread: with templates, the list of
    /// a down host's services (both read this thread's state) or decisions kept (wanted at
    /// once); `None` when the committer builds it, off Broker's thread (a plain status: its
    /// payload is most of the work of a state change). Logs the step.
    fn status_out(&self, key: ObjectKey, action: Action, st: &StatusEvent) -> Option<Outgoing> {
        let suppress = self.cfg.decision.suppress_services_of_down_hosts
            && st.kind() == Kind::Host
            && action == Action::Trigger;
        let builder = payload::Builder::new(&self.cfg.payload);
        if self.decided.is_none()
            && !suppress
            && let Some(dedup_key) = builder.dedup_key_unbuilt(st.key)
        {
            self.log_step(key, action, Some(st), &st.ctx, &dedup_key);
            return None;
        }
        let mut out = builder.status(st, action);
        if suppress {
            let services = self.memory.suppressed_services(st.key.host_id);
            payload::list_suppressed_services(&mut out, &services);
        }
        self.log_step(key, action, Some(st), &st.ctx, &out.dedup_key);
        Some(out)
    }

    /// Logs one event about to be handed over: a warning when Broker's cache does not know
    /// the object's names, the event itself at debug level.
    fn log_step(
        &self,
        key: ObjectKey,
        action: Action,
        status: Option<&StatusEvent>,
        names: &Context,
        dedup_key: &str,
    ) {
        if names.host_name.is_none() || (key.service_id != 0 && names.service_description.is_none())
        {
            log::warn!("{key} is unknown to Broker's cache; sending it with its id");
        }
        if log::log_enabled!(log::Level::Debug) {
            let state = status.map_or("", |s| s.state_name());
            log::debug!(
                "{} {state}: {} {dedup_key}",
                label(key, names),
                action.as_str()
            );
        }
    }

    /// Sends an event built elsewhere (the command line's `send` and `pandora`) through the
    /// outbox, like the events decided here. It is about no host or service: the incident
    /// state recorded with it is that of host 0, which Centreon never uses (nothing open).
    pub fn push_outgoing(&mut self, out: Outgoing) {
        let _log = self.log.enter();
        let nobody = ObjectKey {
            host_id: 0,
            service_id: 0,
        };
        let body = self.stored(out);
        self.push(nobody, body, false);
    }

    /// From now on, also keeps every event decided, in decision order, for
    /// [`Connector::take_decided`] (`pagerduty-event replay --dry-run`).
    pub fn keep_decided(&mut self) {
        self.decided.get_or_insert_with(Vec::new);
    }

    /// The events decided since the last call (empty unless [`Connector::keep_decided`]).
    pub fn take_decided(&mut self) -> Vec<Outgoing> {
        self.decided
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// An event built on this thread, kept too when decisions are ([`Connector::keep_decided`]).
    fn stored(&mut self, out: Outgoing) -> Body {
        if let Some(kept) = self.decided.as_mut() {
            kept.push(out.clone());
        }
        Body::Stored(out.into())
    }

    fn push(&mut self, key: ObjectKey, body: Body, opens: bool) {
        self.delivery
            .counters()
            .relevant
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.delivery.push(NewEvent {
            body,
            opens,
            object: self.memory.state(key),
        });
    }

    /// Broker is idle: release buffered events now and return the verdict, waiting at most
    /// a group-commit delay (plus a margin) for events still being stored.
    pub fn flush(&mut self) -> bool {
        self.delivery.release();
        if self.verdict() {
            return true;
        }
        self.delivery.wait_committed(
            self.cfg.outbox.commit_delay * 2 + std::time::Duration::from_millis(50),
        );
        // asked again, so that the acknowledgement's wait is measured to this answer
        self.verdict()
    }

    /// Waits (up to `timeout`) until every event is delivered or rejected. For C hosts and
    /// tools, never for Broker.
    pub fn wait_idle(&mut self, timeout: std::time::Duration) -> bool {
        self.delivery.release();
        let deadline = std::time::Instant::now() + timeout;
        while self.delivery.outstanding() > 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }

    /// Delivery counters.
    pub fn counters(&self) -> &crate::stats::Counters {
        self.delivery.counters()
    }

    /// Stops and joins the sender threads (also done on drop).
    pub fn close(self) {
        drop(self);
    }

    fn shutdown(&mut self) {
        let _log = self.log.enter();
        self.delivery.stop();
        let stored = self
            .delivery
            .counters()
            .pending
            .load(std::sync::atomic::Ordering::SeqCst);
        let unstored = self.delivery.outstanding().saturating_sub(stored);
        if stored > 0 {
            log::warn!(
                "stopped with {stored} event(s) not delivered yet; they stay in the outbox {} and are sent first at the next start",
                self.cfg.outbox.path.display()
            );
        }
        if unstored > 0 {
            log::warn!(
                "stopped with {unstored} event(s) that could not be stored; Broker was not told they were safe and hands them over again"
            );
        }
        if stored == 0 && unstored == 0 {
            log::info!("stopped");
        }
    }
}

/// `host #1 (srv-db)` or `service #1:2 (srv-db/Disk)`: ids and, when known, names, for the log.
fn label(key: ObjectKey, ctx: &Context) -> String {
    match (&ctx.host_name, &ctx.service_description, key.kind()) {
        (Some(h), _, Kind::Host) => format!("{key} ({h})"),
        (Some(h), Some(s), Kind::Service) => format!("{key} ({h}/{s})"),
        _ => key.to_string(),
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.shutdown();
    }
}
