//! Memory regions and the region allocator (seed 000): regions start held,
//! the lowest comes back first, types keep to their own regions, entirely
//! free regions go back, partial regions, isolation and offline draw held
//! regions back, the power hooks and the report, bad input; and a property
//! test with the invariant walk after every step.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pagealloc::{
    AllocFlags, Allocator, Config, ConfigError, CpuId, MemoryMap, MigrateRefusal, Order, PageCount,
    PageState, Pfn, RegionId, RegionMixing, RegionPolicy, RegionPower, RegionState, ZoneBounds,
};
use proptest::prelude::*;

/// Pages per MiB at 4 KiB.
const MIB: u64 = 256;

fn config(region_mib: u64, cpus: u16) -> Config {
    Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        nr_cpus: cpus,
        regions: Some(RegionPolicy {
            size_bytes: region_mib << 20,
            ..RegionPolicy::default()
        }),
        ..Config::default()
    }
}

/// `mib` MiB from frame `start` with 8 MiB regions.
fn allocator(start: u64, mib: u64, cpus: u16) -> Allocator {
    let map = MemoryMap::contiguous(Pfn(start), PageCount(mib * MIB)).unwrap();
    Allocator::new(map, config(8, cpus)).unwrap()
}

fn states(a: &Allocator) -> Vec<RegionState> {
    a.region_report()
        .unwrap()
        .regions()
        .map(|r| r.state)
        .collect()
}

fn region_of(a: &Allocator, pfn: Pfn) -> u32 {
    let report = a.region_report().unwrap();
    report
        .regions()
        .filter(|r| r.id.start <= pfn)
        .map(|r| r.id.index)
        .max()
        .unwrap()
}

#[test]
fn regions_start_held_and_the_lowest_comes_back_first() {
    let a = allocator(0, 64, 1);
    assert_eq!(states(&a), vec![RegionState::Held; 8]);
    assert_eq!(a.nr_free_pages(), 64 * MIB, "held pages count as free");
    let p = a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE).unwrap();
    assert_eq!(region_of(&a, p), 0);
    let s = states(&a);
    assert_eq!(s[0], RegionState::InService);
    assert!(s[1..].iter().all(|s| *s == RegionState::Held));
    // Order 10 too: the watermark test sees a held region as a largest block.
    let big = a
        .alloc(Order::new(10).unwrap(), AllocFlags::HIGHUSER_MOVABLE)
        .unwrap();
    assert_eq!(
        region_of(&a, big),
        0,
        "region 0 still has a free 4 MiB block"
    );
    a.check_invariants().unwrap();
    a.free(big, Order::new(10).unwrap()).unwrap();
    a.free(p, Order::ZERO).unwrap();
    a.drain_all();
    a.check_invariants().unwrap();
    assert_eq!(states(&a), vec![RegionState::Held; 8], "region 0 went back");
    let r0 = a.region_report().unwrap().zones[0].regions[0];
    assert_eq!((r0.returns, r0.draws), (2, 1));
}

#[test]
fn allocation_fills_the_lowest_regions_and_types_keep_apart() {
    let map = MemoryMap::contiguous(Pfn(0), PageCount(64 * MIB)).unwrap();
    let mut c = config(8, 1);
    c.regions = Some(RegionPolicy {
        size_bytes: 8 << 20,
        mixing: RegionMixing::Segregated,
    });
    let a: Allocator = Allocator::new(map, c).unwrap();
    let mut movable = Vec::new();
    // 12 MiB of movable pages: regions 0 and 1 (8 MiB each).
    for _ in 0..(12 * MIB) {
        movable.push(a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE).unwrap());
    }
    assert!(movable.iter().all(|&p| region_of(&a, p) <= 1));
    let unmovable = a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    assert_eq!(
        region_of(&a, unmovable),
        2,
        "an unmovable page draws a region of its own rather than claim in a movable one"
    );
    let report = a.region_report().unwrap();
    assert_eq!(report.held(), 5);
    a.check_invariants().unwrap();
    assert_eq!(a.stats().extfrag_events, 0);
    assert_eq!(report.free_pageblock_claims(), 0);
}

#[test]
fn packed_mixing_takes_a_free_pageblock_of_another_type_first() {
    let a = allocator(0, 64, 1);
    for _ in 0..(12 * MIB) {
        a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE).unwrap();
    }
    // Region 1 has free movable pageblocks: the unmovable page takes one
    // rather than wake region 2.
    let unmovable = a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    assert_eq!(region_of(&a, unmovable), 1);
    let report = a.region_report().unwrap();
    assert_eq!(report.held(), 6);
    assert_eq!(report.free_pageblock_claims(), 1);
    assert_eq!(
        a.pageblock_migratetype(unmovable),
        Some(pagealloc::MigrateType::Unmovable)
    );
    a.check_invariants().unwrap();
}

#[test]
fn partial_regions_at_unaligned_zone_edges_and_holes() {
    // 1 MiB + 4 pages in, 30 MiB long, with a hole: regions 0 and 3 are
    // partial, region 1 has a hole.
    let start = MIB + 4;
    let map = MemoryMap::new([
        common::range(0, start, start + 10 * MIB),
        common::range(0, start + 12 * MIB, start + 30 * MIB),
    ])
    .unwrap();
    let a: Allocator = Allocator::new(map, config(8, 1)).unwrap();
    let report = a.region_report().unwrap();
    let present: Vec<u64> = report.regions().map(|r| r.present.0).collect();
    assert_eq!(present.iter().sum::<u64>(), 28 * MIB);
    assert_eq!(present.len(), 4);
    assert_eq!(present[0], 7 * MIB - 4);
    assert_eq!(report.held(), 4, "partial regions are held when free too");
    let mut got = Vec::new();
    while let Ok(p) = a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE) {
        got.push(p);
    }
    a.check_invariants().unwrap();
    for p in got {
        a.free(p, Order::ZERO).unwrap();
    }
    a.drain_all();
    a.check_invariants().unwrap();
    assert_eq!(a.region_report().unwrap().held(), 4);
}

#[test]
fn regions_are_off_by_default_and_bad_sizes_are_typed_errors() {
    let map = MemoryMap::contiguous(Pfn(0), PageCount(16 * MIB)).unwrap();
    let off: Allocator = Allocator::new(map.clone(), Config::default()).unwrap();
    assert!(off.region_report().is_none());
    assert!(!off.regions_enabled());
    assert!(off.zones()[0]
        .blocks()
        .all(|b| b.state != PageState::HeldHead));
    for bytes in [0, 1 << 20, 3 << 20, 12 << 20] {
        let c = Config {
            regions: Some(RegionPolicy {
                size_bytes: bytes,
                ..Default::default()
            }),
            ..Config::default()
        };
        let err = Allocator::new(map.clone(), c).unwrap_err();
        assert_eq!(
            err,
            ConfigError::RegionSize {
                bytes,
                min: 4 << 20
            }
        );
        assert!(err.to_string().contains("region size"));
    }
}

#[derive(Default)]
struct Meter {
    log: Mutex<Vec<(bool, u32, u64)>>,
    down: AtomicU64,
}

impl RegionPower for Meter {
    fn power_down(&self, region: RegionId, now: u64) {
        self.down.fetch_add(1, Ordering::Relaxed);
        self.log.lock().unwrap().push((false, region.index, now));
    }
    fn power_up(&self, region: RegionId, now: u64) {
        self.log.lock().unwrap().push((true, region.index, now));
    }
}

#[test]
fn power_hooks_hear_every_change_and_idle_time_is_counted() {
    let mut a = allocator(0, 32, 1);
    let meter = Arc::new(Meter::default());
    a.set_region_power(Some(meter.clone()));
    a.set_region_time(100);
    let p = a.alloc(Order::new(3).unwrap(), AllocFlags::KERNEL).unwrap();
    a.set_region_time(250);
    a.free(p, Order::new(3).unwrap()).unwrap();
    a.drain_all();
    a.set_region_time(400);
    let log = meter.log.lock().unwrap().clone();
    assert_eq!(log, vec![(true, 0, 100), (false, 0, 250)]);
    let report = a.region_report().unwrap();
    let r0 = report.zones[0].regions[0];
    // Held 0..100 and 250..400.
    assert_eq!(r0.idle_ticks, 100 + 150);
    assert_eq!(report.zones[0].regions[1].idle_ticks, 400);
    let text = report.to_string();
    assert!(
        text.contains("4 regions of 2048 pages, 4 held, 0 free pageblocks claimed, now 400"),
        "{text}"
    );
    let json = report.to_json();
    assert!(json.starts_with(
        "{\"now\":400,\"zones\":[{\"node\":0,\"zone\":\"Normal\",\"region_pages\":2048,\"free_pageblock_claims\":0,"
    ));
    assert!(json.contains("\"index\":0,\"start_pfn\":0,\"present\":2048,\"free\":2048,\"state\":\"held\",\"idle_ticks\":250,\"returns\":2,\"draws\":1"), "{json}");
}

#[test]
fn isolation_and_offline_draw_held_regions_back() {
    let mut a = allocator(0, 32, 1);
    let mut refuse = |_: Pfn, _: Pfn, _: Order| Err(MigrateRefusal::Busy);
    // A range inside held region 2.
    let start = Pfn(2 * 8 * MIB + 512);
    let got = a.alloc_contig_range(start, Pfn(start.0 + 1000), &mut refuse);
    assert!(got.is_ok(), "{got:?}");
    a.check_invariants().unwrap();
    assert_eq!(states(&a)[2], RegionState::InService);
    a.free_contig_range(start, PageCount(1000)).unwrap();
    a.check_invariants().unwrap();
    assert_eq!(states(&a)[2], RegionState::Held, "freed whole again");
    // Offline a held region's pageblocks, then online them.
    let off = Pfn(3 * 8 * MIB);
    a.offline_pages(off, PageCount(1024), &mut refuse).unwrap();
    a.check_invariants().unwrap();
    assert_eq!(states(&a)[3], RegionState::InService);
    a.online_pages(off, PageCount(1024)).unwrap();
    a.check_invariants().unwrap();
    assert_eq!(states(&a)[3], RegionState::Held);
}

#[test]
fn held_pages_cannot_be_freed() {
    let a = allocator(0, 16, 1);
    let err = a.free(Pfn(8 * MIB), Order::ZERO).unwrap_err();
    assert!(
        matches!(err, pagealloc::BlockError::AlreadyFree { .. }),
        "{err:?}"
    );
    let err = a.free(Pfn(8 * MIB + 3), Order::ZERO).unwrap_err();
    assert!(
        matches!(err, pagealloc::BlockError::AlreadyFree { .. }),
        "{err:?}"
    );
    a.check_invariants().unwrap();
}

#[derive(Clone, Debug)]
enum Op {
    Alloc { cpu: u16, order: u8, kind: u8 },
    Free { pick: usize },
    Bulk { cpu: u16, n: usize, kind: u8 },
    FreeBatch { cpu: u16, pick: usize, n: usize },
    Drain { cpu: u16 },
    DrainAll,
    Tick,
}

fn flags(kind: u8) -> AllocFlags {
    match kind % 3 {
        0 => AllocFlags::KERNEL,
        1 => AllocFlags::HIGHUSER_MOVABLE,
        _ => AllocFlags::KERNEL_RECLAIMABLE,
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..2, prop_oneof![4 => Just(0u8), 1 => 1u8..4, 1 => Just(9u8), 1 => Just(10u8)], any::<u8>())
            .prop_map(|(cpu, order, kind)| Op::Alloc { cpu, order, kind }),
        5 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => (0u16..2, 1usize..200, any::<u8>()).prop_map(|(cpu, n, kind)| Op::Bulk { cpu, n, kind }),
        2 => (0u16..2, any::<usize>(), 1usize..300).prop_map(|(cpu, pick, n)| Op::FreeBatch { cpu, pick, n }),
        1 => (0u16..2).prop_map(|cpu| Op::Drain { cpu }),
        1 => Just(Op::DrainAll),
        1 => Just(Op::Tick),
    ]
}

fn run(ops: &[Op], start: u64, mixing: RegionMixing) -> Result<(), TestCaseError> {
    // 40 MiB, unaligned to the 8 MiB regions at both ends, two CPUs.
    let map = MemoryMap::contiguous(Pfn(start), PageCount(40 * MIB)).unwrap();
    let mut c = config(8, 2);
    c.regions = Some(RegionPolicy {
        size_bytes: 8 << 20,
        mixing,
    });
    let a: Allocator = Allocator::new(map, c).unwrap();
    let mut live: Vec<(Pfn, Order)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc { cpu, order, kind } => {
                let order = Order::new(order).unwrap();
                if let Ok(p) = a.alloc_on_cpu(CpuId(cpu), order, flags(kind)) {
                    live.push((p, order));
                }
            }
            Op::Free { pick } => {
                if !live.is_empty() {
                    let (p, o) = live.swap_remove(pick % live.len());
                    a.free(p, o).unwrap();
                }
            }
            Op::Bulk { cpu, n, kind } => {
                let mut out = vec![Pfn(0); n];
                let got = a.alloc_bulk(CpuId(cpu), flags(kind), &mut out).unwrap();
                live.extend(out[..got].iter().map(|&p| (p, Order::ZERO)));
            }
            Op::FreeBatch { cpu, pick, n } => {
                let mut batch = Vec::new();
                let mut i = pick % (live.len() + 1);
                while batch.len() < n && i < live.len() {
                    if live[i].1 == Order::ZERO {
                        batch.push(live.swap_remove(i).0);
                    } else {
                        i += 1;
                    }
                }
                a.free_bulk(CpuId(cpu), &batch).unwrap();
            }
            Op::Drain { cpu } => {
                a.drain_local(CpuId(cpu)).unwrap();
            }
            Op::DrainAll => {
                a.drain_all();
            }
            Op::Tick => a.set_region_time(step as u64),
        }
        if let Err(e) = a.check_invariants() {
            return Err(TestCaseError::fail(format!("step {step} {op:?}: {e}")));
        }
    }
    // Everything freed and drained: every region is held again.
    for (p, o) in live.drain(..) {
        a.free(p, o).unwrap();
    }
    a.drain_all();
    a.check_invariants()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let report = a.region_report().unwrap();
    let regions = report.regions().count() as u64;
    let blocks: Vec<_> = a.zones()[0]
        .blocks()
        .filter(|b| {
            report.regions().any(|r| {
                r.state == RegionState::InService
                    && r.id.start <= b.pfn
                    && b.pfn.0 < r.id.start.0 + r.present.0
            })
        })
        .map(|b| (b.pfn, b.order, b.state, a.pageblock_migratetype(b.pfn)))
        .collect();
    prop_assert_eq!(report.held(), regions, "{}\n{:?}", report, blocks);
    prop_assert_eq!(a.nr_allocated_pages(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn invariants_hold_through_random_work_and_every_region_comes_back(
        ops in prop::collection::vec(op(), 1..400),
        start in prop_oneof![Just(0u64), Just(MIB + 7), Just(3 * 1024u64)],
        mixing in prop_oneof![Just(RegionMixing::Packed), Just(RegionMixing::Segregated)],
    ) {
        run(&ops, start, mixing)?;
    }
}

/// Churn that draws regions again after they went back: the property test
/// covers it on most runs, this makes sure on one.
#[test]
fn regions_go_back_and_are_drawn_again_under_churn() {
    let a = allocator(0, 40, 2);
    let mut live = Vec::new();
    for round in 0..6 {
        for i in 0..(10 * MIB) {
            let cpu = CpuId((i % 2) as u16);
            live.push(a.alloc_on_cpu(cpu, Order::ZERO, flags(round)).unwrap());
        }
        for p in live.drain(..) {
            a.free(p, Order::ZERO).unwrap();
        }
        a.drain_all();
        a.check_invariants().unwrap();
        assert_eq!(a.region_report().unwrap().held(), 5);
    }
    let report = a.region_report().unwrap();
    assert!(report.regions().take(2).all(|r| r.draws == 6), "{report}");
    assert!(report.regions().skip(2).all(|r| r.draws == 0), "{report}");
}
