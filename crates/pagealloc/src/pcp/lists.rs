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
//! time, the same way. Lists hold orders `0..=3` per ordinary migratetype
//! and the pageblock order (Linux `NR_PCP_LISTS` with THP; which list a
//! block goes on is `pcp::index`): order 0 in [`Magazine`]s (rings of page
//! indices), the others threaded through the page table's link slots like
//! the buddy lists. Sizing and the tuning of `high` are `pcp::tuning`.

use lock_api::RawMutex;

use crate::config::Config;
use crate::engine::buddy::FreePlacement;
use crate::engine::free_list::ListHead;
use crate::engine::page::{PageMeta, PageState, PageTable, NIL};
use crate::engine::watermark::AllocMode;
use crate::engine::zone::{Zone, ZoneCore, ZoneOps};
use crate::pcp::index::{list_order, FreeLists, PcpList, NR_LINKED_LISTS, NR_PCP_LISTS};
use crate::pcp::magazine::Magazine;
use crate::pcp::tuning::Tuning;
use crate::stats::VmStats;
use crate::units::{MigrateType, Order, Pfn, NR_PCP_TYPES, NR_ZONE_TYPES};

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
                high: p.tune.high,
                high_min: p.tune.high_min,
                high_max: p.tune.high_max,
                batch: p.tune.batch,
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
    /// Batch and high mark, and their tuning.
    pub(crate) tune: Tuning,
    /// With memory regions (seed 000): the region of the first block the
    /// last refill brought, the lowest the zone had then (`u32::MAX`
    /// before any refill).
    low_region: u32,
    /// What happened under this lock.
    pub(crate) stats: VmStats,
}

impl Pcp {
    pub(crate) fn new(managed: u64, low_wmark: u64, nr_cpus: u64, config: &Config) -> Pcp {
        Pcp {
            low_region: u32::MAX,
            mags: [Magazine::EMPTY; NR_PCP_TYPES],
            lists: [ListHead::EMPTY; NR_LINKED_LISTS],
            free_lists: FreeLists::new(config),
            count: 0,
            tune: Tuning::new(managed, low_wmark, nr_cpus, config),
            stats: VmStats::default(),
        }
    }

    /// Sizes the lists again for a zone whose managed pages or low
    /// watermark changed (Linux `zone_pcp_update` after memory hotplug),
    /// keeping the pages they hold.
    pub(crate) fn resize(&mut self, managed: u64, low_wmark: u64, nr_cpus: u64, config: &Config) {
        self.tune.resize(managed, low_wmark, nr_cpus, config);
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
        let batch = self
            .tune
            .refill_batch(order, zone.core.is_below_high(), self.count);
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
        self.tune.taken(1);
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
            self.tune.taken(n);
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
        self.count += order.nr_pages().0;
        self.stats.count_free(order);
        let (high, free_high) = self
            .tune
            .freed(order, self.count, zone.core.is_below_high());
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
        let amount = self.tune.drain_amount(high, free_high, self.count);
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

    /// The first entry of a linked list whose back link does not name the
    /// entry before it (or whose last entry is not the list's last), for
    /// the invariant walk.
    pub(crate) fn broken_back_link(&self, z: &ZoneCore) -> Option<u32> {
        for list in &self.lists {
            let mut prev = NIL;
            for idx in list.iter(&z.pages) {
                if z.pages.prev(idx) != prev {
                    return Some(idx);
                }
                prev = idx;
            }
            if list.last().unwrap_or(NIL) != prev {
                return Some(prev);
            }
        }
        None
    }

    /// Every list's length and entries in order (magazines first, then
    /// the linked lists), for the allocator's digest.
    pub(crate) fn contents(&self, z: &ZoneCore) -> alloc::vec::Vec<u64> {
        let mut words = alloc::vec::Vec::new();
        for mag in &self.mags {
            let entries: alloc::vec::Vec<u64> = mag.iter().map(u64::from).collect();
            words.push(entries.len() as u64);
            words.extend(entries);
        }
        for list in &self.lists {
            words.push(list.len());
            words.extend(list.iter(&z.pages).map(u64::from));
        }
        words
    }

    /// Bytes the magazines hold.
    pub(crate) fn magazine_bytes(&self) -> usize {
        self.mags.iter().map(Magazine::bytes).sum()
    }
}
