//! The out-of-band page record: eight bytes per page.
//!
//! Linux spends a 64-byte `struct page` on every frame. The allocator needs
//! far less, because only the *first* page of a block carries anything: the
//! state, the order, and, for a free block, the two links of its free list.
//! Every other page of a block is a plain tail. One `u64` holds it all:
//!
//! ```text
//!  63          36 35          8 7   6    3 2   0
//! +--------------+-------------+---+------+-----+
//! |  prev (28)   |  next (28)  | f | ord  | tag |
//! +--------------+-------------+---+------+-----+
//! ```
//!
//! * `tag` says what the page is ([`PageState`]).
//! * `ord` is the block's order, for heads.
//! * `f` is a per-state flag: "reported to the host" for free heads (seed
//!   002); "one page of a contiguous run" for allocated heads (seed 003),
//!   whose every page is an order-0 allocated head with the flag, so a run
//!   of any length, far beyond the largest order, is freed in any pieces.
//! * `next`/`prev` are zone-relative page indices of the neighbours on a list
//!   (free list or per-CPU list). An allocated head does not sit on a list, so
//!   it keeps its allocation's migratetype in the low bits of `next` instead.
//!
//! Twenty-eight bits of index bound a zone to 2^28 - 1 pages (1 TiB with
//! 4 KiB pages, 16 TiB with 64 KiB pages); larger zones are refused with a
//! typed error at construction, not truncated. A zeroed record is a tail, so a
//! zone's metadata starts as one zero-filled allocation.
//!
//! Records are atomics ([`PageTable`]) so that each can be read and written
//! by whoever owns the block it heads, without the zone lock: a free block's
//! head belongs to the zone-lock holder, a per-CPU block's head to that
//! CPU's list lock holder, an allocated block's head to its user. Freeing
//! hands an allocated head over with one compare-and-swap, which is also
//! what makes a racing double free fail cleanly. On x86-64 and arm64 a
//! relaxed atomic load or store is an ordinary `mov`/`ldr`/`str`.

use crate::sync::atomic::{AtomicU64, Ordering};
use alloc::boxed::Box;

use crate::units::{MigrateType, Order};

/// Bits of a list link.
const LINK_BITS: u32 = 28;
const LINK_MASK: u64 = (1 << LINK_BITS) - 1;
/// The "no neighbour" link value.
pub(crate) const NIL: u32 = LINK_MASK as u32;
/// Most pages one zone may span: 2^28 - 1, since every zone-relative index
/// must fit a 28-bit link and differ from the "no neighbour" value.
pub const MAX_ZONE_PAGES: u64 = LINK_MASK;

const TAG_MASK: u64 = 0b111;
const ORDER_SHIFT: u32 = 3;
const ORDER_MASK: u64 = 0b1111;
const FLAG_BIT: u64 = 1 << 7;
const NEXT_SHIFT: u32 = 8;
const PREV_SHIFT: u32 = NEXT_SHIFT + LINK_BITS;

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

impl PageState {
    fn from_tag(tag: u64) -> PageState {
        match tag {
            1 => PageState::FreeHead,
            2 => PageState::AllocHead,
            3 => PageState::PcpHead,
            4 => PageState::OfflineHead,
            5 => PageState::ReportingHead,
            6 => PageState::HeldHead,
            _ => PageState::Tail,
        }
    }
}

/// One page's record. See the module docs for the layout.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub(crate) struct PageMeta(u64);

/// Bytes of the record kept per page.
pub const PAGE_RECORD_BYTES: usize = core::mem::size_of::<PageMeta>();

// The whole point of the layout: keep the promise in the design.
const _: () = assert!(PAGE_RECORD_BYTES == 8);

impl core::fmt::Debug for PageMeta {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageMeta")
            .field("state", &self.state())
            .field("order", &self.order_bits())
            .field("flag", &self.flag())
            .field("next", &self.next())
            .field("prev", &self.prev())
            .finish()
    }
}

/// The records of one zone's pages, index = pfn - zone start.
pub(crate) struct PageTable(Box<[AtomicU64]>);

impl PageTable {
    /// `n` tail records.
    pub(crate) fn new(n: usize) -> PageTable {
        PageTable((0..n).map(|_| AtomicU64::new(0)).collect())
    }

    #[inline]
    pub(crate) fn get(&self, idx: u32) -> PageMeta {
        PageMeta(self.0[idx as usize].load(Ordering::Relaxed))
    }

    #[inline]
    pub(crate) fn set(&self, idx: u32, meta: PageMeta) {
        self.0[idx as usize].store(meta.0, Ordering::Relaxed)
    }

    /// Replaces `expected` with `new`; on failure returns what was there.
    #[inline]
    pub(crate) fn replace(
        &self,
        idx: u32,
        expected: PageMeta,
        new: PageMeta,
    ) -> Result<(), PageMeta> {
        self.0[idx as usize]
            .compare_exchange(expected.0, new.0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(PageMeta)
    }

    #[inline]
    pub(crate) fn update(&self, idx: u32, f: impl FnOnce(&mut PageMeta)) {
        let mut meta = self.get(idx);
        f(&mut meta);
        self.set(idx, meta);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl Clone for PageTable {
    fn clone(&self) -> PageTable {
        PageTable(
            self.0
                .iter()
                .map(|a| AtomicU64::new(a.load(Ordering::Relaxed)))
                .collect(),
        )
    }
}

impl core::fmt::Debug for PageTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PageTable({} pages)", self.0.len())
    }
}

impl PageMeta {
    /// A tail page.
    pub const TAIL: PageMeta = PageMeta(0);

    /// A head of `state` and `order`, unlinked, flag clear.
    pub(crate) fn head(state: PageState, order: Order) -> PageMeta {
        PageMeta(
            state as u64
                | (order.get() as u64) << ORDER_SHIFT
                | (NIL as u64) << NEXT_SHIFT
                | (NIL as u64) << PREV_SHIFT,
        )
    }

    /// An allocated head of `order` that remembers its migratetype.
    pub(crate) fn allocated(order: Order, mt: MigrateType) -> PageMeta {
        PageMeta(
            PageState::AllocHead as u64
                | (order.get() as u64) << ORDER_SHIFT
                | (mt as u64) << NEXT_SHIFT,
        )
    }

    /// One page of an allocated contiguous run (seed 003): an order-0
    /// allocated head with the flag set, typed unmovable (nothing migrates
    /// it, so a later isolation refuses its pageblock).
    pub(crate) const CONTIG: PageMeta = PageMeta(
        PageState::AllocHead as u64 | FLAG_BIT | (MigrateType::Unmovable as u64) << NEXT_SHIFT,
    );

    /// Whether this is a page of an allocated contiguous run.
    #[inline]
    pub(crate) fn is_contig(self) -> bool {
        self.0 & (TAG_MASK | ORDER_MASK << ORDER_SHIFT | FLAG_BIT)
            == PageState::AllocHead as u64 | FLAG_BIT
    }

    /// An allocated head being freed by a batch: marked per-CPU, so any
    /// other free of it fails, while every other bit of the allocated
    /// record stays for [`PageMeta::unfreeing`] to restore.
    pub(crate) fn freeing(self) -> PageMeta {
        PageMeta((self.0 & !TAG_MASK) | PageState::PcpHead as u64)
    }

    /// The allocated record [`PageMeta::freeing`] came from.
    pub(crate) fn unfreeing(self) -> PageMeta {
        PageMeta((self.0 & !TAG_MASK) | PageState::AllocHead as u64)
    }

    /// The page's state.
    /// The raw word, for digests.
    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    pub fn state(self) -> PageState {
        PageState::from_tag(self.0 & TAG_MASK)
    }

    fn order_bits(self) -> u8 {
        ((self.0 >> ORDER_SHIFT) & ORDER_MASK) as u8
    }

    /// The block's order (meaningful for heads only).
    pub fn order(self) -> Order {
        // Four bits never exceed Order::LIMIT.
        Order::new(self.order_bits()).unwrap_or(Order::LIMIT)
    }

    /// The per-state flag ("reported" for free heads).
    pub fn flag(self) -> bool {
        self.0 & FLAG_BIT != 0
    }

    pub(crate) fn set_flag(&mut self, on: bool) {
        if on {
            self.0 |= FLAG_BIT;
        } else {
            self.0 &= !FLAG_BIT;
        }
    }

    /// The migratetype an allocated head was allocated as.
    pub fn alloc_migratetype(self) -> MigrateType {
        MigrateType::from_index(((self.0 >> NEXT_SHIFT) & 0b111) as usize)
            .unwrap_or(MigrateType::Unmovable)
    }

    pub(crate) fn next(self) -> u32 {
        ((self.0 >> NEXT_SHIFT) & LINK_MASK) as u32
    }

    pub(crate) fn prev(self) -> u32 {
        ((self.0 >> PREV_SHIFT) & LINK_MASK) as u32
    }

    pub(crate) fn set_next(&mut self, idx: u32) {
        self.0 = (self.0 & !(LINK_MASK << NEXT_SHIFT)) | ((idx as u64) & LINK_MASK) << NEXT_SHIFT;
    }

    pub(crate) fn set_prev(&mut self, idx: u32) {
        self.0 = (self.0 & !(LINK_MASK << PREV_SHIFT)) | ((idx as u64) & LINK_MASK) << PREV_SHIFT;
    }

    /// Whether this is an allocated head of exactly `order` that is not
    /// part of a contiguous run: the free path's test.
    #[inline]
    pub(crate) fn is_allocated_of_order(self, order: Order) -> bool {
        self.0 & (TAG_MASK | ORDER_MASK << ORDER_SHIFT | FLAG_BIT)
            == PageState::AllocHead as u64 | (order.get() as u64) << ORDER_SHIFT
    }

    /// Whether this is a free head of exactly `order`: the buddy test.
    #[inline]
    pub(crate) fn is_free_of_order(self, order: Order) -> bool {
        self.0 & (TAG_MASK | ORDER_MASK << ORDER_SHIFT)
            == PageState::FreeHead as u64 | (order.get() as u64) << ORDER_SHIFT
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
        assert_eq!((m.next(), m.prev()), (NIL, NIL));
        m.set_next(5);
        m.set_prev(MAX_ZONE_PAGES as u32 - 1);
        m.set_flag(true);
        assert_eq!(m.next(), 5);
        assert_eq!(m.prev(), MAX_ZONE_PAGES as u32 - 1);
        assert!(m.flag());
        assert!(m.is_free_of_order(o));
        assert!(!m.is_free_of_order(Order::ZERO));
        m.set_flag(false);
        assert!(!m.flag());
        assert_eq!(m.order(), o);
    }

    #[test]
    fn allocated_head_keeps_migratetype() {
        let m = PageMeta::allocated(Order::new(3).unwrap(), MigrateType::Reclaimable);
        assert_eq!(m.state(), PageState::AllocHead);
        assert_eq!(m.alloc_migratetype(), MigrateType::Reclaimable);
        assert!(!m.is_free_of_order(Order::new(3).unwrap()));
        assert_eq!(PageMeta::TAIL.state(), PageState::Tail);
    }

    #[test]
    fn a_contiguous_page_is_no_plain_allocated_page() {
        let c = PageMeta::CONTIG;
        assert_eq!(c.state(), PageState::AllocHead);
        assert_eq!(c.order(), Order::ZERO);
        assert!(c.is_contig());
        assert!(!c.is_allocated_of_order(Order::ZERO));
        let plain = PageMeta::allocated(Order::ZERO, MigrateType::Unmovable);
        assert!(plain.is_allocated_of_order(Order::ZERO));
        assert!(!plain.is_contig());
    }
}
