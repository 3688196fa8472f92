//! The reporting cycle on one zone with its lock held (Linux
//! `page_reporting_cycle`): take unreported free blocks off a list for a
//! batch, and put a batch back, marked reported or not.

use crate::engine::buddy::FreePlacement;
use crate::engine::page::{PageMeta, PageState};
use crate::engine::zone::ZoneOps;
use crate::units::{MigrateType, Order, Pfn};

/// One free block handed to a [`ReportSink`](crate::ReportSink).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReportedBlock {
    /// First frame.
    pub pfn: Pfn,
    /// Order: the block is `2^order` pages.
    pub order: Order,
}

impl ZoneOps<'_> {
    /// Whether the zone has room to report (Linux: free pages at least the
    /// low watermark plus a whole batch of the reporting order).
    pub(crate) fn can_report(&self, order: Order, capacity: u16) -> bool {
        let need = self.z.watermarks.low + (u64::from(capacity) << order.get());
        self.f.nr_free_pages >= need
    }

    /// Takes the first unreported block of the list of `order` and `mt` off
    /// the list into the in-flight state, if the zone stays above its min
    /// watermark without it (Linux `__isolate_free_page`). Unreported
    /// blocks are the list's head part, so the next one is always first:
    /// the list needs no rotation to resume where a pass stopped.
    pub(crate) fn take_for_report(
        &mut self,
        order: Order,
        mt: MigrateType,
    ) -> Option<ReportedBlock> {
        let idx = self.first_free(order, mt)?;
        if self.z.pages.get(idx).flag() {
            return None; // only reported blocks are left
        }
        let nr = order.nr_pages().0;
        if mt != MigrateType::Isolate && self.f.nr_free_pages < self.z.watermarks.min + nr {
            return None;
        }
        self.del_free(idx, order, mt);
        self.z
            .pages
            .set(idx, PageMeta::head(PageState::ReportingHead, order));
        self.f.nr_reporting_pages += nr;
        Some(ReportedBlock {
            pfn: self.z.pfn(idx),
            order,
        })
    }

    /// Puts a batch taken by [`ZoneOps::take_for_report`] back on the lists:
    /// marked reported at the tails when the sink took it (and the block
    /// merged with nothing on the way back), plain free blocks otherwise.
    pub(crate) fn put_back_reported(&mut self, batch: &[ReportedBlock], accepted: bool) {
        let placement = if accepted {
            FreePlacement::Reported
        } else {
            FreePlacement::Tail
        };
        for block in batch {
            let idx = self.z.idx(block.pfn);
            self.z.pages.set(idx, PageMeta::TAIL);
            self.f.nr_reporting_pages -= block.order.nr_pages().0;
            let mt = self.z.block_mt(block.pfn);
            self.free_one(block.pfn, block.order, mt, placement);
            if accepted {
                self.f.stats.reported_pages += block.order.nr_pages().0;
            }
        }
    }

    /// Puts every in-flight block back as a plain free block: a snapshot
    /// taken while a report was in flight has no pass to finish it.
    pub(crate) fn reclaim_in_flight(&mut self) {
        if self.f.nr_reporting_pages == 0 {
            return;
        }
        let mut blocks = alloc::vec::Vec::new();
        self.z.for_each_head(self.z.start, self.z.end, |pfn, meta| {
            if meta.state() == PageState::ReportingHead {
                blocks.push(ReportedBlock {
                    pfn,
                    order: meta.order(),
                });
            }
        });
        self.put_back_reported(&blocks, false);
    }
}
