//! A zone: its geometry, page records, pageblock table and watermarks,
//! and its free areas behind the zone lock.
//!
//! A zone has two halves. The `ZoneCore` never needs the zone lock: the
//! geometry, the watermarks, and the page records and pageblock types, which
//! are atomics whose every slot is written only by the owner of the block it
//! describes. The `FreeAreas` (free lists and their counters) live behind
//! the zone's lock. A `ZoneOps` pairs the core with the locked half: holding
//! one is the proof that the lock is held (Linux's `zone->lock` context), and
//! every buddy operation (`list_ops`, `buddy`, `fallback`, `highatomic`) is
//! one of its methods. [`Zone`] is the public, read-only view.

use crate::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use alloc::sync::Arc;
use alloc::vec::Vec;

use lock_api::{Mutex, MutexGuard, RawMutex};

use crate::config::Config;
use crate::engine::free_area::FreeAreas;
use crate::engine::page::{PageMeta, PageState, PageTable};
use crate::engine::pageblock::BlockTable;
use crate::events::{DrainEvent, EventSink, FallbackEvent};
use crate::layout::ZoneSpan;
use crate::policy::{Confinement, Packing};
use crate::region::book::Regions;
use crate::region::map::RegionMap;
use crate::region::power::RegionPower;
use crate::sync::DefaultLock;
use crate::units::{
    MigrateType, NodeId, Order, PageCount, Pfn, ZoneType, NR_MIGRATE_TYPES, NR_ZONE_TYPES,
};

/// A zone's watermarks in pages.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Watermarks {
    /// Below this only reserve users allocate.
    pub min: u64,
    /// Below this kswapd would wake; the fast path needs it.
    pub low: u64,
    /// kswapd reclaims until this is met.
    pub high: u64,
    /// Memory-tiering promotion mark (reported, not used for allocation).
    pub promo: u64,
}

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

/// The part of a zone that needs no lock.
pub(crate) struct ZoneCore {
    pub(crate) node: NodeId,
    pub(crate) zone_type: ZoneType,
    pub(crate) start: Pfn,
    pub(crate) end: Pfn,
    pub(crate) present: Vec<(Pfn, Pfn)>,
    pub(crate) nr_present: u64,
    /// Present pages taken offline (seed 003): out of the zone's managed
    /// pages until onlined. Changed only with the allocator held
    /// exclusively, as Linux changes managed pages under the hotplug lock.
    pub(crate) nr_offline: u64,
    pub(crate) geo: Geometry,
    /// Which order-0 allocations are packed (a policy from the config).
    pub(crate) packing: Packing,
    /// Whether unmovable and reclaimable memory is confined to the zone's
    /// low end (a policy from the config).
    pub(crate) confinement: Confinement,
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
    /// The smallest order free page reporting reports (seed 002), if on.
    pub(crate) report_order: Option<Order>,
    /// A block of at least `report_order` was freed since the last
    /// reporting pass looked at this zone (Linux's "requested" state).
    pub(crate) report_requested: AtomicBool,
    /// Free memory fell below the high watermark (Linux `ZONE_BELOW_HIGH`):
    /// per-CPU lists shrink their high marks while it is set.
    pub(crate) below_high: AtomicBool,
    /// Where the zone's regions lie (seed 000), if regions are on.
    pub(crate) regions: Option<RegionMap>,
    /// The client's power hooks for regions, if any.
    pub(crate) region_power: Option<Arc<dyn RegionPower>>,
    /// The caller's clock for region idle time (its last
    /// `set_region_time`).
    pub(crate) region_now: AtomicU64,
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
            nr_offline: self.nr_offline,
            geo: self.geo,
            packing: self.packing,
            confinement: self.confinement,
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
            report_order: self.report_order,
            report_requested: AtomicBool::new(self.report_requested.load(Ordering::Relaxed)),
            below_high: AtomicBool::new(self.is_below_high()),
            regions: self.regions.clone(),
            region_power: self.region_power.clone(),
            region_now: copy64(&self.region_now),
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

/// One zone of one node. `R` is the raw lock guarding its free lists.
pub struct Zone<R: RawMutex = DefaultLock> {
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
    /// The locked half, to read.
    #[inline]
    pub(crate) fn free_areas(&self) -> &FreeAreas {
        &self.free
    }

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

impl ZoneCore {
    /// An empty zone core over `span`; every pageblock starts movable, as
    /// Linux's `memmap_init` leaves them.
    fn new(span: &ZoneSpan, config: &Config) -> ZoneCore {
        let geo = Geometry::of(config);
        ZoneCore {
            node: span.node,
            zone_type: span.zone_type,
            start: span.start,
            end: span.end,
            nr_present: span.nr_present(),
            nr_offline: 0,
            present: span.present.clone(),
            geo,
            packing: config.packing,
            confinement: config.confinement,
            pages: PageTable::new(
                span.nr_spanned() as usize,
                span.start.0,
                geo.max_order > Order::ZERO && geo.pageblock > Order::ZERO,
            ),
            blocks: BlockTable::new(span.start, span.end, geo.pageblock, MigrateType::Movable),
            watermarks: Watermarks::default(),
            lowmem_reserve: [0; NR_ZONE_TYPES],
            published_free: AtomicU64::new(0),
            published_free_cma: AtomicU64::new(0),
            published_free_highatomic: AtomicU64::new(0),
            published_nonempty: Default::default(),
            events: None,
            report_order: config.report_order(),
            // Everything starts free and unreported: a pass is wanted.
            report_requested: AtomicBool::new(config.report_order().is_some()),
            below_high: AtomicBool::new(false),
            regions: config.regions.zip(config.region_shift()).map(|(r, shift)| {
                RegionMap::new(span.start, span.end, &span.present, shift, r.mixing)
            }),
            region_power: None,
            region_now: AtomicU64::new(0),
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
        // A held region is free memory one draw away: for the watermark
        // test's "a block of the order exists", it is a largest block.
        let held = match &f.regions {
            Some(r) if r.nr_held > 0 => 1 << self.geo.max_order.get(),
            _ => 0,
        };
        for (mt, (slot, bits)) in self.published_nonempty.iter().zip(f.nonempty).enumerate() {
            let extra = if mt == MigrateType::Movable.idx() {
                held
            } else {
                0
            };
            slot.store(bits | extra, Ordering::Relaxed);
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

    /// Whether blocks of `order` of `mt` go through per-CPU lists (Linux's
    /// rule), or are allocated and freed under the zone lock, where the
    /// placement policy sees every free block: small-order packing and
    /// confinement keep their types off the per-CPU lists
    /// ([`Packing::bypasses_pcp`]).
    #[inline]
    pub(crate) fn caches(&self, mt: MigrateType, order: Order) -> bool {
        !(self.packing.bypasses_pcp(mt, order) || self.confinement.confines(mt))
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

    /// Pages the allocator manages: the present ones not taken offline.
    #[inline]
    pub(crate) fn nr_managed(&self) -> u64 {
        self.nr_present - self.nr_offline
    }

    /// Visits the heads of every block overlapping `start..end` (inside the
    /// zone): the one holding `start`, if it begins below, then those
    /// [`ZoneCore::for_each_head`] would find. Stops at the first error.
    pub(crate) fn try_for_each_head_overlapping<E>(
        &self,
        start: Pfn,
        end: Pfn,
        mut f: impl FnMut(Pfn, PageMeta) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut from = start;
        if let Some((head, meta)) = self.containing_head(start) {
            if head < start {
                f(head, meta)?;
                from = Pfn(head.0 + meta.order().nr_pages().0);
            }
        }
        let mut pfn = from;
        while pfn < end {
            let meta = self.meta(pfn);
            if meta.state() == PageState::Tail {
                pfn.0 += 1;
                continue;
            }
            f(pfn, meta)?;
            pfn.0 += meta.order().nr_pages().0;
        }
        Ok(())
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

impl<R: RawMutex> Zone<R> {
    /// An empty zone (no free block yet) over `span`.
    pub(crate) fn new(span: &ZoneSpan, config: &Config) -> Zone<R> {
        Zone {
            core: ZoneCore::new(span, config),
            free: Mutex::new(FreeAreas::new(
                config.regions.zip(config.region_shift()).map(|(r, shift)| {
                    let map = RegionMap::new(span.start, span.end, &span.present, shift, r.mixing);
                    let nr_lists = config.nr_orders as usize * NR_MIGRATE_TYPES;
                    alloc::boxed::Box::new(Regions::new(nr_lists, map.len()))
                }),
            )),
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

    /// Pages the allocator manages: every present page (nothing is
    /// reserved at boot here) but those taken offline.
    pub fn nr_managed(&self) -> PageCount {
        PageCount(self.core.nr_managed())
    }

    /// Present pages taken offline.
    pub fn nr_offline(&self) -> PageCount {
        PageCount(self.core.nr_offline)
    }

    /// Whether the pageblock holding `pfn` is isolated (by a contiguous
    /// allocation, CMA or offline in progress); `None` if the zone does not
    /// span `pfn`.
    pub fn is_isolated(&self, pfn: Pfn) -> Option<bool> {
        self.core
            .spans(pfn)
            .then(|| self.core.blocks.is_isolated(pfn))
    }

    /// Free pages on the buddy lists, isolated ones excepted, and in regions
    /// the region allocator holds (seed 000).
    pub fn nr_free(&self) -> PageCount {
        PageCount(self.free.lock().nr_free_pages)
    }

    /// Free pages on the CMA lists (Linux `NR_FREE_CMA_PAGES`).
    pub fn nr_free_cma(&self) -> PageCount {
        PageCount(self.free.lock().nr_free_cma)
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

    /// The migratetype of the pageblock holding `pfn`, or `None` if the zone
    /// does not span `pfn`.
    #[inline]
    pub fn block_migratetype(&self, pfn: Pfn) -> Option<MigrateType> {
        self.core.spans(pfn).then(|| self.core.block_mt(pfn))
    }

    /// Bytes of metadata this zone keeps: page records, pageblock words, the
    /// present-range list and the zone itself.
    pub fn metadata_bytes(&self) -> u64 {
        let core = &self.core;
        (core.pages.bytes()
            + core.blocks.bytes()
            + core.present.len() * core::mem::size_of::<(Pfn, Pfn)>()
            + core::mem::size_of::<Self>()) as u64
    }
}
