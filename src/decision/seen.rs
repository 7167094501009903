//! The fast path's table: what was last observed of each object, one cache line per lookup.
//!
//! Broker's thread asks "is this status what we saw last time?" for every event. In a map of
//! 10,000 objects visited once per 10,000 events, each lookup misses the CPU caches; a
//! `HashMap` misses twice (its control bytes, then its bucket), this table once: a slot holds
//! the key and the observation together, 32 bytes aligned to 32, so it never straddles a cache
//! line, and linear probing keeps a collision in the same or the next line.

use crate::decision::Observed;
use crate::event::ObjectKey;

/// One object: its key and what was observed (`None`: the slot is free).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    key: ObjectKey,
    observed: Option<Observed>,
}

const FREE: Slot = Slot {
    key: ObjectKey {
        host_id: 0,
        service_id: 0,
    },
    observed: None,
};

/// Open addressing with linear probing; at most 3/4 full; objects are never removed.
#[derive(Debug, Default)]
pub struct Seen {
    slots: Vec<Slot>,
    len: usize,
}

impl Seen {
    /// What was last observed of `key`.
    #[inline]
    pub fn get(&self, key: ObjectKey) -> Option<Observed> {
        if self.slots.is_empty() {
            return None;
        }
        self.slots[self.find(key)].observed
    }

    /// Records what was observed of `key`.
    pub fn insert(&mut self, key: ObjectKey, observed: Observed) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let i = self.find(key);
        if self.slots[i].observed.is_none() {
            self.len += 1;
        }
        self.slots[i] = Slot {
            key,
            observed: Some(observed),
        };
    }

    /// The slot of `key`, or the free slot where it goes (the table is never full, nor empty
    /// here).
    fn find(&self, key: ObjectKey) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        while self.slots[i].observed.is_some() && self.slots[i].key != key {
            i = (i + 1) & mask;
        }
        i
    }

    /// Where `key` is looked for first: the high bits of a multiply-xor mix of both ids (Broker
    /// numbers hosts and services densely, so neighbouring ids must land far apart).
    #[inline]
    fn home(&self, key: ObjectKey) -> usize {
        let h = (key.host_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.service_id)
            .wrapping_mul(0xf135_7aea_2e62_a9c5);
        let bits = self.slots.len().trailing_zeros();
        (h >> (64 - bits)) as usize
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![FREE; capacity]);
        for s in old {
            if s.observed.is_some() {
                let i = self.find(s.key);
                self.slots[i] = s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Flags;

    fn key(host_id: u64, service_id: u64) -> ObjectKey {
        ObjectKey::new(host_id, service_id)
    }

    fn obs(state: i64) -> Observed {
        Observed {
            state,
            hard: true,
            flags: Flags::default(),
        }
    }

    #[test]
    fn a_slot_is_half_a_cache_line_and_never_straddles_one() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
        assert_eq!(std::mem::align_of::<Slot>(), 32);
    }

    #[test]
    fn holds_every_object_through_growth_and_overwrites_in_place() {
        let mut t = Seen::default();
        assert_eq!(t.get(key(1, 0)), None);
        // ids 0 included (a host's service_id is 0; the free marker is the observation)
        for h in 0..500u64 {
            for s in 0..20u64 {
                t.insert(key(h, s), obs(((h + s) % 3) as i64));
            }
        }
        assert_eq!(t.len, 10_000);
        assert!(t.slots.len() * 3 >= t.len * 4, "at most 3/4 full");
        for h in 0..500u64 {
            for s in 0..20u64 {
                assert_eq!(t.get(key(h, s)), Some(obs(((h + s) % 3) as i64)));
            }
        }
        assert_eq!(t.get(key(500, 0)), None);
        assert_eq!(t.get(key(0, 20)), None);
        t.insert(key(7, 3), obs(4));
        assert_eq!(t.get(key(7, 3)), Some(obs(4)));
        assert_eq!(t.len, 10_000, "an overwrite is not a new object");
    }

    #[test]
    fn neighbouring_ids_rarely_share_a_home_slot() {
        let mut t = Seen::default();
        for h in 1..=500u64 {
            for s in 1..=20u64 {
                t.insert(key(h, s), obs(0));
            }
        }
        // 10,000 keys in 16,384 slots: count the keys found at their home slot
        let at_home = (1..=500u64)
            .flat_map(|h| (1..=20u64).map(move |s| key(h, s)))
            .filter(|k| t.slots[t.home(*k)].key == *k)
            .count();
        assert_eq!(t.slots.len(), 16_384);
        assert!(at_home > 6_000, "{at_home} of 10,000 at their home slot");
    }
}
