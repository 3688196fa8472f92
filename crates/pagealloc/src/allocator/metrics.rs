//! Counters and sizes: what the allocator holds, summed over zones and
//! CPUs. The readers that need every CPU's lists take them in the lock
//! order; a thread holding [`LocalLists`](crate::LocalLists) calls the same
//! readers through its guard, which lets go of its lists for the call.

use crate::sync::atomic::Ordering;
use alloc::vec::Vec;

use lock_api::RawMutex;

use super::slot::CpuSlot;
use super::Allocator;
use crate::pcp::lists::{CpuLists, Pcp};
use crate::stats::VmStats;
use crate::units::{MigrateType, Pfn};

impl<R: RawMutex> Allocator<R> {
    /// The counters, summed over zones and CPUs.
    pub fn stats(&self) -> VmStats {
        let mut total = VmStats::default();
        for zone in &self.zones {
            total.merge(&zone.free.lock().stats);
        }
        self.for_each_cpu_lists(|lists| {
            for pcp in lists.zones.iter() {
                total.merge(&pcp.stats);
            }
        });
        for (slot, failed) in total.alloc_fail.iter_mut().zip(&self.failures) {
            *slot += failed.load(Ordering::Relaxed);
        }
        total.split_pages += self.split_pages.load(Ordering::Relaxed);
        total.report_passes += self.report_passes.load(Ordering::Relaxed);
        total
    }

    /// Calls `f` with every CPU's lists, locking each in turn.
    fn for_each_cpu_lists(&self, mut f: impl FnMut(&CpuLists)) {
        for slot in self.cpus.iter() {
            f(&slot.lists.lock());
        }
    }

    /// Free pages on the buddy lists of all zones (isolated ones excepted),
    /// and in regions the region allocator holds (seed 000).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.free.lock().nr_free_pages).sum()
    }

    /// Pages sitting on per-CPU lists.
    pub fn nr_pcp_pages(&self) -> u64 {
        let mut total = 0;
        self.for_each_cpu_lists(|lists| total += lists.count());
        total
    }

    /// Pages on per-CPU lists, per zone (in the order of [`Allocator::zones`]).
    pub fn nr_pcp_pages_per_zone(&self) -> Vec<u64> {
        let mut per_zone = alloc::vec![0; self.zones.len()];
        self.for_each_cpu_lists(|lists| {
            for (slot, pcp) in per_zone.iter_mut().zip(lists.zones.iter()) {
                *slot += pcp.count;
            }
        });
        per_zone
    }

    /// Pages in allocated blocks: everything present that is neither on a
    /// free list nor on a per-CPU list.
    ///
    /// Every lock is held while the pages are summed (the lock order), so
    /// a refill cannot count its pages both free and cached.
    pub fn nr_allocated_pages(&self) -> u64 {
        let held = self.hold_all();
        let cached: u64 = held.cpus.iter().map(|l| l.count()).sum();
        let free_anywhere: u64 = held
            .zones
            .iter()
            .map(|g| g.free_areas().nr_free_all())
            .sum();
        let managed: u64 = self.zones.iter().map(|z| z.core.nr_managed()).sum();
        managed.saturating_sub(free_anywhere + cached)
    }

    /// Bytes of metadata the allocator keeps: every zone's
    /// [`Zone::metadata_bytes`](crate::Zone::metadata_bytes), the per-CPU
    /// list heads and order-0 magazines, and itself. It takes every CPU's
    /// lists in turn, so a [`crate::LocalLists`] holder must not call it.
    pub fn metadata_bytes(&self) -> u64 {
        let zones: u64 = self.zones.iter().map(|z| z.metadata_bytes()).sum();
        let pcp = (self.cpus.len()
            * (core::mem::size_of::<CpuSlot<R>>() + self.zones.len() * core::mem::size_of::<Pcp>()))
            as u64;
        // The order-0 magazines' rings, as large as they have grown.
        let magazines: u64 = self
            .cpus
            .iter()
            .map(|slot| {
                let lists = slot.lists.lock();
                lists
                    .zones
                    .iter()
                    .map(|p| p.magazine_bytes() as u64)
                    .sum::<u64>()
            })
            .sum();
        zones + pcp + magazines + core::mem::size_of::<Self>() as u64
    }

    /// The migratetype of the pageblock holding `pfn`, or `None` if no zone
    /// spans it.
    pub fn pageblock_migratetype(&self, pfn: Pfn) -> Option<MigrateType> {
        self.zone_of(pfn).map(|z| z.core.block_mt(pfn))
    }
}
