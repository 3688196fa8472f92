//! CMA allocation (Linux `mm/cma.c`): each area keeps a bitmap, one bit
//! per `2^order_per_bit` pages, of what `cma_alloc` handed out. An
//! allocation finds a clear, aligned run of bits under the area's lock,
//! sets it, and takes the frames with the contiguous machinery (CMA
//! pageblocks allowed); if the range is busy it clears the bits and tries
//! further on.

use alloc::vec::Vec;

use lock_api::RawMutex;

use super::isolate::Caller;
use super::migrate::Migrator;
use super::range::{ContigAlloc, Taken};
use crate::allocator::Allocator;
use crate::config::CmaArea;
use crate::error::{ContigError, RangeProblem};
use crate::units::{Order, PageCount, Pfn};

impl<R: RawMutex> Allocator<R> {
    /// The CMA areas, placed, in the order [`Allocator::cma_alloc`] numbers
    /// them: the configuration's fixed areas, then its reservations.
    pub fn cma_areas(&self) -> Vec<CmaArea> {
        self.cma.iter().map(|c| c.area).collect()
    }

    /// Pages of CMA area `area` handed out by [`Allocator::cma_alloc`] (its
    /// set bits, in pages).
    pub fn cma_used_pages(&self, area: usize) -> Result<PageCount, ContigError> {
        let state = self.cma.get(area).ok_or(ContigError::NoSuchArea { area })?;
        Ok(PageCount(
            state.bitmap.lock().count() << state.area.order_per_bit,
        ))
    }

    /// Allocates `count` contiguous pages from CMA area `area`, starting at
    /// a multiple of `2^align` pages (Linux `cma_alloc`): finds a clear run
    /// of the area's bitmap, marks it, and takes those frames, migrating
    /// the movable allocations in them through `migrator`; on a busy range
    /// it clears the bits and tries further on. Freed with
    /// [`Allocator::cma_release`]. Counted in `cma_alloc_success` /
    /// `cma_alloc_fail`.
    pub fn cma_alloc<M: Migrator + ?Sized>(
        &self,
        area: usize,
        count: PageCount,
        align: Order,
        migrator: &mut M,
    ) -> Result<ContigAlloc, ContigError> {
        let state = self.cma.get(area).ok_or(ContigError::NoSuchArea { area })?;
        let a = state.area;
        if count.0 == 0 || count.0 > a.nr_pages.0 {
            return Err(ContigError::Range {
                start: a.start,
                end: Pfn(a.start.0 + count.0),
                problem: if count.0 == 0 {
                    RangeProblem::Empty
                } else {
                    RangeProblem::OutOfRange
                },
            });
        }
        let nbits = count.0.div_ceil(1 << a.order_per_bit) as usize;
        let aligned = |bit: usize| state.pfn(bit).is_aligned(align);
        let mut from = 0;
        let mut tried = 0;
        let outcome = loop {
            let found = {
                let mut bitmap = state.bitmap.lock();
                let found = bitmap.find_clear_run(from, nbits, aligned);
                if let Some(bit) = found {
                    bitmap.set_range(bit, nbits, true);
                }
                found
            };
            let Some(bit) = found else {
                break Err(ContigError::NotFound { tried });
            };
            let start = state.pfn(bit);
            let end = Pfn(start.0 + count.0);
            match self.take_contig(state.zone, start, end, Caller::Cma, Taken::Run, migrator) {
                Ok(mut done) => {
                    done.failed_candidates = tried;
                    break Ok(done);
                }
                Err(e) => {
                    state.bitmap.lock().set_range(bit, nbits, false);
                    match e {
                        // Further on: past the page that failed, as
                        // `alloc_contig_pages` goes on.
                        ContigError::Busy { pfn, .. }
                        | ContigError::Isolated { pfn }
                        | ContigError::Unmovable { pfn } => {
                            tried += 1;
                            let past = if pfn >= start && pfn < end {
                                state.bit(pfn) + 1
                            } else {
                                bit + 1
                            };
                            from = past.max(bit + 1);
                        }
                        other => break Err(other),
                    }
                }
            }
        };
        let mut zone = self.zones[state.zone].lock();
        let stats = &mut zone.ops().f.stats;
        match outcome {
            Ok(_) => stats.cma_alloc_success += 1,
            Err(_) => stats.cma_alloc_fail += 1,
        }
        outcome
    }

    /// Frees `count` pages from `pfn` that [`Allocator::cma_alloc`] took
    /// from area `area` and clears their bits (Linux `cma_release`). Every
    /// page must be part of an allocated run of this area, or nothing is
    /// freed.
    pub fn cma_release(&self, area: usize, pfn: Pfn, count: PageCount) -> Result<(), ContigError> {
        let state = self.cma.get(area).ok_or(ContigError::NoSuchArea { area })?;
        let a = state.area;
        let end = pfn.0.checked_add(count.0);
        let inside = pfn >= a.start && end.is_some_and(|e| e <= a.start.0 + a.nr_pages.0);
        if count.0 == 0 || !inside {
            return Err(ContigError::NotContig { pfn });
        }
        let first = state.bit(pfn);
        let last = state.bit(Pfn(pfn.0 + count.0 - 1));
        let unset = (first..=last).find(|&b| !state.bitmap.lock().get(b));
        if let Some(bit) = unset {
            return Err(ContigError::NotContig {
                pfn: state.pfn(bit).max(pfn),
            });
        }
        // The bitmap lock is never held while a zone lock is taken
        // (`check_invariants` takes them the other way round): the pages go
        // first, then their bits, so a set bit always covers a taken page.
        self.free_contig_range(pfn, count)?;
        state
            .bitmap
            .lock()
            .set_range(first, last - first + 1, false);
        Ok(())
    }
}
