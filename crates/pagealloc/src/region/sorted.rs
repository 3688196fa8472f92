//! The free lists kept sorted by region (seed 000, the series'
//! `page_block` pointers): per list and region the first entry of that
//! region's segment (or `NIL`), and a bitmap of the regions with a segment.
//! The lowest region's block is the list's first entry, so every walker that
//! takes from the head (allocation, refills, bulk, fallback, reporting)
//! prefers the lowest region at no cost; inserting is O(1) plus a bitmap
//! scan for the next region with a segment when a region's segment is
//! empty (one word per 64 regions).

use alloc::vec;
use alloc::vec::Vec;

use crate::engine::free_list::{ListHead, Placement};
use crate::engine::page::{PageMeta, PageTable, NIL};
use crate::region::map::RegionMap;

/// Entry points of every free list of one zone (order × migratetype).
#[derive(Clone, Debug)]
pub(crate) struct SortedLists {
    nr_regions: usize,
    words: usize,
    /// `first[list * nr_regions + r]`: the first entry of region `r` on the
    /// list, or `NIL`.
    first: Vec<u32>,
    /// `bits[list * words + w]`: bit `r % 64` of word `r / 64` set when
    /// region `r` has a segment on the list.
    bits: Vec<u64>,
}

impl SortedLists {
    /// Entry points for `nr_lists` empty lists over `nr_regions` regions.
    pub(crate) fn new(nr_lists: usize, nr_regions: usize) -> SortedLists {
        let words = nr_regions.div_ceil(64);
        SortedLists {
            nr_regions,
            words,
            first: vec![NIL; nr_lists * nr_regions],
            bits: vec![0; nr_lists * words],
        }
    }

    /// The first entry of region `r` on list `l`, or `NIL`.
    #[inline(always)]
    pub(crate) fn entry(&self, l: usize, r: usize) -> u32 {
        self.first[l * self.nr_regions + r]
    }

    /// Whether region `r` has a segment on list `l` (the bitmap's answer).
    pub(crate) fn has_segment(&self, l: usize, r: usize) -> bool {
        self.bits[l * self.words + r / 64] & (1 << (r % 64)) != 0
    }

    #[inline(always)]
    fn set_entry(&mut self, l: usize, r: usize, idx: u32) {
        self.first[l * self.nr_regions + r] = idx;
        let word = &mut self.bits[l * self.words + r / 64];
        if idx == NIL {
            *word &= !(1 << (r % 64));
        } else {
            *word |= 1 << (r % 64);
        }
    }

    /// The first entry of the lowest region above `r` with a segment on
    /// list `l`, or `NIL`.
    #[inline]
    fn next_after(&self, l: usize, r: usize) -> u32 {
        let words = &self.bits[l * self.words..(l + 1) * self.words];
        let mut w = r / 64;
        let shift = r % 64;
        let mut word = if shift == 63 {
            0
        } else {
            words[w] & (!0u64 << (shift + 1))
        };
        loop {
            if word != 0 {
                let next = w * 64 + word.trailing_zeros() as usize;
                return self.entry(l, next);
            }
            w += 1;
            if w >= words.len() {
                return NIL;
            }
            word = words[w];
        }
    }

    /// Links block `idx` (record `meta`) onto `list` (number `l`) in its region's
    /// segment: first of the segment for [`Placement::Head`], last for
    /// [`Placement::Tail`].
    #[inline]
    pub(crate) fn link(
        &mut self,
        pages: &PageTable,
        map: &RegionMap,
        list: &mut ListHead,
        l: usize,
        (idx, meta): (u32, PageMeta),
        placement: Placement,
    ) {
        let r = map.of_idx(idx);
        let entry = self.entry(l, r);
        let before = match placement {
            Placement::Head if entry != NIL => entry,
            _ => self.next_after(l, r),
        };
        if before == NIL {
            list.insert(pages, idx, meta, Placement::Tail);
        } else {
            list.insert_before(pages, idx, meta, before);
        }
        if placement == Placement::Head || entry == NIL {
            self.set_entry(l, r, idx);
        }
    }

    /// Keeps the entry points right for `idx`, whose successor on list `l`
    /// is `next`, leaving the list (call before unlinking it).
    #[inline]
    pub(crate) fn unlink(&mut self, map: &RegionMap, l: usize, idx: u32, next: u32) {
        let r = map.of_idx(idx);
        if self.entry(l, r) == idx {
            let same = next != NIL && map.of_idx(next) == r;
            self.set_entry(l, r, if same { next } else { NIL });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::page::PageState;
    use crate::units::{Order, Pfn};

    #[test]
    fn lists_stay_sorted_by_region() {
        // 4 regions of 16 pages; blocks are order-0 pages, no two of them
        // buddies (an order-0 block borrows its buddy's link slot).
        let map = RegionMap::new(
            Pfn(0),
            Pfn(64),
            &[(Pfn(0), Pfn(64))],
            4,
            crate::policy::RegionMixing::Segregated,
        );
        let pages = PageTable::new(64, 0, true);
        let mut s = SortedLists::new(1, 4);
        let mut list = ListHead::EMPTY;
        let m = PageMeta::head(PageState::FreeHead, Order::ZERO);
        for (idx, p) in [
            (40, Placement::Head),
            (3, Placement::Tail),
            (20, Placement::Head),
            (43, Placement::Tail),
            (5, Placement::Head),
            (60, Placement::Head),
            (23, Placement::Tail),
        ] {
            s.link(&pages, &map, &mut list, 0, (idx, m), p);
        }
        let order: Vec<u32> = list.iter(&pages).collect();
        assert_eq!(order, [5, 3, 20, 23, 40, 43, 60]);
        assert_eq!(s.entry(0, 1), 20);
        assert!(s.has_segment(0, 3));
        for idx in [20, 23] {
            let next = pages.next(idx);
            s.unlink(&map, 0, idx, next);
            list.remove(&pages, idx);
        }
        assert_eq!(s.entry(0, 1), NIL);
        assert!(!s.has_segment(0, 1));
        s.link(&pages, &map, &mut list, 0, (30, m), Placement::Tail);
        let order: Vec<u32> = list.iter(&pages).collect();
        assert_eq!(order, [5, 3, 30, 40, 43, 60]);
    }
}
