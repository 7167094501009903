//! The raw fields the Lua bridge must read for the templates: event fields and Broker cache values.

use std::collections::BTreeSet;

use super::Templates;
use super::fields::aliases;
use super::file::{Node, Template};
use super::macros::{Macro, Piece, Source};
use crate::event::{Context, RawEvent};

impl Templates {
    /// The raw fields the templates read, for the bridge (space separated): event fields and
    /// `cache.host.X` / `cache.service.X` values of `broker_cache:get_host` / `get_service`.
    pub(crate) fn fields(&self) -> String {
        self.needs.join(" ")
    }

    /// Keeps, in `ctx`, the raw fields of `raw` the templates read.
    pub fn capture(&self, raw: &RawEvent, ctx: &mut Context) {
        ctx.template_fields = self
            .needs
            .iter()
            .filter_map(|n| raw.get(n).map(|v| (n.clone(), v.clone())))
            .collect();
    }
}

impl Macro {
    pub(super) fn collect_needs(&self, needs: &mut BTreeSet<String>) {
        let mut add = |n: &str| {
            needs.insert(n.to_string());
        };
        match &self.source {
            Source::Event(f) => {
                add(f);
                for alias in aliases(f) {
                    add(alias);
                }
            }
            Source::Host(f) => add(&format!("cache.host.{f}")),
            Source::Service(f) => add(&format!("cache.service.{f}")),
            Source::InstanceId => add("cache.host.instance_id"),
            _ => {}
        }
    }
}

impl Template {
    pub(super) fn collect_needs(&self, needs: &mut BTreeSet<String>) {
        fn walk(n: &Node, needs: &mut BTreeSet<String>) {
            match n {
                Node::Fixed(_) => {}
                Node::Exact(m) => m.collect_needs(needs),
                Node::Text(p) => pieces_needs(p, needs),
                Node::Array(items) => items.iter().for_each(|i| walk(i, needs)),
                Node::Object(fields) => {
                    for (k, v) in fields {
                        pieces_needs(k, needs);
                        walk(v, needs);
                    }
                }
            }
        }
        fn pieces_needs(p: &[Piece], needs: &mut BTreeSet<String>) {
            for piece in p {
                if let Piece::Mac(m) = piece {
                    m.collect_needs(needs);
                }
            }
        }
        for (k, v) in &self.fields {
            pieces_needs(k, needs);
            walk(v, needs);
        }
    }
}
