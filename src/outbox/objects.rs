//! Per-object state as stored: the open incident, the names Broker's cache gave, the last status handled.

use std::sync::Arc;

use rusqlite::params;

use super::{Batch, Outbox, OutboxError};
use crate::decision::{Handled, ObjectState, Observed};
use crate::event::{Flags, Names, ObjectKey};

fn group_list(json: Option<String>) -> Vec<String> {
    json.and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

/// `last_flags`: the state type and flags of the last status handled, as bits.
fn bits(h: &Handled) -> i64 {
    let Observed { hard, flags, .. } = h.observed;
    hard as i64
        | (flags.acknowledged as i64) << 1
        | (flags.in_downtime as i64) << 2
        | (flags.flapping as i64) << 3
}

/// The last status handled, from its columns (`None` when a status had no check time).
fn handled_of_columns(at: Option<i64>, state: Option<i64>, bits: Option<i64>) -> Option<Handled> {
    let (at, state, bits) = (at?, state?, bits?);
    Some(Handled {
        at,
        observed: Observed {
            state,
            hard: bits & 1 != 0,
            flags: Flags {
                acknowledged: bits & 2 != 0,
                in_downtime: bits & 4 != 0,
                flapping: bits & 8 != 0,
            },
        },
    })
}

impl Outbox {
    /// Persisted incident states.
    pub(crate) fn objects(&self) -> Result<Vec<ObjectState>, OutboxError> {
        let mut st = self.conn.prepare(
            "SELECT host_id, service_id, open_state, acknowledged, host_name, host_address, \
             poller, hostgroups, host_severity, service_description, servicegroups, \
             service_severity, last_check, last_state, last_flags FROM objects",
        )?;
        let rows = st.query_map([], |r| {
            let names = Names {
                host_name: r.get(4)?,
                host_address: r.get(5)?,
                poller: r.get(6)?,
                hostgroups: group_list(r.get(7)?),
                host_severity: r.get(8)?,
                service_description: r.get(9)?,
                servicegroups: group_list(r.get(10)?),
                service_severity: r.get(11)?,
            };
            Ok(ObjectState {
                key: ObjectKey {
                    host_id: r.get::<_, i64>(0)? as u64,
                    service_id: r.get::<_, i64>(1)? as u64,
                },
                open_state: r.get(2)?,
                acknowledged: r.get::<_, i64>(3)? != 0,
                names: names.host_name.is_some().then(|| Arc::new(names)),
                last: handled_of_columns(r.get(12)?, r.get(13)?, r.get(14)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Batch<'_> {
    /// Records the incident state of an object.
    pub(crate) fn object(&mut self, s: &ObjectState) -> Result<(), OutboxError> {
        let n = s.names.as_deref();
        self.tx
            .prepare_cached(
                "INSERT INTO objects (host_id, service_id, open_state, acknowledged, host_name,
                     host_address, poller, hostgroups, host_severity, service_description,
                     servicegroups, service_severity, last_check, last_state, last_flags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (host_id, service_id) DO UPDATE SET open_state = excluded.open_state,
                     acknowledged = excluded.acknowledged, host_name = excluded.host_name,
                     host_address = excluded.host_address, poller = excluded.poller,
                     hostgroups = excluded.hostgroups, host_severity = excluded.host_severity,
                     service_description = excluded.service_description,
                     servicegroups = excluded.servicegroups,
                     service_severity = excluded.service_severity,
                     last_check = excluded.last_check, last_state = excluded.last_state,
                     last_flags = excluded.last_flags",
            )?
            .execute(params![
                s.key.host_id as i64,
                s.key.service_id as i64,
                s.open_state,
                s.acknowledged as i64,
                n.and_then(|n| n.host_name.as_deref()),
                n.and_then(|n| n.host_address.as_deref()),
                n.and_then(|n| n.poller.as_deref()),
                n.map(|n| serde_json::to_string(&n.hostgroups).unwrap_or_default()),
                n.and_then(|n| n.host_severity),
                n.and_then(|n| n.service_description.as_deref()),
                n.map(|n| serde_json::to_string(&n.servicegroups).unwrap_or_default()),
                n.and_then(|n| n.service_severity),
                s.last.map(|h| h.at),
                s.last.map(|h| h.observed.state),
                s.last.as_ref().map(bits),
            ])?;
        Ok(())
    }
}
