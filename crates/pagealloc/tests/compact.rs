//! Compaction: the scanners build the blocks a fragmented zone lacks,
//! direct compaction lets a failing high-order allocation succeed,
//! suitability and deferral follow Linux, proactive compaction follows the
//! fragmentation score; and a randomized run with refusing migrations keeps
//! every invariant and every owned block.

use std::collections::HashMap;

use pagealloc::{
    AllocFlags, Allocator, CompactResult, Config, CpuId, MemoryMap, MigrateRefusal, MigrateType,
    Order, PageCount, Pfn, ZoneBounds,
};
use proptest::prelude::*;

fn order(n: u8) -> Order {
    Order::new(n).unwrap()
}

/// One Normal zone of `pages` pages, one CPU.
fn machine(pages: u64) -> Allocator {
    let config = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        ..Config::default()
    };
    Allocator::new(
        MemoryMap::contiguous(Pfn(0x100000), PageCount(pages)).unwrap(),
        config,
    )
    .unwrap()
}

/// The owner of movable blocks (frame -> order), refusing a share of
/// migrations when asked to.
#[derive(Default)]
struct Owner {
    held: HashMap<Pfn, Order>,
    refuse_every: u64,
    asked: u64,
    refused: u64,
}

impl Owner {
    fn migrate(&mut self, from: Pfn, to: Pfn, o: Order) -> Result<(), MigrateRefusal> {
        self.asked += 1;
        if self.refuse_every > 0 && self.asked.is_multiple_of(self.refuse_every) {
            self.refused += 1;
            return Err(MigrateRefusal::Pinned);
        }
        match self.held.remove(&from) {
            Some(held) if held == o => {
                self.held.insert(to, o);
                Ok(())
            }
            Some(held) => {
                self.held.insert(from, held);
                Err(MigrateRefusal::Busy)
            }
            None => Err(MigrateRefusal::Busy),
        }
    }

    fn check(&self, a: &Allocator) {
        a.check_invariants().unwrap();
        for (&p, &o) in &self.held {
            assert_eq!(a.allocated_block(p), Some((o, MigrateType::Movable)), "{p}");
        }
        let pages: u64 = self.held.values().map(|o| o.nr_pages().0).sum();
        assert_eq!(a.nr_allocated_pages(), pages);
    }
}

/// Fills `a` with movable pages and frees every other one: half of memory
/// free, none of it in blocks above order 0.
fn checkerboard(a: &Allocator) -> Owner {
    let mut owner = Owner::default();
    let mut pages = Vec::new();
    let all = AllocFlags::HIGHUSER_MOVABLE | AllocFlags::NO_WATERMARKS;
    while let Ok(p) = a.alloc(Order::ZERO, all) {
        pages.push(p);
    }
    pages.sort();
    for p in pages {
        if p.0 % 2 == 0 {
            a.free(p, Order::ZERO).unwrap();
        } else {
            owner.held.insert(p, Order::ZERO);
        }
    }
    a.drain_all();
    owner
}

fn free_blocks_at_least(a: &Allocator, o: Order) -> u64 {
    let z = &a.zones()[0];
    (o.get()..a.config().nr_orders)
        .map(|k| z.nr_free_blocks_of_order(order(k)))
        .sum()
}

#[test]
fn compaction_of_a_checkerboard_builds_huge_blocks() {
    let a = machine(32768);
    let mut owner = checkerboard(&a);
    assert_eq!(free_blocks_at_least(&a, order(1)), 0);
    let runs = a.compact_memory(&mut |f, t, o| owner.migrate(f, t, o));
    owner.check(&a);
    assert_eq!(runs.len(), 1);
    let run = runs[0];
    assert_eq!(run.result, CompactResult::Complete);
    assert!(run.migrated_pages > 0 && run.migrate_scanned > 0 && run.free_scanned > 0);
    let huge = free_blocks_at_least(&a, order(9));
    // Half of memory is free: the scanners meet about the middle, having
    // moved a quarter of memory up; most of the low half becomes whole
    // pageblocks.
    assert!(huge >= 16, "{huge} free blocks of order >= 9: {run:?}");
    let s = a.stats();
    assert_eq!(s.pgmigrate_success, run.migrated_pages);
    assert!(s.compact_migrate_scanned >= run.migrate_scanned);
}

#[test]
fn direct_compaction_lets_a_huge_allocation_succeed() {
    let a = machine(32768);
    let mut owner = checkerboard(&a);
    assert!(a.alloc(order(9), AllocFlags::HIGHUSER_MOVABLE).is_err());
    let fails = a.stats().total_alloc_fail();
    // An atomic request may not compact.
    assert!(a
        .alloc_compacting(
            CpuId(0),
            order(9),
            AllocFlags::GFP_ATOMIC,
            &mut |f, t, o| owner.migrate(f, t, o)
        )
        .is_err());
    let huge = a
        .alloc_compacting(
            CpuId(0),
            order(9),
            AllocFlags::HIGHUSER_MOVABLE,
            &mut |f, t, o| owner.migrate(f, t, o),
        )
        .unwrap();
    owner.held.insert(huge, order(9));
    owner.check(&a);
    let s = a.stats();
    assert_eq!(
        (s.compact_stall, s.compact_success, s.compact_fail),
        (1, 1, 0)
    );
    // The atomic failure counted, the compacting success did not.
    assert_eq!(s.total_alloc_fail(), fails + 1);
}

#[test]
fn failed_runs_defer_the_zone_and_a_success_resets_it() {
    let a = machine(32768);
    let mut owner = checkerboard(&a);
    owner.refuse_every = 1;
    let mut results = Vec::new();
    for _ in 0..8 {
        let run = a
            .compact_zone_for(0, order(9), AllocFlags::HIGHUSER_MOVABLE, &mut |f, t, o| {
                owner.migrate(f, t, o)
            })
            .unwrap();
        results.push(run.result);
    }
    owner.check(&a);
    use CompactResult::{Complete as C, Deferred as D};
    // Linux's backoff: after each failure, 2^shift attempts pass deferred
    // before the next run.
    assert_eq!(results, vec![C, D, C, D, D, D, C, D]);
    owner.refuse_every = 0;
    let mut last = D;
    for _ in 0..16 {
        last = a
            .compact_zone_for(0, order(9), AllocFlags::HIGHUSER_MOVABLE, &mut |f, t, o| {
                owner.migrate(f, t, o)
            })
            .unwrap()
            .result;
        if last != D {
            break;
        }
    }
    assert_eq!(last, CompactResult::Success);
    owner.check(&a);
}

#[test]
fn an_unsuitable_zone_is_not_compacted() {
    let a = machine(32768);
    // Nearly full: below the watermark plus 2 << order.
    let mut owner = Owner::default();
    while let Ok(p) = a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE) {
        owner.held.insert(p, Order::ZERO);
    }
    let run = a
        .compact_zone_for(0, order(9), AllocFlags::HIGHUSER_MOVABLE, &mut |_, _, _| {
            Ok(())
        })
        .unwrap();
    assert_eq!(run.result, CompactResult::Skipped);
    assert_eq!(run.migrate_scanned, 0);
}

/// A small DMA32 zone under a large Normal one keeps all its pages as
/// the lowmem reserve against requests that may use Normal: compacting it
/// for such a request could not serve it, so it is skipped (Linux checks
/// `lowmem_reserve[highest_zoneidx]` in `__compaction_suitable`), while a
/// request limited to DMA32 finds it suitable.
#[test]
fn a_zone_inside_its_lowmem_reserve_is_not_compacted_for_higher_requests() {
    let map = MemoryMap::contiguous(Pfn(0xffc00), PageCount(1024 + 262144)).unwrap();
    let a = Allocator::new(map, Config::default()).unwrap();
    let dma32 = a
        .zones()
        .iter()
        .position(|z| z.zone_type() == pagealloc::ZoneType::Dma32)
        .unwrap();
    let never =
        &mut |_: Pfn, _: Pfn, _: Order| -> Result<(), MigrateRefusal> { Err(MigrateRefusal::Busy) };
    let high = a
        .compact_zone_for(dma32, order(2), AllocFlags::HIGHUSER_MOVABLE, never)
        .unwrap();
    assert_eq!(high.result, CompactResult::Skipped);
    let low = a
        .compact_zone_for(
            dma32,
            order(2),
            AllocFlags::DMA32 | AllocFlags::MOVABLE,
            never,
        )
        .unwrap();
    assert_eq!(low.result, CompactResult::Success);
}

#[test]
fn proactive_compaction_brings_the_score_below_the_low_mark() {
    let a = machine(32768);
    let mut owner = checkerboard(&a);
    let node = pagealloc::NodeId(0);
    let before = a.node_fragmentation_score(node);
    assert!(before > 90, "score {before}");
    // Proactiveness 0 is off.
    assert!(a.proactive_compact(0, &mut |_, _, _| Ok(())).is_empty());
    let out = a.proactive_compact(20, &mut |f, t, o| owner.migrate(f, t, o));
    owner.check(&a);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].score_before, before);
    assert!(out[0].score_after <= 80, "{:?}", out[0]);
    assert_eq!(out[0].runs.len(), 1);
    assert_eq!(a.stats().compact_daemon_wake, 1);
    // At or below the high mark, another round does nothing.
    let again = a.proactive_compact(20, &mut |f, t, o| owner.migrate(f, t, o));
    assert!(again[0].runs.is_empty());
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(u8, bool),
    Free(usize),
    Compact(u8, u64),
    Direct(u8, u64),
    Proactive(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..6, any::<bool>()).prop_map(|(o, m)| Op::Alloc(o, m)),
        6 => any::<usize>().prop_map(Op::Free),
        1 => (1u8..10, 0u64..4).prop_map(|(o, r)| Op::Compact(o, r)),
        1 => (1u8..10, 0u64..4).prop_map(|(o, r)| Op::Direct(o, r)),
        1 => (0u8..60).prop_map(Op::Proactive),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Compaction interleaved with random allocations and frees, with
    /// injected migration refusals: after every step the invariant walk,
    /// and every block the owner holds is still its (allocated, movable)
    /// block, and the unmovable blocks too; nothing lost.
    #[test]
    fn compaction_with_refusals_keeps_every_invariant(ops in prop::collection::vec(op(), 40..160)) {
        let a = machine(8192);
        let mut owner = Owner::default();
        let mut pinned_down: Vec<(Pfn, Order)> = Vec::new();
        let mut refused = 0;
        for op in ops {
            match op {
                Op::Alloc(o, movable) => {
                    let flags = if movable { AllocFlags::HIGHUSER_MOVABLE } else { AllocFlags::KERNEL };
                    if let Ok(p) = a.alloc(order(o), flags) {
                        if movable { owner.held.insert(p, order(o)); } else { pinned_down.push((p, order(o))); }
                    }
                }
                Op::Free(i) => {
                    let mut keys: Vec<Pfn> = owner.held.keys().copied().collect();
                    keys.sort();
                    if !keys.is_empty() && i % 3 != 0 {
                        let p = keys[i % keys.len()];
                        let o = owner.held.remove(&p).unwrap();
                        a.free(p, o).unwrap();
                    } else if !pinned_down.is_empty() {
                        let (p, o) = pinned_down.swap_remove(i % pinned_down.len());
                        a.free(p, o).unwrap();
                    }
                }
                Op::Compact(o, r) => {
                    owner.refuse_every = r;
                    a.compact_zone_for(0, order(o), AllocFlags::HIGHUSER_MOVABLE, &mut |f, t, o| owner.migrate(f, t, o));
                }
                Op::Direct(o, r) => {
                    owner.refuse_every = r;
                    if let Ok(p) = a.alloc_compacting(CpuId(0), order(o), AllocFlags::HIGHUSER_MOVABLE, &mut |f, t, o| owner.migrate(f, t, o)) {
                        owner.held.insert(p, order(o));
                    }
                }
                Op::Proactive(p) => {
                    owner.refuse_every = 3;
                    a.proactive_compact(p, &mut |f, t, o| owner.migrate(f, t, o));
                }
            }
            refused = owner.refused;
            prop_assert!(a.check_invariants().is_ok(), "{:?}", a.check_invariants());
            for (&p, &o) in &owner.held {
                prop_assert_eq!(a.allocated_block(p), Some((o, MigrateType::Movable)));
            }
            for &(p, o) in &pinned_down {
                prop_assert_eq!(a.allocated_block(p).map(|b| b.0), Some(o));
            }
            let pages: u64 = owner.held.values().chain(pinned_down.iter().map(|b| &b.1)).map(|o| o.nr_pages().0).sum();
            prop_assert_eq!(a.nr_allocated_pages(), pages);
        }
        let _ = refused;
    }
}
