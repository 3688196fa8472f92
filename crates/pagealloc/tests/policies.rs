//! The placement policies side by side: Linux's, packing of small orders
//! (`Packing::SmallOrders`), confinement (`Confinement::LowEnd`) and both
//! together. Each keeps every invariant after every step of a random run
//! of allocations and frees of orders 0-3 of every migratetype, on two
//! CPUs, with per-CPU drains between, some allocations made through
//! `alloc_confining` with a migrator (confinement's growth by evacuation);
//! and confinement does what it says on deterministic workloads.

use std::collections::BTreeSet;

use pagealloc::{
    AllocFlags, Allocator, Config, Confinement, CpuId, MemRange, MemoryMap, MigrateRefusal,
    MigrateType, NodeId, Order, Packing, PageCount, PageState, Pfn, ZoneBounds,
};
use proptest::prelude::*;

const PAGEBLOCK_PAGES: u64 = 512;

/// The policies compared, by name.
fn policies() -> [(&'static str, Packing, Confinement); 4] {
    [
        ("linux", Packing::Off, Confinement::Off),
        ("small-orders", Packing::SmallOrders, Confinement::Off),
        ("confined", Packing::Off, Confinement::LowEnd),
        ("confined+packed", Packing::SmallOrders, Confinement::LowEnd),
    ]
}

/// 16 MiB from frame 0 on two CPUs: DMA (one pageblock), DMA32 (three) and
/// Normal (four), so zone fallback, `ALLOC_NOFRAGMENT` and every
/// migratetype's fallback are reached within a few hundred steps.
fn machine(packing: Packing, confinement: Confinement) -> Allocator {
    machine_with(packing, confinement, 9)
}

/// [`machine`] with pageblocks of `pageblock_order` (small ones make
/// requests of orders 1-3 larger than a pageblock: Linux's fallback then
/// claims whole free blocks, which confinement must not leave confined).
fn machine_with(packing: Packing, confinement: Confinement, pageblock_order: u8) -> Allocator {
    let config = Config {
        pageblock_order,
        zone_bounds: ZoneBounds {
            dma_end_bytes: Some(2 << 20),
            dma32_end_bytes: Some(8 << 20),
            movable_start_bytes: None,
        },
        nr_cpus: 2,
        packing,
        confinement,
        ..Config::default()
    };
    let map = MemoryMap::new(vec![MemRange {
        node: NodeId(0),
        start: Pfn(0),
        end: Pfn(4096),
    }])
    .unwrap();
    Allocator::new(map, config).unwrap()
}

/// The flags of each kind of request the run makes.
const KINDS: [AllocFlags; 7] = [
    AllocFlags::KERNEL,
    AllocFlags::KERNEL_RECLAIMABLE,
    AllocFlags::HIGHUSER_MOVABLE,
    AllocFlags::GFP_ATOMIC,
    AllocFlags::DMA,
    AllocFlags::MOVABLE.union(AllocFlags::NO_FALLBACK),
    AllocFlags::RECLAIMABLE.union(AllocFlags::ATOMIC),
];

#[derive(Clone, Debug)]
enum Op {
    /// Allocate a block of `order` of kind `kind` on `cpu`.
    Alloc { cpu: u16, order: u8, kind: usize },
    /// Allocate `n` movable order-0 pages on `cpu` (fills memory fast).
    Fill { cpu: u16, n: usize },
    /// Free the held block at `pick` (modulo how many are held) on `cpu`.
    Free { cpu: u16, pick: usize },
    /// Free every `stride`-th held block.
    FreeMany { stride: usize },
    /// Drain `cpu`'s lists, or every CPU's.
    Drain { cpu: Option<u16> },
    /// Allocate through `Allocator::alloc_confining` on `cpu`, with a
    /// migrator that moves held blocks (or refuses every one).
    Confining {
        cpu: u16,
        order: u8,
        kind: usize,
        refuse: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..2, 0u8..=3, 0usize..KINDS.len())
            .prop_map(|(cpu, order, kind)| Op::Alloc { cpu, order, kind }),
        1 => (0u16..2, 1usize..200).prop_map(|(cpu, n)| Op::Fill { cpu, n }),
        5 => (0u16..2, any::<usize>()).prop_map(|(cpu, pick)| Op::Free { cpu, pick }),
        1 => (2usize..5).prop_map(|stride| Op::FreeMany { stride }),
        1 => prop::option::of(0u16..2).prop_map(|cpu| Op::Drain { cpu }),
        3 => (0u16..2, 0u8..=3, 0usize..KINDS.len(), prop::bool::weighted(0.2))
            .prop_map(|(cpu, order, kind, refuse)| Op::Confining { cpu, order, kind, refuse }),
    ]
}

/// Runs `ops` under one policy, checking the invariants after every step.
fn run(name: &str, packing: Packing, confinement: Confinement, pageblock_order: u8, ops: &[Op]) {
    let a = machine_with(packing, confinement, pageblock_order);
    let mut held: Vec<(Pfn, Order)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc { cpu, order, kind } => {
                let order = Order::new(order).unwrap();
                if let Ok(pfn) = a.alloc_on_cpu(CpuId(cpu), order, KINDS[kind]) {
                    held.push((pfn, order));
                }
            }
            Op::Fill { cpu, n } => {
                for _ in 0..n {
                    match a.alloc_on_cpu(CpuId(cpu), Order::ZERO, AllocFlags::HIGHUSER_MOVABLE) {
                        Ok(pfn) => held.push((pfn, Order::ZERO)),
                        Err(_) => break,
                    }
                }
            }
            Op::Free { cpu, pick } => {
                if !held.is_empty() {
                    let (pfn, order) = held.swap_remove(pick % held.len());
                    a.free_on_cpu(CpuId(cpu), pfn, order).unwrap();
                }
            }
            Op::FreeMany { stride } => {
                let mut k = 0;
                held.retain(|&(pfn, order)| {
                    k += 1;
                    if k % stride == 0 {
                        a.free(pfn, order).unwrap();
                        false
                    } else {
                        true
                    }
                });
            }
            Op::Drain { cpu: Some(cpu) } => {
                a.drain_local(CpuId(cpu)).unwrap();
            }
            Op::Drain { cpu: None } => {
                a.drain_all();
            }
            Op::Confining {
                cpu,
                order,
                kind,
                refuse,
            } => {
                let order = Order::new(order).unwrap();
                let got = a.alloc_confining(
                    CpuId(cpu),
                    order,
                    KINDS[kind],
                    &mut |from: Pfn, to: Pfn, o: Order| move_held(&mut held, refuse, from, to, o),
                );
                if let Ok(pfn) = got {
                    held.push((pfn, order));
                }
            }
        }
        if let Err(e) = a.check_invariants() {
            panic!("{name}, step {step} ({op:?}): {e}");
        }
    }
    for (pfn, order) in held {
        a.free(pfn, order).unwrap();
    }
    a.drain_all();
    a.check_invariants().unwrap();
    assert_eq!(a.nr_allocated_pages(), 0, "{name}");
}

/// The test's migrator: the held block `from` of order `o` is held at `to`
/// from now on, unless the run refuses every move or does not hold it.
fn move_held(
    held: &mut [(Pfn, Order)],
    refuse: bool,
    from: Pfn,
    to: Pfn,
    o: Order,
) -> Result<(), MigrateRefusal> {
    if refuse {
        return Err(MigrateRefusal::Pinned);
    }
    let block = held
        .iter_mut()
        .find(|b| **b == (from, o))
        .ok_or(MigrateRefusal::Busy)?;
    block.0 = to;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn every_policy_keeps_the_invariants_after_every_step(
        ops in prop::collection::vec(op(), 1..500),
    ) {
        for (name, packing, confinement) in policies() {
            run(name, packing, confinement, 9, &ops);
            run(name, packing, confinement, 1, &ops);
        }
    }
}

/// Per pageblock (its index from frame 0): whether it holds allocated
/// unmovable or reclaimable pages, and its type.
fn pageblocks(a: &Allocator) -> (BTreeSet<u64>, Vec<(u64, MigrateType)>) {
    let mut holding = BTreeSet::new();
    let mut types = Vec::new();
    for zone in a.zones() {
        for b in zone.blocks() {
            let unmovable = matches!(
                b.alloc_migratetype,
                Some(MigrateType::Unmovable | MigrateType::Reclaimable)
            );
            if b.state == PageState::AllocHead && unmovable {
                holding.insert(b.pfn.0 / PAGEBLOCK_PAGES);
            }
        }
        let mut pfn = zone.start_pfn().0;
        while pfn < zone.end_pfn().0 {
            if let Some(mt) = zone.block_migratetype(Pfn(pfn)) {
                types.push((pfn / PAGEBLOCK_PAGES, mt));
            }
            pfn += PAGEBLOCK_PAGES;
        }
    }
    (holding, types)
}

/// One Normal zone of 64 MiB (128 pageblocks) under `confinement`:
/// movable memory churns at about 60% of memory while unmovable and
/// reclaimable blocks of orders 0-3 come and go, a third kept.
fn churn(packing: Packing, confinement: Confinement) -> Allocator {
    let config = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        packing,
        confinement,
        ..Config::default()
    };
    let a: Allocator = Allocator::new(
        MemoryMap::contiguous(Pfn(0), PageCount(128 * PAGEBLOCK_PAGES)).unwrap(),
        config,
    )
    .unwrap();
    let mut movable: Vec<Pfn> = Vec::new();
    let mut kernel: Vec<(Pfn, Order)> = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..60_000u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let used = a.nr_allocated_pages() * 100 / (128 * PAGEBLOCK_PAGES);
        match rng % 10 {
            0..=3 if used < 60 => {
                if let Ok(p) = a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE) {
                    movable.push(p);
                }
            }
            0..=4 if !movable.is_empty() => {
                let p = movable.swap_remove((rng >> 16) as usize % movable.len());
                a.free(p, Order::ZERO).unwrap();
            }
            5 | 6 => {
                let order = Order::new([0, 0, 0, 1, 2, 3][(rng >> 24) as usize % 6]).unwrap();
                let flags = if rng & (1 << 40) == 0 {
                    AllocFlags::KERNEL
                } else {
                    AllocFlags::KERNEL_RECLAIMABLE
                };
                if let Ok(p) = a.alloc(order, flags) {
                    kernel.push((p, order));
                }
            }
            _ if kernel.len() > 600 => {
                // The first 300 stay for good; the others come and go.
                let k = 300 + (rng >> 16) as usize % (kernel.len() - 300);
                let (p, o) = kernel.swap_remove(k);
                a.free(p, o).unwrap();
            }
            _ => {}
        }
        if i % 10_000 == 0 {
            a.check_invariants().unwrap();
        }
    }
    a.drain_all();
    a.check_invariants().unwrap();
    a
}

/// With memory to spare, confinement keeps every unmovable and reclaimable
/// pageblock in the lowest part of the zone: the highest pageblock holding
/// such pages is below the number of confined pageblocks plus the few the
/// area gave back below its top, and Linux's placement spreads them
/// further. No fallback was needed.
#[test]
fn confinement_keeps_unmovable_memory_at_the_low_end() {
    let linux = churn(Packing::Off, Confinement::Off);
    let confined = churn(Packing::Off, Confinement::LowEnd);
    let (linux_holding, _) = pageblocks(&linux);
    let (holding, types) = pageblocks(&confined);
    let top = *holding.last().unwrap();
    let linux_top = *linux_holding.last().unwrap();
    let confined_blocks = types
        .iter()
        .filter(|(_, mt)| matches!(mt, MigrateType::Unmovable | MigrateType::Reclaimable))
        .count() as u64;
    let stats = confined.stats();
    eprintln!(
        "highest pageblock holding unmovable pages: confined {top} (of {} holding, {confined_blocks} \
         confined), linux {linux_top} (of {} holding); {stats:?}",
        holding.len(),
        linux_holding.len()
    );
    // Every confined pageblock lies at or below the top.
    assert!(types
        .iter()
        .filter(|(_, mt)| matches!(mt, MigrateType::Unmovable | MigrateType::Reclaimable))
        .all(|&(b, _)| b <= top));
    // The area is dense: at most a quarter of the pageblocks below its top
    // are not the area's.
    assert!(
        (top + 1) * 3 <= confined_blocks * 4,
        "top {top}, {confined_blocks} confined pageblocks"
    );
    assert!(top <= linux_top, "confined top {top}, linux {linux_top}");
    assert!(holding.len() <= linux_holding.len());
    assert_eq!(stats.confined_fallbacks, 0);
    assert!(stats.confined_claims > 0);
}

/// Movable memory grows down from the top: on an empty zone the first
/// movable page comes from the last pageblock, and the first unmovable one
/// from the first.
#[test]
fn confinement_puts_movable_at_the_top_and_unmovable_at_the_bottom() {
    let a = machine(Packing::Off, Confinement::LowEnd);
    let normal = a
        .zones()
        .iter()
        .find(|z| z.zone_type() == pagealloc::ZoneType::Normal)
        .unwrap();
    let (start, end) = (normal.start_pfn(), normal.end_pfn());
    let movable = a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE).unwrap();
    let kernel = a.alloc(Order::new(3).unwrap(), AllocFlags::KERNEL).unwrap();
    assert!(movable.0 >= end.0 - PAGEBLOCK_PAGES, "{movable}");
    assert!(kernel.0 < start.0 + PAGEBLOCK_PAGES, "{kernel}");
    a.check_invariants().unwrap();
    // Freed and drained, the unmovable pageblock goes back to movable.
    a.free(kernel, Order::new(3).unwrap()).unwrap();
    a.drain_all();
    assert_eq!(normal.block_migratetype(kernel), Some(MigrateType::Movable));
    assert_eq!(a.stats().confined_releases, 1);
    a.check_invariants().unwrap();
}

/// One Normal zone of `nr_pageblocks` pageblocks filled with movable
/// pages, then every page `keep` refuses freed: with a `keep` that keeps a
/// page of every pageblock, no pageblock is wholly free, and only movable
/// pages are allocated.
fn checkerboard(nr_pageblocks: u64, keep: impl Fn(Pfn) -> bool) -> (Allocator, Vec<Pfn>) {
    checkerboard_under(nr_pageblocks, keep, Packing::Off, Confinement::LowEnd)
}

/// [`checkerboard`] under `packing` and `confinement`.
fn checkerboard_under(
    nr_pageblocks: u64,
    keep: impl Fn(Pfn) -> bool,
    packing: Packing,
    confinement: Confinement,
) -> (Allocator, Vec<Pfn>) {
    let config = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        packing,
        confinement,
        ..Config::default()
    };
    let a: Allocator = Allocator::new(
        MemoryMap::contiguous(Pfn(0), PageCount(nr_pageblocks * PAGEBLOCK_PAGES)).unwrap(),
        config,
    )
    .unwrap();
    let mut movable = Vec::new();
    while let Ok(p) = a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE) {
        movable.push(p);
    }
    let mut kept = Vec::new();
    for p in movable {
        if !keep(p) {
            a.free(p, Order::ZERO).unwrap();
        } else {
            kept.push(p);
        }
    }
    a.drain_all();
    a.check_invariants().unwrap();
    (a, kept)
}

/// A migrator over `movable`, the frames a test holds: the one at `from`
/// is now at `to`; a frame it does not hold is busy.
fn move_page(movable: &mut [Pfn], from: Pfn, to: Pfn) -> Result<(), MigrateRefusal> {
    let slot = movable
        .iter_mut()
        .find(|p| **p == from)
        .ok_or(MigrateRefusal::Busy)?;
    *slot = to;
    Ok(())
}

/// Unmovable pages asked for on a checkerboard: with a migrator, the area
/// grows by emptying the lowest movable pageblocks (no fallback, every
/// unmovable page in an unmovable pageblock, the movable pages all still
/// held where the migrator moved them); without one, Linux's fallback puts
/// them among movable pages.
#[test]
fn confinement_grows_by_evacuation_instead_of_falling_back() {
    const WANT: usize = 1024;
    let odd = |p: Pfn| p.0 % 2 == 1;
    let (a, mut movable) = checkerboard(32, odd);
    let before = a.nr_allocated_pages();
    let mut kernel = Vec::new();
    for _ in 0..WANT {
        let got = a.alloc_confining(
            CpuId(0),
            Order::ZERO,
            AllocFlags::KERNEL,
            &mut |from: Pfn, to: Pfn, _o: Order| move_page(&mut movable, from, to),
        );
        kernel.push(got.unwrap());
        a.check_invariants().unwrap();
    }
    let stats = a.stats();
    assert_eq!(stats.confined_fallbacks, 0, "{stats:?}");
    // 1,024 pages are two pageblocks: at least one had to be emptied.
    assert!(stats.confined_evacuations >= 1, "{stats:?}");
    assert!(stats.confined_claims >= 2, "{stats:?}");
    assert!(stats.confined_evacuated_pages > 0, "{stats:?}");
    assert_eq!(stats.confined_evacuation_fail, 0, "{stats:?}");
    assert_eq!(a.nr_allocated_pages(), before + WANT as u64);
    let normal = &a.zones()[0];
    for &p in &kernel {
        assert_eq!(
            normal.block_migratetype(p),
            Some(MigrateType::Unmovable),
            "{p}"
        );
    }
    // The migrator's record is the allocator's: every movable page is an
    // allocated movable block where the migrator last put it.
    for &p in &movable {
        assert_eq!(
            normal.block_migratetype(p),
            Some(MigrateType::Movable),
            "{p}"
        );
        a.free(p, Order::ZERO).unwrap();
    }
    // The area is the low end: 1,024 pages fill two pageblocks; with the
    // pages on the per-CPU list, the area holds at most a third.
    let (holding, _) = pageblocks(&a);
    assert!(holding.iter().all(|&b| b < 3), "{holding:?}");

    // The same without a migrator that moves anything: Linux's fallback.
    let (b, _) = checkerboard(32, odd);
    for _ in 0..WANT {
        b.alloc_confining(
            CpuId(0),
            Order::ZERO,
            AllocFlags::KERNEL,
            &mut |_: Pfn, _: Pfn, _: Order| Err(MigrateRefusal::Pinned),
        )
        .unwrap();
    }
    b.check_invariants().unwrap();
    let stats = b.stats();
    assert_eq!(stats.confined_evacuations, 0, "{stats:?}");
    assert!(stats.confined_evacuation_fail > 0, "{stats:?}");
    assert!(stats.confined_fallbacks > 0, "{stats:?}");
    assert_eq!(b.nr_allocated_pages(), before + WANT as u64);
}

/// Small-order packing on a checkerboard (no pageblock wholly free, no
/// confinement): unmovable blocks of orders 0-3 asked for with a migrator
/// have movable pageblocks emptied for them and packed full, instead of
/// Linux's fallback scattering them among movable pages; with a migrator
/// that moves nothing, the fallback does scatter them.
#[test]
fn small_order_packing_empties_a_pageblock_instead_of_falling_back() {
    let odd = |p: Pfn| p.0 % 2 == 1;
    let orders = [0u8, 1, 0, 2, 0, 3, 1, 0];
    // 2,560 pages: five pageblocks' worth.
    const CALLS: usize = 1024;
    let want = |i: usize| Order::new(orders[i % orders.len()]).unwrap();
    let total: u64 = (0..CALLS).map(|i| want(i).nr_pages().0).sum();
    let (a, mut movable) = checkerboard_under(32, odd, Packing::SmallOrders, Confinement::Off);
    let mut kernel = Vec::new();
    for i in 0..CALLS {
        let order = want(i);
        let got = a.alloc_confining(
            CpuId(0),
            order,
            AllocFlags::KERNEL,
            &mut |from: Pfn, to: Pfn, _o: Order| move_page(&mut movable, from, to),
        );
        kernel.push((got.unwrap(), order));
        a.check_invariants().unwrap();
    }
    let stats = a.stats();
    assert_eq!(stats.extfrag_fragmenting, 0, "{stats:?}");
    // The filling left at most one pageblock wholly free (the watermark's
    // pages): the other four were emptied.
    assert!(stats.confined_evacuations >= 4, "{stats:?}");
    assert_eq!(stats.pageblock_claims, 5, "{stats:?}");
    assert!(stats.confined_evacuated_pages > 0, "{stats:?}");
    assert_eq!(stats.confined_evacuation_fail, 0, "{stats:?}");
    let normal = &a.zones()[0];
    for &(p, _) in &kernel {
        assert_eq!(
            normal.block_migratetype(p),
            Some(MigrateType::Unmovable),
            "{p}"
        );
    }
    // Packed: the kernel's pages fill the fewest pageblocks they can.
    let (holding, _) = pageblocks(&a);
    assert_eq!(
        holding.len() as u64,
        total.div_ceil(PAGEBLOCK_PAGES),
        "{holding:?}"
    );
    for &p in &movable {
        assert_eq!(
            normal.block_migratetype(p),
            Some(MigrateType::Movable),
            "{p}"
        );
    }

    // A migrator that moves nothing: Linux's fallback puts the order-0
    // blocks in movable pageblocks' holes, and the larger ones, once the
    // free pageblock is used up, find no block at all.
    let (b, _) = checkerboard_under(32, odd, Packing::SmallOrders, Confinement::Off);
    let mut served = 0;
    for i in 0..CALLS {
        let got = b.alloc_confining(
            CpuId(0),
            want(i),
            AllocFlags::KERNEL,
            &mut |_: Pfn, _: Pfn, _: Order| Err(MigrateRefusal::Pinned),
        );
        served += got.map_or(0, |_| want(i).nr_pages().0);
    }
    b.check_invariants().unwrap();
    let stats = b.stats();
    assert_eq!(stats.confined_evacuations, 0, "{stats:?}");
    assert!(stats.confined_evacuation_fail > 0, "{stats:?}");
    assert!(stats.extfrag_fragmenting > 0, "{stats:?}");
    assert!(served < total, "{served} of {total}");
    let (holding, _) = pageblocks(&b);
    assert!(
        holding.len() as u64 > served.div_ceil(PAGEBLOCK_PAGES),
        "{holding:?}"
    );
}

/// No pageblock is emptied for a request that cannot sleep
/// (`GFP_ATOMIC`), under either policy, nor for a packed request of the
/// pageblock order, which packing does not serve (Linux's fallback claims a
/// wholly free pageblock for it): the migrator is never called.
#[test]
fn no_evacuation_for_atomic_requests_or_packed_pageblock_order() {
    let odd = |p: Pfn| p.0 % 2 == 1;
    let mut never = |_: Pfn, _: Pfn, _: Order| -> Result<(), MigrateRefusal> {
        panic!("a migration for a request that may not have one")
    };
    for (packing, confinement) in [
        (Packing::SmallOrders, Confinement::Off),
        (Packing::Off, Confinement::LowEnd),
    ] {
        let (a, _) = checkerboard_under(32, odd, packing, confinement);
        for _ in 0..1024 {
            let _ = a.alloc_confining(CpuId(0), Order::ZERO, AllocFlags::GFP_ATOMIC, &mut never);
        }
        a.check_invariants().unwrap();
        let stats = a.stats();
        assert_eq!(
            stats.confined_evacuations + stats.confined_evacuation_fail,
            0,
            "{packing:?} {confinement:?}: {stats:?}"
        );
        assert!(stats.extfrag_fragmenting > 0, "{stats:?}");
    }
    // Pageblocks of order 2, every other page held but in pageblock 5:
    // order-2 unmovable requests, packed (orders 0-3), each take a wholly
    // free pageblock where there is one, without a migration.
    let config = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        pageblock_order: 2,
        packing: Packing::SmallOrders,
        ..Config::default()
    };
    let a: Allocator = Allocator::new(
        MemoryMap::contiguous(Pfn(0), PageCount(4096)).unwrap(),
        config,
    )
    .unwrap();
    let mut movable = Vec::new();
    while let Ok(p) = a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE) {
        movable.push(p);
    }
    for &p in &movable {
        if p.0 % 2 == 0 || p.0 / 4 == 5 {
            a.free(p, Order::ZERO).unwrap();
        }
    }
    a.drain_all();
    let two = Order::new(2).unwrap();
    let got = a.alloc_confining(CpuId(0), two, AllocFlags::KERNEL, &mut never);
    assert!(got.is_ok(), "{got:?}");
    a.check_invariants().unwrap();
    let stats = a.stats();
    assert_eq!(
        stats.confined_evacuations + stats.confined_evacuation_fail,
        0,
        "{stats:?}"
    );
}

#[derive(Clone, Debug)]
enum EvacOp {
    /// An unmovable (`reclaimable`: reclaimable) block of `order` through
    /// `alloc_confining`, the migrator refusing every move if `refuse`.
    Confining {
        order: u8,
        reclaimable: bool,
        refuse: bool,
    },
    /// A movable page.
    Movable,
    /// Free the held block at `pick`.
    Free { pick: usize },
    /// Drain every CPU's lists.
    Drain,
}

fn evac_op() -> impl Strategy<Value = EvacOp> {
    prop_oneof![
        6 => (0u8..=3, any::<bool>(), prop::bool::weighted(0.15)).prop_map(
            |(order, reclaimable, refuse)| EvacOp::Confining { order, reclaimable, refuse }
        ),
        2 => Just(EvacOp::Movable),
        3 => any::<usize>().prop_map(|pick| EvacOp::Free { pick }),
        1 => Just(EvacOp::Drain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Growth by evacuation, confinement's or small-order packing's
    /// (`packed`), from a zone of 8 pageblocks whose pages are mostly
    /// allocated movable (one in `density` freed), with refusals: every
    /// invariant after every step, and everything freed at the end is the
    /// whole zone free again.
    #[test]
    fn evacuation_keeps_every_invariant(
        density in 2u64..6,
        packed in any::<bool>(),
        ops in prop::collection::vec(evac_op(), 1..300),
    ) {
        let (a, movable) = evacuation_board(packed, |p| p.0 % density != 0);
        let mut held: Vec<(Pfn, Order)> = movable.into_iter().map(|p| (p, Order::ZERO)).collect();
        for (step, op) in ops.iter().enumerate() {
            match *op {
                EvacOp::Confining { order, reclaimable, refuse } => {
                    let order = Order::new(order).unwrap();
                    let flags = if reclaimable {
                        AllocFlags::KERNEL_RECLAIMABLE
                    } else {
                        AllocFlags::KERNEL
                    };
                    let got = a.alloc_confining(
                        CpuId(0),
                        order,
                        flags,
                        &mut |from: Pfn, to: Pfn, o: Order| move_held(&mut held, refuse, from, to, o),
                    );
                    if let Ok(pfn) = got {
                        held.push((pfn, order));
                    }
                }
                EvacOp::Movable => {
                    if let Ok(pfn) = a.alloc(Order::ZERO, AllocFlags::HIGHUSER_MOVABLE) {
                        held.push((pfn, Order::ZERO));
                    }
                }
                EvacOp::Free { pick } => {
                    if !held.is_empty() {
                        let (pfn, order) = held.swap_remove(pick % held.len());
                        a.free(pfn, order).unwrap();
                    }
                }
                EvacOp::Drain => {
                    a.drain_all();
                }
            }
            if let Err(e) = a.check_invariants() {
                panic!("step {step} ({op:?}): {e}");
            }
        }
        for (pfn, order) in held {
            a.free(pfn, order).unwrap();
        }
        a.drain_all();
        a.check_invariants().unwrap();
        prop_assert_eq!(a.nr_allocated_pages(), 0);
    }
}

/// The 8-pageblock checkerboard of the evacuation property run, under
/// confinement or (`packed`) small-order packing.
fn evacuation_board(packed: bool, keep: impl Fn(Pfn) -> bool) -> (Allocator, Vec<Pfn>) {
    match packed {
        false => checkerboard(8, keep),
        true => checkerboard_under(8, keep, Packing::SmallOrders, Confinement::Off),
    }
}

/// The random run above does reach evacuation under both policies: on one
/// fixed sequence of its operations, pageblocks are emptied and some
/// evacuations are refused.
#[test]
fn the_evacuation_property_run_empties_and_refuses_pageblocks() {
    for packed in [false, true] {
        evacuation_run_empties_and_refuses(packed);
    }
}

fn evacuation_run_empties_and_refuses(packed: bool) {
    let (a, movable) = evacuation_board(packed, |p| p.0 % 3 != 0);
    let mut held: Vec<(Pfn, Order)> = movable.into_iter().map(|p| (p, Order::ZERO)).collect();
    for i in 0..1500u64 {
        let order = Order::new((i % 4) as u8).unwrap();
        let refuse = i % 7 == 0;
        if let Ok(pfn) = a.alloc_confining(
            CpuId(0),
            order,
            AllocFlags::KERNEL,
            &mut |from: Pfn, to: Pfn, o: Order| move_held(&mut held, refuse, from, to, o),
        ) {
            held.push((pfn, order));
        }
        if i % 3 == 0 && !held.is_empty() {
            let (pfn, order) = held.swap_remove((i * 7919) as usize % held.len());
            a.free(pfn, order).unwrap();
        }
        a.check_invariants().unwrap();
    }
    let stats = a.stats();
    assert!(stats.confined_evacuations > 0, "packed {packed}: {stats:?}");
    assert!(
        stats.confined_evacuation_fail > 0,
        "packed {packed}: {stats:?}"
    );
}
