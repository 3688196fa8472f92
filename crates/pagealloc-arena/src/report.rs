//! Free page reporting over real memory: the engine's reporting pass with a
//! sink that `madvise`s each reported block.
//!
//! The engine (seed 002, `pagealloc::Allocator::report_pass`) takes free
//! blocks at or above the reporting order off its free lists into the
//! in-flight state, hands them to a [`ReportSink`] in batches with every
//! zone lock dropped, and puts them back at the tails of their lists,
//! marked reported if the sink said `Ok`. The arena's sink gives each
//! block's bytes back to the OS. While a batch is out, its blocks are free
//! and on no list, so nobody can allocate them and no [`Block`](crate::Block)
//! covers them: that is what lets a pass discard with `&Arena`, while other
//! threads allocate, free and use other blocks (`mapping.rs`, note 15).

use std::io;

use pagealloc::{ReportPass, ReportSink, ReportedBlock, ReportingInfo, ReportingState};

use crate::discard::Advice;
use crate::error::ReportError;
use crate::Arena;

/// The bytes of a block that the engine holds in flight for a report, as
/// the mapping's offset and length: the proof `Mapping::advise_in_flight`
/// takes. Made only by [`Arena::discard_in_flight`], which only the sink
/// below calls, with a block the engine handed it.
pub(crate) struct InFlight {
    /// Where the block's bytes start in the mapping.
    offset_bytes: usize,
    /// How many bytes it has.
    len_bytes: usize,
}

impl InFlight {
    /// Where the block's bytes start in the mapping.
    pub(crate) fn offset_bytes(&self) -> usize {
        self.offset_bytes
    }

    /// How many bytes it has.
    pub(crate) fn len_bytes(&self) -> usize {
        self.len_bytes
    }
}

/// The arena's reporting sink: `madvise(advice)` on each block of a batch.
///
/// Private to this module and only ever handed to
/// `Allocator::report_pass`, so its `report` sees only batches the engine
/// holds in flight. A `madvise` error stops the batch and is returned: the
/// engine then puts the whole batch back unreported (blocks advised before
/// the error stay advised, which is harmless for free memory, and are
/// reported again by a later pass).
struct MadviseSink<'a> {
    /// The arena whose blocks are reported.
    arena: &'a Arena,
    /// What the kernel is told.
    advice: Advice,
}

impl ReportSink for MadviseSink<'_> {
    type Error = io::Error;

    fn report(&mut self, batch: &[ReportedBlock]) -> io::Result<()> {
        for block in batch {
            self.arena.discard_in_flight(block, self.advice)?;
        }
        Ok(())
    }
}

/// A sink that keeps the first error its inner sink returned, so the pass
/// can report it once the engine is done.
struct FirstError<S> {
    /// The sink doing the work.
    inner: S,
    /// The first error `inner` returned.
    first: Option<io::Error>,
}

impl<S: ReportSink<Error = io::Error>> ReportSink for FirstError<S> {
    type Error = ();

    fn report(&mut self, batch: &[ReportedBlock]) -> Result<(), ()> {
        self.inner.report(batch).map_err(|error| {
            self.first.get_or_insert(error);
        })
    }
}

impl Arena {
    /// Runs one free page reporting pass (Linux `page_reporting_process`)
    /// and gives the memory of every block it reports back to the OS with
    /// `madvise(advice)`.
    ///
    /// Reporting must be on in the arena's configuration
    /// (`Config::reporting`, a [`pagealloc::ReportingPolicy`]; `None`, the
    /// default, gives [`ReportError::Off`]). A pass takes, per free list at
    /// or above the reporting order (the pageblock order, 2 MiB, by
    /// default), about `1/budget_fraction` of its unreported blocks (Linux:
    /// a sixteenth, plus one batch), so an idle arena is reported over
    /// several passes; [`Arena::reporting_info`] says how far it got.
    /// Reported blocks go back to the free lists marked and are allocated
    /// last, so memory given back stays given back as long as other free
    /// memory lasts. With the zone far below its watermarks, the engine
    /// skips it ([`ReportPass::zones_skipped`]).
    ///
    /// Takes `&self`: the engine holds each batch off its free lists while
    /// the sink advises it, so no allocation can take those frames and no
    /// [`Block`](crate::Block) covers them, and other threads may keep
    /// allocating, freeing and using other blocks during a pass. One pass
    /// runs at a time ([`ReportError::Busy`]).
    ///
    /// A block reported with [`Advice::DontNeed`] reads as zeros when it is
    /// handed out again. One reported with [`Advice::Free`] is remembered,
    /// as [`Arena::discard_range`] remembers it: when it is handed out
    /// again, the arena writes one byte of each of its pages, so the kernel
    /// keeps them and their bytes cannot turn to zeros under a live slice.
    ///
    /// If `madvise` fails on a batch, the engine puts that batch back
    /// unreported and the pass goes on; the result is then
    /// [`ReportError::Advise`] with the pass's figures and the first error.
    pub fn report_pass(&self, advice: Advice) -> Result<ReportPass, ReportError> {
        self.pass_through(
            MadviseSink {
                arena: self,
                advice,
            },
            advice,
        )
    }

    /// Whether a reporting pass is wanted: [`ReportingState::Requested`]
    /// once a block at or above the reporting order was freed since the
    /// last pass looked at its zone ([`ReportingState::Off`] with reporting
    /// off). A pass that ran out of budget does not ask for the next one
    /// (Linux does); [`Reporter`](crate::Reporter) keeps going while passes
    /// report something.
    pub fn reporting_state(&self) -> ReportingState {
        self.allocator.reporting_state()
    }

    /// Free pages at or above the reporting order, reported pages and
    /// pages in flight, per zone (the arena has one), or `None` with
    /// reporting off. [`ReportingInfo::reported_fraction`] is the share
    /// of reportable free memory that was given back.
    pub fn reporting_info(&self) -> Option<ReportingInfo> {
        self.allocator.reporting_info()
    }

    /// One pass through `sink` (the arena's sink, or a test's wrapper of
    /// it), with its first error turned into [`ReportError::Advise`].
    fn pass_through<S: ReportSink<Error = io::Error>>(
        &self,
        sink: S,
        advice: Advice,
    ) -> Result<ReportPass, ReportError> {
        let mut sink = FirstError {
            inner: sink,
            first: None,
        };
        let pass = self.allocator.report_pass(&mut sink)?;
        match sink.first {
            None => Ok(pass),
            Some(source) => Err(ReportError::Advise {
                pass,
                advice,
                source,
            }),
        }
    }

    /// Gives the bytes of `block`, which the engine holds in flight for a
    /// report, back to the OS. Only [`MadviseSink::report`] calls it, with
    /// a block of the batch the engine handed it.
    ///
    /// The block must be inside the arena, and its first frame must not
    /// start an allocated block (a cheap check that an engine bug cannot
    /// turn into a discard under a live slice: an in-flight block is in no
    /// allocated block); else nothing is done and the error is
    /// `InvalidInput`.
    fn discard_in_flight(&self, block: &ReportedBlock, advice: Advice) -> io::Result<()> {
        let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
        let end = block
            .pfn
            .checked_add(block.order.nr_pages())
            .ok_or_else(invalid)?;
        if block.pfn < self.start || end > self.end_pfn() {
            return Err(invalid());
        }
        if self.allocator.allocated_block(block.pfn).is_some() {
            return Err(invalid());
        }
        let (first, count) = (
            self.page_index(block.pfn),
            block.order.nr_pages().0 as usize,
        );
        let shift = self.page_shift();
        let range = InFlight {
            offset_bytes: first << shift,
            len_bytes: count << shift,
        };
        if advice == Advice::Free {
            // Marked before the call, as `discard_range` does: a page
            // marked but not freed costs one write when allocated, no more.
            self.lazy_marks().mark(first, count);
        }
        self.mapping.advise_in_flight(&range, advice.to_rustix())?;
        if let (Advice::DontNeed, Some(lazy)) = (advice, self.lazy.get()) {
            lazy.clear(first, count);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AllocFlags, Config, Order};
    use pagealloc::ReportingPolicy;

    /// A sink that refuses every other batch before advising it, as a
    /// failing `madvise` would.
    struct EveryOther<'a> {
        inner: MadviseSink<'a>,
        seen: u64,
    }

    impl ReportSink for EveryOther<'_> {
        type Error = io::Error;
        fn report(&mut self, batch: &[ReportedBlock]) -> io::Result<()> {
            self.seen += 1;
            if self.seen.is_multiple_of(2) {
                return Err(io::Error::other("injected failure"));
            }
            self.inner.report(batch)
        }
    }

    fn reporting_arena(bytes: usize) -> Arena {
        let config = Config {
            reporting: Some(ReportingPolicy::default()),
            ..Config::default()
        };
        Arena::new(bytes, config).unwrap()
    }

    fn reported(arena: &Arena) -> (u64, u64) {
        let info = arena.reporting_info().unwrap();
        let reported = info.zones.iter().map(|z| z.reported).sum();
        let in_flight = info.zones.iter().map(|z| z.in_flight).sum();
        (reported, in_flight)
    }

    #[test]
    fn failed_batches_leave_nothing_marked_and_nothing_lost() {
        let arena = reporting_arena(512 << 20);
        let free = arena.nr_free_pages();
        let advice = Advice::DontNeed;
        let flaky = |arena| EveryOther {
            inner: MadviseSink { arena, advice },
            seen: 0,
        };
        let mut reported_before = 0;
        let mut failed = 0;
        for _ in 0..64 {
            match arena.pass_through(flaky(&arena), advice) {
                Ok(pass) => {
                    // A pass of one batch fails none.
                    assert_eq!(pass.failed_batches, 0);
                    if pass.batches == 0 {
                        break;
                    }
                }
                Err(ReportError::Advise { pass, source, .. }) => {
                    assert_eq!(source.to_string(), "injected failure");
                    assert!(pass.failed_batches > 0 && pass.failed_batches < pass.batches);
                    failed += pass.failed_batches;
                    let (now, in_flight) = reported(&arena);
                    assert_eq!(now - reported_before, pass.pages_reported);
                    assert_eq!(in_flight, 0);
                }
                Err(other) => panic!("{other}"),
            }
            reported_before = reported(&arena).0;
            assert_eq!(arena.nr_free_pages(), free, "pages lost");
            arena.check_invariants().unwrap();
        }
        assert!(failed > 0, "no batch failed");
        assert_eq!(arena.stats().report_failures, failed);
        // Every refused block was reported by a later pass.
        let info = arena.reporting_info().unwrap();
        assert_eq!(info.reported_fraction(), 1.0, "{info}");
    }

    #[test]
    fn free_advice_marks_reported_pages_and_allocation_takes_the_marks() {
        let arena = reporting_arena(256 << 20);
        while arena.report_pass(Advice::Free).unwrap().batches > 0 {}
        let lazy = arena.lazy.get().expect("MADV_FREE reports mark pages");
        let order = Order::new(9).unwrap();
        let block = arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE).unwrap();
        let first = arena.page_index(arena.pfn(&block));
        let mut kept = Vec::new();
        lazy.take(first, 512, |page| kept.push(page));
        assert!(kept.is_empty(), "allocation left marks: {kept:?}");
        // Other reported pages are still marked.
        let mut marked = 0;
        lazy.take(0, arena.nr_pages().0 as usize, |_| marked += 1);
        assert!(marked > 0);
        arena.free(block).unwrap();
        arena.check_invariants().unwrap();
    }
}
