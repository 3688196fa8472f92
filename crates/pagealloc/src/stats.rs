//! Event counters, after `/proc/vmstat`.

use crate::events::FallbackEvent;
use crate::units::{Order, MAX_NR_ORDERS};

/// Counters of what the allocator did since it was built.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct VmStats {
    /// Successful allocations per order.
    pub alloc_calls: [u64; MAX_NR_ORDERS],
    /// Pages allocated (`pgalloc_*` summed).
    pub pgalloc: u64,
    /// Frees per order.
    pub free_calls: [u64; MAX_NR_ORDERS],
    /// Pages freed (`pgfree`).
    pub pgfree: u64,
    /// Failed allocations per order.
    pub alloc_fail: [u64; MAX_NR_ORDERS],
    /// Allocations served from another migratetype's lists (Linux's
    /// `mm_page_alloc_extfrag` events).
    pub extfrag_events: u64,
    /// Of those, the ones that split a block smaller than a pageblock and so
    /// mixed types inside a pageblock (`fragmenting=1`).
    pub extfrag_fragmenting: u64,
    /// Fallbacks that claimed the pageblock for the requested type
    /// (`change_ownership=1`).
    pub pageblock_claims: u64,
    /// Pageblocks reserved for high-order atomic allocations.
    pub highatomic_reserved: u64,
    /// Reserved pageblocks given back.
    pub highatomic_unreserved: u64,
    /// Allocated blocks split into order-0 pages by `split_page`.
    pub split_pages: u64,
    /// Pages moved from per-CPU lists back to the buddy lists (Linux's
    /// `mm_page_pcpu_drain` events, counted in pages).
    pub pcp_drained: u64,
    /// Free page reporting (seed 002): passes run.
    pub report_passes: u64,
    /// Batches handed to the sink.
    pub report_batches: u64,
    /// Batches the sink refused (left unreported).
    pub report_failures: u64,
    /// Pages the sink accepted, counted at each report (a block merged
    /// and reported again at its new order counts again).
    pub reported_pages: u64,
    /// Pages of reported blocks taken again for allocations: what the host
    /// must fault back in (the cost of reporting).
    pub reported_reallocated: u64,
    /// Contiguous allocation (seed 003): pages migrated out of a range
    /// (`pgmigrate_success`).
    pub pgmigrate_success: u64,
    /// Pages whose migration the migrator refused (`pgmigrate_fail`).
    pub pgmigrate_fail: u64,
    /// Contiguous ranges taken (`alloc_contig_range` successes, CMA's
    /// included).
    pub contig_alloc_success: u64,
    /// Contiguous ranges that could not be taken after isolation.
    pub contig_alloc_fail: u64,
    /// `cma_alloc` calls served (`cma_alloc_success`).
    pub cma_alloc_success: u64,
    /// `cma_alloc` calls that failed (`cma_alloc_fail`).
    pub cma_alloc_fail: u64,
    /// Compaction: allocations that compacted before retrying
    /// (`compact_stall`).
    pub compact_stall: u64,
    /// Of those, the ones still failing after compaction (`compact_fail`).
    pub compact_fail: u64,
    /// And the ones compaction let succeed (`compact_success`).
    pub compact_success: u64,
    /// Pages the migrate scanner looked at (`compact_migrate_scanned`).
    pub compact_migrate_scanned: u64,
    /// Pages the free scanner looked at (`compact_free_scanned`).
    pub compact_free_scanned: u64,
    /// Pages taken for migration, moved or not (`compact_isolated`).
    pub compact_isolated: u64,
    /// Proactive compaction runs, as kcompactd's wake-ups
    /// (`compact_daemon_wake`).
    pub compact_daemon_wake: u64,
    /// Confinement (`Confinement::LowEnd`): wholly free pageblocks claimed
    /// for unmovable or reclaimable memory at the low end of a zone (each
    /// also a pageblock claim among the fallback events).
    pub confined_claims: u64,
    /// Pageblocks of the confined area given back to movable because they
    /// became wholly free.
    pub confined_releases: u64,
    /// Allocations served by Linux's fallback while confinement is on, the
    /// last resort: an unmovable or reclaimable one in a pageblock claimed
    /// or stolen away from the low end, or a movable one in the confined
    /// area (each also a fallback event).
    pub confined_fallbacks: u64,
    /// Pageblocks emptied by migration so that unmovable or reclaimable
    /// memory could claim one without a fallback
    /// ([`Allocator::alloc_confining`](crate::Allocator::alloc_confining)):
    /// confinement's area growing, or small-order packing's new pageblock
    /// ([`Packing::evacuates_for`](crate::Packing::evacuates_for)).
    pub confined_evacuations: u64,
    /// Pages those evacuations migrated.
    pub confined_evacuated_pages: u64,
    /// Evacuations given up (a block refused to move, or no destination).
    pub confined_evacuation_fail: u64,
}

impl VmStats {
    pub(crate) fn count_alloc(&mut self, order: Order) {
        self.alloc_calls[order.idx()] += 1;
        self.pgalloc += order.nr_pages().0;
    }

    pub(crate) fn count_free(&mut self, order: Order) {
        self.free_calls[order.idx()] += 1;
        self.pgfree += order.nr_pages().0;
    }

    pub(crate) fn count_fallback(&mut self, event: &FallbackEvent, pageblock: Order) {
        self.extfrag_events += 1;
        if event.fragmenting(pageblock) {
            self.extfrag_fragmenting += 1;
        }
        if event.change_ownership {
            self.pageblock_claims += 1;
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &VmStats) {
        for (a, b) in self.alloc_calls.iter_mut().zip(other.alloc_calls) {
            *a += b;
        }
        for (a, b) in self.free_calls.iter_mut().zip(other.free_calls) {
            *a += b;
        }
        for (a, b) in self.alloc_fail.iter_mut().zip(other.alloc_fail) {
            *a += b;
        }
        self.pgalloc += other.pgalloc;
        self.pgfree += other.pgfree;
        self.extfrag_events += other.extfrag_events;
        self.extfrag_fragmenting += other.extfrag_fragmenting;
        self.pageblock_claims += other.pageblock_claims;
        self.highatomic_reserved += other.highatomic_reserved;
        self.highatomic_unreserved += other.highatomic_unreserved;
        self.split_pages += other.split_pages;
        self.pcp_drained += other.pcp_drained;
        self.report_passes += other.report_passes;
        self.report_batches += other.report_batches;
        self.report_failures += other.report_failures;
        self.reported_pages += other.reported_pages;
        self.reported_reallocated += other.reported_reallocated;
        self.pgmigrate_success += other.pgmigrate_success;
        self.pgmigrate_fail += other.pgmigrate_fail;
        self.contig_alloc_success += other.contig_alloc_success;
        self.contig_alloc_fail += other.contig_alloc_fail;
        self.cma_alloc_success += other.cma_alloc_success;
        self.cma_alloc_fail += other.cma_alloc_fail;
        self.compact_stall += other.compact_stall;
        self.compact_fail += other.compact_fail;
        self.compact_success += other.compact_success;
        self.compact_migrate_scanned += other.compact_migrate_scanned;
        self.compact_free_scanned += other.compact_free_scanned;
        self.compact_isolated += other.compact_isolated;
        self.compact_daemon_wake += other.compact_daemon_wake;
        self.confined_claims += other.confined_claims;
        self.confined_releases += other.confined_releases;
        self.confined_fallbacks += other.confined_fallbacks;
        self.confined_evacuations += other.confined_evacuations;
        self.confined_evacuated_pages += other.confined_evacuated_pages;
        self.confined_evacuation_fail += other.confined_evacuation_fail;
    }

    /// Failed allocations, all orders.
    pub fn total_alloc_fail(&self) -> u64 {
        self.alloc_fail.iter().sum()
    }
}
