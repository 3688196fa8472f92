//! Intrusive doubly-linked lists threaded through the page records.
//!
//! A list stores zone-relative page indices; the links live in the head
//! pages' [`PageMeta`] records, so a list costs twelve bytes however long it
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

    /// Links `idx` in at `placement`, writing its record as `meta` with the
    /// links filled in: one store. The record must not be on any list.
    #[inline]
    pub(crate) fn insert(
        &mut self,
        pages: &PageTable,
        idx: u32,
        mut meta: PageMeta,
        placement: Placement,
    ) {
        match placement {
            Placement::Head => {
                pages.set(idx, self.linked_at_head(meta));
                self.attach_at_head(pages, idx);
            }
            Placement::Tail => {
                let last = self.last;
                meta.set_next(NIL);
                meta.set_prev(last);
                pages.set(idx, meta);
                if last == NIL {
                    self.first = idx;
                } else {
                    pages.update(last, |m| m.set_next(idx));
                }
                self.last = idx;
                self.len += 1;
            }
        }
    }

    /// Links `idx` in just before `before` (an entry of this list), writing
    /// its record as `meta` with the links filled in.
    #[inline]
    pub(crate) fn insert_before(
        &mut self,
        pages: &PageTable,
        idx: u32,
        mut meta: PageMeta,
        before: u32,
    ) {
        let prev = pages.get(before).prev();
        meta.set_prev(prev);
        meta.set_next(before);
        pages.set(idx, meta);
        pages.update(before, |m| m.set_prev(idx));
        if prev == NIL {
            self.first = idx;
        } else {
            pages.update(prev, |m| m.set_next(idx));
        }
        self.len += 1;
    }

    /// `meta` with the links it needs as the new first entry.
    #[inline]
    fn linked_at_head(&self, mut meta: PageMeta) -> PageMeta {
        meta.set_prev(NIL);
        meta.set_next(self.first);
        meta
    }

    /// Makes `idx`, whose record already links to the current first entry,
    /// the first entry.
    #[inline]
    fn attach_at_head(&mut self, pages: &PageTable, idx: u32) {
        if self.first == NIL {
            self.last = idx;
        } else {
            pages.update(self.first, |m| m.set_prev(idx));
        }
        self.first = idx;
        self.len += 1;
    }

    /// Links `idx` in at the head if its record still reads `expected`,
    /// replacing it with `meta` (links filled in) in one compare-and-swap:
    /// how a free takes an allocated head over. On failure nothing changes
    /// and the record found is returned.
    #[inline(always)]
    pub(crate) fn insert_head_replacing(
        &mut self,
        pages: &PageTable,
        idx: u32,
        expected: PageMeta,
        meta: PageMeta,
    ) -> Result<(), PageMeta> {
        pages.replace(idx, expected, self.linked_at_head(meta))?;
        self.attach_at_head(pages, idx);
        Ok(())
    }

    /// Unlinks the first entry, writing its record as `meta`, and returns it.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self, pages: &PageTable, meta: PageMeta) -> Option<u32> {
        let idx = self.first;
        if idx == NIL {
            return None;
        }
        let next = pages.get(idx).next();
        pages.set(idx, meta);
        self.first = next;
        if next == NIL {
            self.last = NIL;
        } else {
            pages.update(next, |m| m.set_prev(NIL));
        }
        self.len -= 1;
        Some(idx)
    }

    /// Unlinks up to `n` entries from the front, writing each record as
    /// `meta` and handing it to `take` in list order; returns how many. One
    /// load and one store per entry, and one link fixed at the end.
    #[inline]
    pub(crate) fn pop_front_many(
        &mut self,
        pages: &PageTable,
        meta: PageMeta,
        n: u64,
        mut take: impl FnMut(u32),
    ) -> u64 {
        let n = n.min(self.len);
        let mut cur = self.first;
        for _ in 0..n {
            let next = pages.get(cur).next();
            pages.set(cur, meta);
            take(cur);
            cur = next;
        }
        if n == 0 {
            return 0;
        }
        self.first = cur;
        if cur == NIL {
            self.last = NIL;
        } else {
            pages.update(cur, |m| m.set_prev(NIL));
        }
        self.len -= n;
        n
    }

    /// Unlinks `idx`, which must be on this list.
    #[inline]
    pub(crate) fn remove(&mut self, pages: &PageTable, idx: u32) {
        let meta = pages.get(idx);
        let (prev, next) = (meta.prev(), meta.next());
        if prev == NIL {
            self.first = next;
        } else {
            pages.update(prev, |m| m.set_next(next));
        }
        if next == NIL {
            self.last = prev;
        } else {
            pages.update(next, |m| m.set_prev(prev));
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
            self.pages.get(idx).next()
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
        let p = PageTable::new(8);
        let mut l = ListHead::EMPTY;
        let m = PageMeta::head(PageState::FreeHead, Order::ZERO);
        l.insert(&p, 1, m, Placement::Head);
        l.insert(&p, 2, m, Placement::Tail);
        l.insert(&p, 3, m, Placement::Head);
        assert_eq!(l.iter(&p).collect::<Vec<_>>(), [3, 1, 2]);
        l.remove(&p, 1);
        assert_eq!(l.iter(&p).collect::<Vec<_>>(), [3, 2]);
        l.remove(&p, 3);
        assert_eq!((l.first(), l.last(), l.len()), (Some(2), Some(2), 1));
        l.remove(&p, 2);
        assert!(l.is_empty());
        assert_eq!((l.first(), l.last()), (None, None));
    }
}
