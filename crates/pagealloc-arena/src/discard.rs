//! Giving free frames' memory back to the OS with `madvise`.
//!
//! A caller discards a range it knows is free, with `&mut Arena`, and the
//! arena checks that it is. Free page reporting (`report.rs`) gives back
//! the blocks the engine reports, with `&Arena`, through the same advice
//! and the same `MADV_FREE` bookkeeping.

use pagealloc::{Order, PageCount, Pfn};
use rustix::mm;

use crate::error::DiscardError;
use crate::Arena;

/// What the kernel is told about a free range.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Advice {
    /// `MADV_DONTNEED`: the pages are dropped during the call (the resident
    /// set shrinks at once) and read back as zeros.
    DontNeed,
    /// `MADV_FREE` (Linux 4.5+): the kernel drops the pages only when it
    /// runs short of memory, so the call is cheaper and a frame reused
    /// before then costs no page fault; until dropped they still count as
    /// resident (see [`lazy_free_bytes`](crate::lazy_free_bytes)). A frame
    /// reused before it is dropped may still hold its old bytes.
    Free,
}

impl Advice {
    /// The name Linux gives the advice.
    pub const fn linux_name(self) -> &'static str {
        match self {
            Advice::DontNeed => "MADV_DONTNEED",
            Advice::Free => "MADV_FREE",
        }
    }

    /// The advice as `rustix` spells it.
    pub(crate) fn to_rustix(self) -> mm::Advice {
        match self {
            Advice::DontNeed => mm::Advice::LinuxDontNeed,
            Advice::Free => mm::Advice::LinuxFree,
        }
    }
}

impl Arena {
    /// Gives the memory of the free block `pfn`/`order` back to the OS:
    /// [`Arena::discard_range`] over its `2^order` frames. This is the shape
    /// of what free page reporting hands its sink (a block and its order).
    pub fn discard(&mut self, pfn: Pfn, order: Order, advice: Advice) -> Result<(), DiscardError> {
        self.discard_range(pfn, order.nr_pages(), advice)
    }

    /// Gives the memory of `nr_pages` free frames from `start` back to the
    /// OS with `madvise(advice)`. The frames stay free in the allocator and
    /// can be allocated again at once; the kernel backs them anew when they
    /// are touched.
    ///
    /// Every frame must be in the arena ([`DiscardError::OutOfArena`]) and
    /// in no allocated block ([`DiscardError::Allocated`]); frames cached
    /// on per-CPU lists are free. Nothing is done on an error.
    ///
    /// It takes `&mut self` so that no allocation can take a frame of the
    /// range between the check and the advice, and no slice of the arena is
    /// live while the kernel drops bytes. [`Arena::report_pass`] does not
    /// need that: the engine takes the blocks it reports off the free lists
    /// for the time of the report (Linux's `page_reporting_cycle`), which
    /// is the same guarantee, per block, with `&self`.
    ///
    /// The check walks the range's frames, so it costs time in proportion
    /// to its length; the advice itself is one system call.
    pub fn discard_range(
        &mut self,
        start: Pfn,
        nr_pages: PageCount,
        advice: Advice,
    ) -> Result<(), DiscardError> {
        let out = DiscardError::OutOfArena { start, nr_pages };
        let Some(end) = start.checked_add(nr_pages) else {
            return Err(out);
        };
        if start < self.start || end > self.end_pfn() {
            return Err(out);
        }
        if nr_pages.0 == 0 {
            return Ok(());
        }
        self.check_free(start, end)?;
        let (first, count) = (self.page_index(start), nr_pages.0 as usize);
        if advice == Advice::Free {
            // Marked before the call: if it fails part way, a page marked
            // but not freed costs one write when allocated, no more.
            self.lazy_marks().mark(first, count);
        }
        let shift = self.page_shift();
        self.mapping
            .advise(first << shift, count << shift, advice.to_rustix())
            .map_err(|source| DiscardError::Advise {
                start,
                nr_pages,
                advice,
                source,
            })?;
        if let (Advice::DontNeed, Some(lazy)) = (advice, self.lazy.get()) {
            lazy.clear(first, count);
        }
        Ok(())
    }

    /// The first allocated block overlapping `start..end`, as the error.
    ///
    /// Blocks are naturally aligned, so a block that starts before `start`
    /// and covers it starts at `start` rounded down to its order: one look
    /// per order finds it. Any other overlapping block starts inside the
    /// range.
    fn check_free(&self, start: Pfn, end: Pfn) -> Result<(), DiscardError> {
        let allocated = |pfn: Pfn| self.allocator.allocated_block(pfn).map(|(order, _)| order);
        let orders = (1..self.allocator.config().nr_orders).filter_map(Order::new);
        for order in orders {
            let head = start.align_down(order);
            if head < self.start || head == start {
                continue;
            }
            if let Some(order) = allocated(head) {
                if head
                    .checked_add(order.nr_pages())
                    .is_some_and(|e| e > start)
                {
                    return Err(DiscardError::Allocated { pfn: head, order });
                }
            }
        }
        for pfn in (start.0..end.0).map(Pfn) {
            if let Some(order) = allocated(pfn) {
                return Err(DiscardError::Allocated { pfn, order });
            }
        }
        Ok(())
    }
}
