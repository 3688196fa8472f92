//! Snapshots rendered in Linux's own text formats.
//!
//! Each report is data first (a struct you can inspect or serialise) and
//! text second: its `Display` writes exactly what the Linux file would hold,
//! column for column (mm/vmstat.c `frag_show_print`,
//! `pagetypeinfo_showfree_print`, `pagetypeinfo_showblockcount_print`,
//! `zoneinfo_show_print`, `unusable_show_print`, `extfrag_show_print`).
//! Snapshots are taken first and formatted afterwards, never under a lock.

use alloc::vec::Vec;
use core::fmt;

use lock_api::RawMutex;

use crate::allocator::Allocator;
use crate::config::CmaSupport;
use crate::engine::free_area::FreeAreas;
use crate::engine::zone::{Watermarks, Zone, ZoneCore};
use crate::units::{MigrateType, NodeId, Order, ZoneType, NR_ZONE_TYPES};

/// `/proc/pagetypeinfo` stops counting a free list at this many entries and
/// prints `>100000`.
const PAGETYPEINFO_LIST_CAP: u64 = 100_000;

/// Free blocks per order of one zone.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ZoneFreeCounts {
    /// The node.
    pub node: NodeId,
    /// The zone.
    pub zone: ZoneType,
    /// Free blocks per order, all migratetypes.
    pub nr_free: Vec<u64>,
}

/// A snapshot of `/proc/buddyinfo`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BuddyInfo {
    /// One row per populated zone.
    pub zones: Vec<ZoneFreeCounts>,
}

impl fmt::Display for BuddyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for z in &self.zones {
            write!(f, "Node {}, zone {:>8} ", z.node.0, z.zone.linux_name())?;
            for n in &z.nr_free {
                write!(f, "{n:>6} ")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// One zone's part of `/proc/pagetypeinfo`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PageTypeZone {
    /// The node.
    pub node: NodeId,
    /// The zone.
    pub zone: ZoneType,
    /// Free blocks, `[migratetype][order]`, for [`PageTypeInfo::migratetypes`].
    pub free: Vec<Vec<u64>>,
    /// Pageblocks per migratetype, for [`PageTypeInfo::migratetypes`].
    pub blocks: Vec<u64>,
}

/// A snapshot of `/proc/pagetypeinfo`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PageTypeInfo {
    /// The pageblock order.
    pub pageblock_order: u8,
    /// Pages per pageblock.
    pub pages_per_block: u64,
    /// The migratetypes shown, in Linux's order (CMA only when configured).
    pub migratetypes: Vec<MigrateType>,
    /// One entry per populated zone, by node.
    pub zones: Vec<PageTypeZone>,
}

impl PageTypeInfo {
    /// Pageblocks of `mt` in all zones.
    pub fn blocks_of(&self, mt: MigrateType) -> u64 {
        let Some(i) = self.migratetypes.iter().position(|m| *m == mt) else {
            return 0;
        };
        self.zones.iter().map(|z| z.blocks[i]).sum()
    }
}

impl fmt::Display for PageTypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut nodes: Vec<NodeId> = self.zones.iter().map(|z| z.node).collect();
        nodes.dedup();
        let nr_orders = self
            .zones
            .first()
            .map_or(0, |z| z.free.first().map_or(0, Vec::len));
        for node in nodes {
            let zones = || self.zones.iter().filter(move |z| z.node == node);
            writeln!(f, "Page block order: {}", self.pageblock_order)?;
            writeln!(f, "Pages per block:  {}", self.pages_per_block)?;
            writeln!(f)?;
            write!(f, "{:<43} ", "Free pages count per migrate type at order")?;
            for order in 0..nr_orders {
                write!(f, "{order:>6} ")?;
            }
            writeln!(f)?;
            for z in zones() {
                for (mt, counts) in self.migratetypes.iter().zip(&z.free) {
                    write!(
                        f,
                        "Node {:>4}, zone {:>8}, type {:>12} ",
                        z.node.0,
                        z.zone.linux_name(),
                        mt.linux_name()
                    )?;
                    for &n in counts {
                        if n >= PAGETYPEINFO_LIST_CAP {
                            write!(f, ">{PAGETYPEINFO_LIST_CAP:>6} ")?;
                        } else {
                            write!(f, "{n:>6} ")?;
                        }
                    }
                    writeln!(f)?;
                }
            }
            write!(f, "\n{:<23}", "Number of blocks type ")?;
            for mt in &self.migratetypes {
                write!(f, "{:>12} ", mt.linux_name())?;
            }
            writeln!(f)?;
            for z in zones() {
                write!(f, "Node {}, zone {:>8} ", z.node.0, z.zone.linux_name())?;
                for n in &z.blocks {
                    write!(f, "{n:>12} ")?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// One zone's part of `/proc/zoneinfo`: the allocator's own fields.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ZoneInfoZone {
    /// The node.
    pub node: NodeId,
    /// The zone.
    pub zone: ZoneType,
    /// Free pages.
    pub pages_free: u64,
    /// Watermarks.
    pub watermarks: Watermarks,
    /// Pages spanned.
    pub spanned: u64,
    /// Pages present.
    pub present: u64,
    /// Pages managed.
    pub managed: u64,
    /// Pages of CMA pageblocks (Linux `zone_cma_pages`).
    pub cma: u64,
    /// Free pages on the CMA lists (`nr_free_cma`).
    pub free_cma: u64,
    /// Lowmem reserve per highest zone (Linux prints a fifth, Device, equal
    /// to Movable's).
    pub protection: [u64; NR_ZONE_TYPES],
    /// First spanned frame.
    pub start_pfn: u64,
}

/// The allocator's part of `/proc/zoneinfo`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ZoneInfo {
    /// One entry per populated zone.
    pub zones: Vec<ZoneInfoZone>,
}

impl fmt::Display for ZoneInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for z in &self.zones {
            let w = z.watermarks;
            write!(f, "Node {}, zone {:>8}", z.node.0, z.zone.linux_name())?;
            write!(f, "\n  pages free     {}", z.pages_free)?;
            // Watermark boosting is not modelled: always 0.
            write!(f, "\n        boost    0")?;
            write!(f, "\n        min      {}", w.min)?;
            write!(f, "\n        low      {}", w.low)?;
            write!(f, "\n        high     {}", w.high)?;
            write!(f, "\n        promo    {}", w.promo)?;
            write!(f, "\n        spanned  {}", z.spanned)?;
            write!(f, "\n        present  {}", z.present)?;
            write!(f, "\n        managed  {}", z.managed)?;
            write!(f, "\n        cma      {}", z.cma)?;
            let p = z.protection;
            write!(
                f,
                "\n        protection: ({}, {}, {}, {}, {})",
                p[0], p[1], p[2], p[3], p[3]
            )?;
            // The two zone counters the allocator keeps, in Linux's
            // `%-12s %lu` form (the others count what sits above it).
            write!(f, "\n      {:<12} {}", "nr_free_pages", z.pages_free)?;
            write!(f, "\n      {:<12} {}", "nr_free_cma", z.free_cma)?;
            write!(f, "\n  start_pfn:           {}", z.start_pfn)?;
            writeln!(f)?;
        }
        Ok(())
    }
}

/// What `fill_contig_page_info` gathers for one zone and order.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ContigInfo {
    /// Free pages.
    pub free_pages: u64,
    /// Free blocks, any order.
    pub free_blocks_total: u64,
    /// Free blocks of the requested order that the free blocks could give.
    pub free_blocks_suitable: u64,
}

impl ContigInfo {
    /// Gathers the figures for `order` from free-block counts per order.
    pub fn new(nr_free: &[u64], order: Order) -> ContigInfo {
        let mut info = ContigInfo::default();
        for (o, &blocks) in nr_free.iter().enumerate() {
            info.free_blocks_total += blocks;
            info.free_pages += blocks << o;
            if o >= order.idx() {
                info.free_blocks_suitable += blocks << (o - order.idx());
            }
        }
        info
    }

    /// The unusable free space index in thousandths: the share of free
    /// memory in blocks too small for `order` (Linux `unusable_free_index`).
    pub fn unusable_index(&self, order: Order) -> i32 {
        if self.free_pages == 0 {
            return 1000;
        }
        let usable = self.free_blocks_suitable << order.get();
        ((self.free_pages - usable) * 1000 / self.free_pages) as i32
    }

    /// The external fragmentation index in thousandths (Linux
    /// `__fragmentation_index`): -1000 when the request would succeed,
    /// towards 0 when it fails for lack of memory, towards 1000 when it
    /// fails for fragmentation.
    pub fn extfrag_index(&self, order: Order) -> i32 {
        if self.free_blocks_total == 0 {
            return 0;
        }
        if self.free_blocks_suitable > 0 {
            return -1000;
        }
        let requested = order.nr_pages().0;
        1000 - ((1000 + self.free_pages * 1000 / requested) / self.free_blocks_total) as i32
    }
}

/// Which fragmentation index a [`FragIndex`] holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FragIndexKind {
    /// debugfs `extfrag/unusable_index`.
    Unusable,
    /// debugfs `extfrag/extfrag_index`.
    Extfrag,
}

/// Per-zone fragmentation indices for every order, in thousandths.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FragIndex {
    /// Which index.
    pub kind: FragIndexKind,
    /// `(node, zone, index per order)`.
    pub zones: Vec<(NodeId, ZoneType, Vec<i32>)>,
}

impl fmt::Display for FragIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (node, zone, values) in &self.zones {
            write!(f, "Node {}, zone {:>8} ", node.0, zone.linux_name())?;
            for &v in values {
                let sign = if v < 0 { "-" } else { "" };
                let (int, frac) = (v.abs() / 1000, v.abs() % 1000);
                match self.kind {
                    FragIndexKind::Unusable => write!(f, "{sign}{int}.{frac:03} ")?,
                    FragIndexKind::Extfrag => {
                        write!(f, "{:>2}.{frac:03} ", alloc::format!("{sign}{int}"))?
                    }
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

fn free_counts(zone: &ZoneCore, free: &FreeAreas) -> Vec<u64> {
    zone.geo
        .orders()
        .map(|o| free.areas[o.idx()].nr_free)
        .collect()
}

impl<R: RawMutex> Allocator<R> {
    /// The migratetypes `/proc/pagetypeinfo` shows for this configuration.
    fn shown_migratetypes(&self) -> Vec<MigrateType> {
        MigrateType::ALL
            .iter()
            .copied()
            .filter(|&mt| mt != MigrateType::Cma || self.config.cma == CmaSupport::Enabled)
            .collect()
    }

    /// `/proc/buddyinfo` now.
    pub fn buddyinfo(&self) -> BuddyInfo {
        BuddyInfo {
            zones: self
                .zones
                .iter()
                .map(|z| ZoneFreeCounts {
                    node: z.core.node,
                    zone: z.core.zone_type,
                    nr_free: free_counts(&z.core, &z.free.lock()),
                })
                .collect(),
        }
    }

    /// `/proc/pagetypeinfo` now.
    pub fn pagetypeinfo(&self) -> PageTypeInfo {
        let shown = self.shown_migratetypes();
        let zones = self
            .zones
            .iter()
            .map(|zone: &Zone<R>| {
                let locked = zone.free.lock();
                let z = &zone.core;
                let free = shown
                    .iter()
                    .map(|&mt| {
                        z.geo
                            .orders()
                            .map(|o| locked.nr_free_blocks(o, mt))
                            .collect()
                    })
                    .collect();
                drop(locked);
                let mut blocks = alloc::vec![0u64; shown.len()];
                for pfn in z.pageblock_starts() {
                    let (s, e) = (
                        pfn.align_down(z.geo.pageblock),
                        pfn.align_down(z.geo.pageblock).0 + z.geo.pageblock_nr_pages(),
                    );
                    let has_present = z.present.iter().any(|r| r.0 .0 < e && s.0 < r.1 .0);
                    if !has_present {
                        continue;
                    }
                    let mt = z.block_mt(pfn);
                    if let Some(i) = shown.iter().position(|m| *m == mt) {
                        blocks[i] += 1;
                    }
                }
                PageTypeZone {
                    node: z.node,
                    zone: z.zone_type,
                    free,
                    blocks,
                }
            })
            .collect();
        PageTypeInfo {
            pageblock_order: self.config.pageblock_order,
            pages_per_block: self.config.pageblock_nr_pages(),
            migratetypes: shown,
            zones,
        }
    }

    /// The allocator's fields of `/proc/zoneinfo` now.
    pub fn zoneinfo(&self) -> ZoneInfo {
        ZoneInfo {
            zones: self
                .zones
                .iter()
                .map(|zone| {
                    let free = zone.free.lock();
                    let z = &zone.core;
                    ZoneInfoZone {
                        node: z.node,
                        zone: z.zone_type,
                        pages_free: free.nr_free_pages,
                        watermarks: z.watermarks,
                        spanned: zone.nr_spanned().0,
                        present: z.nr_present,
                        managed: zone.nr_managed().0,
                        // Linux `zone_cma_pages`: pages of CMA pageblocks.
                        cma: z
                            .pageblock_starts()
                            .filter(|&p| z.blocks.base(p) == MigrateType::Cma)
                            .count() as u64
                            * z.geo.pageblock_nr_pages(),
                        free_cma: free.nr_free_cma,
                        protection: z.lowmem_reserve,
                        start_pfn: z.start.0,
                    }
                })
                .collect(),
        }
    }

    /// A fragmentation index of every zone at every order.
    pub fn frag_index(&self, kind: FragIndexKind) -> FragIndex {
        let zones = self
            .zones
            .iter()
            .map(|zone| {
                let counts = free_counts(&zone.core, &zone.free.lock());
                let z = &zone.core;
                let values = z
                    .geo
                    .orders()
                    .map(|o| {
                        let info = ContigInfo::new(&counts, o);
                        match kind {
                            FragIndexKind::Unusable => info.unusable_index(o),
                            FragIndexKind::Extfrag => info.extfrag_index(o),
                        }
                    })
                    .collect();
                (z.node, z.zone_type, values)
            })
            .collect();
        FragIndex { kind, zones }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_linux_formulas() {
        // 4 free order-0 pages and 1 free order-3 block: 12 free pages.
        let counts = [4, 0, 0, 1];
        let o3 = Order::new(3).unwrap();
        let o2 = Order::new(2).unwrap();
        let info = ContigInfo::new(&counts, o3);
        assert_eq!(
            (
                info.free_pages,
                info.free_blocks_total,
                info.free_blocks_suitable
            ),
            (12, 5, 1)
        );
        // (12 - 8) * 1000 / 12 = 333.
        assert_eq!(info.unusable_index(o3), 333);
        assert_eq!(info.extfrag_index(o3), -1000);
        let none = ContigInfo::new(&[4, 2], o2);
        // 8 free pages in 6 blocks, request of 4: 1000 - (1000 + 2000) / 6 = 500.
        assert_eq!(none.extfrag_index(o2), 500);
        assert_eq!(none.unusable_index(o2), 1000);
        assert_eq!(ContigInfo::new(&[0, 0], o2).unusable_index(o2), 1000);
        assert_eq!(ContigInfo::new(&[0, 0], o2).extfrag_index(o2), 0);
    }

    #[test]
    fn frag_index_text() {
        let idx = FragIndex {
            kind: FragIndexKind::Extfrag,
            zones: alloc::vec![(NodeId(0), ZoneType::Normal, alloc::vec![-1000, 500, 0])],
        };
        assert_eq!(
            alloc::format!("{idx}"),
            "Node 0, zone   Normal -1.000  0.500  0.000 \n"
        );
        let idx = FragIndex {
            kind: FragIndexKind::Unusable,
            ..idx
        };
        assert_eq!(
            alloc::format!("{idx}"),
            "Node 0, zone   Normal -1.000 0.500 0.000 \n"
        );
    }
}
