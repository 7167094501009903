//! `format_file` templates: the stream-connectors library's JSON event templates and macro language, checked at `init` and rendered per event.
//!
//! A template file is a JSON object keyed by `<category>_<element>` (`neb_service_status`,
//! `neb_host_status`, `neb_acknowledgement` and their BBDO 3 names `neb_pb_...`); each value
//! is the event to send in place of the built-in one. Strings may hold the library's macros
//! (`sc_macros.lua`): `{field}` (a field of the Broker event), `{cache.host.X}`,
//! `{cache.service.X}`, `{cache.severity.host}`, `{cache.severity.service}`,
//! `{cache.instance.name}`, `{cache.instance.id}`, `{groups(hg|sg,table|inline,PATTERN)}`,
//! and `{cache.hostgroups}` / `{cache.servicegroups}`; a macro may end with one flag:
//! `_scdate`, `_scstate`, `_sctype`, `_scshort`, `_scnumber`, `_scstring`.
//!
//! Everything is checked when the file is read: a file that does not parse, a key or a macro
//! the library would not know, a flag that does not exist, all fail `init` naming
//! `format_file`, the key and the macro. At run time the connector keeps what its state
//! machine owns: `event_action` is always its own, the routing key is injected as for the
//! built-in events (a template's `routing_key` is ignored), and `dedup_key` is the built-in
//! one unless the status template of the object's kind sets it, in which case every event
//! about the object (trigger, acknowledge, resolve) uses it. PagerDuty's limits still apply.

mod fields;
mod file;
mod macros;
mod needs;
mod render;
mod value;

use crate::decision::Action;
use crate::event::{
    Bbdo, CATEGORY_NEB, Context, EventType, Kind, ObjectKey, RawValue, StatusEvent,
};
use crate::payload::output::OutputOptions;
use crate::payload::{self, Outgoing};
use fields::For;
pub use file::TemplateError;
use file::{SLOTS, Template};
use macros::Piece;
use render::Render;
use value::Scope;

/// The `format_file` of an output, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Templates {
    /// Per [`SLOTS`] entry.
    slots: Vec<Option<Template>>,
    /// The `dedup_key` of host objects, then of service objects, when a status template sets one.
    dedup: [Option<Vec<Piece>>; 2],
    /// Raw fields the templates read: event fields, `cache.host.X`, `cache.service.X`.
    needs: Vec<String>,
    /// The output options `{output}` and `{short_output}` follow.
    output: OutputOptions,
}

/// What reading a template file gives: the templates and the warnings for the log.
pub type Loaded = (Templates, Vec<String>);

impl Templates {
    /// Reads and checks `path`. The error says what is wrong, with the key and the macro.
    pub(crate) fn load(path: &str) -> Result<Loaded, TemplateError> {
        let text = crate::files::read_small(
            std::path::Path::new(path),
            crate::files::TEMPLATE_FILE_MAX_BYTES,
        )
        .map_err(TemplateError::Unreadable)?;
        Templates::parse(&text)
    }

    /// Checks the text of a template file.
    pub fn parse(text: &str) -> Result<Loaded, TemplateError> {
        file::parse(text)
    }

    /// The same templates, their `{output}` and `{short_output}` shaped by `output`
    /// (`use_long_output`, `output_size_limit`, `remove_line_break_in_output`).
    pub(crate) fn with_output(mut self, output: OutputOptions) -> Self {
        self.output = output;
        self
    }

    fn slot(&self, what: For, bbdo: Bbdo) -> Option<&Template> {
        let find = |version: Bbdo| {
            SLOTS
                .iter()
                .position(|(_, f, v)| *f == what && *v == version)
                .and_then(|i| self.slots[i].as_ref())
        };
        match bbdo {
            Bbdo::V3 => find(Bbdo::V3).or_else(|| find(Bbdo::V2)),
            Bbdo::V2 => find(Bbdo::V2),
        }
    }

    /// The event for a host or service status: the template of its kind and BBDO version if
    /// there is one, else `builtin`; with the object's `dedup_key` either way.
    pub fn status_event(&self, ev: &StatusEvent, action: Action, builtin: Outgoing) -> Outgoing {
        let what = match ev.kind() {
            Kind::Host => For::Host,
            Kind::Service => For::Service,
        };
        self.event(self.slot(what, ev.bbdo), ev.key, &ev.ctx, action, builtin)
    }

    /// The event for an acknowledgement or a resolve without a status (`builtin` is the
    /// built-in one): acknowledgements follow the acknowledgement template if there is one.
    pub(crate) fn note_event(
        &self,
        key: ObjectKey,
        ctx: &Context,
        action: Action,
        builtin: Outgoing,
    ) -> Outgoing {
        let template = (action == Action::Acknowledge)
            .then(|| self.slot(For::Acknowledgement, bbdo_of(ctx)))
            .flatten();
        self.event(template, key, ctx, action, builtin)
    }

    fn event(
        &self,
        template: Option<&Template>,
        key: ObjectKey,
        ctx: &Context,
        action: Action,
        mut builtin: Outgoing,
    ) -> Outgoing {
        let scope = Scope {
            key,
            ctx,
            output: &self.output,
        };
        let mut render = Render::new(&scope);
        if let Some(dedup) = self.dedup[(key.kind() == Kind::Service) as usize].as_ref() {
            let text = render.whole(dedup);
            match dedup_problem(&text) {
                None => set_dedup_key(&mut builtin, text),
                Some(why) => log::warn!(
                    "format_file: the dedup_key of {key} is {why}: the built-in {} is used",
                    builtin.dedup_key
                ),
            }
        }
        let Some(t) = template else {
            return builtin;
        };
        match render.event(t, action, &builtin) {
            Some(out) => out,
            None => {
                log::warn!(
                    "format_file: the event for {key} does not fit PagerDuty's 512 KB even \
                     shrunk: sent in the built-in format"
                );
                builtin
            }
        }
    }
}

/// The BBDO version of the event a context was captured from (its `element`), as
/// [`EventType`] gives it; BBDO 2 when it does not say.
fn bbdo_of(ctx: &Context) -> Bbdo {
    let int = |name: &str| {
        ctx.template_fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| match v {
                RawValue::Int(i) => Some(*i),
                _ => None,
            })
    };
    let el = int("element").or_else(|| int("_type").map(|t| t & 0xffff));
    el.and_then(|e| EventType::of(CATEGORY_NEB, e as u32))
        .map_or(Bbdo::V2, EventType::bbdo)
}

fn set_dedup_key(out: &mut Outgoing, key: String) {
    out.body.set_dedup_key(&key);
    out.dedup_key = key;
}

/// Why a rendered `dedup_key` cannot be used, if it cannot.
fn dedup_problem(key: &str) -> Option<String> {
    let n = key.chars().count();
    if key.trim().is_empty() {
        Some("empty".into())
    } else if n > payload::MAX_DEDUP_KEY_CHARS {
        Some(format!(
            "{n} characters long (PagerDuty takes at most {})",
            payload::MAX_DEDUP_KEY_CHARS
        ))
    } else if key.chars().any(char::is_control) {
        Some("holding control characters".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
