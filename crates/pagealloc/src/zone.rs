//! A zone: its page records, pageblock migratetypes, free areas and counters.
//!
//! The methods here are the zone's primitives: put a free block on a list,
//! take it off, move it between lists, change a pageblock's type. Everything
//! under a `&mut Zone` is what Linux does under `zone->lock`; the buddy
//! engine ([`crate::buddy`]), fallback ([`crate::fallback`]) and the
//! high-atomic reserve ([`crate::highatomic`]) are built from them.

use alloc::vec;
use alloc::vec::Vec;

use crate::config::Config;
use crate::free_list::{ListHead, Placement};
use crate::layout::ZoneSpan;
use crate::page::{PageMeta, PageState};
use crate::units::{
    MigrateType, NodeId, Order, PageCount, Pfn, ZoneType, MAX_NR_ORDERS, NR_MIGRATE_TYPES,
    NR_ZONE_TYPES,
};
use crate::watermark::Watermarks;

/// The geometry every zone shares, copied out of the [`Config`] so the hot
/// paths read it from the zone's own cache lines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub nr_orders: u8,
    pub max_order: Order,
    pub pageblock: Order,
}

impl Geometry {
    pub(crate) fn of(config: &Config) -> Geometry {
        Geometry {
            nr_orders: config.nr_orders,
            max_order: config.max_order(),
            pageblock: config.pageblock(),
        }
    }

    pub(crate) fn pageblock_nr_pages(&self) -> u64 {
        self.pageblock.nr_pages().0
    }

    /// The orders `0..nr_orders`.
    pub(crate) fn orders(&self) -> impl DoubleEndedIterator<Item = Order> {
        (0..self.nr_orders).filter_map(Order::new)
    }
}

/// Per order: one list per migratetype and the number of free blocks (Linux
/// `struct free_area`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FreeArea {
    pub lists: [ListHead; NR_MIGRATE_TYPES],
    pub nr_free: u64,
}

/// One block as [`Zone::blocks`] reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockInfo {
    /// First frame.
    pub pfn: Pfn,
    /// Order.
    pub order: Order,
    /// Free, allocated, per-CPU or offline.
    pub state: PageState,
    /// For an allocated block, the migratetype it was allocated as.
    pub alloc_migratetype: Option<MigrateType>,
}

/// One zone of one node.
#[derive(Clone, Debug)]
pub struct Zone {
    pub(crate) node: NodeId,
    pub(crate) zone_type: ZoneType,
    pub(crate) start: Pfn,
    pub(crate) end: Pfn,
    pub(crate) present: Vec<(Pfn, Pfn)>,
    pub(crate) nr_present: u64,
    pub(crate) geo: Geometry,
    /// One record per spanned page, index = pfn - start.
    pub(crate) pages: Vec<PageMeta>,
    /// One migratetype per pageblock, index = (pfn >> pageblock) - block_base.
    pub(crate) blocks: Vec<MigrateType>,
    pub(crate) block_base: u64,
    pub(crate) areas: [FreeArea; MAX_NR_ORDERS],
    /// Bit `o` of `nonempty[mt]` is set when `areas[o].lists[mt]` is not
    /// empty: the smallest usable order is one `trailing_zeros` away.
    pub(crate) nonempty: [u16; NR_MIGRATE_TYPES],
    /// Free pages on the buddy lists, isolated ones excepted (Linux
    /// `NR_FREE_PAGES`).
    pub(crate) nr_free_pages: u64,
    /// Free pages on CMA lists (`NR_FREE_CMA_PAGES`).
    pub(crate) nr_free_cma: u64,
    /// Free pages on high-atomic lists (`nr_free_highatomic`).
    pub(crate) nr_free_highatomic: u64,
    /// Pages in pageblocks reserved for high-order atomic allocations.
    pub(crate) nr_reserved_highatomic: u64,
    /// Pages in allocated blocks.
    pub(crate) nr_allocated: u64,
    pub(crate) watermarks: Watermarks,
    /// Pages kept from allocations whose highest allowed zone is the index.
    pub(crate) lowmem_reserve: [u64; NR_ZONE_TYPES],
}

impl Zone {
    /// An empty zone (no free block yet) over `span`; every pageblock starts
    /// movable, as Linux's `memmap_init` leaves them.
    pub(crate) fn new(span: &ZoneSpan, config: &Config) -> Zone {
        let geo = Geometry::of(config);
        let pb = geo.pageblock;
        let block_base = span.start.align_down(pb).0 >> pb.get();
        let block_end = span.end.align_up(pb).unwrap_or(span.end).0 >> pb.get();
        Zone {
            node: span.node,
            zone_type: span.zone_type,
            start: span.start,
            end: span.end,
            nr_present: span.nr_present(),
            present: span.present.clone(),
            geo,
            pages: vec![PageMeta::TAIL; span.nr_spanned() as usize],
            blocks: vec![MigrateType::Movable; (block_end - block_base) as usize],
            block_base,
            areas: [FreeArea::default(); MAX_NR_ORDERS],
            nonempty: [0; NR_MIGRATE_TYPES],
            nr_free_pages: 0,
            nr_free_cma: 0,
            nr_free_highatomic: 0,
            nr_reserved_highatomic: 0,
            nr_allocated: 0,
            watermarks: Watermarks::default(),
            lowmem_reserve: [0; NR_ZONE_TYPES],
        }
    }

    /// The node.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The zone type.
    pub fn zone_type(&self) -> ZoneType {
        self.zone_type
    }

    /// First spanned frame.
    pub fn start_pfn(&self) -> Pfn {
        self.start
    }

    /// One past the last spanned frame.
    pub fn end_pfn(&self) -> Pfn {
        self.end
    }

    /// Pages spanned, holes included.
    pub fn nr_spanned(&self) -> PageCount {
        PageCount(self.end.0 - self.start.0)
    }

    /// Usable pages.
    pub fn nr_present(&self) -> PageCount {
        PageCount(self.nr_present)
    }

    /// Pages the allocator manages (all present pages: nothing is reserved
    /// at boot here).
    pub fn nr_managed(&self) -> PageCount {
        PageCount(self.nr_present)
    }

    /// Free pages on the buddy lists, isolated ones excepted.
    pub fn nr_free(&self) -> PageCount {
        PageCount(self.nr_free_pages)
    }

    /// The watermarks.
    pub fn watermarks(&self) -> Watermarks {
        self.watermarks
    }

    /// Free blocks of `order` on the list of `mt`.
    pub fn nr_free_blocks(&self, order: Order, mt: MigrateType) -> u64 {
        self.areas[order.idx()].lists[mt.idx()].len()
    }

    /// Free blocks of `order`, all migratetypes.
    pub fn nr_free_blocks_of_order(&self, order: Order) -> u64 {
        self.areas[order.idx()].nr_free
    }

    /// Whether the zone spans `pfn`.
    #[inline]
    pub fn spans(&self, pfn: Pfn) -> bool {
        self.start <= pfn && pfn < self.end
    }

    /// Whether `pfn` is a usable page of this zone.
    pub fn is_present(&self, pfn: Pfn) -> bool {
        let i = self.present.partition_point(|r| r.1 <= pfn);
        self.present.get(i).is_some_and(|r| r.0 <= pfn)
    }

    /// Whether `start..start + 2^order` lies inside one usable range.
    pub(crate) fn block_is_present(&self, start: Pfn, order: Order) -> bool {
        let i = self.present.partition_point(|r| r.1 <= start);
        self.present
            .get(i)
            .is_some_and(|r| r.0 <= start && start.0 + order.nr_pages().0 <= r.1 .0)
    }

    /// The zone-relative index of a spanned frame.
    #[inline]
    pub(crate) fn idx(&self, pfn: Pfn) -> u32 {
        (pfn.0 - self.start.0) as u32
    }

    /// The frame of a zone-relative index.
    #[inline]
    pub(crate) fn pfn(&self, idx: u32) -> Pfn {
        Pfn(self.start.0 + idx as u64)
    }

    /// The record of a spanned frame.
    #[inline]
    pub(crate) fn meta(&self, pfn: Pfn) -> PageMeta {
        self.pages[self.idx(pfn) as usize]
    }

    /// The migratetype of the pageblock holding `pfn`.
    #[inline]
    pub fn block_migratetype(&self, pfn: Pfn) -> MigrateType {
        self.blocks[((pfn.0 >> self.geo.pageblock.get()) - self.block_base) as usize]
    }

    #[inline]
    pub(crate) fn set_block_migratetype(&mut self, pfn: Pfn, mt: MigrateType) {
        let i = ((pfn.0 >> self.geo.pageblock.get()) - self.block_base) as usize;
        self.blocks[i] = mt;
    }

    /// Sets every pageblock of the block `pfn`/`order` (at least the one
    /// holding it) to `mt` (Linux `change_pageblock_range`).
    pub(crate) fn set_range_migratetype(&mut self, pfn: Pfn, order: Order, mt: MigrateType) {
        let pb = self.geo.pageblock_nr_pages();
        let n = (order.nr_pages().0 / pb).max(1);
        for k in 0..n {
            self.set_block_migratetype(Pfn(pfn.0 + k * pb), mt);
        }
    }

    /// Pageblocks of the zone, as the first frame of each that the zone
    /// spans, in the order `/proc/pagetypeinfo` counts them: from the zone's
    /// start in steps of a pageblock.
    pub(crate) fn pageblock_starts(&self) -> impl Iterator<Item = Pfn> + '_ {
        let step = self.geo.pageblock_nr_pages();
        (self.start.0..self.end.0).step_by(step as usize).map(Pfn)
    }

    /// Adjusts the free-page counters for `nr` pages joining (`delta > 0`) or
    /// leaving the lists of `mt` (Linux `account_freepages`).
    #[inline]
    fn account_free(&mut self, mt: MigrateType, nr: u64, joining: bool) {
        let apply = |v: &mut u64| {
            if joining {
                *v += nr
            } else {
                *v -= nr
            }
        };
        if mt == MigrateType::Isolate {
            return;
        }
        apply(&mut self.nr_free_pages);
        match mt {
            MigrateType::Cma => apply(&mut self.nr_free_cma),
            MigrateType::HighAtomic => apply(&mut self.nr_free_highatomic),
            _ => {}
        }
    }

    /// Puts the free block at `idx` of `order` on the list of `mt`.
    #[inline]
    pub(crate) fn add_free(
        &mut self,
        idx: u32,
        order: Order,
        mt: MigrateType,
        placement: Placement,
    ) {
        self.pages[idx as usize] = PageMeta::head(PageState::FreeHead, order);
        let area = &mut self.areas[order.idx()];
        area.lists[mt.idx()].insert(&mut self.pages, idx, placement);
        area.nr_free += 1;
        self.nonempty[mt.idx()] |= 1 << order.get();
        self.account_free(mt, order.nr_pages().0, true);
    }

    /// Takes the free block at `idx` of `order` off the list of `mt`; its
    /// head becomes a plain tail for the caller to re-label.
    #[inline]
    pub(crate) fn del_free(&mut self, idx: u32, order: Order, mt: MigrateType) {
        let area = &mut self.areas[order.idx()];
        let list = &mut area.lists[mt.idx()];
        list.remove(&mut self.pages, idx);
        if list.is_empty() {
            self.nonempty[mt.idx()] &= !(1 << order.get());
        }
        area.nr_free -= 1;
        self.pages[idx as usize] = PageMeta::TAIL;
        self.account_free(mt, order.nr_pages().0, false);
    }

    /// Moves a free block from the list of `from` to the tail of the list of
    /// `to`, keeping its reported flag (Linux `move_to_free_list`).
    pub(crate) fn move_free(&mut self, idx: u32, order: Order, from: MigrateType, to: MigrateType) {
        let reported = self.pages[idx as usize].flag();
        self.del_free(idx, order, from);
        self.add_free(idx, order, to, Placement::Tail);
        self.pages[idx as usize].set_flag(reported);
    }

    /// The first free block on the list of `order` and `mt`.
    #[inline]
    pub(crate) fn first_free(&self, order: Order, mt: MigrateType) -> Option<u32> {
        self.areas[order.idx()].lists[mt.idx()].first()
    }

    /// The pageblock holding `pfn`, as `start..end`, if the zone spans all
    /// of it (Linux `prep_move_freepages_block` refuses straddling blocks).
    pub(crate) fn whole_pageblock(&self, pfn: Pfn) -> Option<(Pfn, Pfn)> {
        let start = pfn.align_down(self.geo.pageblock);
        let end = Pfn(start.0 + self.geo.pageblock_nr_pages());
        (self.spans(start) && self.spans(Pfn(end.0 - 1))).then_some((start, end))
    }

    /// Visits the heads of blocks inside `start..end` (which must be inside
    /// the zone), skipping each block's tail pages and holes.
    pub(crate) fn for_each_head(&self, start: Pfn, end: Pfn, mut f: impl FnMut(Pfn, PageMeta)) {
        let mut pfn = start;
        while pfn < end {
            let meta = self.meta(pfn);
            if meta.state() == PageState::Tail {
                pfn.0 += 1;
                continue;
            }
            f(pfn, meta);
            pfn.0 += meta.order().nr_pages().0;
        }
    }

    /// Every block of the zone (free, allocated, per-CPU or offline), in
    /// address order: what a census of pageblocks walks.
    pub fn blocks(&self) -> impl Iterator<Item = BlockInfo> + '_ {
        let mut pfn = self.start;
        core::iter::from_fn(move || {
            while pfn < self.end {
                let meta = self.meta(pfn);
                if meta.state() == PageState::Tail {
                    pfn.0 += 1;
                    continue;
                }
                let info = BlockInfo {
                    pfn,
                    order: meta.order(),
                    state: meta.state(),
                    alloc_migratetype: (meta.state() == PageState::AllocHead)
                        .then(|| meta.alloc_migratetype()),
                };
                pfn.0 += meta.order().nr_pages().0;
                return Some(info);
            }
            None
        })
    }

    /// Counts free and movable pages in a pageblock (Linux
    /// `prep_move_freepages_block`), for the claim heuristic.
    pub(crate) fn pageblock_usage(&self, start: Pfn, end: Pfn) -> (u64, u64) {
        let (mut free, mut movable) = (0, 0);
        self.for_each_head(start, end, |_, meta| {
            let nr = meta.order().nr_pages().0;
            match meta.state() {
                PageState::FreeHead => free += nr,
                PageState::AllocHead if meta.alloc_migratetype() == MigrateType::Movable => {
                    movable += nr
                }
                _ => {}
            }
        });
        (free, movable)
    }

    /// Moves every free block of the pageblock `start..end` from the lists
    /// of `from` to those of `to` and retypes the pageblock (Linux
    /// `__move_freepages_block` + `set_pageblock_migratetype`). Returns the
    /// pages moved.
    pub(crate) fn move_pageblock(
        &mut self,
        start: Pfn,
        end: Pfn,
        from: MigrateType,
        to: MigrateType,
    ) -> u64 {
        let mut moved = 0;
        let mut pfn = start;
        while pfn < end {
            let meta = self.meta(pfn);
            match meta.state() {
                PageState::Tail => pfn.0 += 1,
                PageState::FreeHead => {
                    let order = meta.order();
                    self.move_free(self.idx(pfn), order, from, to);
                    moved += order.nr_pages().0;
                    pfn.0 += order.nr_pages().0;
                }
                _ => pfn.0 += meta.order().nr_pages().0,
            }
        }
        self.set_block_migratetype(start, to);
        moved
    }
}

#[cfg(test)]
mod tests {
    use crate::{AllocFlags, Allocator, Config, MemoryMap, Order, PageCount, PageState, Pfn};

    #[test]
    fn blocks_walk_covers_every_present_page() {
        let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(3000)).unwrap();
        let mut a = Allocator::new(map, Config::default()).unwrap();
        let p = a.alloc(Order::new(2).unwrap(), AllocFlags::KERNEL).unwrap();
        let zone = &a.zones()[0];
        let total: u64 = zone.blocks().map(|b| b.order.nr_pages().0).sum();
        assert_eq!(total, 3000);
        let mine = zone.blocks().find(|b| b.pfn == p).unwrap();
        assert_eq!(mine.state, PageState::AllocHead);
        assert_eq!(mine.alloc_migratetype, Some(crate::MigrateType::Unmovable));
        assert_eq!(
            zone.blocks()
                .filter(|b| b.state == PageState::AllocHead)
                .count(),
            1
        );
    }
}
