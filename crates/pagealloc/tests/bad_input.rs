//! Every kind of bad input, table by table: each `ConfigError` variant from
//! `Config::validate`, `MemoryMap::new` and `Allocator::new`; each
//! `BlockError` variant from both `free` and `split_page`; each `AllocError`
//! variant. Every refusal must be the exact error value, leave the allocator
//! exactly as it was, and explain itself in a message that names the frame
//! or order at fault.

mod common;

use common::{range, Snapshot};
use pagealloc::{
    AllocError, AllocFlags, Allocator, BlockError, CmaArea, CmaAreaProblem, CmaSupport, Config,
    ConfigError, CpuId, InvalidCpu, LocalError, MemRange, MemoryMap, MigrateType, NodeId, Order,
    PageCount, Pfn, ZoneBounds, ZoneType, MAX_ZONE_PAGES,
};
use pagealloc::{AllocError as AE, BlockError as BE, ConfigError as CE};

fn order(n: u8) -> Order {
    Order::new(n).unwrap()
}

/// Asserts that an error's message is non-empty and mentions each of
/// `needles`.
fn assert_message(err: &dyn std::error::Error, needles: &[String]) {
    let msg = err.to_string();
    assert!(!msg.is_empty(), "{err:?} has an empty message");
    for n in needles {
        assert!(
            msg.contains(n.as_str()),
            "{err:?}: {msg:?} does not mention {n:?}"
        );
    }
}

/// What a message about `err` must mention.
fn config_needles(err: &ConfigError) -> Vec<String> {
    match err {
        ConfigError::PageSize { bytes } => vec![bytes.to_string()],
        ConfigError::NrOrders { nr_orders, max } => vec![nr_orders.to_string(), max.to_string()],
        ConfigError::PageblockOrder {
            pageblock_order,
            max_order,
        } => vec![pageblock_order.to_string(), max_order.to_string()],
        ConfigError::WatermarkScaleFactor { value } => vec![value.to_string()],
        ConfigError::ZoneBounds { bytes } => vec![format!("{bytes:#x}")],
        ConfigError::EmptyMap => vec![],
        ConfigError::EmptyRange { start, end } => vec![start.to_string(), end.to_string()],
        ConfigError::OverlappingRanges {
            first_start,
            second_start,
        } => vec![first_start.to_string(), second_start.to_string()],
        ConfigError::ZoneTooLarge {
            zone,
            nr_pages,
            max,
            ..
        } => vec![zone.to_string(), nr_pages.to_string(), max.to_string()],
        ConfigError::PfnOverflow { start } => vec![start.to_string()],
        ConfigError::NrCpus { nr_cpus } => vec![nr_cpus.to_string()],
        ConfigError::CmaArea {
            start, nr_pages, ..
        } => vec![start.to_string(), nr_pages.0.to_string()],
        // Its problems are covered in tests/reporting.rs.
        ConfigError::Reporting(_) => vec![],
        ConfigError::RegionSize { bytes, min } => vec![bytes.to_string(), min.to_string()],
        ConfigError::RegionsWithConfinement => vec!["regions".into(), "confinement".into()],
    }
}

/// A CMA area that cannot be set up is refused at construction with what
/// is wrong with it.
#[test]
fn every_cma_area_error() {
    // Two usable ranges of 4 MiB with a hole between, one zone (DMA32).
    let map = || MemoryMap::new(vec![range(0, 0x1000, 0x1400), range(0, 0x1800, 0x1c00)]).unwrap();
    let area = |start: u64, nr: u64| CmaArea {
        start: Pfn(start),
        nr_pages: PageCount(nr),
        order_per_bit: 0,
    };
    let cma = |areas: Vec<CmaArea>| Config {
        cma: CmaSupport::Enabled,
        cma_areas: areas,
        ..Config::default()
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Config, CmaArea, CmaAreaProblem)> = vec![
        ("CMA off", Config { cma_areas: vec![area(0x1000, 0x200)], ..Config::default() },
            area(0x1000, 0x200), CmaAreaProblem::CmaDisabled),
        ("empty", cma(vec![area(0x1000, 0)]), area(0x1000, 0), CmaAreaProblem::Empty),
        ("start not on a pageblock", cma(vec![area(0x1001, 0x200)]), area(0x1001, 0x200),
            CmaAreaProblem::Misaligned),
        ("part of a pageblock", cma(vec![area(0x1000, 0x100)]), area(0x1000, 0x100),
            CmaAreaProblem::Misaligned),
        ("across the hole", cma(vec![area(0x1200, 0x400)]), area(0x1200, 0x400),
            CmaAreaProblem::OutsideZone),
        ("in the hole", cma(vec![area(0x1400, 0x200)]), area(0x1400, 0x200),
            CmaAreaProblem::OutsideZone),
        ("past memory", cma(vec![area(0x1c00, 0x200)]), area(0x1c00, 0x200),
            CmaAreaProblem::OutsideZone),
        ("overlapping", cma(vec![area(0x1000, 0x400), area(0x1200, 0x200)]), area(0x1200, 0x200),
            CmaAreaProblem::Overlaps),
    ];
    for (name, config, bad, problem) in cases {
        let want = ConfigError::CmaArea {
            start: bad.start,
            nr_pages: bad.nr_pages,
            problem,
        };
        assert_eq!(Allocator::new(map(), config).unwrap_err(), want, "{name}");
        assert_message(&want, &config_needles(&want));
    }
    // And a good one: its pageblocks are CMA, the rest movable.
    let a = Allocator::new(map(), cma(vec![area(0x1800, 0x400)])).unwrap();
    assert_eq!(a.pageblock_migratetype(Pfn(0x1800)), Some(MigrateType::Cma));
    assert_eq!(a.pageblock_migratetype(Pfn(0x1a00)), Some(MigrateType::Cma));
    assert_eq!(
        a.pageblock_migratetype(Pfn(0x1000)),
        Some(MigrateType::Movable)
    );
    a.check_invariants().unwrap();
}

#[test]
fn every_config_error() {
    let with = |f: &dyn Fn(&mut Config)| {
        let mut c = Config::default();
        f(&mut c);
        c
    };
    let bounds = |dma: Option<u64>, dma32: Option<u64>, movable: Option<u64>| ZoneBounds {
        dma_end_bytes: dma,
        dma32_end_bytes: dma32,
        movable_start_bytes: movable,
    };
    const MIB: u64 = 1 << 20;
    #[rustfmt::skip]
    let configs: Vec<(&str, Config, ConfigError)> = vec![
        ("page size not a power of two", with(&|c| c.page_size_bytes = 5000), CE::PageSize { bytes: 5000 }),
        ("page size below 4 KiB", with(&|c| c.page_size_bytes = 2048), CE::PageSize { bytes: 2048 }),
        ("page size above 1 MiB", with(&|c| c.page_size_bytes = 2 * MIB), CE::PageSize { bytes: 2 * MIB }),
        ("page size zero", with(&|c| c.page_size_bytes = 0), CE::PageSize { bytes: 0 }),
        ("no orders", with(&|c| c.nr_orders = 0), CE::NrOrders { nr_orders: 0, max: 16 }),
        ("too many orders", with(&|c| c.nr_orders = 17), CE::NrOrders { nr_orders: 17, max: 16 }),
        ("no CPUs", with(&|c| c.nr_cpus = 0), CE::NrCpus { nr_cpus: 0 }),
        ("too many CPUs", with(&|c| c.nr_cpus = 4097), CE::NrCpus { nr_cpus: 4097 }),
        ("pageblock above max order", with(&|c| c.pageblock_order = 11),
            CE::PageblockOrder { pageblock_order: 11, max_order: 10 }),
        ("4 orders, pageblock order 4", with(&|c| { c.nr_orders = 4; c.pageblock_order = 4 }),
            CE::PageblockOrder { pageblock_order: 4, max_order: 3 }),
        ("13 orders, pageblock order 13", with(&|c| { c.nr_orders = 13; c.pageblock_order = 13 }),
            CE::PageblockOrder { pageblock_order: 13, max_order: 12 }),
        ("watermark scale 0", with(&|c| c.watermark_scale_factor = 0), CE::WatermarkScaleFactor { value: 0 }),
        ("watermark scale 3001", with(&|c| c.watermark_scale_factor = 3001),
            CE::WatermarkScaleFactor { value: 3001 }),
        ("DMA bound not page-aligned", with(&|c| c.zone_bounds = bounds(Some(4097), Some(8 * MIB), None)),
            CE::ZoneBounds { bytes: 4097 }),
        ("DMA32 below DMA", with(&|c| c.zone_bounds = bounds(Some(8 * MIB), Some(4 * MIB), None)),
            CE::ZoneBounds { bytes: 4 * MIB }),
        ("Movable below DMA32", with(&|c| c.zone_bounds = bounds(None, Some(8 * MIB), Some(4 * MIB))),
            CE::ZoneBounds { bytes: 4 * MIB }),
        ("bound aligned to 4 KiB, not 64 KiB", with(&|c| {
            c.page_size_bytes = 65536;
            c.zone_bounds = bounds(Some(MIB), Some(8 * MIB + 4096), None)
        }), CE::ZoneBounds { bytes: 8 * MIB + 4096 }),
        ("region below the largest block", with(&|c| c.regions = Some(pagealloc::RegionPolicy { size_bytes: 2 * MIB, ..Default::default() })),
            CE::RegionSize { bytes: 2 * MIB, min: 4 * MIB }),
        ("region not a power of two", with(&|c| c.regions = Some(pagealloc::RegionPolicy { size_bytes: 24 * MIB, ..Default::default() })),
            CE::RegionSize { bytes: 24 * MIB, min: 4 * MIB }),
        ("region of 0 bytes", with(&|c| c.regions = Some(pagealloc::RegionPolicy { size_bytes: 0, ..Default::default() })),
            CE::RegionSize { bytes: 0, min: 4 * MIB }),
        ("region at 64 KiB pages below 64 MiB", with(&|c| {
            c.page_size_bytes = 65536;
            c.regions = Some(pagealloc::RegionPolicy { size_bytes: 32 * MIB, ..Default::default() })
        }), CE::RegionSize { bytes: 32 * MIB, min: 64 * MIB }),
        ("regions with confinement", with(&|c| {
            c.regions = Some(pagealloc::RegionPolicy::default());
            c.confinement = pagealloc::Confinement::LowEnd;
        }), CE::RegionsWithConfinement),
    ];
    let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(1024)).unwrap();
    for (name, config, want) in configs {
        assert_eq!(config.validate(), Err(want.clone()), "{name}: validate");
        let got = Allocator::new(map.clone(), config).map(|_| ()).unwrap_err();
        assert_eq!(got, want, "{name}: Allocator::new");
        assert_message(&got, &config_needles(&got));
    }

    #[rustfmt::skip]
    let maps: Vec<(&str, Vec<MemRange>, ConfigError)> = vec![
        ("no range", vec![], CE::EmptyMap),
        ("empty range", vec![range(0, 5, 5)], CE::EmptyRange { start: Pfn(5), end: Pfn(5) }),
        ("reversed range", vec![range(0, 0x10, 0x20), range(0, 9, 3)],
            CE::EmptyRange { start: Pfn(9), end: Pfn(3) }),
        ("overlap", vec![range(0, 0x100, 0x200), range(0, 0x1ff, 0x300)],
            CE::OverlappingRanges { first_start: Pfn(0x100), second_start: Pfn(0x1ff) }),
        ("inside another", vec![range(0, 0x150, 0x160), range(0, 0x100, 0x200)],
            CE::OverlappingRanges { first_start: Pfn(0x100), second_start: Pfn(0x150) }),
        ("nodes interleave", vec![range(0, 0, 10), range(1, 10, 20), range(0, 20, 30)],
            CE::OverlappingRanges { first_start: Pfn(10), second_start: Pfn(20) }),
    ];
    for (name, ranges, want) in maps {
        let got = MemoryMap::new(ranges).unwrap_err();
        assert_eq!(got, want, "{name}");
        assert_message(&got, &config_needles(&got));
    }

    let normal_only = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        ..Config::default()
    };
    let top = 1u64 << 52; // 2^64 bytes in 4 KiB pages
    let huge = MAX_ZONE_PAGES + 16;
    #[rustfmt::skip]
    let layouts: Vec<(&str, Result<MemoryMap, ConfigError>, ConfigError)> = vec![
        ("contiguous map past the last frame", MemoryMap::contiguous(Pfn(u64::MAX), PageCount(2)),
            CE::PfnOverflow { start: Pfn(u64::MAX) }),
        ("frames past a 64-bit address", MemoryMap::new([range(0, top - 16, top + 16)]),
            CE::PfnOverflow { start: Pfn(top - 16) }),
        ("frames at the top of the frame space", MemoryMap::new([range(0, u64::MAX - 10, u64::MAX)]),
            CE::PfnOverflow { start: Pfn(u64::MAX - 10) }),
        ("zone spanning more than a page record links",
            MemoryMap::new([range(0, 0, 16), range(0, huge - 16, huge)]),
            CE::ZoneTooLarge { node: NodeId(0), zone: ZoneType::Normal, nr_pages: huge, max: MAX_ZONE_PAGES }),
    ];
    for (name, map, want) in layouts {
        let got = map
            .and_then(|m| Allocator::new(m, normal_only.clone()).map(|_| ()))
            .unwrap_err();
        assert_eq!(got, want, "{name}");
        assert_message(&got, &config_needles(&got));
    }
}

/// DMA zone 16..0x400 with a hole at 0x9f..0x100, and a few allocations:
/// `a` of order 3, `b` of order 0 (freed again), and `c` of order 2 split
/// into pages.
fn machine() -> (Allocator, Pfn, Pfn, Pfn) {
    let map = MemoryMap::new([range(0, 16, 0x9f), range(0, 0x100, 0x400)]).unwrap();
    let alloc = Allocator::new(map, Config::default()).unwrap();
    let a = alloc.alloc(order(3), AllocFlags::DMA).unwrap();
    let b = alloc.alloc(order(0), AllocFlags::DMA).unwrap();
    let c = alloc.alloc(order(2), AllocFlags::DMA).unwrap();
    alloc.free(b, order(0)).unwrap();
    alloc.split_page(c, order(2)).unwrap();
    alloc.check_invariants().unwrap();
    (alloc, a, b, c)
}

#[test]
fn every_block_error_for_free_and_split() {
    let (alloc, a, b, c) = machine();
    // A present page in no allocated block (and not `b`).
    let held = |p: u64| (a.0..a.0 + 8).contains(&p) || (c.0..c.0 + 4).contains(&p);
    let free_page = (0x100..0x400)
        .rev()
        .map(Pfn)
        .find(|&p| !held(p.0) && p != b)
        .unwrap();
    let invalid = |n: u8| BE::InvalidOrder {
        order: order(n),
        max: order(10),
    };
    let tail = |pfn: Pfn, k: u64| Pfn(pfn.0 + k);
    // A contiguous run, whose pages only `free_contig_range` frees.
    let run = alloc
        .alloc_contig_range(Pfn(0x120), Pfn(0x130), &mut |_, _, _| {
            Err(pagealloc::MigrateRefusal::Busy)
        })
        .unwrap()
        .start;
    assert!(free_page < run || free_page.0 >= run.0 + 16);
    #[rustfmt::skip]
    let cases: Vec<(&str, Pfn, u8, BlockError)> = vec![
        ("a page of a contiguous run", tail(run, 5), 0, BE::ContigRun { pfn: tail(run, 5) }),
        ("a contiguous run as a block", run, 4, BE::ContigRun { pfn: run }),
        ("order above the largest", a, 11, invalid(11)),
        ("order at the limit", a, 15, invalid(15)),
        ("invalid order beats a bad frame", Pfn(u64::MAX), 12, invalid(12)),
        ("past the last zone", Pfn(0x400), 0, BE::OutOfRange { pfn: Pfn(0x400) }),
        ("below the first zone", Pfn(0), 0, BE::OutOfRange { pfn: Pfn(0) }),
        ("the largest frame", Pfn(u64::MAX), 0, BE::OutOfRange { pfn: Pfn(u64::MAX) }),
        ("in the hole", Pfn(0xa0), 0, BE::InHole { pfn: Pfn(0xa0) }),
        ("last page of the hole", Pfn(0xff), 0, BE::InHole { pfn: Pfn(0xff) }),
        ("a hole beats misalignment", Pfn(0xa1), 3, BE::InHole { pfn: Pfn(0xa1) }),
        ("misaligned", tail(a, 4), 3, BE::Misaligned { pfn: tail(a, 4), order: order(3) }),
        ("misaligned for a larger order", a, 10, BE::Misaligned { pfn: a, order: order(10) }),
        ("double free", b, 0, BE::AlreadyFree { pfn: b }),
        ("a page of a free block", free_page, 0, BE::AlreadyFree { pfn: free_page }),
        ("a tail page", tail(a, 1), 0, BE::NotAllocated { pfn: tail(a, 1) }),
        ("an aligned tail", tail(a, 4), 2, BE::NotAllocated { pfn: tail(a, 4) }),
        ("a split tail", tail(c, 2), 1, BE::WrongOrder { pfn: tail(c, 2), order: order(1), allocated: order(0) }),
        ("too small an order", a, 2, BE::WrongOrder { pfn: a, order: order(2), allocated: order(3) }),
        ("a split page at a larger order", c, 1, BE::WrongOrder { pfn: c, order: order(1), allocated: order(0) }),
        ("a split page at its old order", c, 2, BE::WrongOrder { pfn: c, order: order(2), allocated: order(0) }),
    ];
    for (name, pfn, o, want) in cases {
        for split in [false, true] {
            let alloc = alloc.clone();
            let before = Snapshot::take(&alloc);
            let block = alloc.allocated_block(pfn);
            let got = if split {
                alloc.split_page(pfn, order(o))
            } else {
                alloc.free(pfn, order(o))
            };
            let call = if split { "split_page" } else { "free" };
            assert_eq!(got, Err(want), "{name}: {call}({pfn}, {o})");
            assert_eq!(
                Snapshot::take(&alloc),
                before,
                "{name}: {call} changed state"
            );
            assert_eq!(alloc.allocated_block(pfn), block, "{name}: {call}");
            alloc.check_invariants().unwrap();
        }
        let mut needles = vec![];
        match want {
            BlockError::InvalidOrder { order, max } => {
                needles.extend([order.to_string(), max.get().to_string()])
            }
            BlockError::InvalidCpu(e) => needles.push(e.cpu.to_string()),
            BlockError::OutOfRange { pfn }
            | BlockError::InHole { pfn }
            | BlockError::AlreadyFree { pfn }
            | BlockError::ContigRun { pfn }
            | BlockError::NotAllocated { pfn } => needles.push(pfn.to_string()),
            BlockError::Misaligned { pfn, order } => {
                needles.extend([pfn.to_string(), order.to_string()])
            }
            BlockError::WrongOrder {
                pfn,
                order,
                allocated,
            } => needles.extend([pfn.to_string(), order.to_string(), allocated.to_string()]),
        }
        assert_message(&want, &needles);
    }
    // A CPU that does not exist, for a free that is otherwise fine.
    let before = Snapshot::take(&alloc);
    assert_eq!(
        alloc.free_on_cpu(CpuId(7), a, order(3)),
        Err(BE::InvalidCpu(InvalidCpu { cpu: 7, nr_cpus: 1 }))
    );
    assert_eq!(
        Snapshot::take(&alloc),
        before,
        "free on a missing CPU changed state"
    );
    assert_message(
        &BE::InvalidCpu(InvalidCpu { cpu: 7, nr_cpus: 1 }),
        &["7".to_string(), "1".to_string()],
    );
    // The pieces of the split block are still there to be freed one by one.
    let alloc = alloc;
    for k in (0..4).rev() {
        alloc.free(Pfn(c.0 + k), order(0)).unwrap();
    }
    alloc.free(a, order(3)).unwrap();
    alloc.free_contig_range(run, PageCount(16)).unwrap();
    alloc.check_invariants().unwrap();
    assert_eq!(alloc.nr_allocated_pages(), 0);
}

/// `Allocator::local` refuses a missing or held CPU with its own error, and
/// the refusal changes nothing.
#[test]
fn every_local_error() {
    let map = MemoryMap::new(vec![range(0, 0x100, 0x400)]).unwrap();
    let alloc = Allocator::new(map, Config::default()).unwrap();
    let before = Snapshot::take(&alloc);
    assert_eq!(
        alloc.local(CpuId(3)).unwrap_err(),
        LocalError::InvalidCpu(InvalidCpu { cpu: 3, nr_cpus: 1 })
    );
    let held = alloc.local(CpuId(0)).expect("CPU 0's lists are free");
    assert_eq!(
        alloc.local(CpuId(0)).unwrap_err(),
        LocalError::Busy { cpu: 0 }
    );
    drop(held);
    assert_eq!(
        Snapshot::take(&alloc),
        before,
        "a refused local() changed state"
    );
    assert_message(
        &LocalError::InvalidCpu(InvalidCpu { cpu: 3, nr_cpus: 1 }),
        &["3".to_string()],
    );
    assert_message(&LocalError::Busy { cpu: 0 }, &["0".to_string()]);
}

#[test]
fn every_alloc_error() {
    let on = |ranges: Vec<MemRange>, config: Config| {
        Allocator::new(MemoryMap::new(ranges).unwrap(), config).unwrap()
    };
    let x86 = || {
        on(
            vec![range(0, 16, 0x9f), range(0, 0x100, 0x400)],
            Config::default(),
        )
    };
    let normal_only = || {
        let c = Config {
            zone_bounds: ZoneBounds::NORMAL_ONLY,
            ..Config::default()
        };
        on(vec![range(0, 0, 0x800)], c)
    };
    // Node 0 has DMA and DMA32, node 1 (above 4 GiB) only Normal.
    let two_nodes = || {
        on(
            vec![range(0, 0x100, 0x2000), range(1, 0x100000, 0x100800)],
            Config::default(),
        )
    };
    let small_orders = || {
        let c = Config {
            nr_orders: 5,
            pageblock_order: 4,
            ..Config::default()
        };
        on(vec![range(0, 0x1000, 0x1800)], c)
    };
    type Call = fn(&mut Allocator) -> Result<Pfn, AllocError>;
    let invalid = |n: u8, max: u8| AE::InvalidOrder {
        order: order(n),
        max: order(max),
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Allocator, Call, AllocError)> = vec![
        ("order 11 of 11", x86(), |a| a.alloc(order(11), AllocFlags::KERNEL), invalid(11, 10)),
        ("order 15 of 11", x86(), |a| a.alloc(order(15), AllocFlags::DMA), invalid(15, 10)),
        ("order 5 of 5", small_orders(), |a| a.alloc(order(5), AllocFlags::KERNEL), invalid(5, 4)),
        ("invalid order beats no zone", normal_only(), |a| a.alloc(order(12), AllocFlags::DMA), invalid(12, 10)),
        ("DMA without a DMA zone", normal_only(), |a| a.alloc(order(0), AllocFlags::DMA), AE::NoZone),
        ("DMA32 without low zones", normal_only(),
            |a| a.alloc(order(0), AllocFlags::DMA32 | AllocFlags::MOVABLE), AE::NoZone),
        ("DMA on node 1 only", two_nodes(),
            |a| a.alloc_on(NodeId(1), order(0), AllocFlags::DMA | AllocFlags::THIS_NODE), AE::NoZone),
        ("a node that does not exist", two_nodes(),
            |a| a.alloc_on(NodeId(2), order(0), AllocFlags::KERNEL), AE::NoZone),
        ("a CPU that does not exist", x86(),
            |a| a.alloc_on_cpu(CpuId(3), order(0), AllocFlags::KERNEL), AE::InvalidCpu(InvalidCpu { cpu: 3, nr_cpus: 1 })),
        ("larger than any free block", x86(),
            |a| a.alloc(order(10), AllocFlags::DMA), AE::NoMemory { order: order(10) }),
    ];
    for (name, mut alloc, call, want) in cases {
        let before = Snapshot::take(&alloc);
        assert_eq!(call(&mut alloc), Err(want), "{name}");
        let mut expected = before.clone();
        if let AllocError::NoMemory { order } = want {
            // A failure is counted, and that is all that changes.
            expected.stats.alloc_fail[order.get() as usize] += 1;
        }
        assert_eq!(Snapshot::take(&alloc), expected, "{name}: state changed");
        alloc.check_invariants().unwrap();
        let needles = match want {
            AllocError::InvalidOrder { order, max } => {
                vec![order.to_string(), max.get().to_string()]
            }
            AllocError::NoMemory { order } => vec![order.to_string()],
            AllocError::NoZone => vec![],
            AllocError::InvalidCpu(e) => vec![e.cpu.to_string(), e.nr_cpus.to_string()],
        };
        assert_message(&want, &needles);
    }
}

#[test]
fn exhausted_memory_fails_without_side_effects() {
    let map = MemoryMap::new([range(0, 0x1000, 0x1400)]).unwrap();
    let alloc = Allocator::new(map, Config::default()).unwrap();
    let flags = AllocFlags::KERNEL | AllocFlags::NO_WATERMARKS;
    let mut held = 0;
    while alloc.alloc(order(0), flags).is_ok() {
        held += 1;
    }
    assert_eq!(held, 0x400);
    assert_eq!(alloc.nr_free_pages(), 0);
    for (o, flags) in [
        (0, AllocFlags::KERNEL),
        (0, AllocFlags::GFP_ATOMIC),
        (3, flags),
        (0, flags),
    ] {
        let before = Snapshot::take(&alloc);
        let got = alloc.alloc(order(o), flags);
        assert_eq!(
            got,
            Err(AllocError::NoMemory { order: order(o) }),
            "{flags:?}"
        );
        let mut expected = before;
        expected.stats.alloc_fail[o as usize] += 1;
        assert_eq!(Snapshot::take(&alloc), expected);
        alloc.check_invariants().unwrap();
    }
    assert_eq!(alloc.stats().total_alloc_fail(), 5);
}

/// Every refusal of a contiguous call (seed 003), call by call: the exact
/// `ContigError`, a message naming the frame at fault, and nothing changed
/// (full snapshot and digest: page records, pageblock types and marks,
/// lists, counters, CMA bitmaps).
#[test]
fn every_contig_error_changes_nothing() {
    use pagealloc::{
        CmaReservation, ContigConstraints, ContigError as CG, MigrateRefusal, RangeProblem as RP,
    };
    // DMA32 0x1000..0x2800 and 0x2900..0x3000 (a hole between), Normal
    // 0x3000..0x5000 with a CMA area at 0x4000..0x4400.
    let map = MemoryMap::new([range(0, 0x1000, 0x2800), range(0, 0x2900, 0x5000)]).unwrap();
    let config = Config {
        zone_bounds: common::bounds_mib(Some(16), Some(48), None),
        cma: CmaSupport::Enabled,
        cma_areas: vec![CmaArea::new(Pfn(0x4000), PageCount(1024))],
        ..Config::default()
    };
    let mut a = Allocator::new(map.clone(), config.clone()).unwrap();
    let kernel = a.alloc(order(0), AllocFlags::KERNEL).unwrap();
    let run = a
        .alloc_contig_range(Pfn(0x3300), Pfn(0x3310), &mut |_, _, _| {
            Err(MigrateRefusal::Busy)
        })
        .unwrap()
        .start;
    let cma_run = a
        .cma_alloc(0, PageCount(64), order(0), &mut |_, _, _| {
            Err(MigrateRefusal::Busy)
        })
        .unwrap()
        .start;
    a.offline_pages(Pfn(0x3800), PageCount(512), &mut |_, _, _| Ok(()))
        .unwrap();
    a.drain_all();
    let never = &mut |_: Pfn, _: Pfn, _: Order| Err(MigrateRefusal::Busy);
    let r = |s: u64, e: u64, problem| CG::Range {
        start: Pfn(s),
        end: Pfn(e),
        problem,
    };
    let kblock = kernel.align_down(order(9));
    let mut cases: Vec<(&str, Result<(), CG>, CG)> = Vec::new();
    let mut check = |name: &'static str,
                     a: &mut Allocator,
                     call: &mut dyn FnMut(&mut Allocator) -> Result<(), CG>,
                     want: CG| {
        let before = Snapshot::take(a);
        let digest = a.digest();
        let got = call(a);
        assert_eq!(got, Err(want), "{name}");
        assert_eq!(Snapshot::take(a), before, "{name}: the snapshot changed");
        assert_eq!(a.digest(), digest, "{name}: the digest changed");
        a.check_invariants().unwrap();
        cases.push((name, got, want));
    };
    let contig = |s: u64, e: u64| {
        move |a: &mut Allocator| {
            a.alloc_contig_range(Pfn(s), Pfn(e), &mut |_, _, _| Err(MigrateRefusal::Busy))
                .map(|_| ())
        }
    };
    check(
        "empty range",
        &mut a,
        &mut contig(0x2000, 0x2000),
        r(0x2000, 0x2000, RP::Empty),
    );
    check(
        "reversed range",
        &mut a,
        &mut contig(0x2001, 0x2000),
        r(0x2001, 0x2000, RP::Empty),
    );
    check(
        "below memory",
        &mut a,
        &mut contig(0x10, 0x20),
        r(0x10, 0x20, RP::OutOfRange),
    );
    check(
        "past memory",
        &mut a,
        &mut contig(0x4f00, 0x5100),
        r(0x4f00, 0x5100, RP::OutOfRange),
    );
    check(
        "across two zones",
        &mut a,
        &mut contig(0x2f00, 0x3100),
        r(0x2f00, 0x3100, RP::CrossesZone),
    );
    check(
        "across a hole",
        &mut a,
        &mut contig(0x2700, 0x2a00),
        r(0x2700, 0x2a00, RP::CrossesHole),
    );
    check(
        "in a hole",
        &mut a,
        &mut contig(0x2810, 0x2820),
        r(0x2810, 0x2820, RP::CrossesHole),
    );
    check(
        "an unmovable page",
        &mut a,
        &mut contig(kernel.0, kernel.0 + 1),
        CG::Unmovable { pfn: kernel },
    );
    check(
        "the pageblock of an unmovable page",
        &mut a,
        &mut contig(kblock.0, kblock.0 + 1),
        CG::Unmovable { pfn: kernel },
    );
    check(
        "a contiguous run",
        &mut a,
        &mut contig(0x3308, 0x3320),
        CG::Unmovable { pfn: Pfn(0x3300) },
    );
    check(
        "a CMA pageblock",
        &mut a,
        &mut contig(0x4200, 0x4210),
        CG::Unmovable { pfn: Pfn(0x4200) },
    );
    check(
        "offline pages",
        &mut a,
        &mut contig(0x3800, 0x3801),
        CG::Unmovable { pfn: Pfn(0x3800) },
    );
    let pages = |nr: u64, c: ContigConstraints| {
        move |a: &mut Allocator| {
            a.alloc_contig_pages(PageCount(nr), &c, &mut |_, _, _| Err(MigrateRefusal::Busy))
                .map(|_| ())
        }
    };
    let any = ContigConstraints::default();
    check("no pages", &mut a, &mut pages(0, any), r(0, 0, RP::Empty));
    check(
        "alignment not a power of two",
        &mut a,
        &mut pages(
            8,
            ContigConstraints {
                align: PageCount(3),
                ..any
            },
        ),
        CG::Constraint,
    );
    check(
        "boundary below the run",
        &mut a,
        &mut pages(
            64,
            ContigConstraints {
                boundary: Some(PageCount(32)),
                ..any
            },
        ),
        CG::Constraint,
    );
    check(
        "boundary not a power of two",
        &mut a,
        &mut pages(
            8,
            ContigConstraints {
                boundary: Some(PageCount(48)),
                ..any
            },
        ),
        CG::Constraint,
    );
    check(
        "more than memory",
        &mut a,
        &mut pages(1 << 20, any),
        CG::NotFound { tried: 0 },
    );
    check(
        "a zone type the machine lacks",
        &mut a,
        &mut pages(
            8,
            ContigConstraints {
                zone: Some(ZoneType::Movable),
                ..any
            },
        ),
        CG::NotFound { tried: 0 },
    );
    let free_run =
        |s: u64, n: u64| move |a: &mut Allocator| a.free_contig_range(Pfn(s), PageCount(n));
    check(
        "free of free pages",
        &mut a,
        &mut free_run(0x2000, 4),
        CG::NotContig { pfn: Pfn(0x2000) },
    );
    check(
        "free past a run's end",
        &mut a,
        &mut free_run(run.0 + 8, 16),
        CG::NotContig {
            pfn: Pfn(run.0 + 16),
        },
    );
    check(
        "free before a run",
        &mut a,
        &mut free_run(run.0 - 1, 4),
        CG::NotContig {
            pfn: Pfn(run.0 - 1),
        },
    );
    check(
        "free of an ordinary page",
        &mut a,
        &mut free_run(kernel.0, 1),
        CG::NotContig { pfn: kernel },
    );
    check(
        "free of no pages",
        &mut a,
        &mut free_run(run.0, 0),
        r(run.0, run.0, RP::Empty),
    );
    let cma = |area: usize, n: u64| {
        move |a: &mut Allocator| {
            a.cma_alloc(area, PageCount(n), order(0), &mut |_, _, _| {
                Err(MigrateRefusal::Busy)
            })
            .map(|_| ())
        }
    };
    check(
        "a CMA area that does not exist",
        &mut a,
        &mut cma(1, 8),
        CG::NoSuchArea { area: 1 },
    );
    check(
        "no CMA pages",
        &mut a,
        &mut cma(0, 0),
        r(0x4000, 0x4000, RP::Empty),
    );
    check(
        "more than the CMA area",
        &mut a,
        &mut cma(0, 1025),
        r(0x4000, 0x4000 + 1025, RP::OutOfRange),
    );
    let release = |area: usize, s: u64, n: u64| {
        move |a: &mut Allocator| a.cma_release(area, Pfn(s), PageCount(n))
    };
    check(
        "release to a missing area",
        &mut a,
        &mut release(3, cma_run.0, 64),
        CG::NoSuchArea { area: 3 },
    );
    check(
        "release outside the area",
        &mut a,
        &mut release(0, run.0, 16),
        CG::NotContig { pfn: run },
    );
    check(
        "release of bits never set",
        &mut a,
        &mut release(0, cma_run.0 + 64, 8),
        CG::NotContig {
            pfn: Pfn(cma_run.0 + 64),
        },
    );
    check(
        "release past the run",
        &mut a,
        &mut release(0, cma_run.0, 72),
        CG::NotContig {
            pfn: Pfn(cma_run.0 + 64),
        },
    );
    let offline = |s: u64, n: u64| {
        move |a: &mut Allocator| {
            a.offline_pages(Pfn(s), PageCount(n), &mut |_, _, _| Ok(()))
                .map(|_| ())
        }
    };
    check(
        "offline of part of a pageblock",
        &mut a,
        &mut offline(0x2000, 100),
        r(0x2000, 0x2000 + 100, RP::Misaligned),
    );
    check(
        "offline off a pageblock",
        &mut a,
        &mut offline(0x2010, 512),
        r(0x2010, 0x2210, RP::Misaligned),
    );
    check(
        "offline twice",
        &mut a,
        &mut offline(0x3800, 512),
        CG::NotOffline { pfn: Pfn(0x3800) },
    );
    check(
        "offline of a CMA area",
        &mut a,
        &mut offline(0x4000, 512),
        CG::Unmovable { pfn: Pfn(0x4000) },
    );
    check(
        "offline across a hole",
        &mut a,
        &mut offline(0x2600, 1024),
        r(0x2600, 0x2a00, RP::CrossesHole),
    );
    let online = |s: u64, n: u64| move |a: &mut Allocator| a.online_pages(Pfn(s), PageCount(n));
    check(
        "online of pages in service",
        &mut a,
        &mut online(0x2000, 512),
        CG::NotOffline { pfn: Pfn(0x2000) },
    );
    check(
        "online past the offline range",
        &mut a,
        &mut online(0x3800, 1024),
        CG::NotOffline { pfn: Pfn(0x3a00) },
    );
    // A range isolated by a call in progress refuses an overlapping one:
    // the migrator of the first makes the second call.
    let mut owner = a.alloc(order(0), AllocFlags::HIGHUSER_MOVABLE).unwrap();
    let inner = std::cell::Cell::new(None);
    let shared = &a;
    let outer = shared.alloc_contig_range(owner, Pfn(owner.0 + 1), &mut |from, to, _| {
        let before = Snapshot::take(shared);
        inner.set(Some((
            shared.alloc_contig_range(from, Pfn(from.0 + 1), never),
            before == Snapshot::take(shared),
        )));
        owner = to;
        Ok(())
    });
    let (got, unchanged) = inner.get().unwrap();
    assert!(matches!(got, Err(CG::Isolated { .. })), "{got:?}");
    assert!(unchanged, "the refused overlapping call changed state");
    assert!(outer.is_ok());
    for (_name, got, want) in &cases {
        let needles: Vec<String> = match want {
            CG::Range { start, end, .. } => vec![start.to_string(), end.to_string()],
            CG::Unmovable { pfn }
            | CG::Isolated { pfn }
            | CG::NotContig { pfn }
            | CG::NotOffline { pfn } => {
                vec![pfn.to_string()]
            }
            CG::NoSuchArea { area } => vec![area.to_string()],
            CG::NotFound { tried } => vec![tried.to_string()],
            CG::Busy { pfn, tries } => vec![pfn.to_string(), tries.to_string()],
            CG::Constraint | CG::NoMemory => vec![],
        };
        assert_message(&got.unwrap_err(), &needles);
    }
    // CMA reservations that cannot be placed.
    let reserve = |nr: u64, align: u64, opb: u8| Config {
        cma_areas: vec![],
        cma_reservations: vec![CmaReservation {
            nr_pages: PageCount(nr),
            align: PageCount(align),
            node: NodeId(0),
            order_per_bit: opb,
        }],
        ..config.clone()
    };
    for (name, cfg, problem) in [
        (
            "larger than memory",
            reserve(1 << 20, 512, 0),
            CmaAreaProblem::NoRoom,
        ),
        (
            "alignment not a power of two",
            reserve(512, 768, 0),
            CmaAreaProblem::Alignment,
        ),
        (
            "order per bit above the pageblock",
            reserve(512, 512, 10),
            CmaAreaProblem::OrderPerBit,
        ),
        (
            "not whole pageblocks",
            reserve(100, 512, 0),
            CmaAreaProblem::Misaligned,
        ),
    ] {
        match Allocator::new(map.clone(), cfg) {
            Err(ConfigError::CmaArea { problem: got, .. }) => assert_eq!(got, problem, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // A reservation is placed at the top of its node, clear of fixed areas.
    let placed = Allocator::new(map, reserve(1024, 1024, 0)).unwrap();
    assert_eq!(placed.cma_areas()[0].start, Pfn(0x5000 - 1024));
}
