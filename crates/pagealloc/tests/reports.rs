//! Snapshot tests of the rendered reports.
//!
//! The real `/proc` files of the machine the sample traces came from (Linux
//! 6.18, x86-64; in `tests/data/`, sections copied verbatim from
//! `traces/cargo-build.{before,after}.procfs`) fix the line structure and
//! column positions of `/proc/buddyinfo` and `/proc/pagetypeinfo` and the
//! field labels of `/proc/zoneinfo`; a small deterministic scenario pins the
//! full text of every report, so any change of format shows up here.

mod common;

use common::{bounds_mib, range};
use pagealloc::report::PageTypeZone;
use pagealloc::{
    AllocFlags, Allocator, CmaArea, CmaSupport, Config, FragIndexKind, MemoryMap, MigrateType,
    NodeId, Order, PageCount, PageTypeInfo, PcpMode, Pfn, ZoneBounds, ZoneType,
};

fn order(n: u8) -> Order {
    Order::new(n).unwrap()
}

const BEFORE: &str = include_str!("data/cargo-build.before.txt");
const AFTER: &str = include_str!("data/cargo-build.after.txt");

/// The lines of section `## name` of a sample.
fn section<'a>(sample: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("## {name}");
    sample
        .lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect()
}

/// The sample machine: DMA 1..0x9f and 0x100..0x1000, DMA32
/// 0x1000..0xc0000, Normal 0x100000..0x140000, Linux's defaults.
fn sample_machine() -> Allocator {
    let map = MemoryMap::new([
        range(0, 0x1, 0x9f),
        range(0, 0x100, 0xc0000),
        range(0, 0x100000, 0x140000),
    ])
    .unwrap();
    Allocator::new(map, Config::default()).unwrap()
}

/// Asserts that `ours` has the line structure of `theirs`: `exact` lines
/// equal byte for byte, the others of the same length, with the same text
/// up to `prefix` characters and right-aligned numbers in the same columns
/// of `width` characters after it.
fn assert_same_columns(
    ours: &[&str],
    theirs: &[&str],
    exact: &[usize],
    prefix: usize,
    width: usize,
) {
    assert_eq!(ours.len(), theirs.len(), "line count:\n{}", ours.join("\n"));
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        if exact.contains(&i) {
            assert_eq!(o, t, "line {i}");
            continue;
        }
        assert_eq!(o.len(), t.len(), "line {i} length:\n{o}\n{t}");
        assert_eq!(o[..prefix], t[..prefix], "line {i} prefix");
        for (k, (oc, tc)) in o.as_bytes()[prefix..]
            .chunks(width)
            .zip(t.as_bytes()[prefix..].chunks(width))
            .enumerate()
        {
            for cell in [oc, tc] {
                let cell = std::str::from_utf8(cell).unwrap();
                let digits = cell.trim_start().trim_end_matches(' ');
                assert!(
                    cell.ends_with(' ')
                        && !digits.is_empty()
                        && digits.bytes().all(|b| b.is_ascii_digit()),
                    "line {i} column {k}: {cell:?}"
                );
            }
        }
    }
}

/// The numbers after the label of a data line.
fn numbers(line: &str, prefix: usize) -> Vec<u64> {
    line[prefix..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn pagetypeinfo_has_linux_columns() {
    let a = sample_machine();
    let text = a.pagetypeinfo().to_string();
    let ours: Vec<&str> = text.lines().collect();
    for sample in [BEFORE, AFTER] {
        let theirs = section(sample, "pagetypeinfo");
        // Header, free-count rows (44-character label, 7-character columns),
        // a blank line, the block-count header and rows (22-character label,
        // 13-character columns).
        let exact = [0, 1, 2, 3, 19, 20];
        assert_eq!(theirs[0], "Page block order: 9");
        assert_eq!(theirs[1], "Pages per block:  512");
        assert!(theirs[3].starts_with("Free pages count per migrate type at order "));
        assert!(theirs[20].starts_with("Number of blocks type "));
        assert_same_columns(&ours[..21], &theirs[..21], &exact, 44, 7);
        assert_same_columns(&ours[21..], &theirs[21..], &[], 22, 13);
        // Every present pageblock is counted once: the sample's DMA and
        // DMA32 totals (its Normal zone is larger than ours, and grew).
        let total = |line: &str| numbers(line, 22).iter().sum::<u64>();
        for (i, zone) in [(21, "DMA"), (22, "DMA32")] {
            assert_eq!(total(ours[i]), total(theirs[i]), "{zone} pageblocks");
        }
    }
    let before = section(BEFORE, "pagetypeinfo");
    assert_eq!(
        numbers(ours[23], 22).iter().sum::<u64>(),
        numbers(before[23], 22).iter().sum::<u64>()
    );
    let pti = a.pagetypeinfo();
    let blocks = |z: usize| pti.zones[z].blocks.iter().sum::<u64>();
    assert_eq!((blocks(0), blocks(1), blocks(2)), (8, 1528, 512));
    assert_eq!(pti.blocks_of(MigrateType::Movable), 8 + 1528 + 512);
}

#[test]
fn buddyinfo_has_linux_columns() {
    let text = sample_machine().buddyinfo().to_string();
    let ours: Vec<&str> = text.lines().collect();
    for sample in [BEFORE, AFTER] {
        let theirs = section(sample, "buddyinfo");
        assert_same_columns(&ours, &theirs, &[], 22, 7);
    }
}

/// The lines of one zone's part of a zoneinfo text, header first.
fn zone_lines<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| *l != header);
    let first = lines.next().expect(header);
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.starts_with("Node ")))
        .collect()
}

#[test]
fn zoneinfo_fields_match_the_sample() {
    let a = sample_machine();
    let text = a.zoneinfo().to_string();
    let sample = include_str!("data/cargo-build.before.zoneinfo.txt");
    for zone in ["DMA", "DMA32", "Normal"] {
        let header = format!("Node 0, zone {zone:>8}");
        let ours = zone_lines(&text, &header);
        let theirs = zone_lines(sample, &header);
        // Our lines are a subsequence of Linux's, with the same labels.
        let label = |l: &str| {
            l.trim_end_matches(|c: char| c.is_ascii_digit() || ", ()".contains(c))
                .to_string()
        };
        let mut rest = theirs.iter();
        for line in &ours {
            assert!(
                rest.any(|t| label(t) == label(line)),
                "{zone}: {line:?} is not a zoneinfo line (or out of order)"
            );
        }
        // Where the layout is the sample's own, so are the numbers.
        let field = |lines: &[&str], name: &str| -> String {
            lines.iter().find(|l| label(l) == name).unwrap().to_string()
        };
        if zone != "Normal" {
            for name in ["        spanned", "        present", "  start_pfn:"] {
                assert_eq!(field(&ours, name), field(&theirs, name), "{zone}");
            }
        }
    }
}

/// Three tiny zones (a 2 MiB DMA zone with the PC's hole, DMA32 up to
/// 8 MiB with a hole at its end, 2 MiB of Normal) after a fixed sequence:
/// five kernel pages (the first claims Normal's only pageblock), three
/// movable order-3 blocks (from DMA32: claiming Normal's would fragment),
/// a reclaimable pair (claims a DMA32 pageblock), a DMA order-2 block
/// (stolen: its pageblock straddles the zone start), an atomic order-4
/// block, a DMA32 order-5 block (claims another DMA32 pageblock), then
/// frees and a split.
/// The buddy path alone (per-CPU lists off), so every number in the
/// snapshots below follows from the buddy rules and was checked by hand.
fn scenario() -> Allocator {
    let c = Config {
        zone_bounds: bounds_mib(Some(2), Some(8), None),
        pcp: PcpMode::Disabled,
        ..Config::default()
    };
    let map = MemoryMap::new([
        range(0, 1, 0x9f),
        range(0, 0x100, 0x700),
        range(0, 0x800, 0xa00),
    ]);
    let a = Allocator::new(map.unwrap(), c).unwrap();
    let kernel: Vec<Pfn> = (0..5)
        .map(|_| a.alloc(order(0), AllocFlags::KERNEL).unwrap())
        .collect();
    let movable: Vec<Pfn> = (0..3)
        .map(|_| a.alloc(order(3), AllocFlags::HIGHUSER_MOVABLE).unwrap())
        .collect();
    assert_eq!(kernel, [0x800, 0x801, 0x802, 0x803, 0x804].map(Pfn));
    assert_eq!(movable, [0x600, 0x608, 0x610].map(Pfn));
    assert_eq!(
        a.alloc(order(1), AllocFlags::KERNEL_RECLAIMABLE),
        Ok(Pfn(0x200))
    );
    let dma = a.alloc(order(2), AllocFlags::DMA).unwrap();
    assert_eq!(dma, Pfn(0x4));
    assert_eq!(a.alloc(order(4), AllocFlags::GFP_ATOMIC), Ok(Pfn(0x810)));
    assert_eq!(a.alloc(order(5), AllocFlags::DMA32), Ok(Pfn(0x400)));
    a.free(kernel[1], order(0)).unwrap();
    a.free(kernel[3], order(0)).unwrap();
    a.free(movable[1], order(3)).unwrap();
    a.split_page(dma, order(2)).unwrap();
    a.free(Pfn(dma.0 + 1), order(0)).unwrap();
    a.check_invariants().unwrap();
    a
}

#[test]
fn scenario_counters() {
    let a = scenario();
    let s = a.stats();
    assert_eq!(s.alloc_calls[..6], [5, 1, 1, 3, 1, 1]);
    assert_eq!((s.pgalloc, s.pgfree), (83, 11));
    assert_eq!(s.free_calls[..4], [3, 0, 0, 1]);
    assert_eq!(
        (s.extfrag_events, s.extfrag_fragmenting, s.pageblock_claims),
        (4, 1, 3)
    );
    assert_eq!((s.split_pages, s.total_alloc_fail()), (1, 0));
}

#[test]
fn scenario_buddyinfo() {
    assert_eq!(
        scenario().buddyinfo().to_string(),
        "\
Node 0, zone      DMA      3      2      1      2      2      1      1      0      1      0      0 
Node 0, zone    DMA32      0      1      1      3      1      3      3      3      2      0      0 
Node 0, zone   Normal      3      1      0      1      0      1      1      1      1      0      0 
"
    );
}

#[test]
fn scenario_pagetypeinfo() {
    assert_eq!(
        scenario().pagetypeinfo().to_string(),
        "\
Page block order: 9
Pages per block:  512

Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 
Node    0, zone      DMA, type    Unmovable      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone      DMA, type      Movable      3      2      1      2      2      1      1      0      1      0      0 
Node    0, zone      DMA, type  Reclaimable      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone      DMA, type   HighAtomic      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone      DMA, type      Isolate      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone    DMA32, type    Unmovable      0      0      0      0      0      1      1      1      1      0      0 
Node    0, zone    DMA32, type      Movable      0      0      0      2      0      1      1      1      0      0      0 
Node    0, zone    DMA32, type  Reclaimable      0      1      1      1      1      1      1      1      1      0      0 
Node    0, zone    DMA32, type   HighAtomic      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone    DMA32, type      Isolate      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone   Normal, type    Unmovable      3      1      0      1      0      1      1      1      1      0      0 
Node    0, zone   Normal, type      Movable      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone   Normal, type  Reclaimable      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone   Normal, type   HighAtomic      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone   Normal, type      Isolate      0      0      0      0      0      0      0      0      0      0      0 

Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate 
Node 0, zone      DMA            0            1            0            0            0 
Node 0, zone    DMA32            1            1            1            0            0 
Node 0, zone   Normal            1            0            0            0            0 
"
    );
}

#[test]
fn scenario_zoneinfo() {
    // min_free_kbytes: THP's recommendation capped at 5% of 2206 pages is
    // 110 pages, split 414 : 1280 : 512; lowmem reserves are the upper
    // zones' pages / 256.
    assert_eq!(
        scenario().zoneinfo().to_string(),
        "\
Node 0, zone      DMA
  pages free     411
        boost    0
        min      20
        low      25
        high     30
        promo    35
        spanned  511
        present  414
        managed  414
        cma      0
        protection: (0, 5, 7, 7, 7)
      nr_free_pages 411
      nr_free_cma  0
  start_pfn:           1
Node 0, zone    DMA32
  pages free     1230
        boost    0
        min      63
        low      78
        high     93
        promo    108
        spanned  1536
        present  1280
        managed  1280
        cma      0
        protection: (0, 0, 2, 2, 2)
      nr_free_pages 1230
      nr_free_cma  0
  start_pfn:           512
Node 0, zone   Normal
  pages free     493
        boost    0
        min      25
        low      31
        high     37
        promo    43
        spanned  512
        present  512
        managed  512
        cma      0
        protection: (0, 0, 0, 0, 0)
      nr_free_pages 493
      nr_free_cma  0
  start_pfn:           2048
"
    );
}

#[test]
fn scenario_fragmentation_indices() {
    let a = scenario();
    assert_eq!(
        a.frag_index(FragIndexKind::Unusable).to_string(),
        "\
Node 0, zone      DMA 0.000 0.007 0.017 0.026 0.065 0.143 0.221 0.377 0.377 1.000 1.000 
Node 0, zone    DMA32 0.000 0.000 0.001 0.004 0.024 0.037 0.115 0.271 0.583 1.000 1.000 
Node 0, zone   Normal 0.000 0.006 0.010 0.010 0.026 0.026 0.091 0.221 0.480 1.000 1.000 
"
    );
    // Order 9 in Normal: 493 free pages in 9 blocks, none of 512:
    // 1000 - (1000 + 493 * 1000 / 512) / 9 = 782.
    assert_eq!(
        a.frag_index(FragIndexKind::Extfrag).to_string(),
        "\
Node 0, zone      DMA -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000  0.862  0.893 
Node 0, zone    DMA32 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000  0.800  0.871 
Node 0, zone   Normal -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000  0.782  0.836 
"
    );
}

/// With two nodes Linux prints the whole file once per node; with CMA
/// configured it has a CMA row and column.
#[test]
fn two_nodes_with_cma() {
    let c = Config {
        nr_orders: 5,
        pageblock_order: 4,
        zone_bounds: bounds_mib(Some(2), Some(8), None),
        cma: CmaSupport::Enabled,
        // Half of node 1's Normal zone: two pageblocks.
        cma_areas: vec![CmaArea {
            start: Pfn(0x820),
            nr_pages: PageCount(0x20),
            order_per_bit: 0,
        }],
        ..Config::default()
    };
    let map = MemoryMap::new([range(0, 0x1f0, 0x230), range(1, 0x800, 0x840)]).unwrap();
    let a = Allocator::new(map, c).unwrap();
    assert_eq!(
        a.buddyinfo().to_string(),
        "\
Node 0, zone      DMA      0      0      0      0      1 
Node 0, zone    DMA32      0      0      0      0      3 
Node 1, zone   Normal      0      0      0      0      4 
"
    );
    assert_eq!(
        a.pagetypeinfo().to_string(),
        "\
Page block order: 4
Pages per block:  16

Free pages count per migrate type at order       0      1      2      3      4 
Node    0, zone      DMA, type    Unmovable      0      0      0      0      0 
Node    0, zone      DMA, type      Movable      0      0      0      0      1 
Node    0, zone      DMA, type  Reclaimable      0      0      0      0      0 
Node    0, zone      DMA, type   HighAtomic      0      0      0      0      0 
Node    0, zone      DMA, type          CMA      0      0      0      0      0 
Node    0, zone      DMA, type      Isolate      0      0      0      0      0 
Node    0, zone    DMA32, type    Unmovable      0      0      0      0      0 
Node    0, zone    DMA32, type      Movable      0      0      0      0      3 
Node    0, zone    DMA32, type  Reclaimable      0      0      0      0      0 
Node    0, zone    DMA32, type   HighAtomic      0      0      0      0      0 
Node    0, zone    DMA32, type          CMA      0      0      0      0      0 
Node    0, zone    DMA32, type      Isolate      0      0      0      0      0 

Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate 
Node 0, zone      DMA            0            1            0            0            0            0 
Node 0, zone    DMA32            0            3            0            0            0            0 
Page block order: 4
Pages per block:  16

Free pages count per migrate type at order       0      1      2      3      4 
Node    1, zone   Normal, type    Unmovable      0      0      0      0      0 
Node    1, zone   Normal, type      Movable      0      0      0      0      2 
Node    1, zone   Normal, type  Reclaimable      0      0      0      0      0 
Node    1, zone   Normal, type   HighAtomic      0      0      0      0      0 
Node    1, zone   Normal, type          CMA      0      0      0      0      2 
Node    1, zone   Normal, type      Isolate      0      0      0      0      0 

Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate 
Node 1, zone   Normal            0            2            0            0            2            0 
"
    );
    // Unmovable requests never get a CMA page; movable ones do, once the
    // movable pageblocks are gone (or when CMA holds most of the free pages).
    let node1 = AllocFlags::THIS_NODE | AllocFlags::NO_WATERMARKS;
    let mut kernel = Vec::new();
    while let Ok(p) = a.alloc_on(NodeId(1), Order::ZERO, AllocFlags::KERNEL | node1) {
        kernel.push(p);
    }
    assert_eq!(
        kernel.len(),
        0x20,
        "unmovable requests took the non-CMA half"
    );
    assert!(kernel
        .iter()
        .all(|&p| a.pageblock_migratetype(p) != Some(MigrateType::Cma)));
    let movable = a
        .alloc_on(NodeId(1), Order::ZERO, AllocFlags::HIGHUSER_MOVABLE | node1)
        .expect("CMA pages serve movable requests");
    assert_eq!(a.pageblock_migratetype(movable), Some(MigrateType::Cma));
    a.check_invariants().unwrap();
}

/// Linux stops counting a free list at 100000 entries and prints
/// `>100000` in place of the count, one character wider.
#[test]
fn pagetypeinfo_caps_long_lists() {
    // 256 Ki pages of one Normal zone, all allocated as single pages, then
    // every other one freed: 131072 order-0 blocks that cannot merge.
    let c = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        ..Config::default()
    };
    let map = MemoryMap::new([range(0, 0x100000, 0x140000)]).unwrap();
    let a = Allocator::new(map, c).unwrap();
    let flags = AllocFlags::HIGHUSER_MOVABLE | AllocFlags::NO_WATERMARKS;
    while a.alloc(order(0), flags).is_ok() {}
    assert_eq!(a.nr_allocated_pages(), 0x40000);
    for pfn in (0x100000..0x140000).step_by(2) {
        a.free(Pfn(pfn), order(0)).unwrap();
    }
    // Freed pages first land on the per-CPU lists.
    a.drain_all();
    a.check_invariants().unwrap();
    // buddyinfo has no cap.
    assert_eq!(
        a.buddyinfo().to_string(),
        "Node 0, zone   Normal 131072      0      0      0      0      0      0      0      0      0      0 \n"
    );
    let text = a.pagetypeinfo().to_string();
    let movable = text
        .lines()
        .find(|l| l.contains("type      Movable"))
        .unwrap();
    assert_eq!(
        movable,
        "Node    0, zone   Normal, type      Movable >100000      0      0      0      0      0      0      0      0      0      0 "
    );
    // At 99999 the count is printed; at 100000 it is capped.
    let one = |n: u64| PageTypeInfo {
        pageblock_order: 9,
        pages_per_block: 512,
        migratetypes: vec![MigrateType::Movable],
        zones: vec![PageTypeZone {
            node: NodeId(0),
            zone: ZoneType::Normal,
            free: vec![vec![n, 7]],
            blocks: vec![1],
        }],
    };
    let row = |n: u64| one(n).to_string().lines().nth(4).unwrap().to_string();
    assert_eq!(
        row(99_999),
        "Node    0, zone   Normal, type      Movable  99999      7 "
    );
    assert_eq!(
        row(100_000),
        "Node    0, zone   Normal, type      Movable >100000      7 "
    );
    assert_eq!(row(123_456), row(100_000));
}
