//! Contiguous allocation (seed 003): isolation, migration through the
//! owner, `alloc_contig_range`, `alloc_contig_pages`, CMA and offline, each
//! checked with the invariant walk.

mod common;

use std::collections::HashMap;

use pagealloc::{
    AllocFlags, Allocator, BlockError, CmaArea, CmaSupport, Config, ContigConstraints, ContigError,
    CpuId, MemoryMap, MigrateRefusal, MigrateType, Order, PageCount, Pfn, RangeProblem,
};

fn order(n: u8) -> Order {
    Order::new(n).unwrap()
}

/// A machine of `pages` 4 KiB pages from 16 MiB (one DMA32 zone).
fn machine(pages: u64, config: Config) -> Allocator {
    let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(pages)).unwrap();
    Allocator::new(map, config).unwrap()
}

/// The owner of movable blocks: it knows which it holds, moves them when
/// asked, and can pin some.
#[derive(Default)]
struct Owner {
    held: HashMap<Pfn, Order>,
    pinned: std::collections::HashSet<Pfn>,
    moves: u64,
}

impl Owner {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal> {
        if self.pinned.contains(&from) {
            return Err(MigrateRefusal::Pinned);
        }
        match self.held.remove(&from) {
            Some(o) if o == order => {
                self.held.insert(to, order);
                self.moves += 1;
                Ok(())
            }
            Some(o) => {
                self.held.insert(from, o);
                Err(MigrateRefusal::Busy)
            }
            None => Err(MigrateRefusal::Busy),
        }
    }

    fn fill(&mut self, a: &Allocator, order: Order, n: usize) {
        for _ in 0..n {
            let pfn = a.alloc(order, AllocFlags::HIGHUSER_MOVABLE).unwrap();
            self.held.insert(pfn, order);
        }
    }
}

#[test]
fn a_free_range_beyond_the_largest_order_is_taken_and_freed_in_pieces() {
    let a = machine(16384, Config::default());
    let before = a.buddyinfo();
    let (start, end) = (Pfn(0x1000 + 123), Pfn(0x1000 + 123 + 3000));
    let got = a
        .alloc_contig_range(start, end, &mut |_, _, _| Err(MigrateRefusal::Busy))
        .unwrap();
    assert_eq!(got.nr_pages, PageCount(3000));
    assert_eq!(got.tries, 0);
    a.check_invariants().unwrap();
    assert_eq!(a.nr_free_pages() + a.nr_pcp_pages(), 16384 - 3000);
    // Its pages are not blocks the ordinary free path accepts.
    assert_eq!(
        a.free(Pfn(start.0 + 5), Order::ZERO),
        Err(BlockError::ContigRun {
            pfn: Pfn(start.0 + 5)
        })
    );
    // Piecewise, middle first.
    a.free_contig_range(Pfn(start.0 + 1000), PageCount(1000))
        .unwrap();
    a.check_invariants().unwrap();
    // A piece already freed is refused, and nothing changes.
    let digest = a.digest();
    assert_eq!(
        a.free_contig_range(Pfn(start.0 + 900), PageCount(200)),
        Err(ContigError::NotContig {
            pfn: Pfn(start.0 + 1000)
        })
    );
    assert_eq!(a.digest(), digest);
    a.free_contig_range(Pfn(start.0 + 2000), PageCount(1000))
        .unwrap();
    a.free_contig_range(start, PageCount(1000)).unwrap();
    a.check_invariants().unwrap();
    assert_eq!(a.buddyinfo(), before);
}

#[test]
fn movable_allocations_in_the_way_are_migrated_through_the_owner() {
    let a = machine(8192, Config::default());
    let mut owner = Owner::default();
    owner.fill(&a, Order::ZERO, 2000);
    owner.fill(&a, order(3), 200);
    let (start, end) = (Pfn(0x1000), Pfn(0x1000 + 2048));
    let in_range = owner
        .held
        .keys()
        .filter(|p| **p >= start && **p < end)
        .count() as u64;
    assert!(in_range > 0);
    let got = a
        .alloc_contig_range(start, end, &mut |f, t, o| owner.migrate(f, t, o))
        .unwrap();
    a.check_invariants().unwrap();
    assert_eq!(got.migrated_blocks, in_range);
    assert!(got.tries >= 1);
    // Every block the owner holds is an allocated block outside the range.
    for (&pfn, &o) in &owner.held {
        assert!(pfn < start || pfn >= end);
        assert_eq!(
            a.allocated_block(pfn),
            Some((o, MigrateType::Movable)),
            "{pfn}"
        );
    }
    for (&pfn, &o) in &owner.held {
        a.free(pfn, o).unwrap();
    }
    a.free_contig_range(start, PageCount(2048)).unwrap();
    a.check_invariants().unwrap();
    assert_eq!(a.nr_allocated_pages(), 0);
}

#[test]
fn an_unmovable_page_refuses_the_range_and_changes_nothing() {
    let a = machine(8192, Config::default());
    let k = a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
    a.drain_all();
    let digest = a.digest();
    let err = a
        .alloc_contig_range(k, Pfn(k.0 + 1), &mut |_, _, _| Ok(()))
        .unwrap_err();
    assert_eq!(err, ContigError::Unmovable { pfn: k });
    assert_eq!(a.digest(), digest);
    a.check_invariants().unwrap();
}

#[test]
fn a_refusing_migrator_gives_busy_after_five_tries_and_every_page_back() {
    let a = machine(8192, Config::default());
    let mut owner = Owner::default();
    owner.fill(&a, Order::ZERO, 3000);
    let pinned: Vec<Pfn> = owner
        .held
        .keys()
        .copied()
        .filter(|p| p.0 < 0x1000 + 512)
        .collect();
    owner.pinned.extend(pinned.iter().copied());
    a.drain_all();
    let blocks: Vec<_> = a.zones()[0].blocks().collect();
    let buddy = a.buddyinfo();
    let err = a
        .alloc_contig_range(Pfn(0x1000), Pfn(0x1000 + 512), &mut |f, t, o| {
            owner.migrate(f, t, o)
        })
        .unwrap_err();
    assert!(matches!(err, ContigError::Busy { tries: 5, .. }), "{err:?}");
    a.check_invariants().unwrap();
    assert_eq!(a.zones()[0].blocks().collect::<Vec<_>>(), blocks);
    assert_eq!(a.buddyinfo(), buddy);
    assert_eq!(a.zones()[0].is_isolated(Pfn(0x1000)), Some(false));
}

#[test]
fn alloc_contig_pages_honours_alignment_boundary_and_bounds() {
    let a = machine(32768, Config::default());
    let mut owner = Owner::default();
    owner.fill(&a, Order::ZERO, 10000);
    let c = ContigConstraints {
        low: Pfn(0x3000),
        high: Pfn(0x7000),
        align: PageCount(1024),
        boundary: Some(PageCount(4096)),
        ..ContigConstraints::default()
    };
    let got = a
        .alloc_contig_pages(PageCount(3000), &c, &mut |f, t, o| owner.migrate(f, t, o))
        .unwrap();
    let s = got.start.0;
    assert!(s >= 0x3000 && s + 3000 <= 0x7000, "{s:#x}");
    assert_eq!(s % 1024, 0);
    assert_eq!(s / 4096, (s + 2999) / 4096);
    a.check_invariants().unwrap();
    a.free_contig_range(got.start, got.nr_pages).unwrap();
    a.check_invariants().unwrap();
    assert_eq!(
        a.alloc_contig_pages(
            PageCount(3000),
            &ContigConstraints {
                align: PageCount(3),
                ..c
            },
            &mut |_, _, _| Ok(())
        ),
        Err(ContigError::Constraint)
    );
}

#[test]
fn cma_alloc_takes_from_its_area_and_release_clears_it() {
    let config = Config {
        cma: CmaSupport::Enabled,
        cma_areas: vec![CmaArea::new(Pfn(0x2000), PageCount(4096))],
        ..Config::default()
    };
    let a = machine(16384, config);
    let mut owner = Owner::default();
    // Movable allocations spill into the area (CMA first once it holds
    // more than half of the free pages, else after the movable lists).
    owner.fill(&a, Order::ZERO, 12000);
    let in_area = owner
        .held
        .keys()
        .filter(|p| p.0 >= 0x2000 && p.0 < 0x3000)
        .count();
    assert!(in_area > 0);
    let got = a
        .cma_alloc(0, PageCount(2048), order(4), &mut |f, t, o| {
            owner.migrate(f, t, o)
        })
        .unwrap();
    assert!(got.start.0 >= 0x2000 && got.start.0 + 2048 <= 0x3000);
    assert_eq!(got.start.0 % 16, 0);
    assert_eq!(a.cma_used_pages(0).unwrap(), PageCount(2048));
    a.check_invariants().unwrap();
    // Contiguous calls other than CMA keep out of CMA pageblocks.
    assert_eq!(
        a.alloc_contig_range(Pfn(0x2000), Pfn(0x2001), &mut |_, _, _| Ok(())),
        Err(ContigError::Unmovable { pfn: Pfn(0x2000) })
    );
    assert_eq!(
        a.cma_release(0, Pfn(got.start.0 + 1), PageCount(2048)),
        Err(ContigError::NotContig {
            pfn: Pfn(got.start.0 + 2048)
        })
    );
    a.cma_release(0, got.start, got.nr_pages).unwrap();
    assert_eq!(a.cma_used_pages(0).unwrap(), PageCount(0));
    a.check_invariants().unwrap();
    assert!(a.pagetypeinfo().to_string().contains("CMA"));
    assert!(a.zoneinfo().to_string().contains("nr_free_cma"));
}

#[test]
fn offline_takes_pages_out_of_managed_and_online_brings_them_back() {
    let mut a = machine(16384, Config::default());
    let mut owner = Owner::default();
    owner.fill(&a, Order::ZERO, 4000);
    let managed = a.zones()[0].nr_managed();
    let min = a.zones()[0].watermarks().min;
    let high_max = a.pcp_info(CpuId(0)).unwrap()[0].high_max;
    let got = a
        .offline_pages(Pfn(0x1000), PageCount(4096), &mut |f, t, o| {
            owner.migrate(f, t, o)
        })
        .unwrap();
    assert!(got.migrated_pages > 0);
    assert_eq!(a.zones()[0].nr_managed().0, managed.0 - 4096);
    assert!(a.zones()[0].watermarks().min < min);
    // The per-CPU lists are sized for the smaller zone (zone_pcp_update).
    assert!(a.pcp_info(CpuId(0)).unwrap()[0].high_max < high_max);
    a.check_invariants().unwrap();
    assert_eq!(
        a.offline_pages(Pfn(0x1000), PageCount(512), &mut |_, _, _| Ok(())),
        Err(ContigError::NotOffline { pfn: Pfn(0x1000) })
    );
    assert_eq!(
        a.online_pages(Pfn(0x1000), PageCount(8192)),
        Err(ContigError::NotOffline { pfn: Pfn(0x2000) })
    );
    a.online_pages(Pfn(0x1000), PageCount(4096)).unwrap();
    assert_eq!(a.zones()[0].nr_managed(), managed);
    assert_eq!(a.zones()[0].watermarks().min, min);
    assert_eq!(a.pcp_info(CpuId(0)).unwrap()[0].high_max, high_max);
    a.check_invariants().unwrap();
    assert_eq!(
        a.offline_pages(Pfn(0x1001), PageCount(512), &mut |_, _, _| Ok(())),
        Err(ContigError::Range {
            start: Pfn(0x1001),
            end: Pfn(0x1001 + 512),
            problem: RangeProblem::Misaligned
        })
    );
}

/// Found by the soak: isolating part of a reported free block larger than
/// a pageblock splits it, and a half below the reporting order must not
/// stay marked reported (invariant 6).
#[test]
fn splitting_a_reported_block_unmarks_halves_below_the_reporting_order() {
    struct Accept;
    impl pagealloc::ReportSink for Accept {
        type Error = ();
        fn report(&mut self, _: &[pagealloc::ReportedBlock]) -> Result<(), ()> {
            Ok(())
        }
    }
    let config = Config {
        reporting: Some(pagealloc::ReportingPolicy {
            order: Some(10),
            capacity: 2,
            budget_fraction: 1,
        }),
        ..Config::default()
    };
    let a = machine(16384, config);
    while a.report_pass(&mut Accept).unwrap().pages_reported > 0 {}
    let info = a.reporting_info().unwrap();
    assert!(info.zones[0].reported > 0, "nothing was reported");
    let got = a
        .alloc_contig_range(Pfn(0x1000 + 700), Pfn(0x1000 + 900), &mut |_, _, _| {
            Err(MigrateRefusal::Busy)
        })
        .unwrap();
    a.check_invariants().unwrap();
    a.free_contig_range(got.start, got.nr_pages).unwrap();
    a.check_invariants().unwrap();
}

/// The owner that splits a huge block it cannot move whole, and frees
/// memory when no destination can be had.
struct Splitting {
    held: HashMap<Pfn, Order>,
    spare: Vec<(Pfn, Order)>,
    splits: u64,
    reclaims: u64,
    allow_split: bool,
}

impl pagealloc::Migrator for Splitting {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal> {
        match self.held.remove(&from) {
            Some(o) if o == order => {
                self.held.insert(to, order);
                Ok(())
            }
            Some(o) => {
                self.held.insert(from, o);
                Err(MigrateRefusal::Busy)
            }
            None => Err(MigrateRefusal::Busy),
        }
    }

    fn split(&mut self, from: Pfn, order: Order) -> bool {
        if !self.allow_split || self.held.remove(&from) != Some(order) {
            return false;
        }
        for k in 0..order.nr_pages().0 {
            self.held.insert(Pfn(from.0 + k), Order::ZERO);
        }
        self.splits += 1;
        true
    }

    fn reclaim(&mut self, _order: Order) -> bool {
        self.reclaims += 1;
        false
    }
}

#[test]
fn a_huge_block_without_a_huge_destination_is_split_when_its_owner_agrees() {
    let a = machine(8192, Config::default());
    let all = AllocFlags::HIGHUSER_MOVABLE | AllocFlags::NO_WATERMARKS;
    let mut owner = Splitting {
        held: HashMap::new(),
        spare: Vec::new(),
        splits: 0,
        reclaims: 0,
        allow_split: false,
    };
    // Every order-9 block taken, then half of the last eight's pages given
    // back as order-0 pages: room for 2048 pages, none for a huge block.
    while let Ok(p) = a.alloc(order(9), all) {
        owner.held.insert(p, order(9));
    }
    let mut huge: Vec<Pfn> = owner.held.keys().copied().collect();
    huge.sort();
    for &p in &huge[huge.len() - 8..] {
        owner.held.remove(&p);
        a.split_page(p, order(9)).unwrap();
        for k in 0..512 {
            let page = Pfn(p.0 + k);
            if k % 2 == 0 {
                a.free(page, Order::ZERO).unwrap();
            } else {
                owner.spare.push((page, Order::ZERO));
            }
        }
    }
    let target = huge[0];
    let end = Pfn(target.0 + 512);
    let refused = a.alloc_contig_range(target, end, &mut owner);
    assert_eq!(refused, Err(ContigError::NoMemory));
    assert!(owner.reclaims > 0, "the owner was not asked to reclaim");
    a.check_invariants().unwrap();
    owner.allow_split = true;
    let got = a.alloc_contig_range(target, end, &mut owner).unwrap();
    assert_eq!(owner.splits, 1);
    assert_eq!(got.migrated_pages, 512);
    a.check_invariants().unwrap();
    for (&p, &o) in &owner.held {
        assert_eq!(a.allocated_block(p), Some((o, MigrateType::Movable)), "{p}");
    }
    let _ = &owner.spare;
}
