//! Running a sequence: each operation on the allocator and the model,
//! and everything that must hold after it.

use pagealloc::{
    AllocError, AllocFlags, Allocator, CpuId, MigrateType, NodeId, Order, Pfn, VmStats,
};

use crate::common::{zone_type_of, Census, Snapshot, FLAGS};
use crate::ops::{flag_index, BadKind, LocalStep, Op};
use crate::reference::{Held, Model};

/// What the tests count, per machine: calls made by the test (every
/// `alloc`, `alloc_on`, `free` and `split_page`), and the engine's own
/// counters summed over the cases.
#[derive(Default, Debug)]
pub struct Tally {
    pub cases: u64,
    /// Calls of any kind.
    pub ops: u64,
    /// Calls that had to be refused.
    pub bad_calls: u64,
    /// Successful allocations.
    pub allocs: u64,
    /// Allocations that failed with `NoMemory`.
    pub alloc_failures: u64,
    pub splits: u64,
    /// Runs of calls through held per-CPU lists.
    pub local_runs: u64,
    /// Allocations that landed in a CMA pageblock (movable ones only).
    pub cma_allocs: u64,
    /// From `stats()`, from here on.
    pub extfrag_events: u64,
    pub pageblock_claims: u64,
    pub highatomic_reserved: u64,
    pub highatomic_unreserved: u64,
    pub alloc_fail: u64,
}

/// Checks the allocator, whose reports are `snap`, against the model.
pub fn verify(a: &Allocator, m: &Model, snap: &Snapshot) {
    if let Err(v) = a.check_invariants() {
        panic!("{v}");
    }
    assert_eq!(snap.nr_allocated, m.pages, "allocated pages");
    assert_eq!(snap.nr_free + m.pages, m.total, "free + allocated");
    let cached = a.nr_pcp_pages_per_zone();
    for (i, z) in a.zones().iter().enumerate() {
        assert_eq!(
            z.nr_free().0 + cached[i] + m.alloc_in_zone[i],
            z.nr_present().0,
            "zone {i}: free + per-CPU + allocated"
        );
        let counts = &snap.buddyinfo.zones[i].nr_free;
        let free: u64 = counts.iter().enumerate().map(|(o, n)| n << o).sum();
        assert_eq!(free, z.nr_free().0, "zone {i}: buddyinfo pages");
        for (o, &n) in counts.iter().enumerate() {
            let by_type: u64 = snap.pagetypeinfo.zones[i].free.iter().map(|f| f[o]).sum();
            assert_eq!(by_type, n, "zone {i} order {o}: pagetypeinfo vs buddyinfo");
        }
    }
}

/// Checks that every block the model holds is allocated as it says.
pub fn verify_held(a: &Allocator, m: &Model) {
    for (&pfn, h) in &m.held {
        assert_eq!(
            a.allocated_block(Pfn(pfn)),
            Some((Order::new(h.order).unwrap(), h.mt)),
            "held block {pfn:#x}"
        );
    }
}

/// Stats that only a failed allocation may change.
/// The counters a failed allocation may change: the failure itself, a
/// high-atomic pageblock given back, and per-CPU lists drained before
/// giving up (as Linux does after reclaim fails).
fn without_failures(s: &VmStats) -> VmStats {
    VmStats {
        alloc_fail: Default::default(),
        highatomic_unreserved: 0,
        pcp_drained: 0,
        ..*s
    }
}

/// One random sequence in progress: the allocator, the model, and the
/// tally to count into.
pub struct Run<'a> {
    pub a: Allocator,
    pub m: Model,
    /// The reports after the last step, already verified.
    pub snap: Snapshot,
    pub tally: &'a mut Tally,
}

impl Run<'_> {
    /// Verifies the state after a step and keeps its reports as the
    /// "before" of the next one.
    pub fn commit(&mut self, after: Snapshot) {
        verify(&self.a, &self.m, &after);
        self.snap = after;
    }

    /// A refused call: the precise error, and nothing changed.
    pub fn refused<E: PartialEq + std::fmt::Debug>(
        &mut self,
        got: Result<impl std::fmt::Debug, E>,
        want: E,
        what: &str,
    ) {
        self.tally.ops += 1;
        self.tally.bad_calls += 1;
        assert_eq!(got.err(), Some(want), "{what}");
        let after = Snapshot::take(&self.a);
        assert_eq!(after, self.snap, "refused {what} changed state");
        self.commit(after);
    }

    /// One allocation call and everything that must hold after it.
    pub fn alloc(&mut self, order: u8, flags_idx: usize, node_sel: u8) -> bool {
        let (flags_name, flags) = FLAGS[flags_idx];
        let node = match node_sel {
            0 => None,
            1 => Some(1),
            _ => Some(7),
        };
        let o = Order::new(order).unwrap();
        let res = match node {
            None => self.a.alloc(o, flags),
            Some(n) => self.a.alloc_on(NodeId(n), o, flags),
        };
        let what = format!("alloc({order}, {flags_name}, node {node:?})");
        let max = self.m.config.max_order();
        if o > max {
            self.refused(res, AllocError::InvalidOrder { order: o, max }, &what);
            return false;
        }
        let allowed = self.m.allowed_zones(node, flags);
        if allowed.is_empty() {
            self.refused(res, AllocError::NoZone, &what);
            return false;
        }
        self.tally.ops += 1;
        let before = &self.snap;
        let after = Snapshot::take(&self.a);
        // Giving a high-atomic pageblock back before the last attempt makes
        // its free blocks usable by anyone.
        let unreserved = after.stats.highatomic_unreserved > before.stats.highatomic_unreserved;
        // With pages on per-CPU lists a request may be served from them, or
        // from the blocks they merge into when drained before failing: the
        // buddy lists alone no longer decide success.
        let cached = before.nr_pcp > 0;
        let buddy_possible =
            self.m
                .could_serve(&before.pagetypeinfo, &allowed, order, flags, unreserved);
        let possible = cached || buddy_possible;
        let nr = 1u64 << order;
        let ok = match res {
            Ok(pfn) => {
                let p = pfn.0;
                assert!(possible, "{what} succeeded from a list it may not use");
                assert!(pfn.is_aligned(o), "{what}: {pfn} misaligned");
                let zi = self.m.zone_index(p).expect("allocated outside every zone");
                let zone = &self.m.zones[zi];
                assert!(
                    allowed.contains(&zi),
                    "{what}: zone {:?} not allowed",
                    zone.zone_type
                );
                assert!(zone.block_present(p, nr), "{what}: {pfn} crosses a hole");
                if self.a.pageblock_migratetype(pfn) == Some(MigrateType::Cma) {
                    assert_eq!(
                        flags.migratetype(),
                        MigrateType::Movable,
                        "{what}: a CMA page for a non-movable request"
                    );
                    self.tally.cma_allocs += 1;
                }
                assert_eq!(zone_type_of(p, &self.m.config), zone.zone_type);
                assert_eq!(
                    self.a.zone_of(pfn).map(|z| z.zone_type()),
                    Some(zone.zone_type)
                );
                if let (Some(n), true) = (node, flags.contains(AllocFlags::THIS_NODE)) {
                    assert_eq!(zone.node, n, "{what}: wrong node");
                }
                let overlap =
                    self.m.containing(p).is_some() || self.m.held.range(p..p + nr).next().is_some();
                assert!(!overlap, "{what}: {pfn} overlaps a held block");
                assert_eq!(self.a.allocated_block(pfn), Some((o, flags.migratetype())));
                assert_eq!(after.nr_free, before.nr_free - nr);
                let (b, a) = (&before.stats, &after.stats);
                assert_eq!(
                    a.alloc_calls[order as usize],
                    b.alloc_calls[order as usize] + 1
                );
                assert_eq!(a.pgalloc, b.pgalloc + nr);
                assert_eq!(a.alloc_fail, b.alloc_fail);
                let held = Held {
                    order,
                    mt: flags.migratetype(),
                    zone: zi,
                    group: None,
                };
                self.m.insert(p, held);
                self.tally.allocs += 1;
                true
            }
            Err(AllocError::NoMemory { order: got }) => {
                assert_eq!(got, o);
                if flags.contains(AllocFlags::NO_WATERMARKS) {
                    // Draining per-CPU lists before failing only adds free
                    // blocks, so the buddy lists alone decide this. Linux
                    // gives back one high-atomic pageblock (the one with
                    // the smallest free block), not all of them, so only
                    // blocks usable without the reserve count.
                    let usable =
                        self.m
                            .could_serve(&before.pagetypeinfo, &allowed, order, flags, false);
                    assert!(!usable, "{what} failed though a block was free");
                }
                let mut fails = before.stats.alloc_fail;
                fails[order as usize] += 1;
                assert_eq!(after.stats.alloc_fail, fails, "{what}: failure count");
                assert_eq!(
                    without_failures(&after.stats),
                    without_failures(&before.stats)
                );
                if !unreserved && before.nr_pcp == 0 {
                    // Only giving back a high-atomic pageblock, or draining
                    // per-CPU lists, may change the lists on the way to
                    // failing.
                    let unchanged = Snapshot {
                        stats: before.stats,
                        ..after.clone()
                    };
                    assert_eq!(&unchanged, before, "{what} failed and changed state");
                }
                assert_eq!(after.nr_free, before.nr_free, "{what}: free pages");
                assert_eq!(
                    after.nr_allocated, before.nr_allocated,
                    "{what}: allocated pages"
                );
                self.tally.alloc_failures += 1;
                false
            }
            Err(e) => panic!("{what}: unexpected {e:?}"),
        };
        self.commit(after);
        ok
    }

    pub fn free_valid(&mut self, pfn: u64) {
        let h = self.m.held[&pfn];
        let res = self.a.free(Pfn(pfn), Order::new(h.order).unwrap());
        self.tally.ops += 1;
        assert_eq!(res, Ok(()), "free({pfn:#x}, {})", h.order);
        let (before, after) = (&self.snap, Snapshot::take(&self.a));
        let nr = 1u64 << h.order;
        assert_eq!(after.nr_free, before.nr_free + nr);
        assert_eq!(after.stats.pgfree, before.stats.pgfree + nr);
        let calls = |s: &Snapshot| s.stats.free_calls[h.order as usize];
        assert_eq!(calls(&after), calls(before) + 1);
        assert_eq!(self.a.allocated_block(Pfn(pfn)), None);
        self.m.remove(pfn);
        self.m.freed.push((pfn, h.order));
        if self.m.freed.len() > 64 {
            self.m.freed.remove(0);
        }
        self.commit(after);
    }

    pub fn split_valid(&mut self, pfn: u64) {
        let h = self.m.held[&pfn];
        let res = self.a.split_page(Pfn(pfn), Order::new(h.order).unwrap());
        self.tally.ops += 1;
        self.tally.splits += 1;
        assert_eq!(res, Ok(()), "split_page({pfn:#x}, {})", h.order);
        let after = Snapshot::take(&self.a);
        let mut stats = self.snap.stats;
        stats.split_pages += 1;
        let expected = Snapshot {
            stats,
            ..self.snap.clone()
        };
        assert_eq!(after, expected, "split_page changed the free lists");
        self.m.remove(pfn);
        let group = self.m.next_group;
        self.m.next_group += 1;
        for k in 0..(1u64 << h.order) {
            let piece = Held {
                order: 0,
                group: Some(group),
                ..h
            };
            self.m.insert(pfn + k, piece);
            assert_eq!(
                self.a.allocated_block(Pfn(pfn + k)),
                Some((Order::ZERO, h.mt))
            );
        }
        self.commit(after);
    }

    /// A call expected to be refused (or, if it happens to name an
    /// allocated block, a valid one).
    pub fn bad(&mut self, kind: BadKind, pick: usize, raw: u64, split: bool) {
        let (pfn, order) = self.m.bad_target(kind, pick, raw);
        let expected = match self.m.expect_block(pfn, order) {
            Ok(()) if split => return self.split_valid(pfn),
            Ok(()) => return self.free_valid(pfn),
            Err(e) => e,
        };
        let head = self.a.allocated_block(Pfn(pfn));
        let o = Order::new(order).unwrap();
        let (call, res) = if split {
            ("split_page", self.a.split_page(Pfn(pfn), o))
        } else {
            ("free", self.a.free(Pfn(pfn), o))
        };
        self.refused(
            res,
            expected,
            &format!("{call}({pfn:#x}, {order}) [{kind:?}]"),
        );
        assert_eq!(self.a.allocated_block(Pfn(pfn)), head);
    }

    /// A short run of calls through CPU 0's held lists. While they are
    /// held nothing that takes every per-CPU lock may run (`stats`,
    /// `check_invariants`, [`Snapshot::take`]), so each call is checked
    /// against the model and the page records, and the whole run against
    /// the counters and the invariants once the lists are dropped.
    pub fn local(&mut self, steps: &[LocalStep]) {
        let a = &self.a;
        let mut l = a.local(CpuId(0)).expect("nobody else holds CPU 0's lists");
        let (mut allocated, mut freed) = (0u64, 0u64);
        for &step in steps {
            self.tally.ops += 1;
            match step {
                LocalStep::Alloc { order, flags } => {
                    let (flags_name, flags) = FLAGS[flags];
                    let o = Order::new(order).unwrap();
                    let what = format!("local alloc({order}, {flags_name})");
                    let max = self.m.config.max_order();
                    let allowed = self.m.allowed_zones(None, flags);
                    match l.alloc(o, flags) {
                        Ok(pfn) => {
                            let (p, nr) = (pfn.0, 1u64 << order);
                            assert!(o <= max && pfn.is_aligned(o), "{what}: {pfn}");
                            let zi = self.m.zone_index(p).expect("allocated outside every zone");
                            assert!(allowed.contains(&zi), "{what}: zone {zi} not allowed");
                            assert!(self.m.zones[zi].block_present(p, nr), "{what}: in a hole");
                            let overlap = self.m.containing(p).is_some()
                                || self.m.held.range(p..p + nr).next().is_some();
                            assert!(!overlap, "{what}: {pfn} overlaps a held block");
                            assert_eq!(a.allocated_block(pfn), Some((o, flags.migratetype())));
                            let mt = flags.migratetype();
                            let held = Held {
                                order,
                                mt,
                                zone: zi,
                                group: None,
                            };
                            self.m.insert(p, held);
                            allocated += nr;
                            self.tally.allocs += 1;
                        }
                        Err(AllocError::InvalidOrder { order: got, max: m }) => {
                            assert!(o > max && got == o && m == max, "{what}");
                            self.tally.bad_calls += 1;
                        }
                        Err(AllocError::NoZone) => assert!(allowed.is_empty(), "{what}"),
                        Err(AllocError::NoMemory { order: got }) => {
                            assert!(got == o && o <= max && !allowed.is_empty(), "{what}");
                            self.tally.alloc_failures += 1;
                        }
                        Err(e) => panic!("{what}: unexpected {e:?}"),
                    }
                }
                LocalStep::Free { pick } => {
                    let Some((pfn, h)) = self.m.nth_held(pick) else {
                        continue;
                    };
                    let res = l.free(Pfn(pfn), Order::new(h.order).unwrap());
                    assert_eq!(res, Ok(()), "local free({pfn:#x}, {})", h.order);
                    assert_eq!(a.allocated_block(Pfn(pfn)), None);
                    self.m.remove(pfn);
                    self.m.freed.push((pfn, h.order));
                    if self.m.freed.len() > 64 {
                        self.m.freed.remove(0);
                    }
                    freed += 1 << h.order;
                }
                LocalStep::AlreadyFree { pick } => {
                    let Some(&(pfn, order)) = self.m.freed.get(pick % self.m.freed.len().max(1))
                    else {
                        continue;
                    };
                    // Allocated again since: not a double free.
                    let Err(want) = self.m.expect_block(pfn, order) else {
                        continue;
                    };
                    let before = (Census::take(a), a.buddyinfo(), l.nr_pages());
                    let got = l.free(Pfn(pfn), Order::new(order).unwrap());
                    assert_eq!(got, Err(want), "local free({pfn:#x}, {order}) again");
                    let after = (Census::take(a), a.buddyinfo(), l.nr_pages());
                    assert_eq!(after, before, "refused local free({pfn:#x}) changed state");
                    self.tally.bad_calls += 1;
                }
                LocalStep::Drain => {
                    let cached = l.nr_pages();
                    assert_eq!(l.drain(), cached);
                    assert_eq!(l.nr_pages(), 0);
                }
            }
        }
        drop(l);
        self.tally.local_runs += 1;
        let after = Snapshot::take(&self.a);
        let (b, s) = (&self.snap.stats, &after.stats);
        assert_eq!(
            s.pgalloc,
            b.pgalloc + allocated,
            "pages allocated while held"
        );
        assert_eq!(s.pgfree, b.pgfree + freed, "pages freed while held");
        self.commit(after);
    }

    pub fn step(&mut self, op: &Op) {
        match *op {
            Op::Alloc { order, flags, node } => {
                self.alloc(order, flags, node);
            }
            Op::Burst { order, flags, max } => {
                for _ in 0..max {
                    if !self.alloc(order, flags, 0) {
                        break;
                    }
                }
            }
            Op::Pressure {
                order,
                flags,
                atomic_order,
                atomics,
            } => {
                while self.alloc(order, flags, 0) {}
                let atomic = flag_index("GFP_ATOMIC");
                for _ in 0..atomics {
                    self.alloc(atomic_order, atomic, 0);
                }
            }
            Op::Free { pick } => {
                if let Some((pfn, _)) = self.m.nth_held(pick) {
                    self.free_valid(pfn);
                }
            }
            Op::FreeMany { pick, n } => {
                for k in 0..n as usize {
                    let Some((pfn, _)) = self.m.nth_held(pick.wrapping_add(k * 7919)) else {
                        break;
                    };
                    self.free_valid(pfn);
                }
            }
            Op::Split { pick } => {
                if let Some((pfn, _)) = self.m.nth_held(pick) {
                    self.split_valid(pfn);
                }
            }
            Op::FreeGroup { pick, seed } => {
                let groups: Vec<u64> = {
                    let mut g: Vec<u64> = self.m.held.values().filter_map(|h| h.group).collect();
                    g.sort_unstable();
                    g.dedup();
                    g
                };
                if groups.is_empty() {
                    return;
                }
                let group = groups[pick % groups.len()];
                let mut pieces: Vec<u64> = self
                    .m
                    .held
                    .iter()
                    .filter(|(_, h)| h.group == Some(group))
                    .map(|(&p, _)| p)
                    .collect();
                shuffle(&mut pieces, seed);
                for pfn in pieces {
                    self.free_valid(pfn);
                }
            }
            Op::Bad {
                kind,
                pick,
                raw,
                split,
            } => self.bad(kind, pick, raw, split),
            Op::Local { ref steps } => self.local(steps),
        }
    }

    /// Frees everything still held, in a shuffled order, and checks that
    /// the allocator is back to all free.
    pub fn free_all(&mut self, fresh: &Allocator, seed: u64) {
        let mut all: Vec<u64> = self.m.held.keys().copied().collect();
        shuffle(&mut all, seed);
        for pfn in all {
            self.free_valid(pfn);
        }
        self.a.drain_all();
        assert_eq!(self.a.nr_free_pages(), self.m.total);
        if self.a.pagetypeinfo().blocks_of(MigrateType::HighAtomic) == 0 {
            // With only mergeable pageblocks everything merges back into
            // the blocks the allocator started with.
            assert_eq!(self.a.buddyinfo(), fresh.buddyinfo(), "not fully merged");
        }
    }
}

/// A deterministic Fisher-Yates shuffle.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}
