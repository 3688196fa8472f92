//! A map from frame numbers to `u64` values for the replay's per-event
//! bookkeeping: a table indexed by the frame number, in leaves of
//! [`LEAF_SLOTS`] 32-bit slots allocated as the keys reach them, instead
//! of a hash map. Frame numbers are dense (a machine's frames, a trace's
//! pfns), so a lookup is one index and usually one cache line, where a
//! hash map of a million random keys costs a probe of its control bytes
//! and a bucket, both cache misses; 32-bit slots keep the table half the
//! size of 64-bit ones, so more of it stays in the cache. Values that do
//! not fit a slot (at or above [`INLINE_LIMIT`]) and keys beyond
//! [`DENSE_KEYS`] (no real machine has them) live in a hash map beside the
//! table, and the slot of such a key says so ([`IN_OVERFLOW`]), so a
//! vacant slot never costs a hash lookup. The map takes every `u64` to
//! every `u64`.
//!
//! It is never iterated: the replay only inserts, looks up and removes, so
//! it behaves exactly as the hash map it replaces.

use rustc_hash::FxHashMap;

/// log2 of the slots per leaf: 4096 slots, 16 KiB.
const LEAF_SHIFT: u32 = 12;
/// Slots per leaf.
const LEAF_SLOTS: usize = 1 << LEAF_SHIFT;
/// Keys below this live in the table: 2^32 frames (16 TiB of 4 KiB pages),
/// a directory of at most 2^20 leaves (8 MiB), grown only as far as the
/// keys reach.
const DENSE_KEYS: u64 = 1 << 32;
/// What an empty slot holds. A slot holds a value `v` below
/// [`INLINE_LIMIT`] as `v + 1`.
const VACANT: u32 = 0;
/// What the slot of a key whose value is in the overflow map holds.
const IN_OVERFLOW: u32 = u32::MAX;
/// Values from this one up go to the overflow map.
const INLINE_LIMIT: u64 = (u32::MAX - 1) as u64;

/// A map from `u64` keys (frame numbers) to `u64` values.
#[derive(Default)]
pub(crate) struct PfnMap {
    leaves: Vec<Option<Box<[u32]>>>,
    /// Keys at or beyond [`DENSE_KEYS`], and keys whose value is at or
    /// above [`INLINE_LIMIT`].
    overflow: FxHashMap<u64, u64>,
}

impl PfnMap {
    /// The slot of `key` if its leaf exists (`key` below [`DENSE_KEYS`]).
    #[inline(always)]
    fn slot(&self, key: u64) -> Option<u32> {
        let leaf = self.leaves.get((key >> LEAF_SHIFT) as usize)?.as_ref()?;
        leaf.get(key as usize & (LEAF_SLOTS - 1)).copied()
    }

    /// The slot of `key` (below [`DENSE_KEYS`]), making its leaf.
    #[inline(always)]
    fn slot_mut(&mut self, key: u64) -> &mut u32 {
        let i = (key >> LEAF_SHIFT) as usize;
        if self.leaves.len() <= i {
            self.leaves.resize_with(i + 1, || None);
        }
        let leaf = self.leaves[i].get_or_insert_with(|| vec![VACANT; LEAF_SLOTS].into());
        &mut leaf[key as usize & (LEAF_SLOTS - 1)]
    }

    /// The slot of `key` if its leaf exists, for changing it.
    #[inline(always)]
    fn existing_slot_mut(&mut self, key: u64) -> Option<&mut u32> {
        let leaf = self
            .leaves
            .get_mut((key >> LEAF_SHIFT) as usize)?
            .as_mut()?;
        leaf.get_mut(key as usize & (LEAF_SLOTS - 1))
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: u64) -> Option<u64> {
        if key >= DENSE_KEYS {
            return self.overflow.get(&key).copied();
        }
        match self.slot(key)? {
            VACANT => None,
            IN_OVERFLOW => self.overflow.get(&key).copied(),
            s => Some(u64::from(s) - 1),
        }
    }

    /// Whether `key` has a value.
    #[inline]
    pub fn contains_key(&self, key: u64) -> bool {
        self.get(key).is_some()
    }

    /// Sets the value of `key`, returning the one it had.
    #[inline]
    pub fn insert(&mut self, key: u64, value: u64) -> Option<u64> {
        if key >= DENSE_KEYS {
            return self.overflow.insert(key, value);
        }
        let slot = self.slot_mut(key);
        let old = std::mem::replace(
            slot,
            if value < INLINE_LIMIT {
                value as u32 + 1
            } else {
                IN_OVERFLOW
            },
        );
        let old = match old {
            VACANT => None,
            IN_OVERFLOW => self.overflow.remove(&key),
            s => Some(u64::from(s) - 1),
        };
        if value >= INLINE_LIMIT {
            self.overflow.insert(key, value);
        }
        old
    }

    /// Sets the value of `key`, as [`PfnMap::insert`] without the old
    /// value: while no slot points to the overflow map, the common case
    /// is one store, with no load of the slot first (a load that misses
    /// the cache holds the CPU up; a store does not).
    #[inline]
    pub fn set(&mut self, key: u64, value: u64) {
        if self.overflow.is_empty() && key < DENSE_KEYS && value < INLINE_LIMIT {
            *self.slot_mut(key) = value as u32 + 1;
        } else {
            self.insert(key, value);
        }
    }

    /// Removes `key`, returning its value.
    #[inline]
    pub fn remove(&mut self, key: u64) -> Option<u64> {
        if key >= DENSE_KEYS {
            return self.overflow.remove(&key);
        }
        match std::mem::replace(self.existing_slot_mut(key)?, VACANT) {
            VACANT => None,
            IN_OVERFLOW => self.overflow.remove(&key),
            s => Some(u64::from(s) - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug)]
    enum Step {
        Insert(u64, u64),
        Set(u64, u64),
        Remove(u64),
        Get(u64),
    }

    fn key() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..20_000,
            Just(DENSE_KEYS - 1),
            Just(DENSE_KEYS),
            Just(u64::MAX),
            any::<u64>(),
        ]
    }

    fn value() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            Just(INLINE_LIMIT - 1),
            Just(INLINE_LIMIT),
            Just(INLINE_LIMIT + 1),
            Just(u64::from(u32::MAX)),
            Just(u64::MAX),
            Just(0u64),
            0u64..4,
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (key(), value()).prop_map(|(k, v)| Step::Insert(k, v)),
            (key(), value()).prop_map(|(k, v)| Step::Set(k, v)),
            key().prop_map(Step::Remove),
            key().prop_map(Step::Get),
        ]
    }

    proptest! {
        /// Every sequence of calls answers as a hash map does.
        #[test]
        fn behaves_as_a_hash_map(steps in proptest::collection::vec(step(), 0..200)) {
            let mut map = PfnMap::default();
            let mut model: HashMap<u64, u64> = HashMap::new();
            for s in steps {
                match s {
                    Step::Insert(k, v) => prop_assert_eq!(map.insert(k, v), model.insert(k, v)),
                    Step::Set(k, v) => {
                        map.set(k, v);
                        model.insert(k, v);
                    }
                    Step::Remove(k) => prop_assert_eq!(map.remove(k), model.remove(&k)),
                    Step::Get(k) => {
                        prop_assert_eq!(map.get(k), model.get(&k).copied());
                        prop_assert_eq!(map.contains_key(k), model.contains_key(&k));
                    }
                }
            }
            for (k, v) in &model {
                prop_assert_eq!(map.get(*k), Some(*v));
            }
            // No stale entry is left behind in the overflow map.
            let overflowing = model
                .iter()
                .filter(|&(&k, &v)| k >= DENSE_KEYS || v >= INLINE_LIMIT)
                .count();
            prop_assert_eq!(map.overflow.len(), overflowing);
        }
    }

    #[test]
    fn values_beyond_a_slot_are_kept() {
        let mut map = PfnMap::default();
        let big = INLINE_LIMIT;
        assert_eq!(map.insert(7, big), None);
        assert_eq!(map.get(7), Some(big));
        assert_eq!(map.insert(7, 3), Some(big));
        assert!(map.overflow.is_empty());
        assert_eq!(map.get(7), Some(3));
        assert_eq!(map.insert(7, u64::MAX), Some(3));
        assert_eq!(map.remove(7), Some(u64::MAX));
        assert_eq!(map.get(7), None);
        assert!(map.overflow.is_empty());
    }
}
