//! Pages given `MADV_FREE` and not written since: the kernel may still drop
//! them, and a dropped page reads back as zeros.
//!
//! That is harmless while a page is free, but a block handed out with such
//! a page could see its bytes turn to zeros under a live `&[u8]` with no
//! write from the program, which Rust's references do not allow. So the
//! arena remembers these pages, one bit each, and writes one byte of each
//! when it hands it out again: Linux keeps a lazily freed page that was
//! written after the advice (`mm/rmap.c`, `try_to_unmap_one`: a dirty
//! lazyfree folio goes back to being swap-backed).

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits per bitmap word.
const WORD_BITS: usize = u64::BITS as usize;

/// One bit per page of the arena, set for pages given `MADV_FREE` and not
/// written since. Set and cleared by discards and by the reporting sink,
/// taken by allocations; each caller owns the pages whose bits it changes
/// (a free range under `&mut Arena`, an in-flight reported block, a block
/// just allocated), and atomic `fetch_or` / `fetch_and` keep apart callers
/// that share a word.
#[derive(Debug)]
pub(crate) struct LazyFreed {
    words: Box<[AtomicU64]>,
}

/// The words and in-word masks covering pages `first..first + count`.
fn spans(first: usize, count: usize) -> impl Iterator<Item = (usize, u64)> {
    let end = first + count;
    let words = first / WORD_BITS..end.div_ceil(WORD_BITS);
    words.map(move |w| {
        let lo = first.max(w * WORD_BITS) - w * WORD_BITS;
        let hi = end.min((w + 1) * WORD_BITS) - w * WORD_BITS;
        let mask = if hi - lo == WORD_BITS {
            u64::MAX
        } else {
            ((1u64 << (hi - lo)) - 1) << lo
        };
        (w, mask)
    })
}

impl LazyFreed {
    /// No page marked, for an arena of `nr_pages` pages.
    pub(crate) fn new(nr_pages: usize) -> LazyFreed {
        let words = (0..nr_pages.div_ceil(WORD_BITS))
            .map(|_| AtomicU64::new(0))
            .collect();
        LazyFreed { words }
    }

    /// Marks pages `first..first + count` (page indices from the arena's
    /// start, inside it) as lazily freed.
    ///
    /// The marks are published to the thread that later allocates the
    /// pages by the allocator's own hand-over (the zone lock or per-CPU
    /// list lock the pages pass through on their way back), so `Relaxed`
    /// is enough here, as it is in [`LazyFreed::take`].
    pub(crate) fn mark(&self, first: usize, count: usize) {
        for (w, mask) in spans(first, count) {
            self.words[w].fetch_or(mask, Ordering::Relaxed);
        }
    }

    /// Forgets pages `first..first + count`: they were dropped for good.
    pub(crate) fn clear(&self, first: usize, count: usize) {
        for (w, mask) in spans(first, count) {
            self.words[w].fetch_and(!mask, Ordering::Relaxed);
        }
    }

    /// Unmarks pages `first..first + count`, calling `keep` with the index
    /// (from `first`) of each one that was marked. The caller owns these
    /// pages: other callers only touch other bits of the same words, which
    /// the atomic `fetch_and` keeps apart.
    pub(crate) fn take(&self, first: usize, count: usize, mut keep: impl FnMut(usize)) {
        for (w, mask) in spans(first, count) {
            let word = &self.words[w];
            // The common case, nothing marked, costs one load.
            if word.load(Ordering::Relaxed) & mask == 0 {
                continue;
            }
            let mut taken = word.fetch_and(!mask, Ordering::Relaxed) & mask;
            while taken != 0 {
                let bit = taken.trailing_zeros() as usize;
                taken &= taken - 1;
                keep(w * WORD_BITS + bit - first);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(lazy: &LazyFreed, first: usize, count: usize) -> Vec<usize> {
        let mut pages = Vec::new();
        lazy.take(first, count, |p| pages.push(p));
        pages
    }

    #[test]
    fn marks_are_taken_once_per_page() {
        let lazy = LazyFreed::new(200);
        lazy.mark(60, 10); // across the first word boundary
        lazy.mark(128, 64); // one whole word
        lazy.clear(62, 2);
        assert_eq!(taken(&lazy, 56, 8), [4, 5]); // pages 60, 61; not 62, 63
        assert_eq!(taken(&lazy, 64, 8), [0, 1, 2, 3, 4, 5]);
        assert_eq!(taken(&lazy, 56, 16), Vec::<usize>::new());
        assert_eq!(taken(&lazy, 128, 64).len(), 64);
        assert_eq!(taken(&lazy, 0, 200), Vec::<usize>::new());
    }
}
