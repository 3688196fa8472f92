//! The part of a zone behind its lock: per order and migratetype the free
//! lists, and the free counters (Linux `struct free_area` and the zone's
//! `NR_FREE_*` counters).

use alloc::vec::Vec;

use crate::engine::free_list::ListHead;
use crate::engine::page::NIL;
use crate::region::book::Regions;
use crate::stats::VmStats;
use crate::units::{MigrateType, Order, Pfn, MAX_NR_ORDERS, NR_MIGRATE_TYPES};

/// Per order: one list per migratetype and the number of free blocks (Linux
/// `struct free_area`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FreeArea {
    pub lists: [ListHead; NR_MIGRATE_TYPES],
    pub nr_free: u64,
    /// Per list: the first block of its tail run of reported blocks (seed
    /// 002), or `NIL`. Reported blocks always form the tail of their list,
    /// so allocation, which takes from the head, uses them last, and an
    /// unreported block placed "at the tail" goes just before this one.
    pub first_reported: [u32; NR_MIGRATE_TYPES],
}

impl Default for FreeArea {
    fn default() -> FreeArea {
        FreeArea {
            lists: [ListHead::EMPTY; NR_MIGRATE_TYPES],
            nr_free: 0,
            first_reported: [NIL; NR_MIGRATE_TYPES],
        }
    }
}

/// The part of a zone behind its lock.
#[derive(Clone, Debug)]
pub(crate) struct FreeAreas {
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
    /// Free pages in reported blocks on the lists (seed 002).
    pub(crate) nr_reported_pages: u64,
    /// Free pages taken off the lists while a report is in flight: neither
    /// on a list nor allocated (`PageState::ReportingHead`).
    pub(crate) nr_reporting_pages: u64,
    /// Pageblocks carrying the isolate mark (seed 003).
    pub(crate) nr_isolated_pageblocks: u64,
    /// Compaction deferral (Linux `compact_considered`,
    /// `compact_defer_shift`, `compact_order_failed`).
    pub(crate) compact_considered: u32,
    pub(crate) compact_defer_shift: u8,
    /// Evacuation's deferral, as compaction's: after a zone finds no
    /// pageblock to empty, the next `2^shift` confined or packed requests
    /// that would fall back skip it.
    pub(crate) evacuate_considered: u32,
    pub(crate) evacuate_defer_shift: u8,
    pub(crate) compact_order_failed: u8,
    /// Where the last compaction run's scanners stopped (Linux
    /// `compact_cached_migrate_pfn` / `compact_cached_free_pfn`), so the
    /// next run goes on from there; `None` starts at the zone's ends.
    pub(crate) compact_cached: Option<(Pfn, Pfn)>,
    /// What happened under this lock.
    pub(crate) stats: VmStats,
    /// Reused by packed allocation for the heap of its candidate blocks'
    /// keys, so a packed call allocates no memory for them once this has
    /// grown (`compact.rs`).
    pub(crate) pack_scratch: Vec<u64>,
    /// Memory regions (seed 000), if on: the lists' per-region entry
    /// points and the region allocator's book.
    pub(crate) regions: Option<alloc::boxed::Box<Regions>>,
}

impl FreeAreas {
    pub(crate) fn new(regions: Option<alloc::boxed::Box<Regions>>) -> FreeAreas {
        FreeAreas {
            areas: [FreeArea::default(); MAX_NR_ORDERS],
            nonempty: [0; NR_MIGRATE_TYPES],
            nr_free_pages: 0,
            nr_free_cma: 0,
            nr_free_highatomic: 0,
            nr_reserved_highatomic: 0,
            nr_reported_pages: 0,
            nr_reporting_pages: 0,
            nr_isolated_pageblocks: 0,
            compact_considered: 0,
            compact_defer_shift: 0,
            evacuate_considered: 0,
            evacuate_defer_shift: 0,
            compact_order_failed: 0,
            compact_cached: None,
            stats: VmStats::default(),
            pack_scratch: Vec::new(),
            regions,
        }
    }

    /// Free pages anywhere in the zone: on all lists (isolated ones
    /// included), out on a report, and held by the region allocator.
    pub(crate) fn nr_free_all(&self) -> u64 {
        self.nr_listed() + self.nr_reporting_pages + self.nr_held_pages()
    }

    /// Free pages held by the region allocator (seed 000): counted in
    /// `nr_free_pages`, on no list.
    pub(crate) fn nr_held_pages(&self) -> u64 {
        self.regions.as_ref().map_or(0, |r| r.nr_held_pages)
    }

    /// Free pages on all lists, isolated ones included.
    pub(crate) fn nr_listed(&self) -> u64 {
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
