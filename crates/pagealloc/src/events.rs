//! Allocation events, with the fields of Linux's `kmem` tracepoints, for an
//! embedder-provided sink (a kernel's tracepoints, `pagesim`'s ftrace
//! writer).
//!
//! | event | Linux tracepoint |
//! |---|---|
//! | [`AllocEvent`] | `mm_page_alloc` |
//! | [`FreeEvent`] | `mm_page_free` (and `mm_page_free_batched` for batched frees) |
//! | [`FallbackEvent`] | `mm_page_alloc_extfrag` |
//! | [`DrainEvent`] | `mm_page_pcpu_drain` |
//!
//! Without a sink the only cost is one predictable branch per event site.

use crate::units::{AllocFlags, CpuId, MigrateType, Order, Pfn};

/// How an allocation was made.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AllocKind {
    /// One block (`alloc`, `alloc_on_cpu`).
    Single,
    /// One page of a bulk request (`alloc_bulk`).
    Bulk,
    /// One page of a packed request (`alloc_packed`).
    Packed,
}

/// A block was allocated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AllocEvent {
    /// First frame.
    pub pfn: Pfn,
    /// Order.
    pub order: Order,
    /// Migratetype asked for.
    pub migratetype: MigrateType,
    /// The caller's flags.
    pub flags: AllocFlags,
    /// The CPU whose lists served it.
    pub cpu: CpuId,
    /// Which entry point.
    pub kind: AllocKind,
}

/// How a block was freed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FreeKind {
    /// One block (`free`, `free_on_cpu`).
    Single,
    /// One page of a batch (`free_bulk`): Linux emits `mm_page_free` and
    /// then `mm_page_free_batched` for it.
    Batched,
}

/// A block was freed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FreeEvent {
    /// First frame.
    pub pfn: Pfn,
    /// Order.
    pub order: Order,
    /// The CPU whose lists took it.
    pub cpu: CpuId,
    /// Which entry point.
    pub kind: FreeKind,
}

/// A block went from a per-CPU list back to the buddy lists.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DrainEvent {
    /// First frame.
    pub pfn: Pfn,
    /// Order.
    pub order: Order,
    /// The pageblock's migratetype.
    pub migratetype: MigrateType,
}

/// Receives allocation events. Every method has an empty default, so a
/// sink implements only what it wants. Called with allocator locks held:
/// record and return, do not call back into the allocator.
pub trait EventSink: Send + Sync {
    /// A block was allocated.
    fn alloc(&self, _event: &AllocEvent) {}
    /// A block was freed.
    fn free(&self, _event: &FreeEvent) {}
    /// An allocation fell back to another migratetype's free lists.
    fn fallback(&self, _event: &FallbackEvent) {}
    /// A per-CPU list gave a block back to the buddy lists.
    fn pcp_drain(&self, _event: &DrainEvent) {}
}

/// One fallback, with the fields of Linux's `mm_page_alloc_extfrag` event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FallbackEvent {
    /// The first frame of the allocated block.
    pub pfn: Pfn,
    /// The order requested.
    pub alloc_order: Order,
    /// The order of the block taken from the other type's list.
    pub fallback_order: Order,
    /// The type requested.
    pub alloc_migratetype: MigrateType,
    /// The type whose list the block came from.
    pub fallback_migratetype: MigrateType,
    /// The pageblock now belongs to the requested type.
    pub change_ownership: bool,
}

impl FallbackEvent {
    /// Whether the fallback split a block smaller than a pageblock, leaving
    /// a pageblock with mixed types (Linux's `fragmenting` field).
    pub fn fragmenting(&self, pageblock: Order) -> bool {
        self.fallback_order < pageblock
    }
}
