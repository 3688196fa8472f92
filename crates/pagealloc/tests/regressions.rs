//! Regression tests for the six bugs confirmed in the layout issue, and
//! for bugs found later (by the soak): each failed on the code before the
//! fix.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pagealloc::{
    AllocError, AllocFlags, Allocator, Config, CpuId, MemoryMap, MigrateType, MinFree, Order,
    PackClaim, Packing, PageCount, Pfn, ZoneBounds,
};

/// 8 MiB of 4 KiB pages in one Normal zone: four pageblocks, all movable
/// when fresh. A small fixed minimum keeps the watermarks out of the way.
fn machine(packing: Packing, nr_cpus: u16) -> Allocator {
    let config = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        min_free: MinFree::Kbytes(128),
        packing,
        nr_cpus,
        ..Config::default()
    };
    let map = MemoryMap::contiguous(Pfn(0x10_0000), PageCount(2048)).unwrap();
    Allocator::new(map, config).unwrap()
}

fn unmovable_pageblocks(a: &Allocator) -> u64 {
    a.pagetypeinfo().blocks_of(MigrateType::Unmovable)
}

/// Bug 1: with the packing policy on, `KERNEL | NO_FALLBACK` claimed a
/// movable pageblock on a fresh zone (the packing source ignored the mode).
#[test]
fn packing_respects_no_fallback() {
    for pcp in [true, false] {
        let a = machine(Packing::Unmovable, 1);
        if !pcp {
            // Straight to the buddy path: the lists are held elsewhere.
            let _held = a.local(CpuId(0)).unwrap();
            let err = std::thread::scope(|s| {
                s.spawn(|| {
                    a.alloc_on_cpu(
                        CpuId(0),
                        Order::ZERO,
                        AllocFlags::KERNEL | AllocFlags::NO_FALLBACK,
                    )
                })
                .join()
                .unwrap()
            });
            assert_eq!(err, Err(AllocError::NoMemory { order: Order::ZERO }));
        } else {
            let got = a.alloc(Order::ZERO, AllocFlags::KERNEL | AllocFlags::NO_FALLBACK);
            assert_eq!(got, Err(AllocError::NoMemory { order: Order::ZERO }));
        }
        assert_eq!(unmovable_pageblocks(&a), 0, "a pageblock was claimed");
        // The explicit packed call too: no claim of another type's block.
        let mut out = [Pfn(0); 8];
        let n = a
            .alloc_packed(
                CpuId(0),
                AllocFlags::KERNEL | AllocFlags::NO_FALLBACK,
                PackClaim::ClaimFreePageblocks,
                &mut out,
            )
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(unmovable_pageblocks(&a), 0);
        a.check_invariants().unwrap();
    }
}

/// Fills the zone with movable pages, then frees every eighth, so the only
/// free memory is single pages inside movable pageblocks that are mostly
/// in use: an unmovable request can only steal, never claim.
fn scattered(a: &Allocator) -> Vec<Pfn> {
    let flags = AllocFlags::HIGHUSER_MOVABLE | AllocFlags::NO_WATERMARKS;
    let mut held = Vec::new();
    while let Ok(p) = a.alloc(Order::ZERO, flags) {
        held.push(p);
    }
    held.sort();
    let mut kept = Vec::new();
    for (i, p) in held.into_iter().enumerate() {
        if i % 8 == 0 {
            a.free(p, Order::ZERO).unwrap();
        } else {
            kept.push(p);
        }
    }
    a.drain_all();
    kept
}

/// Bug 2: an ordinary `KERNEL` allocation stole pages of movable pageblocks
/// onto the unmovable per-CPU list, and a following `KERNEL | NO_FALLBACK`
/// request got one of them, where after `drain_all` it failed: the answer
/// depended on per-CPU state.
#[test]
fn no_fallback_answer_does_not_depend_on_per_cpu_lists() {
    let a = machine(Packing::Off, 1);
    scattered(&a);
    let kernel = AllocFlags::KERNEL | AllocFlags::NO_WATERMARKS;
    let stolen = a.alloc(Order::ZERO, kernel).expect("a stolen page");
    assert_eq!(a.pageblock_migratetype(stolen), Some(MigrateType::Movable));
    assert!(a.nr_pcp_pages() > 0, "the refill cached more stolen pages");
    let exact = kernel | AllocFlags::NO_FALLBACK;
    let with_lists = a.alloc(Order::ZERO, exact);
    a.drain_all();
    let after_drain = a.alloc(Order::ZERO, exact);
    assert_eq!(with_lists, Err(AllocError::NoMemory { order: Order::ZERO }));
    assert_eq!(after_drain, with_lists);
    // Bulk allocation keeps the mode too.
    a.alloc(Order::ZERO, kernel).unwrap();
    let mut out = [Pfn(0); 4];
    assert_eq!(
        a.alloc_bulk(CpuId(0), exact, &mut out),
        Err(AllocError::NoMemory { order: Order::ZERO })
    );
    a.check_invariants().unwrap();
}

/// Bug 3: `Zone::block_migratetype` of a frame outside the zone panicked.
#[test]
fn block_migratetype_outside_the_zone_is_none() {
    let a = machine(Packing::Off, 1);
    let zone = &a.zones()[0];
    for pfn in [0, 0xf_ffff, 0x10_0800, u64::MAX] {
        assert_eq!(zone.block_migratetype(Pfn(pfn)), None, "{pfn:#x}");
    }
    assert_eq!(
        zone.block_migratetype(Pfn(0x10_0000)),
        Some(MigrateType::Movable)
    );
}

/// Bug 4: `this_cpu` was keyed by the allocator's address, so a thread that
/// had used a 4-CPU allocator got `CpuId(3)` from a 1-CPU allocator built
/// later at the same address.
#[test]
fn this_cpu_is_per_allocator_not_per_address() {
    std::thread::spawn(|| {
        let mut boxed = Box::new(machine(Packing::Off, 4));
        // Three other threads take slots 0, 1 and 2; this one gets 3.
        for _ in 0..3 {
            let r: &Allocator = &boxed;
            std::thread::scope(|s| s.spawn(|| r.this_cpu()).join().unwrap());
        }
        assert_eq!(boxed.this_cpu(), CpuId(3));
        // A new allocator with one CPU, at the same address.
        *boxed = machine(Packing::Off, 1);
        let cpu = boxed.this_cpu();
        assert_eq!(cpu, CpuId(0));
        assert!(boxed
            .alloc_on_cpu(cpu, Order::ZERO, AllocFlags::KERNEL)
            .is_ok());
    })
    .join()
    .unwrap();
}

/// Bug 5: a clone taken while another thread ran `free_bulk` (lists busy)
/// or `split_page` copied pages mid-operation and failed
/// `check_invariants`. Now every clone is consistent.
#[test]
fn clones_taken_beside_batched_frees_and_splits_are_consistent() {
    let a = Arc::new(machine(Packing::Off, 2));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (a, stop) = (Arc::clone(&a), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Hold CPU 1's lists so CPU 1's batched free takes the
                // lockless-before path it used to take.
                let held = a.local(CpuId(1)).ok();
                let mut out = [Pfn(0); 32];
                let n = a
                    .alloc_bulk(CpuId(0), AllocFlags::KERNEL, &mut out)
                    .unwrap();
                a.free_bulk(CpuId(1), &out[..n]).unwrap();
                drop(held);
                let big = a.alloc(Order::new(3).unwrap(), AllocFlags::KERNEL).unwrap();
                a.split_page(big, Order::new(3).unwrap()).unwrap();
                let pieces: Vec<Pfn> = (0..8).map(|k| Pfn(big.0 + k)).collect();
                a.free_bulk(CpuId(0), &pieces).unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let mut clones = 0;
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_millis(1500) {
        let copy = (*a).clone();
        copy.check_invariants()
            .unwrap_or_else(|v| panic!("clone {clones}: {v}"));
        clones += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = worker.join().unwrap();
    assert!(
        clones > 10 && rounds > 10,
        "{clones} clones, {rounds} rounds"
    );
    a.check_invariants().unwrap();
}

/// The readers a `LocalLists` holder used to deadlock on have forms that
/// work through the guard.
#[test]
fn a_local_lists_holder_reads_and_drains_through_its_guard() {
    let a = machine(Packing::Off, 2);
    let p = a
        .alloc_on_cpu(CpuId(0), Order::ZERO, AllocFlags::KERNEL)
        .unwrap();
    a.free_on_cpu(CpuId(0), p, Order::ZERO).unwrap();
    let mut l = a.local(CpuId(0)).unwrap();
    let q = l.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    assert_eq!(l.nr_allocated_pages(), 1);
    assert_eq!(l.nr_pcp_pages(), l.nr_pages());
    assert_eq!(l.stats().pgalloc, 2);
    assert_eq!(l.pcp_info().len(), 1);
    l.check_invariants().unwrap();
    let copy = l.snapshot();
    copy.check_invariants().unwrap();
    assert_eq!(copy.nr_allocated_pages(), 1);
    l.free(q, Order::ZERO).unwrap();
    let cached = l.nr_pcp_pages();
    assert_eq!(l.drain_all(), cached);
    assert_eq!(l.nr_pcp_pages(), 0);
    assert_eq!(l.nr_allocated_pages(), 0);
    drop(l);
    a.check_invariants().unwrap();
}

/// The smaller API findings: one invalid-CPU error, `NoZone` from packed
/// allocation, a short bulk allocation counts no failure with or without
/// per-CPU lists, a freed never-allocated page is `AlreadyFree`, and a
/// digest tells states apart.
#[test]
fn api_findings() {
    use pagealloc::{BlockError, BulkFreeError, InvalidCpu, PcpMode};
    let a = machine(Packing::Off, 1);
    let bad = InvalidCpu { cpu: 5, nr_cpus: 1 };
    assert_eq!(
        a.free_bulk(CpuId(5), &[]),
        Err(BulkFreeError::InvalidCpu(bad))
    );
    assert_eq!(a.drain_local(CpuId(5)), Err(bad));
    assert_eq!(a.cpu_node(CpuId(5)), Err(bad));
    assert_eq!(a.pcp_info(CpuId(5)), Err(bad));
    let mut out = [Pfn(0); 4];
    assert_eq!(
        a.alloc_packed(CpuId(0), AllocFlags::DMA, PackClaim::OwnedOnly, &mut out),
        Err(AllocError::NoZone)
    );
    assert_eq!(
        a.free(Pfn(0x10_0000), Order::ZERO),
        Err(BlockError::AlreadyFree {
            pfn: Pfn(0x10_0000)
        })
    );
    for pcp in [PcpMode::Enabled, PcpMode::Disabled] {
        let config = Config {
            zone_bounds: ZoneBounds::NORMAL_ONLY,
            min_free: MinFree::Kbytes(128),
            pcp,
            ..Config::default()
        };
        let map = MemoryMap::contiguous(Pfn(0x10_0000), PageCount(2048)).unwrap();
        let b = Allocator::new(map, config).unwrap();
        let mut big = vec![Pfn(0); 4096];
        let mut total = 0;
        while let Ok(n) = b.alloc_bulk(CpuId(0), AllocFlags::KERNEL, &mut big) {
            total += n;
        }
        assert!(total > 1000);
        assert_eq!(
            b.stats().total_alloc_fail(),
            1,
            "{pcp:?}: only the empty answer is a failure"
        );
    }
    let b = a.clone();
    assert_eq!(a.digest(), b.digest());
    let p = b.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    assert_ne!(a.digest(), b.digest());
    b.free(p, Order::ZERO).unwrap();
}

/// Found by the soak on 2026-12-05 (seed 1, configuration 5): an order-0
/// free block keeps its back link in its buddy's link slot, which is only
/// free when two free order-0 buddies always merge. With a single order
/// nothing merges, so free buddies are listed side by side; with the
/// borrowed slot their links overwrote each other and the list's back
/// links broke. Such zones keep back links of their own.
#[test]
fn free_order0_buddies_that_cannot_merge_keep_their_links() {
    for pcp in [pagealloc::PcpMode::Enabled, pagealloc::PcpMode::Disabled] {
        let config = Config {
            zone_bounds: ZoneBounds::NORMAL_ONLY,
            min_free: MinFree::Kbytes(16),
            nr_orders: 1,
            pageblock_order: 0,
            pcp,
            ..Config::default()
        };
        let map = MemoryMap::contiguous(Pfn(0x10_0000), PageCount(256)).unwrap();
        let a: Allocator = Allocator::new(map, config).unwrap();
        let mut pages: Vec<Pfn> = (0..200)
            .map_while(|_| a.alloc(Order::ZERO, AllocFlags::KERNEL).ok())
            .collect();
        assert!(pages.len() >= 128, "{} pages", pages.len());
        pages.sort();
        // Every even frame first, then the odd ones: each free lands beside
        // its free buddy, which it cannot merge with.
        let (even, odd): (Vec<Pfn>, Vec<Pfn>) = pages.iter().partition(|p| p.0 % 2 == 0);
        for p in even.iter().chain(&odd) {
            a.free(*p, Order::ZERO).unwrap();
            a.check_invariants().unwrap();
        }
        a.drain_all();
        a.check_invariants().unwrap();
        let again: Vec<Pfn> = (0..pages.len())
            .map(|_| a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap())
            .collect();
        a.check_invariants().unwrap();
        for p in again {
            a.free(p, Order::ZERO).unwrap();
        }
        a.drain_all();
        a.check_invariants().unwrap();
        assert_eq!(a.nr_allocated_pages(), 0);
    }
}
