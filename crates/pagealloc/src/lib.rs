//! # pagealloc: a Linux-class physical page allocator
//!
//! `pagealloc` hands out physical page frames the way Linux's buddy
//! allocator does, with the same decisions, in a `no_std` crate whose
//! metadata lives out of band: it never touches the memory it manages, so
//! the same engine serves a kernel, a hypervisor, a device-memory pool and a
//! simulator.
//!
//! ## Layers
//!
//! * **Units** ([`units`]): [`Pfn`], [`PageCount`], [`Order`],
//!   [`MigrateType`], [`ZoneType`], [`AllocFlags`]. No bare integers for
//!   frames or orders.
//! * **Layout** ([`layout`], [`config`]): a memory map with holes becomes
//!   zones per node (x86-64 boundaries by default), with configurable page
//!   size, number of orders and pageblock order.
//! * **Page records** (`page`): eight bytes per page, state, order and the
//!   free-list links packed in one word.
//! * **Free lists** ([`free_list`]): per zone, order and migratetype,
//!   intrusive, O(1) insert at head or tail and O(1) unlink.
//! * **Buddy engine** (`buddy`, `fallback`, `highatomic`, `watermark`):
//!   split and merge; pageblock ownership; Linux 6.x fallback with pageblock
//!   claiming and stealing; the high-atomic reserve; min/low/high watermarks
//!   and lowmem reserves; zonelist fallback Normal → DMA32 → DMA.
//! * **Per-CPU front end** (`pcp`, `bulk`; seed 004): per-CPU lists for
//!   orders 0..=3 and the pageblock order with Linux 6.7+ batch and high
//!   tuning, so most allocations and frees never take the zone lock;
//!   [`Allocator::alloc_bulk`] and [`Allocator::free_bulk`] on top, and
//!   [`LocalLists`] ([`Allocator::local`]) to hold one CPU's lists across
//!   many calls, as a kernel with interrupts off would, with no lock per call.
//! * **Packed allocation** (`compact`; seed 001): [`Allocator::alloc_packed`]
//!   and the [`Packing`] policy put order-0 pages into pageblocks their
//!   migratetype already owns, fullest first.
//! * **Events** ([`events`]): an optional [`EventSink`] with the fields of
//!   Linux's `kmem` tracepoints.
//! * **Observability** ([`report`], [`stats`]): counters after
//!   `/proc/vmstat`, and snapshots rendered exactly as `/proc/buddyinfo`,
//!   `/proc/pagetypeinfo`, `/proc/zoneinfo` and debugfs's fragmentation
//!   indices print them.
//!
//! ## Concurrency
//!
//! The allocator is `Send + Sync`. Each zone's free lists sit behind a
//! `lock_api` lock (`R`, a spinlock by default, so it works without `std`),
//! and each CPU's lists for all zones behind one more; page records are
//! atomics owned by
//! whoever holds the block they head, and a free takes an allocated head
//! over with one compare-and-swap, so a racing double free fails with an
//! error. The caller names its CPU ([`CpuId`]); `std` adds
//! [`Allocator::this_cpu`]. Every ordinary call try-locks its CPU's lists;
//! a [`LocalLists`] holds them instead, until dropped. The plain [`Allocator::alloc`] and
//! [`Allocator::free`] use CPU 0.
//!
//! Every invariant in docs/DESIGN.md is checked by
//! [`Allocator::check_invariants`].
//!
//! ## Example
//!
//! ```
//! use pagealloc::{AllocFlags, Allocator, Config, MemoryMap, Order, PageCount, Pfn};
//!
//! // 64 MiB of 4 KiB pages starting at 16 MiB: one DMA32 zone.
//! let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(16384)).unwrap();
//! let a: Allocator = Allocator::new(map, Config::default()).unwrap();
//!
//! let page = a.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
//! let huge = a.alloc(Order::new(9).unwrap(), AllocFlags::HIGHUSER_MOVABLE).unwrap();
//! a.free(page, Order::ZERO).unwrap();
//! assert!(a.free(page, Order::ZERO).is_err()); // a double free is an error, not a panic
//! a.free(huge, Order::new(9).unwrap()).unwrap();
//! a.check_invariants().unwrap();
//! print!("{}", a.buddyinfo()); // Node 0, zone    DMA32      0      0 ...
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod allocator;
mod buddy;
mod bulk;
mod compact;
pub mod config;
pub mod error;
pub mod events;
mod fallback;
pub mod free_list;
mod highatomic;
mod invariants;
pub mod layout;
mod local;
mod page;
mod pcp;
pub mod report;
pub mod stats;
pub mod units;
mod watermark;
mod zone;

pub use allocator::{Allocator, DefaultLock};
pub use buddy::FreePlacement;
pub use bulk::BulkFreeError;
pub use compact::{PackClaim, Packing};
pub use config::{CmaSupport, Config, HighAtomicReserve, MinFree, PcpHigh, PcpMode, ZoneBounds};
pub use error::{AllocError, BlockError, ConfigError, InvariantViolation, LocalError};
pub use events::{AllocEvent, AllocKind, DrainEvent, EventSink, FreeEvent, FreeKind};
pub use fallback::FallbackEvent;
pub use layout::{MemRange, MemoryMap};
pub use local::LocalLists;
pub use page::{PageMeta, PageState, MAX_ZONE_PAGES};
pub use pcp::Pcp;
pub use report::{BuddyInfo, FragIndex, FragIndexKind, PageTypeInfo, ZoneInfo};
pub use stats::VmStats;
pub use units::{AllocFlags, CpuId, MigrateType, NodeId, Order, PageCount, Pfn, ZoneType};
pub use watermark::Watermarks;
pub use zone::{BlockInfo, FreeAreas, Zone, ZoneCore};
