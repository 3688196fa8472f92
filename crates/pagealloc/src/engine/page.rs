//! The out-of-band page record, split hot and cold: five bytes per page.
//!
//! Linux spends a 64-byte `struct page` on every frame. The allocator needs
//! far less, because only the *first* page of a block carries anything: the
//! state, the order, and, for a block on a list, its two links. Every other
//! page of a block is a plain tail. The record is kept in two arrays:
//!
//! * **hot**: one byte per page ([`PageMeta`]): what the page is, the
//!   block's order, the per-state flag, and for an allocated head its
//!   migratetype. Everything a free validates is here, so a free of a
//!   random page touches one byte of a dense array (256 KiB per GiB of
//!   4 KiB pages, which stays in a core's L2), and takes the page over
//!   with one compare-and-swap on that byte.
//! * **cold**: one 32-bit link per page, touched only when a block enters
//!   or leaves a linked list (the buddy free lists, the per-CPU lists of
//!   orders above 0). A listed block's `next` is in its head's slot, its
//!   `prev` in the slot of the page whose pfn differs in the lowest bit:
//!   inside the block for orders above 0, the buddy page for order 0.
//!   That slot is free to borrow: an order-0 block's buddy is itself an
//!   order-0 block (or a hole), and it is never linked while the block is,
//!   because two free order-0 buddies merge (invariant 3) and per-CPU
//!   order-0 pages sit in magazines, not lists (`pcp::magazine`). Two
//!   configurations break that rule, and keep a second link array for
//!   `prev` instead (nine bytes per page): a single order (nothing
//!   merges), and one-page pageblocks (order-0 buddies in pageblocks of
//!   different types do not merge).
//!
//! The hot byte:
//!
//! ```text
//!   7   6    5 4   3     0
//! +---+---+-----+---------+
//! | 1 | c | mt  |  order  |   allocated head: c = page of a contiguous run,
//! +---+---+-----+---------+                   mt = its migratetype (U/M/R)
//! | 0 |  kind   |  order  |   every other state (kind: see `Kind`)
//! +---+---------+---------+
//! ```
//!
//! A zeroed byte is a tail, so a zone's metadata starts as zero-filled
//! allocations. Zones are bounded to [`MAX_ZONE_PAGES`] pages; larger zones
//! are refused with a typed error at construction, not truncated.
//!
//! Both arrays are atomics ([`PageTable`]) so that each record can be read
//! and written by whoever owns the block it heads, without the zone lock: a
//! free block's head belongs to the zone-lock holder, a per-CPU block's head
//! to that CPU's list lock holder, an allocated block's head to its user.
//! Freeing hands an allocated head over with one compare-and-swap on its hot
//! byte, which is also what makes a racing double free fail cleanly. On
//! x86-64 and arm64 a relaxed atomic load or store is an ordinary
//! `mov`/`ldr`/`str`.

use crate::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use alloc::boxed::Box;

use crate::units::{MigrateType, Order};

/// The "no neighbour" link value.
pub(crate) const NIL: u32 = u32::MAX;
/// Most pages one zone may span: 2^28 - 1. The links could index more;
/// the bound is kept so that a zone's page index fits the 28 bits the
/// memory backend (`pagealloc-arena`) packs frames into.
pub const MAX_ZONE_PAGES: u64 = (1 << 28) - 1;

const ORDER_MASK: u8 = 0b1111;
const ALLOC_BIT: u8 = 1 << 7;
const CONTIG_BIT: u8 = 1 << 6;
const MT_SHIFT: u32 = 4;
const MT_MASK: u8 = 0b11 << MT_SHIFT;
const KIND_SHIFT: u32 = 4;
const KIND_MASK: u8 = 0b111 << KIND_SHIFT;

/// The kinds of a record that is not an allocated head (bits 4..=6).
mod kind {
    pub(super) const TAIL: u8 = 0;
    pub(super) const PCP: u8 = 1;
    pub(super) const FREE: u8 = 2;
    /// A free head reported to the host (seed 002): `FREE` with the flag.
    pub(super) const FREE_REPORTED: u8 = 3;
    pub(super) const OFFLINE: u8 = 4;
    pub(super) const REPORTING: u8 = 5;
    pub(super) const HELD: u8 = 6;
    /// An order-0 allocated page being freed by a batch (a per-CPU head to
    /// everyone else); bits 0..=1 keep its migratetype for an undo.
    pub(super) const FREEING: u8 = 7;
}

/// What a page is, as far as the allocator knows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum PageState {
    /// Not the first page of any block: inside a free or allocated block, or
    /// in a hole.
    Tail = 0,
    /// First page of a free block on a buddy free list.
    FreeHead = 1,
    /// First page of an allocated block.
    AllocHead = 2,
    /// First page of a block on a per-CPU list.
    PcpHead = 3,
    /// First page of a block taken out of service (offline).
    OfflineHead = 4,
    /// First page of a free block taken off its list to be reported to the
    /// host (seed 002): in flight between the zone lock being dropped for
    /// the report and the block being put back. Nobody may allocate it,
    /// and it does not merge.
    ReportingHead = 5,
    /// First page of a free block held by the region allocator (seed
    /// 000): its whole region is free and out of the buddy lists until a
    /// request draws it back. On no list; it does not merge.
    HeldHead = 6,
}

/// One page's hot record. See the module docs for the layout.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub(crate) struct PageMeta(u8);

/// Bytes of metadata kept per page: the hot byte and the 32-bit link.
pub const PAGE_RECORD_BYTES: usize = core::mem::size_of::<PageMeta>() + core::mem::size_of::<u32>();

// The whole point of the layout: keep the promise in the design.
const _: () = assert!(core::mem::size_of::<PageMeta>() == 1 && PAGE_RECORD_BYTES == 5);

impl core::fmt::Debug for PageMeta {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageMeta")
            .field("state", &self.state())
            .field("order", &self.order_bits())
            .field("flag", &self.flag())
            .finish()
    }
}

/// The records of one zone's pages, index = pfn - zone start.
pub(crate) struct PageTable {
    hot: Box<[AtomicU8]>,
    /// Link slots, offset by `parity` so that slot parity is pfn parity;
    /// where order-0 buddies may both be listed (see the module docs),
    /// followed by as many slots of `prev` links of their own.
    links: Box<[AtomicU32]>,
    /// The `prev` link of the block whose `next` is in slot `s` is in slot
    /// `(s ^ prev_xor) + prev_offset`: `(1, 0)` borrows the buddy's slot,
    /// `(0, n + 2)` uses the second half.
    prev_xor: u32,
    prev_offset: u32,
    /// The zone's first pfn modulo 2.
    parity: u32,
}

impl PageTable {
    /// `n` tail records for a zone whose first pfn is `start_pfn`;
    /// `buddies_merge` says that two free order-0 buddies always merge
    /// (more than one order, pageblocks of more than one page), so `prev`
    /// may borrow the buddy's slot.
    pub(crate) fn new(n: usize, start_pfn: u64, buddies_merge: bool) -> PageTable {
        // One slot of padding at each end: the buddy slot of the first or
        // last page may lie just outside the zone.
        let half = n + 2;
        let (prev_xor, prev_offset, len) = if buddies_merge {
            (1, 0, half)
        } else {
            (0, half as u32, 2 * half)
        };
        PageTable {
            hot: (0..n).map(|_| AtomicU8::new(0)).collect(),
            links: (0..len).map(|_| AtomicU32::new(NIL)).collect(),
            prev_xor,
            prev_offset,
            parity: (start_pfn & 1) as u32,
        }
    }

    #[inline]
    pub(crate) fn get(&self, idx: u32) -> PageMeta {
        PageMeta(self.hot[idx as usize].load(Ordering::Relaxed))
    }

    #[inline]
    pub(crate) fn set(&self, idx: u32, meta: PageMeta) {
        self.hot[idx as usize].store(meta.0, Ordering::Relaxed)
    }

    /// Replaces `expected` with `new`; on failure returns what was there.
    #[inline]
    pub(crate) fn replace(
        &self,
        idx: u32,
        expected: PageMeta,
        new: PageMeta,
    ) -> Result<(), PageMeta> {
        self.hot[idx as usize]
            .compare_exchange(expected.0, new.0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(PageMeta)
    }

    /// The slot holding the `next` link of the block headed at `idx`.
    #[inline(always)]
    fn next_slot(&self, idx: u32) -> usize {
        (idx + self.parity) as usize
    }

    /// The slot holding its `prev` link: the pfn-buddy page's slot, or
    /// its own in the second half.
    #[inline(always)]
    fn prev_slot(&self, idx: u32) -> usize {
        (((idx + self.parity) ^ self.prev_xor) + self.prev_offset) as usize
    }

    /// The next entry after listed head `idx`.
    #[inline]
    pub(crate) fn next(&self, idx: u32) -> u32 {
        self.links[self.next_slot(idx)].load(Ordering::Relaxed)
    }

    /// The entry before listed head `idx`.
    #[inline]
    pub(crate) fn prev(&self, idx: u32) -> u32 {
        self.links[self.prev_slot(idx)].load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn set_next(&self, idx: u32, next: u32) {
        self.links[self.next_slot(idx)].store(next, Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn set_prev(&self, idx: u32, prev: u32) {
        self.links[self.prev_slot(idx)].store(prev, Ordering::Relaxed)
    }

    pub(crate) fn len(&self) -> usize {
        self.hot.len()
    }

    /// Bytes of the arrays.
    pub(crate) fn bytes(&self) -> usize {
        self.hot.len() + self.links.len() * core::mem::size_of::<u32>()
    }
}

impl Clone for PageTable {
    fn clone(&self) -> PageTable {
        PageTable {
            hot: self
                .hot
                .iter()
                .map(|a| AtomicU8::new(a.load(Ordering::Relaxed)))
                .collect(),
            links: self
                .links
                .iter()
                .map(|a| AtomicU32::new(a.load(Ordering::Relaxed)))
                .collect(),
            prev_xor: self.prev_xor,
            prev_offset: self.prev_offset,
            parity: self.parity,
        }
    }
}

impl core::fmt::Debug for PageTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PageTable({} pages)", self.hot.len())
    }
}

/// The two bits an allocated head keeps its migratetype in.
fn mt_code(mt: MigrateType) -> u8 {
    match mt {
        MigrateType::Movable => 1,
        MigrateType::Reclaimable => 2,
        // Allocations are made as one of the three ordinary types; the
        // others never reach a record.
        _ => 0,
    }
}

fn mt_of_code(code: u8) -> MigrateType {
    match code & 0b11 {
        1 => MigrateType::Movable,
        2 => MigrateType::Reclaimable,
        _ => MigrateType::Unmovable,
    }
}

impl PageMeta {
    /// A tail page.
    pub const TAIL: PageMeta = PageMeta(kind::TAIL << KIND_SHIFT);

    const fn of_kind(kind: u8, order: u8) -> PageMeta {
        PageMeta(kind << KIND_SHIFT | order & ORDER_MASK)
    }

    /// A head of `state` and `order`, flag clear.
    pub(crate) fn head(state: PageState, order: Order) -> PageMeta {
        let o = order.get();
        match state {
            PageState::Tail => PageMeta::TAIL,
            PageState::FreeHead => PageMeta::of_kind(kind::FREE, o),
            PageState::AllocHead => PageMeta(ALLOC_BIT | o & ORDER_MASK),
            PageState::PcpHead => PageMeta::of_kind(kind::PCP, o),
            PageState::OfflineHead => PageMeta::of_kind(kind::OFFLINE, o),
            PageState::ReportingHead => PageMeta::of_kind(kind::REPORTING, o),
            PageState::HeldHead => PageMeta::of_kind(kind::HELD, o),
        }
    }

    /// An allocated head of `order` that remembers its migratetype.
    #[inline]
    pub(crate) fn allocated(order: Order, mt: MigrateType) -> PageMeta {
        PageMeta(ALLOC_BIT | mt_code(mt) << MT_SHIFT | order.get() & ORDER_MASK)
    }

    /// One page of an allocated contiguous run (seed 003): an order-0
    /// allocated head with the flag set, typed unmovable (nothing migrates
    /// it, so a later isolation refuses its pageblock).
    pub(crate) const CONTIG: PageMeta = PageMeta(ALLOC_BIT | CONTIG_BIT);

    /// Whether this is a page of an allocated contiguous run.
    #[inline]
    pub(crate) fn is_contig(self) -> bool {
        self.0 & (ALLOC_BIT | CONTIG_BIT | ORDER_MASK) == ALLOC_BIT | CONTIG_BIT
    }

    /// An order-0 allocated head being freed by a batch: a per-CPU head
    /// to everyone else, so any other free of it fails, keeping its
    /// migratetype for [`PageMeta::unfreeing`] to restore.
    pub(crate) fn freeing(self) -> PageMeta {
        PageMeta(kind::FREEING << KIND_SHIFT | (self.0 & MT_MASK) >> MT_SHIFT)
    }

    /// The allocated record [`PageMeta::freeing`] came from.
    pub(crate) fn unfreeing(self) -> PageMeta {
        PageMeta(ALLOC_BIT | (self.0 & 0b11) << MT_SHIFT)
    }

    /// The raw byte, for digests.
    pub(crate) fn bits(self) -> u8 {
        self.0
    }

    fn kind(self) -> u8 {
        (self.0 & KIND_MASK) >> KIND_SHIFT
    }

    /// The page's state.
    #[inline]
    pub fn state(self) -> PageState {
        if self.0 & ALLOC_BIT != 0 {
            return PageState::AllocHead;
        }
        match self.kind() {
            kind::PCP | kind::FREEING => PageState::PcpHead,
            kind::FREE | kind::FREE_REPORTED => PageState::FreeHead,
            kind::OFFLINE => PageState::OfflineHead,
            kind::REPORTING => PageState::ReportingHead,
            kind::HELD => PageState::HeldHead,
            _ => PageState::Tail,
        }
    }

    fn order_bits(self) -> u8 {
        if self.0 & ALLOC_BIT == 0 && self.kind() == kind::FREEING {
            return 0;
        }
        self.0 & ORDER_MASK
    }

    /// The block's order (meaningful for heads only).
    #[inline]
    pub fn order(self) -> Order {
        // Four bits never exceed Order::LIMIT.
        Order::new(self.order_bits()).unwrap_or(Order::LIMIT)
    }

    /// The per-state flag: "reported" for free heads, "page of a
    /// contiguous run" for allocated heads.
    pub fn flag(self) -> bool {
        if self.0 & ALLOC_BIT != 0 {
            self.0 & CONTIG_BIT != 0
        } else {
            self.kind() == kind::FREE_REPORTED
        }
    }

    /// Sets the flag of a free head ("reported"); other records keep it.
    pub(crate) fn set_flag(&mut self, on: bool) {
        if self.0 & ALLOC_BIT == 0 && self.kind() >> 1 == kind::FREE >> 1 {
            let k = if on { kind::FREE_REPORTED } else { kind::FREE };
            *self = PageMeta::of_kind(k, self.0 & ORDER_MASK);
        }
    }

    /// The migratetype an allocated head was allocated as.
    pub fn alloc_migratetype(self) -> MigrateType {
        mt_of_code((self.0 & MT_MASK) >> MT_SHIFT)
    }

    /// Whether this is an allocated head of exactly `order` that is not
    /// part of a contiguous run: the free path's test.
    #[inline]
    pub(crate) fn is_allocated_of_order(self, order: Order) -> bool {
        self.0 & (ALLOC_BIT | CONTIG_BIT | ORDER_MASK) == ALLOC_BIT | order.get()
    }

    /// Whether this is a free head of exactly `order` (reported or not):
    /// the buddy test.
    #[inline]
    pub(crate) fn is_free_of_order(self, order: Order) -> bool {
        // FREE and FREE_REPORTED differ in the kind's lowest bit.
        self.0 & !(1 << KIND_SHIFT) == kind::FREE << KIND_SHIFT | order.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let o = Order::new(10).unwrap();
        let mut m = PageMeta::head(PageState::FreeHead, o);
        assert_eq!(m.state(), PageState::FreeHead);
        assert_eq!(m.order(), o);
        m.set_flag(true);
        assert!(m.flag());
        assert_eq!(m.state(), PageState::FreeHead);
        assert!(m.is_free_of_order(o));
        assert!(!m.is_free_of_order(Order::ZERO));
        m.set_flag(false);
        assert!(!m.flag());
        assert_eq!(m.order(), o);
        for state in [
            PageState::Tail,
            PageState::FreeHead,
            PageState::AllocHead,
            PageState::PcpHead,
            PageState::OfflineHead,
            PageState::ReportingHead,
            PageState::HeldHead,
        ] {
            let m = PageMeta::head(state, Order::new(3).unwrap());
            assert_eq!(m.state(), state);
            if state != PageState::Tail {
                assert_eq!(m.order().get(), 3);
            }
            assert!(!m.flag());
        }
    }

    #[test]
    fn links_of_a_head_use_its_own_and_its_buddy_slot() {
        // Zone starting at an odd pfn: index 0 is pfn 1, whose buddy
        // (pfn 0) lies outside the zone, in the padding slot.
        let p = PageTable::new(8, 1, true);
        p.set_next(0, 5);
        p.set_prev(0, 6);
        assert_eq!((p.next(0), p.prev(0)), (5, 6));
        // Index 1 is pfn 2: its buddy is pfn 3 = index 2.
        p.set_next(1, 7);
        p.set_prev(1, 3);
        assert_eq!(p.next(2), 3, "pfn 3's own slot holds pfn 2's prev");
        assert_eq!((p.next(0), p.prev(0)), (5, 6));
        // The last index of an odd-started zone has its buddy past the end.
        p.set_prev(7, 1);
        assert_eq!(p.prev(7), 1);
    }

    #[test]
    fn without_merging_prev_links_have_slots_of_their_own() {
        let p = PageTable::new(8, 0, false);
        // Buddies 2 and 3 both listed, as two free order-0 pages that may
        // not merge are.
        p.set_next(2, 3);
        p.set_prev(2, NIL);
        p.set_next(3, NIL);
        p.set_prev(3, 2);
        assert_eq!(
            (p.next(2), p.prev(2), p.next(3), p.prev(3)),
            (3, NIL, NIL, 2)
        );
        assert!(p.bytes() > PageTable::new(8, 0, true).bytes());
    }

    #[test]
    fn allocated_head_keeps_migratetype() {
        let m = PageMeta::allocated(Order::new(3).unwrap(), MigrateType::Reclaimable);
        assert_eq!(m.state(), PageState::AllocHead);
        assert_eq!(m.alloc_migratetype(), MigrateType::Reclaimable);
        assert!(!m.is_free_of_order(Order::new(3).unwrap()));
        assert_eq!(PageMeta::TAIL.state(), PageState::Tail);
        let moving = PageMeta::allocated(Order::ZERO, MigrateType::Movable);
        let f = moving.freeing();
        assert_eq!((f.state(), f.order()), (PageState::PcpHead, Order::ZERO));
        assert!(!f.is_allocated_of_order(Order::ZERO));
        assert_eq!(f.unfreeing(), moving);
    }

    #[test]
    fn a_contiguous_page_is_no_plain_allocated_page() {
        let c = PageMeta::CONTIG;
        assert_eq!(c.state(), PageState::AllocHead);
        assert_eq!(c.order(), Order::ZERO);
        assert!(c.is_contig());
        assert!(c.flag());
        assert_eq!(c.alloc_migratetype(), MigrateType::Unmovable);
        assert!(!c.is_allocated_of_order(Order::ZERO));
        let plain = PageMeta::allocated(Order::ZERO, MigrateType::Unmovable);
        assert!(plain.is_allocated_of_order(Order::ZERO));
        assert!(!plain.is_contig());
    }
}
