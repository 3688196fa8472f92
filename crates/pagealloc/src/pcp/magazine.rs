//! Order-0 per-CPU magazines: a CPU's cached order-0 pages of one
//! migratetype as a ring of zone-relative page indices.
//!
//! The per-CPU lists of higher orders are threaded through the page
//! table's link slots like the buddy lists; order-0 pages are kept here
//! instead, so the fast path pushes and pops an index without touching any
//! page's links (a free writes only the page's hot byte, an allocation
//! likewise), and an order-0 page on a per-CPU list leaves its link slot
//! to its buddy (see `engine::page`). Linux's list discipline is kept
//! exactly: frees and allocations at the front (hot), refills at the back,
//! drains from the back (coldest first).
//!
//! The ring grows by doubling when full, which only happens while a
//! list's high mark is still rising; its storage is kept, so a steady
//! state never allocates.

use alloc::vec::Vec;

/// Slots of a magazine's first allocation.
const FIRST_CAPACITY: usize = 64;

/// A double-ended ring of page indices (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct Magazine {
    /// Power-of-two length (or empty before the first push).
    slots: Vec<u32>,
    /// Position of the first entry.
    head: usize,
    len: usize,
}

impl Magazine {
    /// A magazine with nothing in it and no storage.
    pub(crate) const EMPTY: Magazine = Magazine {
        slots: Vec::new(),
        head: 0,
        len: 0,
    };

    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    #[inline(always)]
    fn at(&self, i: usize) -> u32 {
        self.slots[(self.head + i) & self.mask()]
    }

    /// The first (hottest) entry.
    #[inline]
    pub(crate) fn first(&self) -> Option<u32> {
        (self.len != 0).then(|| self.at(0))
    }

    /// Adds `idx` at the front.
    #[inline(always)]
    pub(crate) fn push_front(&mut self, idx: u32) {
        if self.len == self.slots.len() {
            self.grow();
        }
        self.head = self.head.wrapping_sub(1) & self.mask();
        self.slots[self.head] = idx;
        self.len += 1;
    }

    /// Adds `idx` at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, idx: u32) {
        if self.len == self.slots.len() {
            self.grow();
        }
        let at = (self.head + self.len) & self.mask();
        self.slots[at] = idx;
        self.len += 1;
    }

    /// Takes the front entry.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let idx = self.slots[self.head];
        self.head = (self.head + 1) & self.mask();
        self.len -= 1;
        Some(idx)
    }

    /// Takes entries from the front into `out`, as many as fit or are
    /// held, each mapped by `f`; returns how many. The ring is read as at
    /// most two contiguous runs.
    #[inline]
    pub(crate) fn pop_front_into<T>(
        &mut self,
        out: &mut [T],
        mut f: impl FnMut(u32) -> T,
    ) -> usize {
        let n = out.len().min(self.len);
        let first_run = n.min(self.slots.len() - self.head);
        let (head, wrapped) = out[..n].split_at_mut(first_run);
        for (slot, &idx) in head.iter_mut().zip(&self.slots[self.head..]) {
            *slot = f(idx);
        }
        for (slot, &idx) in wrapped.iter_mut().zip(&self.slots[..]) {
            *slot = f(idx);
        }
        self.head = (self.head + n) & self.mask();
        self.len -= n;
        n
    }

    /// Takes the back entry.
    #[inline]
    pub(crate) fn pop_back(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(self.at(self.len))
    }

    /// Removes the `i`th entry from the front, keeping the others' order.
    pub(crate) fn remove_at(&mut self, i: usize) -> u32 {
        let idx = self.at(i);
        for k in i..self.len - 1 {
            let next = self.at(k + 1);
            let mask = self.mask();
            self.slots[(self.head + k) & mask] = next;
        }
        self.len -= 1;
        idx
    }

    /// The entries from front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).map(move |i| self.at(i))
    }

    /// Doubles the ring, keeping the entries in order from slot 0.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(FIRST_CAPACITY);
        let mut slots = Vec::with_capacity(capacity);
        slots.extend(self.iter());
        slots.resize(capacity, 0);
        self.slots = slots;
        self.head = 0;
    }

    /// Bytes of storage held.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * core::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_keep_order_across_growth_and_wrap() {
        let mut m = Magazine::EMPTY;
        assert_eq!((m.pop_front(), m.pop_back(), m.first()), (None, None, None));
        let mut model = alloc::collections::VecDeque::new();
        let mut x = 7u32;
        for step in 0..2000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            match (x >> 16) % 5 {
                0 | 1 => {
                    m.push_front(step);
                    model.push_front(step);
                }
                2 => {
                    m.push_back(step);
                    model.push_back(step);
                }
                3 => assert_eq!(m.pop_front(), model.pop_front()),
                _ => assert_eq!(m.pop_back(), model.pop_back()),
            }
            if step % 89 == 0 {
                let mut out = [0u32; 5];
                let n = m.pop_front_into(&mut out, |idx| idx);
                let expect: Vec<u32> = (0..n).filter_map(|_| model.pop_front()).collect();
                assert_eq!(&out[..n], &expect[..]);
                assert_eq!(n, 5.min(n + model.len()));
            }
            if step % 97 == 0 && !model.is_empty() {
                let i = (x as usize) % model.len();
                assert_eq!(m.remove_at(i), model.remove(i).unwrap());
            }
            assert_eq!(m.iter().count(), model.len());
            assert_eq!(m.first(), model.front().copied());
        }
        assert!(m.iter().eq(model.iter().copied()));
    }
}
