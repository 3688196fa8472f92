//! Intrusive doubly-linked lists threaded through the page records.
//!
//! A list stores zone-relative page indices; the links live in the page
//! table's link slots ([`PageTable::next`], [`PageTable::prev`]), so a list costs twelve bytes however long it
//! is. Insert at either end and unlink from anywhere are O(1): unlinking is
//! what buddy merging does to a buddy found by address, and tail insertion is
//! how reported pages (seed 002) and "likely to merge soon" blocks are kept
//! for last.

use crate::engine::page::{PageMeta, PageTable, NIL};

/// Where a block goes on its list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placement {
    /// Taken first by the next allocation.
    Head,
    /// Taken last: reported pages, blocks whose buddy is likely to free soon.
    Tail,
}

/// The head of one list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ListHead {
    first: u32,
    last: u32,
    len: u64,
}

impl Default for ListHead {
    fn default() -> Self {
        ListHead::EMPTY
    }
}

impl ListHead {
    /// A list with nothing on it.
    pub const EMPTY: ListHead = ListHead {
        first: NIL,
        last: NIL,
        len: 0,
    };

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first entry, if any.
    pub fn first(&self) -> Option<u32> {
        (self.first != NIL).then_some(self.first)
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<u32> {
        (self.last != NIL).then_some(self.last)
    }

    /// Links `idx` in at `placement`, writing its record as `meta`. The
    /// record must not be on any list.
    #[inline]
    pub(crate) fn insert(
        &mut self,
        pages: &PageTable,
        idx: u32,
        meta: PageMeta,
        placement: Placement,
    ) {
        pages.set(idx, meta);
        match placement {
            Placement::Head => self.link_at_head(pages, idx),
            Placement::Tail => {
                let last = self.last;
                pages.set_next(idx, NIL);
                pages.set_prev(idx, last);
                if last == NIL {
                    self.first = idx;
                } else {
                    pages.set_next(last, idx);
                }
                self.last = idx;
                self.len += 1;
            }
        }
    }

    /// Links `idx` in just before `before` (an entry of this list), writing
    /// its record as `meta`.
    #[inline]
    pub(crate) fn insert_before(
        &mut self,
        pages: &PageTable,
        idx: u32,
        meta: PageMeta,
        before: u32,
    ) {
        let prev = pages.prev(before);
        pages.set(idx, meta);
        pages.set_prev(idx, prev);
        pages.set_next(idx, before);
        pages.set_prev(before, idx);
        if prev == NIL {
            self.first = idx;
        } else {
            pages.set_next(prev, idx);
        }
        self.len += 1;
    }

    /// Makes `idx` the first entry.
    #[inline(always)]
    fn link_at_head(&mut self, pages: &PageTable, idx: u32) {
        pages.set_prev(idx, NIL);
        pages.set_next(idx, self.first);
        if self.first == NIL {
            self.last = idx;
        } else {
            pages.set_prev(self.first, idx);
        }
        self.first = idx;
        self.len += 1;
    }

    /// Links `idx` in at the head if its record still reads `expected`,
    /// replacing it with `meta` in one compare-and-swap: how a free takes
    /// an allocated head over. On failure nothing changes and the record
    /// found is returned.
    #[inline(always)]
    pub(crate) fn insert_head_replacing(
        &mut self,
        pages: &PageTable,
        idx: u32,
        expected: PageMeta,
        meta: PageMeta,
    ) -> Result<(), PageMeta> {
        pages.replace(idx, expected, meta)?;
        self.link_at_head(pages, idx);
        Ok(())
    }

    /// Unlinks the first entry, writing its record as `meta`, and returns it.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self, pages: &PageTable, meta: PageMeta) -> Option<u32> {
        let idx = self.first;
        if idx == NIL {
            return None;
        }
        let next = pages.next(idx);
        pages.set(idx, meta);
        self.first = next;
        if next == NIL {
            self.last = NIL;
        } else {
            pages.set_prev(next, NIL);
        }
        self.len -= 1;
        Some(idx)
    }

    /// Unlinks `idx`, which must be on this list.
    #[inline]
    pub(crate) fn remove(&mut self, pages: &PageTable, idx: u32) {
        let (prev, next) = (pages.prev(idx), pages.next(idx));
        if prev == NIL {
            self.first = next;
        } else {
            pages.set_next(prev, next);
        }
        if next == NIL {
            self.last = prev;
        } else {
            pages.set_prev(next, prev);
        }
        self.len -= 1;
    }

    /// Iterates the entries from first to last. The walk is bounded by the
    /// list's length, so a corrupted (cyclic) list cannot loop forever.
    pub(crate) fn iter<'a>(&self, pages: &'a PageTable) -> ListIter<'a> {
        ListIter {
            pages,
            cur: self.first,
            left: self.len,
        }
    }
}

/// Iterator over a list's indices.
pub(crate) struct ListIter<'a> {
    pages: &'a PageTable,
    cur: u32,
    left: u64,
}

impl Iterator for ListIter<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.cur == NIL || self.left == 0 {
            return None;
        }
        let idx = self.cur;
        self.cur = if (idx as usize) < self.pages.len() {
            self.pages.next(idx)
        } else {
            NIL
        };
        self.left -= 1;
        Some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::page::PageState;
    use crate::units::Order;
    use alloc::vec::Vec;

    #[test]
    fn head_tail_and_unlink() {
        let p = PageTable::new(8, 0, true);
        let mut l = ListHead::EMPTY;
        let m = PageMeta::head(PageState::FreeHead, Order::ZERO);
        // Order-0 blocks, no two of them buddies (an order-0 block keeps
        // its back link in its buddy's slot).
        l.insert(&p, 0, m, Placement::Head);
        l.insert(&p, 2, m, Placement::Tail);
        l.insert(&p, 4, m, Placement::Head);
        assert_eq!(l.iter(&p).collect::<Vec<_>>(), [4, 0, 2]);
        l.remove(&p, 0);
        assert_eq!(l.iter(&p).collect::<Vec<_>>(), [4, 2]);
        l.remove(&p, 4);
        assert_eq!((l.first(), l.last(), l.len()), (Some(2), Some(2), 1));
        l.remove(&p, 2);
        assert!(l.is_empty());
        assert_eq!((l.first(), l.last()), (None, None));
    }
}
