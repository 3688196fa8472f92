//! Units: frame numbers, page counts, orders, migratetypes, zone types and
//! allocation flags.
//!
//! Every quantity the allocator handles has its own type, so a frame number
//! is never confused with a count and an order never with either. Arithmetic
//! that could overflow is checked and returns `Option`.

use core::fmt;

/// A physical frame number: the physical address divided by the page size.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The frame `count` pages after this one, or `None` on overflow.
    pub fn checked_add(self, count: PageCount) -> Option<Pfn> {
        self.0.checked_add(count.0).map(Pfn)
    }

    /// Pages from `earlier` up to this frame, or `None` if `earlier` is later.
    pub fn checked_sub(self, earlier: Pfn) -> Option<PageCount> {
        self.0.checked_sub(earlier.0).map(PageCount)
    }

    /// Whether the frame is the first of an aligned block of `order`.
    pub fn is_aligned(self, order: Order) -> bool {
        self.0 & (order.nr_pages().0 - 1) == 0
    }

    /// The first frame of the aligned block of `order` that holds this one.
    pub fn align_down(self, order: Order) -> Pfn {
        Pfn(self.0 & !(order.nr_pages().0 - 1))
    }

    /// The first frame at or after this one that starts an aligned block of
    /// `order`, or `None` on overflow.
    pub fn align_up(self, order: Order) -> Option<Pfn> {
        let mask = order.nr_pages().0 - 1;
        self.0.checked_add(mask).map(|v| Pfn(v & !mask))
    }

    /// The buddy of the block of `order` starting here: the other half of the
    /// block of `order + 1` that holds both.
    pub fn buddy(self, order: Order) -> Pfn {
        Pfn(self.0 ^ order.nr_pages().0)
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A number of pages.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct PageCount(pub u64);

impl PageCount {
    /// The sum, or `None` on overflow.
    pub fn checked_add(self, other: PageCount) -> Option<PageCount> {
        self.0.checked_add(other.0).map(PageCount)
    }

    /// The size in bytes for pages of `page_size_bytes`, or `None` on overflow.
    pub fn checked_bytes(self, page_size_bytes: u64) -> Option<u64> {
        self.0.checked_mul(page_size_bytes)
    }
}

impl fmt::Display for PageCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pages", self.0)
    }
}

/// The order of a block: a block of order `n` holds `2^n` pages.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Order(u8);

impl Order {
    /// The largest order any configuration accepts. A configuration's own
    /// limit (`Config::nr_orders`) is usually smaller.
    pub const LIMIT: Order = Order(MAX_NR_ORDERS as u8 - 1);
    /// A single page.
    pub const ZERO: Order = Order(0);

    /// The order `n`, or `None` if it is above [`Order::LIMIT`].
    pub const fn new(n: u8) -> Option<Order> {
        if n <= Self::LIMIT.0 {
            Some(Order(n))
        } else {
            None
        }
    }

    /// The order as a number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Pages in a block of this order.
    pub const fn nr_pages(self) -> PageCount {
        PageCount(1 << self.0)
    }

    /// The next smaller order, or `None` at order 0.
    pub fn lower(self) -> Option<Order> {
        self.0.checked_sub(1).map(Order)
    }

    /// The next larger order (may exceed a configuration's limit).
    pub(crate) fn higher(self) -> Order {
        Order(self.0 + 1)
    }

    /// The order as an index into per-order arrays.
    pub(crate) fn idx(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order {}", self.0)
    }
}

/// The most orders any configuration may have (orders `0..MAX_NR_ORDERS`).
pub const MAX_NR_ORDERS: usize = 16;

/// How mobile the contents of a page are, which decides the pageblocks it is
/// grouped with ("grouping pages by mobility", Linux 2.6.24).
///
/// The numbering matches Linux's `enum migratetype` with `CONFIG_CMA` and
/// `CONFIG_MEMORY_ISOLATION`, so the first four values are those in the
/// `migratetype=` field of ftrace's `kmem` events.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u8)]
pub enum MigrateType {
    /// Kernel memory that never moves.
    Unmovable = 0,
    /// User and page-cache memory that can be migrated.
    Movable = 1,
    /// Memory that cannot move but can be reclaimed (slab caches).
    Reclaimable = 2,
    /// Pageblocks reserved for high-order atomic allocations.
    HighAtomic = 3,
    /// Contiguous-memory-allocator areas: movable allocations only.
    Cma = 4,
    /// Pageblocks being isolated: nothing is allocated from them.
    Isolate = 5,
}

/// Number of migratetypes.
pub const NR_MIGRATE_TYPES: usize = 6;

/// Number of migratetypes an ordinary allocation may ask for (Linux
/// `MIGRATE_PCPTYPES`): unmovable, movable, reclaimable.
pub const NR_PCP_TYPES: usize = 3;

impl MigrateType {
    /// All migratetypes, in Linux's order.
    pub const ALL: [MigrateType; NR_MIGRATE_TYPES] = [
        MigrateType::Unmovable,
        MigrateType::Movable,
        MigrateType::Reclaimable,
        MigrateType::HighAtomic,
        MigrateType::Cma,
        MigrateType::Isolate,
    ];

    /// The migratetype with Linux's number `n` (0..=5 with CMA configured).
    pub fn from_index(n: usize) -> Option<MigrateType> {
        Self::ALL.get(n).copied()
    }

    /// The index into per-migratetype arrays.
    pub const fn idx(self) -> usize {
        self as usize
    }

    /// The name `/proc/pagetypeinfo` prints.
    pub const fn linux_name(self) -> &'static str {
        match self {
            MigrateType::Unmovable => "Unmovable",
            MigrateType::Movable => "Movable",
            MigrateType::Reclaimable => "Reclaimable",
            MigrateType::HighAtomic => "HighAtomic",
            MigrateType::Cma => "CMA",
            MigrateType::Isolate => "Isolate",
        }
    }

    /// Whether blocks of this type may merge with blocks of another type when
    /// they are freed across pageblocks (Linux `migratetype_is_mergeable`).
    pub const fn is_mergeable(self) -> bool {
        (self as usize) < NR_PCP_TYPES
    }
}

impl fmt::Display for MigrateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.linux_name())
    }
}

/// The kind of a zone, lowest first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u8)]
pub enum ZoneType {
    /// Memory reachable by ISA DMA (below 16 MiB on x86-64).
    Dma = 0,
    /// Memory reachable by 32-bit DMA (below 4 GiB on x86-64).
    Dma32 = 1,
    /// Everything else.
    Normal = 2,
    /// Memory kept for movable allocations only (hot-removable).
    Movable = 3,
}

/// Number of zone types.
pub const NR_ZONE_TYPES: usize = 4;

impl ZoneType {
    /// All zone types, lowest first.
    pub const ALL: [ZoneType; NR_ZONE_TYPES] = [
        ZoneType::Dma,
        ZoneType::Dma32,
        ZoneType::Normal,
        ZoneType::Movable,
    ];

    /// The index into per-zone-type arrays.
    pub const fn idx(self) -> usize {
        self as usize
    }

    /// The name Linux prints in `/proc` files.
    pub const fn linux_name(self) -> &'static str {
        match self {
            ZoneType::Dma => "DMA",
            ZoneType::Dma32 => "DMA32",
            ZoneType::Normal => "Normal",
            ZoneType::Movable => "Movable",
        }
    }
}

impl fmt::Display for ZoneType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.linux_name())
    }
}

/// A CPU number: whose per-CPU lists an operation uses. A kernel passes its
/// own CPU id; the std convenience [`crate::Allocator::this_cpu`] maps
/// threads to slots.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct CpuId(pub u16);

/// A NUMA node number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct NodeId(pub u16);

bitflags::bitflags! {
    /// What an allocation may use and how hard it may try, after Linux's
    /// `gfp_t` (include/linux/gfp_types.h). The empty set is `GFP_KERNEL`'s
    /// placement: an unmovable page from the Normal zone or below.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct AllocFlags: u32 {
        /// Only the DMA zone (`__GFP_DMA`).
        const DMA = 1 << 0;
        /// The DMA32 zone or below (`__GFP_DMA32`).
        const DMA32 = 1 << 1;
        /// May use the Movable zone when also `MOVABLE` (`__GFP_HIGHMEM`).
        const HIGHMEM = 1 << 2;
        /// The contents can be migrated (`__GFP_MOVABLE`).
        const MOVABLE = 1 << 3;
        /// The contents can be reclaimed (`__GFP_RECLAIMABLE`).
        const RECLAIMABLE = 1 << 4;
        /// May dip into half of the min reserve (`__GFP_HIGH`).
        const HIGH = 1 << 5;
        /// Cannot sleep or reclaim: may use more of the reserves and the
        /// high-atomic pageblocks (a `gfp_t` without `__GFP_DIRECT_RECLAIM`).
        const ATOMIC = 1 << 6;
        /// Ignore watermarks entirely (`ALLOC_NO_WATERMARKS`, for memory
        /// reclaim itself).
        const NO_WATERMARKS = 1 << 7;
        /// Do not warn on failure (`__GFP_NOWARN`); failures are counted all
        /// the same.
        const NO_WARN = 1 << 8;
        /// Never take pages from another migratetype's pageblocks.
        const NO_FALLBACK = 1 << 9;
        /// Only the preferred node (`__GFP_THISNODE`).
        const THIS_NODE = 1 << 10;
        /// Never touch the high-atomic reserve, even when atomic
        /// (`__GFP_NOMEMALLOC`).
        const NO_MEMALLOC = 1 << 11;
    }
}

impl AllocFlags {
    /// `GFP_KERNEL`: unmovable kernel memory.
    pub const KERNEL: AllocFlags = AllocFlags::empty();
    /// `GFP_ATOMIC`: cannot sleep, may use reserves.
    pub const GFP_ATOMIC: AllocFlags = AllocFlags::HIGH.union(AllocFlags::ATOMIC);
    /// `GFP_HIGHUSER_MOVABLE`: user pages and page cache.
    pub const HIGHUSER_MOVABLE: AllocFlags = AllocFlags::HIGHMEM.union(AllocFlags::MOVABLE);
    /// `GFP_KERNEL | __GFP_RECLAIMABLE`: slab caches that can be shrunk.
    pub const KERNEL_RECLAIMABLE: AllocFlags = AllocFlags::RECLAIMABLE;

    /// The migratetype the flags ask for (Linux `gfp_migratetype`).
    pub fn migratetype(self) -> MigrateType {
        if self.contains(AllocFlags::MOVABLE) {
            MigrateType::Movable
        } else if self.contains(AllocFlags::RECLAIMABLE) {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        }
    }

    /// The highest zone the flags allow (Linux `gfp_zone`).
    pub fn highest_zone(self) -> ZoneType {
        if self.contains(AllocFlags::DMA) {
            ZoneType::Dma
        } else if self.contains(AllocFlags::DMA32) {
            ZoneType::Dma32
        } else if self.contains(AllocFlags::HIGHMEM | AllocFlags::MOVABLE) {
            ZoneType::Movable
        } else {
            ZoneType::Normal
        }
    }

    /// Flags that ask for `mt` from the Normal zone: the inverse of
    /// [`AllocFlags::migratetype`] for the three ordinary types.
    pub fn for_migratetype(mt: MigrateType) -> AllocFlags {
        match mt {
            MigrateType::Movable => AllocFlags::MOVABLE,
            MigrateType::Reclaimable => AllocFlags::RECLAIMABLE,
            _ => AllocFlags::KERNEL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buddy_and_alignment() {
        let o3 = Order::new(3).unwrap();
        assert_eq!(Pfn(0x10).buddy(o3), Pfn(0x18));
        assert_eq!(Pfn(0x18).buddy(o3), Pfn(0x10));
        assert!(Pfn(0x18).is_aligned(o3));
        assert!(!Pfn(0x1c).is_aligned(o3));
        assert_eq!(Pfn(0x1f).align_down(o3), Pfn(0x18));
        assert_eq!(Pfn(0x19).align_up(o3), Some(Pfn(0x20)));
        assert_eq!(Pfn(u64::MAX).align_up(o3), None);
        assert_eq!(Pfn(u64::MAX).checked_add(PageCount(1)), None);
        assert_eq!(Pfn(3).checked_sub(Pfn(5)), None);
    }

    #[test]
    fn order_limits() {
        assert_eq!(Order::new(15).map(Order::get), Some(15));
        assert_eq!(Order::new(16), None);
        assert_eq!(Order::ZERO.lower(), None);
        assert_eq!(Order::new(9).unwrap().nr_pages(), PageCount(512));
    }

    #[test]
    fn gfp_mapping_follows_linux() {
        assert_eq!(AllocFlags::KERNEL.migratetype(), MigrateType::Unmovable);
        assert_eq!(
            AllocFlags::HIGHUSER_MOVABLE.migratetype(),
            MigrateType::Movable
        );
        assert_eq!(
            AllocFlags::HIGHUSER_MOVABLE.highest_zone(),
            ZoneType::Movable
        );
        assert_eq!(AllocFlags::MOVABLE.highest_zone(), ZoneType::Normal);
        assert_eq!(AllocFlags::DMA32.highest_zone(), ZoneType::Dma32);
        assert_eq!(AllocFlags::DMA.highest_zone(), ZoneType::Dma);
        assert_eq!(
            AllocFlags::RECLAIMABLE.migratetype(),
            MigrateType::Reclaimable
        );
        for mt in [
            MigrateType::Unmovable,
            MigrateType::Movable,
            MigrateType::Reclaimable,
        ] {
            assert_eq!(AllocFlags::for_migratetype(mt).migratetype(), mt);
        }
    }
}
