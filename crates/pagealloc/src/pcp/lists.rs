//! Per-CPU page lists (seed 004): small-order pages kept per CPU so that most
//! allocations and frees never take the zone lock.
//!
//! Each (CPU, zone) pair has a [`Pcp`]; a CPU's `Pcp`s for every zone sit
//! together behind one lock ([`CpuLists`]). An ordinary call only *tries*
//! that lock: if it is held (an interrupt re-entered the allocator on this
//! CPU, a remote drain is running, a [`crate::LocalLists`] holds it) the
//! request goes to the zone instead, which is how Linux keeps per-CPU lists
//! safe since 5.14. An empty list is refilled with a batch taken under one
//! zone-lock acquisition; a list above `high` is drained, a batch at a
//! time, the same way. Lists hold orders `0..=3` per ordinary migratetype and the pageblock
//! order (Linux `NR_PCP_LISTS` with THP): order 0 in [`Magazine`]s (rings
//! of page indices), the others threaded through the page table's link
//! slots like the buddy lists.
//!
//! Sizing follows mm/page_alloc.c (Linux 6.7+): `zone_batchsize`,
//! `zone_highsize`, and the auto-tuning of `high` between `high_min` and
//! `high_max` (`nr_pcp_alloc`, `nr_pcp_high`, `nr_pcp_free`).

use lock_api::RawMutex;

use crate::config::{Config, PcpHigh};
use crate::engine::buddy::FreePlacement;
use crate::engine::free_list::{ListHead, Placement};
use crate::engine::page::{PageMeta, PageState, PageTable};
use crate::engine::watermark::AllocMode;
use crate::engine::zone::{Zone, ZoneCore, ZoneOps};
use crate::pcp::magazine::Magazine;
use crate::stats::VmStats;
use crate::units::{
    MigrateType, Order, Pfn, MAX_NR_ORDERS, NR_MIGRATE_TYPES, NR_PCP_TYPES, NR_ZONE_TYPES,
};

/// The highest order kept per migratetype (Linux `PAGE_ALLOC_COSTLY_ORDER`).
pub(crate) const COSTLY_ORDER: u8 = 3;
/// Lists for orders `0..=COSTLY_ORDER`, per ordinary migratetype.
const NR_LOWORDER_LISTS: usize = NR_PCP_TYPES * (COSTLY_ORDER as usize + 1);
/// Plus two for the pageblock order: movable and the rest (Linux
/// `NR_PCP_THP`).
pub(crate) const NR_PCP_LISTS: usize = NR_LOWORDER_LISTS + 2;
/// Lists `0..NR_PCP_TYPES` are order 0: magazines. The rest are linked.
const NR_LINKED_LISTS: usize = NR_PCP_LISTS - NR_PCP_TYPES;

/// One per-CPU list, as the zone's refill sees it: where a batch goes.
pub(crate) enum PcpList<'a> {
    /// Order 0.
    Magazine(&'a mut Magazine),
    /// Orders above 0.
    Linked(&'a mut ListHead),
}

impl PcpList<'_> {
    /// Marks `idx` a per-CPU head of `order` and puts it at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, pages: &PageTable, idx: u32, order: Order) {
        let cached = PageMeta::head(PageState::PcpHead, order);
        match self {
            PcpList::Magazine(m) => {
                pages.set(idx, cached);
                m.push_back(idx);
            }
            PcpList::Linked(l) => l.insert(pages, idx, cached, Placement::Tail),
        }
    }
}
/// How far batches scale up under sustained one-way traffic (Linux
/// `CONFIG_PCP_BATCH_SCALE_MAX`).
const BATCH_SCALE_MAX: u32 = 5;
/// Upper bound of the batch in bytes (Linux: 1 MiB, then divided by 4).
const BATCH_MAX_BYTES: u64 = 1 << 20;
/// `high_max` is the zone divided by this (Linux
/// `MIN_PERCPU_PAGELIST_HIGH_FRACTION`).
const HIGH_MAX_FRACTION: u64 = 8;

/// Which list a block of `order` and `mt` goes on, if any.
#[inline]
pub(crate) fn pcp_index(order: Order, mt: MigrateType, pageblock: Order) -> Option<usize> {
    if order.get() <= COSTLY_ORDER {
        return Some(NR_PCP_TYPES * order.idx() + mt.idx());
    }
    (order == pageblock).then_some(NR_LOWORDER_LISTS + (mt == MigrateType::Movable) as usize)
}

/// The order of the blocks on list `index`.
fn list_order(index: usize, pageblock: Order) -> Order {
    if index < NR_LOWORDER_LISTS {
        Order::new((index / NR_PCP_TYPES) as u8).unwrap_or(Order::ZERO)
    } else {
        pageblock
    }
}

/// The list migratetype a block of pageblock type `mt` is freed to: CMA and
/// high-atomic pages go on the movable lists (Linux `free_frozen_pages`);
/// isolated ones must not be cached at all (`None`).
#[inline]
pub(crate) fn pcp_migratetype(mt: MigrateType) -> Option<MigrateType> {
    match mt {
        MigrateType::Isolate => None,
        MigrateType::HighAtomic | MigrateType::Cma => Some(MigrateType::Movable),
        other => Some(other),
    }
}

/// The list a freed block of `order` from a pageblock of type `block_mt`
/// goes on, if any.
#[inline]
pub(crate) fn pcp_free_index(
    order: Order,
    block_mt: MigrateType,
    pageblock: Order,
) -> Option<usize> {
    pcp_index(order, pcp_migratetype(block_mt)?, pageblock)
}

/// Per pageblock migratetype and order, the list a freed block goes on:
/// [`pcp_free_index`] with the placement policies' bypasses folded in
/// (`ZoneCore::caches`), computed once from the configuration, so the
/// free fast path decides with one table load.
#[derive(Clone, Debug)]
pub(crate) struct FreeLists([[u8; MAX_NR_ORDERS]; NR_MIGRATE_TYPES]);

/// A [`FreeLists`] entry for "not cached".
const NO_LIST: u8 = u8::MAX;

impl FreeLists {
    fn new(config: &Config) -> FreeLists {
        let pageblock = config.pageblock();
        let mut table = [[NO_LIST; MAX_NR_ORDERS]; NR_MIGRATE_TYPES];
        for (mt_index, row) in table.iter_mut().enumerate() {
            let Some(mt) = MigrateType::from_index(mt_index) else {
                continue;
            };
            for (o, entry) in row.iter_mut().enumerate() {
                let Some(order) = Order::new(o as u8) else {
                    continue;
                };
                let bypassed =
                    config.packing.bypasses_pcp(mt, order) || config.confinement.confines(mt);
                if let Some(index) = pcp_free_index(order, mt, pageblock).filter(|_| !bypassed) {
                    *entry = index as u8;
                }
            }
        }
        FreeLists(table)
    }

    /// The list a block of `order` freed from a pageblock of type `mt`
    /// goes on, if any.
    #[inline(always)]
    pub(crate) fn get(&self, mt: MigrateType, order: Order) -> Option<usize> {
        let index = self.0[mt.idx()][order.idx()];
        (index != NO_LIST).then_some(index as usize)
    }
}

/// Linux `zone_batchsize`: ~0.1% of the zone or 1 MiB, whichever is
/// smaller, divided by 4 and clamped to `2^n - 1`, at least 1.
pub(crate) fn zone_batchsize(managed: u64, config: &Config) -> u64 {
    let max = BATCH_MAX_BYTES / config.page_size_bytes;
    let batch = ((managed >> 10).min(max) / 4).max(1);
    let scaled = batch + batch / 2;
    let pow2 = 1u64 << (63 - scaled.leading_zeros());
    (pow2 - 1).max(1)
}

/// Linux `zone_highsize`: `total / cpus`, at least four batches. The
/// minimum is sized from the low watermark, the maximum from an eighth of
/// the zone.
pub(crate) fn zone_highsize(total: u64, nr_cpus: u64, batch: u64) -> u64 {
    (total / nr_cpus.max(1)).max(batch << 2)
}

/// One CPU's per-CPU lists for every zone, under one lock: the unit a
/// [`crate::LocalLists`] guard holds and a remote drain takes.
#[derive(Clone, Debug)]
pub(crate) struct CpuLists {
    /// Indexed like [`crate::Allocator::zones`].
    pub(crate) zones: alloc::boxed::Box<[Pcp]>,
    /// Per highest zone type: the first zone of this CPU's zonelist (any
    /// node), where the fast path looks; [`NO_ZONE`] if there is none.
    pub(crate) first_zone: [u32; NR_ZONE_TYPES],
    /// The zonelists `first_zone` comes from (the CPU's home node's).
    pub(crate) home_zonelists: usize,
}

/// One CPU's per-CPU lists for one zone, as [`Allocator::pcp_info`](crate::Allocator::pcp_info) reports
/// them (the fields of `/proc/zoneinfo`'s `pagesets`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PcpInfo {
    /// Pages on the lists (`count`).
    pub count: u64,
    /// The current high mark (`high`).
    pub high: u64,
    /// The lowest the high mark tunes down to (`high_min`).
    pub high_min: u64,
    /// The highest the high mark tunes up to (`high_max`).
    pub high_max: u64,
    /// Refill and drain batch (`batch`).
    pub batch: u64,
}

/// No zone in a [`CpuLists::first_zone`] slot.
pub(crate) const NO_ZONE: u32 = u32::MAX;

impl CpuLists {
    /// Pages on this CPU's lists, all zones.
    pub(crate) fn count(&self) -> u64 {
        self.zones.iter().map(|p| p.count).sum()
    }

    /// What the lists of each zone hold and how they are tuned.
    pub(crate) fn info(&self) -> alloc::vec::Vec<PcpInfo> {
        self.zones
            .iter()
            .map(|p| PcpInfo {
                count: p.count,
                high: p.high,
                high_min: p.high_min,
                high_max: p.high_max,
                batch: p.batch,
            })
            .collect()
    }
}

/// One CPU's lists for one zone (Linux `struct per_cpu_pages`). Aligned
/// so that no two CPUs' `Pcp`s share a cache line (nor the adjacent line
/// the prefetcher pairs with it), wherever the heap puts their arrays.
#[derive(Clone, Debug)]
#[repr(align(128))]
pub(crate) struct Pcp {
    /// Order-0 lists, per ordinary migratetype (list indices
    /// `0..NR_PCP_TYPES`).
    mags: [Magazine; NR_PCP_TYPES],
    /// The other lists (index `NR_PCP_TYPES + i`).
    lists: [ListHead; NR_LINKED_LISTS],
    /// Which list a freed block goes on.
    pub(crate) free_lists: FreeLists,
    /// Pages on all lists.
    pub(crate) count: u64,
    pub(crate) high: u64,
    pub(crate) high_min: u64,
    pub(crate) high_max: u64,
    pub(crate) batch: u64,
    /// Doubles the refill batch while the CPU keeps allocating without
    /// freeing.
    alloc_factor: u32,
    /// Pages freed in a row, halved by every allocation: grows the drain
    /// batch under sustained freeing.
    free_count: u64,
    /// The previous free was of order `1..=COSTLY_ORDER`.
    prev_free_high_order: bool,
    /// With memory regions (seed 000): the region of the first block the
    /// last refill brought, the lowest the zone had then (`u32::MAX`
    /// before any refill).
    low_region: u32,
    /// What happened under this lock.
    pub(crate) stats: VmStats,
}

impl Pcp {
    pub(crate) fn new(managed: u64, low_wmark: u64, nr_cpus: u64, config: &Config) -> Pcp {
        let batch = zone_batchsize(managed, config);
        let high_min = zone_highsize(low_wmark, nr_cpus, batch);
        let high_max = match config.pcp_high {
            PcpHigh::AutoTune => zone_highsize(managed / HIGH_MAX_FRACTION, nr_cpus, batch),
            PcpHigh::Fixed => high_min,
        };
        // A low watermark above an eighth of the zone (a large
        // `watermark_scale_factor` or `min_free_kbytes`) puts high_min above
        // high_max. Linux's clamp then settles on high_max; here the bounds
        // are ordered once, so every later clamp is well-formed.
        let high_min = high_min.min(high_max);
        Pcp {
            low_region: u32::MAX,
            mags: [Magazine::EMPTY; NR_PCP_TYPES],
            lists: [ListHead::EMPTY; NR_LINKED_LISTS],
            free_lists: FreeLists::new(config),
            count: 0,
            high: high_min,
            high_min,
            high_max,
            batch,
            alloc_factor: 0,
            free_count: 0,
            prev_free_high_order: false,
            stats: VmStats::default(),
        }
    }

    /// Sizes the lists again for a zone whose managed pages or low
    /// watermark changed (Linux `zone_pcp_update` after memory hotplug),
    /// keeping the pages they hold; a count above the new high drains on
    /// the next free.
    pub(crate) fn resize(&mut self, managed: u64, low_wmark: u64, nr_cpus: u64, config: &Config) {
        let fresh = Pcp::new(managed, low_wmark, nr_cpus, config);
        self.batch = fresh.batch;
        self.high_min = fresh.high_min;
        self.high_max = fresh.high_max;
        self.high = self.high.clamp(self.high_min, self.high_max);
    }

    /// How many blocks to refill with (Linux `nr_pcp_alloc`), growing
    /// `high` when the CPU keeps refilling.
    fn refill_batch(&mut self, order: Order, below_high: bool) -> u64 {
        let base = self.batch;
        self.high = self.high.clamp(self.high_min, self.high_max);
        if self.high < base {
            return 1;
        }
        let mut batch = if order == Order::ZERO {
            base << self.alloc_factor
        } else {
            base
        };
        if self.high_min != self.high_max && !below_high {
            self.high = (self.high + batch).min(self.high_max);
        }
        if order == Order::ZERO {
            let max_nr_alloc = self.high.saturating_sub(self.count + base).max(base);
            if batch <= max_nr_alloc && self.alloc_factor < BATCH_SCALE_MAX {
                self.alloc_factor += 1;
            }
            batch = batch.min(max_nr_alloc);
        }
        if batch > 1 {
            batch = (batch >> order.get()).max(2);
        }
        batch
    }

    /// The high mark after a free (Linux `nr_pcp_high`), shrinking it when
    /// the zone is below its high watermark or a burst of high-order frees
    /// is under way.
    #[inline]
    fn high_after_free(&mut self, free_high: bool, below_high: bool) -> u64 {
        // Every update keeps `high` inside its bounds, which are ordered
        // at construction and never change (Linux clamps here because a
        // sysctl may move them).
        debug_assert!((self.high_min..=self.high_max).contains(&self.high));
        if self.high == 0 {
            return 0;
        }
        if free_high {
            self.high = self
                .high
                .saturating_sub(self.batch << BATCH_SCALE_MAX)
                .max(self.high_min);
            return 0;
        }
        if self.high_min == self.high_max {
            return self.high;
        }
        if below_high {
            let shrink = self.free_count.max(self.batch);
            self.high = self.high.saturating_sub(shrink).max(self.high_min);
            return self.count.max(self.high_min);
        }
        if self.count >= self.high {
            let need = self.free_count + self.batch;
            if self.high < need {
                self.high = need.clamp(self.high_min, self.high_max);
            }
        }
        self.high
    }

    /// How many pages to drain once over `high` (Linux `nr_pcp_free`).
    fn drain_amount(&self, high: u64, free_high: bool) -> u64 {
        if free_high {
            return self.count.min(self.batch << BATCH_SCALE_MAX);
        }
        if high < self.batch {
            return 1;
        }
        self.free_count
            .clamp(self.batch, (high - self.batch).max(self.batch))
    }

    /// Takes a block of `order` for `mt` from this CPU's lists, refilling an
    /// empty list from the zone (Linux `__rmqueue_pcplist`). The block is
    /// left marked allocated.
    #[inline]
    pub(crate) fn alloc<R: RawMutex>(
        &mut self,
        zone: &Zone<R>,
        index: usize,
        order: Order,
        mt: MigrateType,
        mode: AllocMode,
    ) -> Option<u32> {
        if self.is_empty_at(index) {
            self.refill(zone, index, order, mt, mode);
        }
        self.take_cached(&zone.core, index, order, mt)
    }

    /// Fills the empty list `index` with a batch from the zone, under one
    /// zone-lock acquisition. Returns how many blocks came.
    #[cold]
    #[inline(never)]
    pub(crate) fn refill<R: RawMutex>(
        &mut self,
        zone: &Zone<R>,
        index: usize,
        order: Order,
        mt: MigrateType,
        mode: AllocMode,
    ) -> u64 {
        let batch = self.refill_batch(order, zone.core.is_below_high());
        let mut guard = zone.lock();
        let mut ops = guard.ops();
        let target = if index < NR_PCP_TYPES {
            PcpList::Magazine(&mut self.mags[index])
        } else {
            PcpList::Linked(&mut self.lists[index - NR_PCP_TYPES])
        };
        let got = ops.rmqueue_bulk(order, mt, mode, batch, target, &mut self.stats);
        self.count += got * order.nr_pages().0;
        if let (Some(map), Some(first)) = (&zone.core.regions, self.first_at(index)) {
            self.low_region = map.of_idx(first) as u32;
        }
        got
    }

    /// With memory regions (seed 000), whether a block freed at `idx` onto
    /// list `index` goes to the buddy lists instead: when it lies above the
    /// region of the list's first block (or, on an empty list, above the
    /// region the last refill came from). The next allocation takes the
    /// list's first block, so a block from a higher region cached there
    /// would be reused where it is rather than in the lowest region, and a
    /// per-CPU list, which can grow to an eighth of the zone, would undo
    /// the sorted buddy lists. Blocks that stay are at or below the first,
    /// so each list stays sorted by region from its head, and drains (from
    /// the tail) give back the highest first.
    #[inline(always)]
    pub(crate) fn declines(&self, z: &ZoneCore, index: usize, idx: u32) -> bool {
        let Some(map) = &z.regions else {
            return false;
        };
        let r = map.of_idx(idx) as u32;
        match self.first_at(index) {
            None => r > self.low_region,
            Some(first) => r > map.of_idx(first) as u32,
        }
    }

    /// Takes the first block of list `index` if there is one, marked
    /// allocated as `mt`.
    #[inline(always)]
    pub(crate) fn take_cached(
        &mut self,
        z: &ZoneCore,
        index: usize,
        order: Order,
        mt: MigrateType,
    ) -> Option<u32> {
        let meta = PageMeta::allocated(order, mt);
        let idx = if index < NR_PCP_TYPES {
            let idx = self.mags[index].pop_front()?;
            z.pages.set(idx, meta);
            idx
        } else {
            self.lists[index - NR_PCP_TYPES].pop_front(&z.pages, meta)?
        };
        self.count_taken(order);
        Some(idx)
    }

    /// Takes the first block of list `index` that lies in a pageblock of
    /// type `mt` (or CMA, when `mode` allows CMA), marked allocated as `mt`:
    /// a [`AllocMode::NO_FALLBACK`] request must not get a page an earlier
    /// request stole from another type's pageblock onto this list. The
    /// list is short (at most `high` pages).
    #[inline(never)]
    pub(crate) fn take_cached_exact(
        &mut self,
        z: &ZoneCore,
        index: usize,
        order: Order,
        mt: MigrateType,
        mode: AllocMode,
    ) -> Option<u32> {
        let fits = |block: MigrateType| {
            block == mt || (block == MigrateType::Cma && mode.contains(AllocMode::CMA))
        };
        let fits_idx = |idx: u32| fits(z.block_mt(z.pfn(idx)));
        let idx = if index < NR_PCP_TYPES {
            let mag = &mut self.mags[index];
            let at = mag.iter().position(fits_idx)?;
            mag.remove_at(at)
        } else {
            let list = &mut self.lists[index - NR_PCP_TYPES];
            let idx = list.iter(&z.pages).find(|&idx| fits_idx(idx))?;
            list.remove(&z.pages, idx);
            idx
        };
        z.pages.set(idx, PageMeta::allocated(order, mt));
        self.count_taken(order);
        Some(idx)
    }

    /// The bookkeeping after a cached block of `order` was allocated.
    #[inline(always)]
    fn count_taken(&mut self, order: Order) {
        self.count -= order.nr_pages().0;
        self.free_count >>= 1;
        self.stats.count_alloc(order);
    }

    /// Fills `out` with order-0 pages for `mt` from list `index` (refilling
    /// it from the zone as it empties) and returns how many it placed: the
    /// bulk allocator's inner loop, one hot-byte store per page.
    pub(crate) fn take_bulk<R: RawMutex>(
        &mut self,
        zone: &Zone<R>,
        index: usize,
        mt: MigrateType,
        out: &mut [Pfn],
    ) -> usize {
        let z = &zone.core;
        let meta = PageMeta::allocated(Order::ZERO, mt);
        let mut got = 0;
        while got < out.len() {
            if self.mags[index].is_empty()
                && self.refill(zone, index, Order::ZERO, mt, AllocMode::empty()) == 0
            {
                break;
            }
            let taken = self.mags[index].pop_front_into(&mut out[got..], |idx| {
                z.pages.set(idx, meta);
                z.pfn(idx)
            });
            let n = taken as u64;
            self.count -= n;
            self.free_count >>= n.min(u64::BITS as u64 - 1);
            self.stats.alloc_calls[0] += n;
            self.stats.pgalloc += n;
            got += n as usize;
        }
        got
    }

    /// Takes over the allocated head `idx`, whose record must still read
    /// `expected`, onto list `index` with one compare-and-swap, then drains
    /// a batch if the lists grew past `high` (Linux
    /// `free_frozen_page_commit`). If the record changed (a racing free),
    /// nothing changes and the record found is returned.
    #[inline(always)]
    pub(crate) fn free<R: RawMutex>(
        &mut self,
        zone: &Zone<R>,
        idx: u32,
        expected: PageMeta,
        order: Order,
        index: usize,
    ) -> Result<(), PageMeta> {
        let cached = PageMeta::head(PageState::PcpHead, order);
        let pages = &zone.core.pages;
        if index < NR_PCP_TYPES {
            pages.replace(idx, expected, cached)?;
            self.mags[index].push_front(idx);
        } else {
            self.lists[index - NR_PCP_TYPES].insert_head_replacing(pages, idx, expected, cached)?;
        }
        self.commit_free(zone, order, index);
        Ok(())
    }

    /// Puts an order-0 page the caller already owns (a batched free took it
    /// over) on list `index`, then commits it as [`Pcp::free`] does.
    #[inline]
    pub(crate) fn free_owned<R: RawMutex>(&mut self, zone: &Zone<R>, idx: u32, index: usize) {
        zone.core
            .pages
            .set(idx, PageMeta::head(PageState::PcpHead, Order::ZERO));
        self.mags[index].push_front(idx);
        self.commit_free(zone, Order::ZERO, index);
    }

    /// The bookkeeping after a block joined list `index`: counts, the
    /// free-burst heuristics, and a drain once over `high`.
    #[inline(always)]
    fn commit_free<R: RawMutex>(&mut self, zone: &Zone<R>, order: Order, index: usize) {
        let z = &zone.core;
        self.alloc_factor >>= 1;
        self.count += order.nr_pages().0;
        self.stats.count_free(order);
        let mut free_high = false;
        if order > Order::ZERO && order.get() <= COSTLY_ORDER {
            free_high =
                self.free_count >= self.batch + self.high_min / 2 && self.prev_free_high_order;
            self.prev_free_high_order = true;
        } else {
            self.prev_free_high_order = false;
        }
        if self.free_count < self.batch << BATCH_SCALE_MAX {
            self.free_count += order.nr_pages().0;
        }
        let high = self.high_after_free(free_high, z.is_below_high());
        if self.count >= high {
            self.drain_over_high(zone, high, free_high, index);
        }
    }

    /// Drains a batch because the lists reached `high`.
    #[cold]
    #[inline(never)]
    fn drain_over_high<R: RawMutex>(
        &mut self,
        zone: &Zone<R>,
        high: u64,
        free_high: bool,
        index: usize,
    ) {
        let z = &zone.core;
        let amount = self.drain_amount(high, free_high);
        let mut guard = zone.lock();
        self.drain(&mut guard.ops(), amount, index);
        if z.is_below_high() && guard.ops().high_watermark_met() {
            z.set_below_high(false);
        }
    }

    /// Returns at least `amount` pages (or all) to the buddy lists, oldest
    /// first, visiting the lists round-robin from `start` (Linux
    /// `free_pcppages_bulk`).
    pub(crate) fn drain(&mut self, ops: &mut ZoneOps<'_>, amount: u64, start: usize) {
        let mut left = amount.min(self.count) as i64;
        let mut index = start;
        let pb = ops.z.geo.pageblock;
        while left > 0 && self.count > 0 {
            while self.is_empty_at(index) {
                index = (index + 1) % NR_PCP_LISTS;
            }
            let order = list_order(index, pb);
            while left > 0 {
                let Some(idx) = self.pop_back_at(&ops.z.pages, index) else {
                    break;
                };
                self.count -= order.nr_pages().0;
                left -= order.nr_pages().0 as i64;
                ops.z.pages.set(idx, PageMeta::TAIL);
                ops.free_block(ops.z.pfn(idx), order, FreePlacement::Auto);
                ops.f.stats.pcp_drained += order.nr_pages().0;
                ops.z.emit_drain(ops.z.pfn(idx), order);
            }
            index = (index + 1) % NR_PCP_LISTS;
        }
    }

    /// Every block on the lists, with its order, for the invariant walk.
    pub(crate) fn blocks<'a>(&'a self, z: &'a ZoneCore) -> impl Iterator<Item = (u32, Order)> + 'a {
        let pb = z.geo.pageblock;
        let cached = self
            .mags
            .iter()
            .flat_map(|m| m.iter().map(|idx| (idx, Order::ZERO)));
        let linked = self.lists.iter().enumerate().flat_map(move |(i, list)| {
            let order = list_order(NR_PCP_TYPES + i, pb);
            list.iter(&z.pages).map(move |idx| (idx, order))
        });
        cached.chain(linked)
    }

    /// Whether list `index` is empty.
    #[inline(always)]
    fn is_empty_at(&self, index: usize) -> bool {
        if index < NR_PCP_TYPES {
            self.mags[index].is_empty()
        } else {
            self.lists[index - NR_PCP_TYPES].is_empty()
        }
    }

    /// The first (next to be allocated) block of list `index`.
    #[inline(always)]
    fn first_at(&self, index: usize) -> Option<u32> {
        if index < NR_PCP_TYPES {
            self.mags[index].first()
        } else {
            self.lists[index - NR_PCP_TYPES].first()
        }
    }

    /// Takes the last (coldest) block of list `index`, its record left as
    /// it was.
    fn pop_back_at(&mut self, pages: &PageTable, index: usize) -> Option<u32> {
        if index < NR_PCP_TYPES {
            return self.mags[index].pop_back();
        }
        let list = &mut self.lists[index - NR_PCP_TYPES];
        let idx = list.last()?;
        list.remove(pages, idx);
        Some(idx)
    }

    /// Bytes the magazines hold.
    pub(crate) fn magazine_bytes(&self) -> usize {
        self.mags.iter().map(Magazine::bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pagesets of the sample machine's `/proc/zoneinfo` (2 CPUs):
    /// managed pages and low watermark in, batch/high_min/high_max out.
    #[test]
    fn sizing_matches_the_linux_sample() {
        let config = Config::default();
        for (managed, low, batch, high_min, high_max) in [
            (3840, 77, 1, 38, 240),
            (772_497, 15_710, 63, 7855, 48_281),
            (262_144, 5331, 63, 2665, 16_384),
        ] {
            let pcp = Pcp::new(managed, low, 2, &config);
            assert_eq!(
                (pcp.batch, pcp.high_min, pcp.high_max),
                (batch, high_min, high_max),
                "managed {managed}"
            );
        }
        let fixed = Config {
            pcp_high: PcpHigh::Fixed,
            ..Config::default()
        };
        let pcp = Pcp::new(262_144, 5331, 2, &fixed);
        assert_eq!(pcp.high_max, pcp.high_min);
    }

    #[test]
    fn a_low_watermark_above_an_eighth_of_the_zone_orders_the_bounds() {
        // watermark_scale_factor 3000 on one CPU: low ~79k pages, an eighth
        // of the zone 32k.
        let pcp = Pcp::new(262_144, 79_000, 1, &Config::default());
        assert!(pcp.high_min <= pcp.high_max, "{pcp:?}");
        assert_eq!(pcp.high, pcp.high_min);
        // The whole allocator with that setting refills, frees and drains.
        let config = Config {
            watermark_scale_factor: 3000,
            zone_bounds: crate::ZoneBounds::NORMAL_ONLY,
            ..Config::default()
        };
        let map =
            crate::MemoryMap::contiguous(crate::Pfn(0x4_0000), crate::PageCount(262_144)).unwrap();
        let a: crate::Allocator = crate::Allocator::new(map, config).unwrap();
        let pages: alloc::vec::Vec<_> = (0..5000)
            .map(|_| a.alloc(Order::ZERO, crate::AllocFlags::KERNEL).unwrap())
            .collect();
        for p in pages {
            a.free(p, Order::ZERO).unwrap();
        }
        a.drain_all();
        a.check_invariants().unwrap();
    }

    #[test]
    fn list_indices_round_trip() {
        let pb = Order::new(9).unwrap();
        for order in (0..=COSTLY_ORDER).filter_map(Order::new).chain([pb]) {
            for mt in [
                MigrateType::Unmovable,
                MigrateType::Movable,
                MigrateType::Reclaimable,
            ] {
                let i = pcp_index(order, mt, pb).unwrap();
                assert!(i < NR_PCP_LISTS);
                assert_eq!(list_order(i, pb), order);
            }
        }
        assert_eq!(
            pcp_index(Order::new(4).unwrap(), MigrateType::Movable, pb),
            None
        );
        assert_eq!(pcp_migratetype(MigrateType::Isolate), None);
        assert_eq!(
            pcp_migratetype(MigrateType::HighAtomic),
            Some(MigrateType::Movable)
        );
    }
}
