//! A zone: its page records, pageblock migratetypes, free areas and counters.
//!
//! A zone has two halves. The [`ZoneCore`] never needs the zone lock: the
//! geometry, the watermarks, and the page records and pageblock types, which
//! are atomics whose every slot is written only by the owner of the block it
//! describes. The [`FreeAreas`] (free lists and their counters) live behind
//! the zone's lock. A [`ZoneOps`] pairs the core with the locked half: holding
//! one is the proof that the lock is held (Linux's `zone->lock` context), and
//! the buddy engine ([`crate::buddy`]), fallback ([`crate::fallback`]) and the
//! high-atomic reserve ([`crate::highatomic`]) are its methods.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};

use lock_api::{Mutex, MutexGuard, RawMutex};

use crate::compact::Packing;
use crate::config::Config;
use crate::events::{DrainEvent, EventSink};
use crate::fallback::FallbackEvent;
use crate::free_list::{ListHead, Placement};
use crate::layout::ZoneSpan;
use crate::page::{PageMeta, PageState, PageTable};
use crate::stats::VmStats;
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

/// Per pageblock: its migratetype and how many of its pages are free on the
/// buddy lists, in one atomic word (`mt | free << 8`). The type is read
/// without the zone lock (Linux reads `get_pfnblock_migratetype` locklessly
/// too); both are written under it. The free count is what lets packed
/// allocation (seed 001) find the fullest pageblocks of a type.
pub(crate) struct BlockTable {
    slots: Box<[AtomicU32]>,
    base: u64,
    shift: u8,
}

/// Bits of a [`BlockTable`] slot holding the migratetype.
const BLOCK_MT_MASK: u32 = 0xff;
/// Shift of the free-page count in a [`BlockTable`] slot.
const BLOCK_FREE_SHIFT: u32 = 8;

impl Clone for BlockTable {
    fn clone(&self) -> BlockTable {
        BlockTable {
            slots: self
                .slots
                .iter()
                .map(|a| AtomicU32::new(a.load(Ordering::Relaxed)))
                .collect(),
            base: self.base,
            shift: self.shift,
        }
    }
}

impl BlockTable {
    #[inline]
    fn slot(&self, pfn: Pfn) -> &AtomicU32 {
        &self.slots[((pfn.0 >> self.shift) - self.base) as usize]
    }

    #[inline]
    pub(crate) fn get(&self, pfn: Pfn) -> MigrateType {
        let bits = self.slot(pfn).load(Ordering::Relaxed) & BLOCK_MT_MASK;
        MigrateType::from_index(bits as usize).unwrap_or(MigrateType::Movable)
    }

    /// Sets the type, keeping the free count (zone lock held).
    #[inline]
    pub(crate) fn set(&self, pfn: Pfn, mt: MigrateType) {
        let slot = self.slot(pfn);
        let old = slot.load(Ordering::Relaxed);
        slot.store((old & !BLOCK_MT_MASK) | mt as u32, Ordering::Relaxed)
    }

    /// Free pages of the pageblock holding `pfn` on the buddy lists.
    #[inline]
    pub(crate) fn free_pages(&self, pfn: Pfn) -> u32 {
        self.slot(pfn).load(Ordering::Relaxed) >> BLOCK_FREE_SHIFT
    }

    /// Adds or removes `nr` free pages of the pageblock holding `pfn` (zone
    /// lock held).
    #[inline]
    fn account(&self, pfn: Pfn, nr: u32, joining: bool) {
        let slot = self.slot(pfn);
        let old = slot.load(Ordering::Relaxed);
        let delta = nr << BLOCK_FREE_SHIFT;
        let new = if joining { old + delta } else { old - delta };
        slot.store(new, Ordering::Relaxed)
    }
}

/// The part of a zone that needs no lock.
pub struct ZoneCore {
    pub(crate) node: NodeId,
    pub(crate) zone_type: ZoneType,
    pub(crate) start: Pfn,
    pub(crate) end: Pfn,
    pub(crate) present: Vec<(Pfn, Pfn)>,
    pub(crate) nr_present: u64,
    pub(crate) geo: Geometry,
    /// Which order-0 allocations are packed (a policy from the config).
    pub(crate) packing: Packing,
    pub(crate) pages: PageTable,
    pub(crate) blocks: BlockTable,
    pub(crate) watermarks: Watermarks,
    /// Pages kept from allocations whose highest allowed zone is the index.
    pub(crate) lowmem_reserve: [u64; NR_ZONE_TYPES],
    /// Copies of the free counters, published whenever the zone lock is
    /// released, for lockless watermark checks (Linux reads
    /// `NR_FREE_PAGES` without the lock too).
    pub(crate) published_free: AtomicU64,
    pub(crate) published_free_cma: AtomicU64,
    pub(crate) published_free_highatomic: AtomicU64,
    pub(crate) published_nonempty: [AtomicU16; NR_MIGRATE_TYPES],
    /// Where events go, if anywhere.
    pub(crate) events: Option<Arc<dyn EventSink>>,
    /// Free memory fell below the high watermark (Linux `ZONE_BELOW_HIGH`):
    /// per-CPU lists shrink their high marks while it is set.
    pub(crate) below_high: AtomicBool,
}

impl Clone for ZoneCore {
    fn clone(&self) -> ZoneCore {
        let copy64 = |a: &AtomicU64| AtomicU64::new(a.load(Ordering::Relaxed));
        ZoneCore {
            node: self.node,
            zone_type: self.zone_type,
            start: self.start,
            end: self.end,
            present: self.present.clone(),
            nr_present: self.nr_present,
            geo: self.geo,
            packing: self.packing,
            pages: self.pages.clone(),
            blocks: self.blocks.clone(),
            watermarks: self.watermarks,
            lowmem_reserve: self.lowmem_reserve,
            published_free: copy64(&self.published_free),
            published_free_cma: copy64(&self.published_free_cma),
            published_free_highatomic: copy64(&self.published_free_highatomic),
            published_nonempty: self
                .published_nonempty
                .each_ref()
                .map(|a| AtomicU16::new(a.load(Ordering::Relaxed))),
            events: self.events.clone(),
            below_high: AtomicBool::new(self.is_below_high()),
        }
    }
}

impl core::fmt::Debug for ZoneCore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ZoneCore")
            .field("node", &self.node)
            .field("zone_type", &self.zone_type)
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// Per order: one list per migratetype and the number of free blocks (Linux
/// `struct free_area`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FreeArea {
    pub lists: [ListHead; NR_MIGRATE_TYPES],
    pub nr_free: u64,
}

/// The part of a zone behind its lock.
#[derive(Clone, Debug)]
pub struct FreeAreas {
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
    /// What happened under this lock.
    pub(crate) stats: VmStats,
    /// Reused by packed allocation for the heap of its candidate blocks'
    /// keys, so a packed call allocates no memory for them once this has
    /// grown (`compact.rs`).
    pub(crate) pack_scratch: Vec<u64>,
}

/// One zone of one node. `R` is the raw lock guarding its free lists.
pub struct Zone<R: RawMutex = crate::DefaultLock> {
    pub(crate) core: ZoneCore,
    pub(crate) free: Mutex<R, FreeAreas>,
}

impl<R: RawMutex> core::fmt::Debug for Zone<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.core.fmt(f)
    }
}

/// The zone lock held: the core plus the locked free areas. Publishes the
/// free counters for lockless readers when dropped.
pub(crate) struct ZoneGuard<'a, R: RawMutex> {
    core: &'a ZoneCore,
    free: MutexGuard<'a, R, FreeAreas>,
}

impl<R: RawMutex> ZoneGuard<'_, R> {
    /// The operations that need the lock.
    #[inline]
    pub(crate) fn ops(&mut self) -> ZoneOps<'_> {
        ZoneOps {
            z: self.core,
            f: &mut self.free,
        }
    }
}

impl<R: RawMutex> Drop for ZoneGuard<'_, R> {
    #[inline]
    fn drop(&mut self) {
        self.core.publish(&self.free);
    }
}

/// A zone with its lock held (see the module docs).
pub(crate) struct ZoneOps<'a> {
    pub z: &'a ZoneCore,
    pub f: &'a mut FreeAreas,
}

impl FreeAreas {
    fn new() -> FreeAreas {
        FreeAreas {
            areas: [FreeArea::default(); MAX_NR_ORDERS],
            nonempty: [0; NR_MIGRATE_TYPES],
            nr_free_pages: 0,
            nr_free_cma: 0,
            nr_free_highatomic: 0,
            nr_reserved_highatomic: 0,
            stats: VmStats::default(),
            pack_scratch: Vec::new(),
        }
    }

    /// Free pages on all lists, isolated ones included.
    pub(crate) fn nr_free_all(&self) -> u64 {
        self.areas
            .iter()
            .enumerate()
            .map(|(o, a)| a.lists.iter().map(ListHead::len).sum::<u64>() << o)
            .sum()
    }

    /// Free blocks of `order` on the list of `mt`.
    pub(crate) fn nr_free_blocks(&self, order: Order, mt: MigrateType) -> u64 {
        self.areas[order.idx()].lists[mt.idx()].len()
    }
}

impl ZoneCore {
    /// An empty zone core over `span`; every pageblock starts movable, as
    /// Linux's `memmap_init` leaves them.
    fn new(span: &ZoneSpan, config: &Config) -> ZoneCore {
        let geo = Geometry::of(config);
        let pb = geo.pageblock;
        let base = span.start.align_down(pb).0 >> pb.get();
        let block_end = span.end.align_up(pb).unwrap_or(span.end).0 >> pb.get();
        ZoneCore {
            node: span.node,
            zone_type: span.zone_type,
            start: span.start,
            end: span.end,
            nr_present: span.nr_present(),
            present: span.present.clone(),
            geo,
            packing: config.packing,
            pages: PageTable::new(span.nr_spanned() as usize),
            blocks: BlockTable {
                slots: (base..block_end)
                    .map(|_| AtomicU32::new(MigrateType::Movable as u32))
                    .collect(),
                base,
                shift: pb.get(),
            },
            watermarks: Watermarks::default(),
            lowmem_reserve: [0; NR_ZONE_TYPES],
            published_free: AtomicU64::new(0),
            published_free_cma: AtomicU64::new(0),
            published_free_highatomic: AtomicU64::new(0),
            published_nonempty: Default::default(),
            events: None,
            below_high: AtomicBool::new(false),
        }
    }

    #[inline]
    fn publish(&self, f: &FreeAreas) {
        self.published_free
            .store(f.nr_free_pages, Ordering::Relaxed);
        self.published_free_cma
            .store(f.nr_free_cma, Ordering::Relaxed);
        self.published_free_highatomic
            .store(f.nr_free_highatomic, Ordering::Relaxed);
        for (slot, bits) in self.published_nonempty.iter().zip(f.nonempty) {
            slot.store(bits, Ordering::Relaxed);
        }
    }

    /// Reports a fallback to the event sink, if any.
    #[inline]
    pub(crate) fn emit_fallback(&self, event: &FallbackEvent) {
        if let Some(sink) = &self.events {
            sink.fallback(event);
        }
    }

    /// Reports a per-CPU drain to the event sink, if any.
    #[inline]
    pub(crate) fn emit_drain(&self, pfn: Pfn, order: Order) {
        if let Some(sink) = &self.events {
            let migratetype = self.block_mt(pfn);
            sink.pcp_drain(&DrainEvent {
                pfn,
                order,
                migratetype,
            });
        }
    }

    /// Whether the zone is flagged below its high watermark.
    #[inline]
    pub(crate) fn is_below_high(&self) -> bool {
        self.below_high.load(Ordering::Relaxed)
    }

    pub(crate) fn set_below_high(&self, below: bool) {
        self.below_high.store(below, Ordering::Relaxed)
    }

    /// Whether the zone spans `pfn`.
    #[inline]
    pub(crate) fn spans(&self, pfn: Pfn) -> bool {
        self.start <= pfn && pfn < self.end
    }

    /// Whether `pfn` is a usable page of this zone.
    pub(crate) fn is_present(&self, pfn: Pfn) -> bool {
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
        self.pages.get(self.idx(pfn))
    }

    /// The migratetype of the pageblock holding `pfn`.
    #[inline]
    pub(crate) fn block_mt(&self, pfn: Pfn) -> MigrateType {
        self.blocks.get(pfn)
    }

    /// Pageblocks of the zone, as the first frame of each that the zone
    /// spans, in the order `/proc/pagetypeinfo` counts them: from the zone's
    /// start in steps of a pageblock.
    pub(crate) fn pageblock_starts(&self) -> impl Iterator<Item = Pfn> + '_ {
        let step = self.geo.pageblock_nr_pages();
        (self.start.0..self.end.0).step_by(step as usize).map(Pfn)
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

    /// The head of the block (free, allocated, per-CPU or offline) that
    /// holds `pfn`, if any: the nearest head below whose block reaches it.
    pub(crate) fn containing_head(&self, pfn: Pfn) -> Option<(Pfn, PageMeta)> {
        for order in self.geo.orders() {
            let head = pfn.align_down(order);
            if !self.spans(head) {
                break;
            }
            let meta = self.meta(head);
            if meta.state() != PageState::Tail {
                return (meta.order() >= order).then_some((head, meta));
            }
        }
        None
    }
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

impl<R: RawMutex> Zone<R> {
    /// An empty zone (no free block yet) over `span`.
    pub(crate) fn new(span: &ZoneSpan, config: &Config) -> Zone<R> {
        Zone {
            core: ZoneCore::new(span, config),
            free: Mutex::new(FreeAreas::new()),
        }
    }

    /// Takes the zone lock.
    #[inline]
    pub(crate) fn lock(&self) -> ZoneGuard<'_, R> {
        ZoneGuard {
            core: &self.core,
            free: self.free.lock(),
        }
    }

    /// The node.
    pub fn node(&self) -> NodeId {
        self.core.node
    }

    /// The zone type.
    pub fn zone_type(&self) -> ZoneType {
        self.core.zone_type
    }

    /// First spanned frame.
    pub fn start_pfn(&self) -> Pfn {
        self.core.start
    }

    /// One past the last spanned frame.
    pub fn end_pfn(&self) -> Pfn {
        self.core.end
    }

    /// Pages spanned, holes included.
    pub fn nr_spanned(&self) -> PageCount {
        PageCount(self.core.end.0 - self.core.start.0)
    }

    /// Usable pages.
    pub fn nr_present(&self) -> PageCount {
        PageCount(self.core.nr_present)
    }

    /// Pages the allocator manages (all present pages: nothing is reserved
    /// at boot here).
    pub fn nr_managed(&self) -> PageCount {
        PageCount(self.core.nr_present)
    }

    /// Free pages on the buddy lists, isolated ones excepted.
    pub fn nr_free(&self) -> PageCount {
        PageCount(self.free.lock().nr_free_pages)
    }

    /// The watermarks.
    pub fn watermarks(&self) -> Watermarks {
        self.core.watermarks
    }

    /// Free blocks of `order` on the list of `mt`.
    pub fn nr_free_blocks(&self, order: Order, mt: MigrateType) -> u64 {
        self.free.lock().nr_free_blocks(order, mt)
    }

    /// Free blocks of `order`, all migratetypes.
    pub fn nr_free_blocks_of_order(&self, order: Order) -> u64 {
        self.free.lock().areas[order.idx()].nr_free
    }

    /// Whether the zone spans `pfn`.
    #[inline]
    pub fn spans(&self, pfn: Pfn) -> bool {
        self.core.spans(pfn)
    }

    /// Whether `pfn` is a usable page of this zone.
    pub fn is_present(&self, pfn: Pfn) -> bool {
        self.core.is_present(pfn)
    }

    /// The migratetype of the pageblock holding `pfn` (which the zone must
    /// span).
    #[inline]
    pub fn block_migratetype(&self, pfn: Pfn) -> MigrateType {
        self.core.block_mt(pfn)
    }

    /// Bytes of metadata this zone keeps: page records, pageblock words, the
    /// present-range list and the zone itself.
    pub fn metadata_bytes(&self) -> u64 {
        let core = &self.core;
        (core.pages.len() * core::mem::size_of::<PageMeta>()
            + core.blocks.slots.len() * core::mem::size_of::<AtomicU32>()
            + core.present.len() * core::mem::size_of::<(Pfn, Pfn)>()
            + core::mem::size_of::<Self>()) as u64
    }

    /// Every block of the zone (free, allocated, per-CPU or offline), in
    /// address order: what a census of pageblocks walks. Read without the
    /// lock: exact when the allocator is quiescent.
    pub fn blocks(&self) -> impl Iterator<Item = BlockInfo> + '_ {
        let core = &self.core;
        let mut pfn = core.start;
        core::iter::from_fn(move || {
            while pfn < core.end {
                let meta = core.meta(pfn);
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
}

impl ZoneOps<'_> {
    /// Adjusts the free-page counters for the block `idx`/`order` joining or
    /// leaving the lists of `mt` (Linux `account_freepages`). Splitting and
    /// merging move pages between lists without changing the counts, so
    /// they account only the pages that really join or leave.
    #[inline]
    pub(crate) fn account_free(&mut self, idx: u32, order: Order, mt: MigrateType, joining: bool) {
        let nr = order.nr_pages().0;
        let pb = self.z.geo.pageblock;
        if order <= pb {
            self.z.blocks.account(self.z.pfn(idx), nr as u32, joining);
        } else {
            let step = pb.nr_pages().0;
            for k in 0..nr / step {
                self.z
                    .blocks
                    .account(Pfn(self.z.pfn(idx).0 + k * step), step as u32, joining);
            }
        }
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
        apply(&mut self.f.nr_free_pages);
        match mt {
            MigrateType::Cma => apply(&mut self.f.nr_free_cma),
            MigrateType::HighAtomic => apply(&mut self.f.nr_free_highatomic),
            _ => {}
        }
    }

    /// Links the free block at `idx` of `order` onto the list of `mt`
    /// without touching the free counters.
    #[inline]
    pub(crate) fn link_free(
        &mut self,
        idx: u32,
        order: Order,
        mt: MigrateType,
        placement: Placement,
    ) {
        let area = &mut self.f.areas[order.idx()];
        let head = PageMeta::head(PageState::FreeHead, order);
        area.lists[mt.idx()].insert(&self.z.pages, idx, head, placement);
        area.nr_free += 1;
        self.f.nonempty[mt.idx()] |= 1 << order.get();
    }

    /// Unlinks the free block at `idx` of `order` from the list of `mt`
    /// without touching the free counters; its head becomes a plain tail.
    #[inline]
    pub(crate) fn unlink_free(&mut self, idx: u32, order: Order, mt: MigrateType) {
        let area = &mut self.f.areas[order.idx()];
        let list = &mut area.lists[mt.idx()];
        list.remove(&self.z.pages, idx);
        if list.is_empty() {
            self.f.nonempty[mt.idx()] &= !(1 << order.get());
        }
        area.nr_free -= 1;
        self.z.pages.set(idx, PageMeta::TAIL);
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
        self.link_free(idx, order, mt, placement);
        self.account_free(idx, order, mt, true);
    }

    /// Takes the free block at `idx` of `order` off the list of `mt`; its
    /// head becomes a plain tail for the caller to re-label.
    #[inline]
    pub(crate) fn del_free(&mut self, idx: u32, order: Order, mt: MigrateType) {
        self.unlink_free(idx, order, mt);
        self.account_free(idx, order, mt, false);
    }

    /// Takes the free block `idx`/`high` off the list of `from` and leaves its
    /// first `2^low` pages to the caller, the split-off halves on the lists of
    /// `to` (Linux `page_del_and_expand`; `to` differs from `from` when a
    /// pageblock is claimed, and the caller has retyped it).
    #[inline]
    pub(crate) fn take_and_expand(
        &mut self,
        idx: u32,
        low: Order,
        high: Order,
        from: MigrateType,
        to: MigrateType,
    ) {
        self.unlink_free(idx, high, from);
        self.expand(idx, low, high, to);
        self.account_free(idx, low, to, false);
    }

    /// Moves a free block from the list of `from` to the tail of the list of
    /// `to`, keeping its reported flag (Linux `move_to_free_list`).
    pub(crate) fn move_free(&mut self, idx: u32, order: Order, from: MigrateType, to: MigrateType) {
        let reported = self.z.pages.get(idx).flag();
        self.del_free(idx, order, from);
        self.add_free(idx, order, to, Placement::Tail);
        self.z.pages.update(idx, |m| m.set_flag(reported));
    }

    /// The first free block on the list of `order` and `mt`.
    #[inline]
    pub(crate) fn first_free(&self, order: Order, mt: MigrateType) -> Option<u32> {
        self.f.areas[order.idx()].lists[mt.idx()].first()
    }

    /// Sets every pageblock of the block `pfn`/`order` (at least the one
    /// holding it) to `mt` (Linux `change_pageblock_range`).
    pub(crate) fn set_range_migratetype(&mut self, pfn: Pfn, order: Order, mt: MigrateType) {
        let pb = self.z.geo.pageblock_nr_pages();
        let n = (order.nr_pages().0 / pb).max(1);
        for k in 0..n {
            self.z.blocks.set(Pfn(pfn.0 + k * pb), mt);
        }
    }

    /// Counts free and movable pages in a pageblock (Linux
    /// `prep_move_freepages_block`), for the claim heuristic.
    pub(crate) fn pageblock_usage(&self, start: Pfn, end: Pfn) -> (u64, u64) {
        let (mut free, mut movable) = (0, 0);
        self.z.for_each_head(start, end, |_, meta| {
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
            let meta = self.z.meta(pfn);
            match meta.state() {
                PageState::Tail => pfn.0 += 1,
                PageState::FreeHead => {
                    let order = meta.order();
                    self.move_free(self.z.idx(pfn), order, from, to);
                    moved += order.nr_pages().0;
                    pfn.0 += order.nr_pages().0;
                }
                _ => pfn.0 += meta.order().nr_pages().0,
            }
        }
        self.z.blocks.set(start, to);
        moved
    }
}

#[cfg(test)]
mod tests {
    use crate::{AllocFlags, Allocator, Config, MemoryMap, Order, PageCount, PageState, Pfn};

    #[test]
    fn blocks_walk_covers_every_present_page() {
        let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(3000)).unwrap();
        let a: Allocator = Allocator::new(map, Config::default()).unwrap();
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
