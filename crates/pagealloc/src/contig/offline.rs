//! Memory offline and online (Linux `offline_pages` / `online_pages`) on
//! the contiguous machinery: offlining isolates a range, migrates what is
//! movable out of it and takes it out of the zone's managed pages;
//! onlining frees it into the buddy lists again. Both change the zone's
//! managed pages, so both take the allocator exclusively and recompute the
//! watermarks, lowmem reserves and per-CPU list sizes, as Linux does under
//! the hotplug lock.

use lock_api::RawMutex;

use super::isolate::Caller;
use super::migrate::Migrator;
use super::range::{ContigAlloc, Taken};
use crate::allocator::Allocator;
use crate::engine::buddy::FreePlacement;
use crate::engine::page::{PageMeta, PageState};
use crate::engine::watermark::setup_zone_watermarks;
use crate::error::{ContigError, RangeProblem};
use crate::units::{PageCount, Pfn};

impl<R: RawMutex> Allocator<R> {
    /// The zone of the whole-pageblock range `start..start + nr`, or why
    /// it cannot be offlined or onlined.
    fn hotplug_zone(&self, start: Pfn, nr: PageCount) -> Result<usize, ContigError> {
        let end = Pfn(start.0.saturating_add(nr.0));
        let pb = self.config.pageblock();
        if nr.0 != 0 && (!start.is_aligned(pb) || !nr.0.is_multiple_of(pb.nr_pages().0)) {
            return Err(ContigError::Range {
                start,
                end,
                problem: RangeProblem::Misaligned,
            });
        }
        self.contig_zone(start, end)
    }

    /// Takes the whole pageblocks `start..start + nr` offline (Linux
    /// `offline_pages`): isolates them, migrates their movable allocations
    /// through `migrator`, and takes every page out of the zone's managed
    /// pages; the watermarks follow. Pages already offline, unmovable
    /// allocations and CMA pageblocks refuse. On error nothing is offline.
    pub fn offline_pages<M: Migrator + ?Sized>(
        &mut self,
        start: Pfn,
        nr: PageCount,
        migrator: &mut M,
    ) -> Result<ContigAlloc, ContigError> {
        let zi = self.hotplug_zone(start, nr)?;
        let end = Pfn(start.0 + nr.0);
        let done = self.take_contig(zi, start, end, Caller::Offline, Taken::Offline, migrator)?;
        self.zones[zi].core.nr_offline += nr.0;
        setup_zone_watermarks(&mut self.zones, &self.config);
        self.resize_pcps();
        Ok(done)
    }

    /// Brings the whole pageblocks `start..start + nr`, all offline, back
    /// into service (Linux `online_pages`): their pages are freed to the
    /// tail of the buddy lists and counted as managed again; the
    /// watermarks follow. If any page of the range is not offline, nothing
    /// changes.
    pub fn online_pages(&mut self, start: Pfn, nr: PageCount) -> Result<(), ContigError> {
        let zi = self.hotplug_zone(start, nr)?;
        let end = Pfn(start.0 + nr.0);
        let zone = &self.zones[zi];
        let z = &zone.core;
        {
            let mut guard = zone.lock();
            z.try_for_each_head_overlapping(start, end, |pfn, meta| {
                let inside = pfn >= start && pfn.0 + meta.order().nr_pages().0 <= end.0;
                if meta.state() == PageState::OfflineHead && inside {
                    Ok(())
                } else {
                    Err(ContigError::NotOffline {
                        pfn: pfn.max(start),
                    })
                }
            })?;
            for idx in z.idx(start)..z.idx(end) {
                z.pages.set(idx, PageMeta::TAIL);
            }
            guard.ops().free_range(start, end, FreePlacement::Tail);
        }
        self.zones[zi].core.nr_offline -= nr.0;
        setup_zone_watermarks(&mut self.zones, &self.config);
        self.resize_pcps();
        Ok(())
    }
}
