//! Helpers shared by the integration tests: memory-map builders, an
//! independent model of where zones lie, and snapshots of everything a
//! caller can observe, to prove that a refused call changed nothing.
#![allow(dead_code)]

use pagealloc::{
    report::FragIndex, AllocFlags, Allocator, BlockInfo, BuddyInfo, Config, FragIndexKind,
    MemRange, MigrateType, NodeId, PageTypeInfo, Pfn, VmStats, ZoneBounds, ZoneInfo, ZoneType,
};

/// One usable range `start..end` on `node`.
pub fn range(node: u16, start: u64, end: u64) -> MemRange {
    MemRange {
        node: NodeId(node),
        start: Pfn(start),
        end: Pfn(end),
    }
}

/// Zone bounds in MiB (small values make tiny DMA and DMA32 zones).
pub fn bounds_mib(dma: Option<u64>, dma32: Option<u64>, movable: Option<u64>) -> ZoneBounds {
    ZoneBounds {
        dma_end_bytes: dma.map(|m| m << 20),
        dma32_end_bytes: dma32.map(|m| m << 20),
        movable_start_bytes: movable.map(|m| m << 20),
    }
}

/// Everything observable about an allocator's state, short of its pages.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Snapshot {
    pub buddyinfo: BuddyInfo,
    pub pagetypeinfo: PageTypeInfo,
    pub zoneinfo: ZoneInfo,
    pub unusable: FragIndex,
    pub extfrag: FragIndex,
    pub stats: VmStats,
    /// Free pages anywhere: buddy lists and per-CPU lists.
    pub nr_free: u64,
    /// Of those, the pages on per-CPU lists.
    pub nr_pcp: u64,
    pub nr_allocated: u64,
}

impl Snapshot {
    pub fn take(a: &Allocator) -> Snapshot {
        Snapshot {
            buddyinfo: a.buddyinfo(),
            pagetypeinfo: a.pagetypeinfo(),
            zoneinfo: a.zoneinfo(),
            unusable: a.frag_index(FragIndexKind::Unusable),
            extfrag: a.frag_index(FragIndexKind::Extfrag),
            stats: a.stats(),
            nr_free: a.nr_free_pages() + a.nr_pcp_pages(),
            nr_pcp: a.nr_pcp_pages(),
            nr_allocated: a.nr_allocated_pages(),
        }
    }
}

/// Every page record a caller can see: each block of each zone (state,
/// order and, for an allocated block, the migratetype it was allocated as)
/// and each pageblock's migratetype. It reads records and zone locks only,
/// never a per-CPU lock, so it may be taken while the caller holds a
/// `LocalLists`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Census {
    pub blocks: Vec<BlockInfo>,
    pub pageblocks: Vec<(Pfn, MigrateType)>,
}

impl Census {
    pub fn take(a: &Allocator) -> Census {
        let blocks = a.zones().iter().flat_map(|z| z.blocks()).collect();
        let step = a.config().pageblock_nr_pages();
        let mut pageblocks = Vec::new();
        for z in a.zones() {
            let mut pfn = z.start_pfn().0;
            while pfn < z.end_pfn().0 {
                let mt = z.block_migratetype(Pfn(pfn)).expect("inside the zone");
                pageblocks.push((Pfn(pfn), mt));
                pfn = (pfn / step + 1) * step;
            }
        }
        Census { blocks, pageblocks }
    }
}

/// Where a zone should lie, computed from the map and the bounds alone
/// (Linux's spanned/present rules), independently of the engine's layout.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExpectedZone {
    pub node: u16,
    pub zone_type: ZoneType,
    pub start: u64,
    pub end: u64,
    /// Present pieces, coalesced and sorted.
    pub present: Vec<(u64, u64)>,
}

impl ExpectedZone {
    pub fn nr_present(&self) -> u64 {
        self.present.iter().map(|(s, e)| e - s).sum()
    }

    pub fn spans(&self, pfn: u64) -> bool {
        self.start <= pfn && pfn < self.end
    }

    pub fn is_present(&self, pfn: u64) -> bool {
        self.present.iter().any(|&(s, e)| s <= pfn && pfn < e)
    }

    /// Whether `start..start + nr` lies inside one present piece.
    pub fn block_present(&self, start: u64, nr: u64) -> bool {
        self.present
            .iter()
            .any(|&(s, e)| s <= start && start + nr <= e)
    }
}

/// The zone type that holds byte address `pfn * page size`.
pub fn zone_type_of(pfn: u64, config: &Config) -> ZoneType {
    let addr = pfn * config.page_size_bytes;
    let b = config.zone_bounds;
    if b.movable_start_bytes.is_some_and(|m| addr >= m) {
        ZoneType::Movable
    } else if b.dma_end_bytes.is_some_and(|d| addr < d) {
        ZoneType::Dma
    } else if b.dma32_end_bytes.is_some_and(|d| addr < d) {
        ZoneType::Dma32
    } else {
        ZoneType::Normal
    }
}

/// The zones `ranges` should produce under `config`, sorted by start.
pub fn expected_zones(ranges: &[MemRange], config: &Config) -> Vec<ExpectedZone> {
    let mut ranges = ranges.to_vec();
    ranges.sort_by_key(|r| r.start);
    let mut nodes: Vec<u16> = ranges.iter().map(|r| r.node.0).collect();
    nodes.dedup();
    let mut zones = Vec::new();
    for node in nodes {
        let mine: Vec<&MemRange> = ranges.iter().filter(|r| r.node.0 == node).collect();
        let node_start = mine[0].start.0;
        let node_end = mine[mine.len() - 1].end.0;
        for zone_type in ZoneType::ALL {
            // The pages of the node's span that fall in this zone type.
            let in_zone: Vec<u64> = (node_start..node_end)
                .filter(|&p| zone_type_of(p, config) == zone_type)
                .collect();
            let (Some(&start), Some(&last)) = (in_zone.first(), in_zone.last()) else {
                continue;
            };
            let mut present: Vec<(u64, u64)> = Vec::new();
            for r in &mine {
                let (s, e) = (r.start.0.max(start), r.end.0.min(last + 1));
                if s >= e {
                    continue;
                }
                match present.last_mut() {
                    Some(prev) if prev.1 == s => prev.1 = e,
                    _ => present.push((s, e)),
                }
            }
            if present.is_empty() {
                continue;
            }
            zones.push(ExpectedZone {
                node,
                zone_type,
                start,
                end: last + 1,
                present,
            });
        }
    }
    zones
}

/// Asserts that the engine's zones are the expected ones.
pub fn assert_zones_match(a: &Allocator, expected: &[ExpectedZone]) {
    let got: Vec<(u16, ZoneType, u64, u64, u64)> = a
        .zones()
        .iter()
        .map(|z| {
            (
                z.node().0,
                z.zone_type(),
                z.start_pfn().0,
                z.end_pfn().0,
                z.nr_present().0,
            )
        })
        .collect();
    let want: Vec<(u16, ZoneType, u64, u64, u64)> = expected
        .iter()
        .map(|z| (z.node, z.zone_type, z.start, z.end, z.nr_present()))
        .collect();
    assert_eq!(got, want, "zone layout");
}

/// Named allocation flags, the ones the randomized tests draw from.
pub const FLAGS: &[(&str, AllocFlags)] = &[
    ("KERNEL", AllocFlags::KERNEL),
    ("KERNEL_RECLAIMABLE", AllocFlags::KERNEL_RECLAIMABLE),
    ("HIGHUSER_MOVABLE", AllocFlags::HIGHUSER_MOVABLE),
    ("GFP_ATOMIC", AllocFlags::GFP_ATOMIC),
    ("DMA32", AllocFlags::DMA32),
    ("DMA", AllocFlags::DMA),
    (
        "KERNEL|NO_FALLBACK",
        AllocFlags::KERNEL.union(AllocFlags::NO_FALLBACK),
    ),
    (
        "HIGHUSER_MOVABLE|NO_FALLBACK",
        AllocFlags::HIGHUSER_MOVABLE.union(AllocFlags::NO_FALLBACK),
    ),
    (
        "RECLAIMABLE|NO_FALLBACK",
        AllocFlags::RECLAIMABLE.union(AllocFlags::NO_FALLBACK),
    ),
    (
        "ATOMIC|HIGH|MOVABLE",
        AllocFlags::GFP_ATOMIC.union(AllocFlags::MOVABLE),
    ),
    (
        "ATOMIC|NO_MEMALLOC",
        AllocFlags::ATOMIC.union(AllocFlags::NO_MEMALLOC),
    ),
    (
        "DMA|RECLAIMABLE",
        AllocFlags::DMA.union(AllocFlags::RECLAIMABLE),
    ),
    (
        "DMA32|MOVABLE",
        AllocFlags::DMA32.union(AllocFlags::MOVABLE),
    ),
    (
        "KERNEL|NO_WATERMARKS",
        AllocFlags::KERNEL.union(AllocFlags::NO_WATERMARKS),
    ),
    (
        "HIGHUSER_MOVABLE|NO_WATERMARKS",
        AllocFlags::HIGHUSER_MOVABLE.union(AllocFlags::NO_WATERMARKS),
    ),
    (
        "RECLAIMABLE|THIS_NODE",
        AllocFlags::RECLAIMABLE.union(AllocFlags::THIS_NODE),
    ),
    (
        "DMA|THIS_NODE",
        AllocFlags::DMA.union(AllocFlags::THIS_NODE),
    ),
];

/// Marsaglia's xorshift64: a small deterministic generator, so failures
/// reproduce.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
