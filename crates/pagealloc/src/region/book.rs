//! What the zone lock guards for regions: the sorted lists' entry points,
//! and the region allocator's book (free pages per region, which regions it
//! holds, and each region's idle time).

use alloc::vec;
use alloc::vec::Vec;

use crate::region::sorted::SortedLists;

/// One region's history in the region allocator.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct RegionRecord {
    /// When it was last handed to the region allocator (caller's ticks).
    pub(crate) held_since: u64,
    /// Ticks spent held before `held_since` (closed intervals).
    pub(crate) idle_ticks: u64,
    /// Times it went to the region allocator.
    pub(crate) returns: u64,
    /// Times it was drawn back into service.
    pub(crate) draws: u64,
}

/// The region state of one zone, behind its lock.
#[derive(Clone, Debug)]
pub(crate) struct Regions {
    /// The free lists' entry points.
    pub(crate) sorted: SortedLists,
    /// Free pages per region: in free blocks on any list (isolated ones
    /// included, as the pageblock counts do) or held by the region
    /// allocator.
    pub(crate) free: Vec<u64>,
    /// Bitmap of the regions the region allocator holds.
    held: Vec<u64>,
    /// Per region.
    pub(crate) records: Vec<RegionRecord>,
    /// Pages in held regions.
    pub(crate) nr_held_pages: u64,
    /// Regions held.
    pub(crate) nr_held: u64,
    /// Wholly free pageblocks of one type taken for another because they
    /// lay in a lower region than the type's own free blocks.
    pub(crate) free_pageblock_claims: u64,
}

impl Regions {
    /// Nothing free, nothing held, over `nr_regions` regions and
    /// `nr_lists` free lists.
    pub(crate) fn new(nr_lists: usize, nr_regions: usize) -> Regions {
        Regions {
            sorted: SortedLists::new(nr_lists, nr_regions),
            free: vec![0; nr_regions],
            held: vec![0; nr_regions.div_ceil(64)],
            records: vec![RegionRecord::default(); nr_regions],
            nr_held_pages: 0,
            nr_held: 0,
            free_pageblock_claims: 0,
        }
    }

    /// Whether the region allocator holds region `r`.
    #[inline]
    pub(crate) fn is_held(&self, r: usize) -> bool {
        self.held[r / 64] & (1 << (r % 64)) != 0
    }

    /// Marks region `r` held or not.
    pub(crate) fn set_held(&mut self, r: usize, held: bool) {
        if held {
            self.held[r / 64] |= 1 << (r % 64);
        } else {
            self.held[r / 64] &= !(1 << (r % 64));
        }
    }

    /// The lowest region held from `from` on, if any.
    pub(crate) fn lowest_held_from(&self, from: usize) -> Option<usize> {
        let mut w = from / 64;
        let mut word = *self.held.get(w)? & (!0u64 << (from % 64));
        loop {
            if word != 0 {
                return Some(w * 64 + word.trailing_zeros() as usize);
            }
            w += 1;
            word = *self.held.get(w)?;
        }
    }

    /// The held words, for digests.
    pub(crate) fn held_words(&self) -> &[u64] {
        &self.held
    }
}
