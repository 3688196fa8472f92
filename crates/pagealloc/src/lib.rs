//! # pagealloc: a Linux-class physical page allocator
//!
//! `pagealloc` hands out physical page frames the way Linux's buddy
//! allocator does, with the same decisions, in a `no_std` crate whose
//! metadata lives out of band: it never touches the memory it manages, so
//! the same engine serves a kernel, a hypervisor, a device-memory pool and a
//! simulator.
//!
//! ## Layers (the source tree reads the same way, bottom up)
//!
//! * **Units, policy, configuration** ([`units`], [`policy`], [`config`],
//!   [`layout`]): [`Pfn`], [`PageCount`], [`Order`], [`MigrateType`],
//!   [`ZoneType`], [`AllocFlags`]; the [`Packing`] policy; a memory map with
//!   holes becomes zones per node; CMA areas are declared here.
//! * **The buddy engine** (`engine/`): eight-byte page records, intrusive
//!   free lists, the pageblock table, zones, split and merge, Linux 6.x
//!   fallback with pageblock claiming and stealing, the high-atomic reserve,
//!   watermarks and lowmem reserves. It knows nothing of what sits above.
//! * **Packing** (`packing/`, seed 001): order-0 pages packed into
//!   pageblocks their type already owns, fullest first.
//! * **The request path** (`request`): every allocation becomes one request
//!   (order, migratetype, highest zone, mode) and takes its block from the
//!   first *source* that has one: high-atomic reserve, CMA, packing, the
//!   type's own lists, fallback. Modes such as `NO_FALLBACK` hold on every
//!   path.
//! * **The per-CPU front end** (`pcp/`, seed 004): per-CPU lists for orders
//!   0..=3 and the pageblock order with Linux 6.7+ batch and high tuning,
//!   bulk allocation and batched free, and [`LocalLists`].
//! * **The allocator facade** (`allocator/`): construction, the allocation
//!   and free paths, drains, CPUs and counters.
//! * **Observation** (`observe/`, [`report`], [`stats`], [`events`]):
//!   snapshots rendered exactly as `/proc/buddyinfo`, `/proc/pagetypeinfo`,
//!   `/proc/zoneinfo` and debugfs's fragmentation indices print them, the
//!   invariant walk, a state digest, and an optional [`EventSink`] with the
//!   fields of Linux's `kmem` tracepoints.
//!
//! ## Entry points, and who calls them
//!
//! | call | for |
//! |---|---|
//! | [`Allocator::alloc_on_cpu`], [`Allocator::free_on_cpu`] | a kernel's page allocation and free, naming the running CPU |
//! | [`Allocator::alloc`], [`Allocator::free`], [`Allocator::alloc_on`] | single-threaded users and tests (CPU 0; `alloc_on` prefers a node) |
//! | [`Allocator::this_cpu`] (std) | a userspace pool whose threads need a CPU slot each |
//! | [`Allocator::alloc_bulk`], [`Allocator::free_bulk`] | drivers and page pools that take or return many order-0 pages at once |
//! | [`Allocator::local`] → [`LocalLists`] | code that already owns its CPU (interrupts off) and makes many calls in a row |
//! | [`Allocator::alloc_packed`] | long-lived unmovable order-0 allocations that must not scatter (seed 001's driver) |
//! | [`Allocator::split_page`] | callers that allocate high order and free page by page |
//! | [`Allocator::drain_local`], [`Allocator::drain_all`] | before isolating memory, or to measure without cached pages |
//! | [`Allocator::buddyinfo`], [`Allocator::pagetypeinfo`], [`Allocator::zoneinfo`], [`Allocator::frag_index`], [`Allocator::stats`] | monitoring, in Linux's own formats |
//! | [`Allocator::check_invariants`], [`Allocator::digest`], [`Clone`] | tests and what-if probes |
//!
//! Every call that names a CPU refuses a missing one with [`InvalidCpu`]
//! (inside its own error type). Parameters come in one order: the CPU, then
//! what is asked (order, flags, options), then the output buffer last.
//!
//! ## Concurrency
//!
//! The allocator is `Send + Sync`. Each zone's free lists sit behind a
//! `lock_api` lock (`R`, a spinlock by default, so it works without `std`),
//! and each CPU's lists for all zones behind one more; page records are
//! atomics owned by whoever holds the block they head, and a free takes an
//! allocated head over with one compare-and-swap, so a racing double free
//! fails with an error. The caller names its CPU ([`CpuId`]); `std` adds
//! [`Allocator::this_cpu`]. Every ordinary call try-locks its CPU's lists;
//! a [`LocalLists`] holds them instead, until dropped, and offers the
//! readers that would otherwise wait for it.
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
mod compact;
pub mod config;
mod contig;
mod engine;
pub mod error;
pub mod events;
pub mod layout;
mod observe;
mod packing;
mod pcp;
pub mod policy;
mod region;
mod reporting;
mod request;
pub mod stats;
mod sync;
pub mod units;

pub use allocator::Allocator;
pub use compact::api::ProactiveOutcome;
pub use compact::policy::{
    fragmentation_score_wmarks, CompactResult, COMPACT_MAX_DEFER_SHIFT, DEFAULT_PROACTIVENESS,
    EXTFRAG_THRESHOLD, PAGE_ALLOC_COSTLY_ORDER,
};
pub use compact::scan::CompactOutcome;
pub use config::{
    CmaArea, CmaReservation, CmaSupport, Config, HighAtomicReserve, MinFree, PcpHigh, PcpMode,
    ZoneBounds,
};
pub use contig::migrate::{MigrateRefusal, Migrator};
pub use contig::range::{ContigAlloc, ContigConstraints, CONTIG_MIGRATE_TRIES};
pub use engine::page::{PageState, MAX_ZONE_PAGES, PAGE_RECORD_BYTES};
pub use engine::zone::{Watermarks, Zone};
pub use error::{
    AllocError, BlockError, BulkFreeError, CmaAreaProblem, ConfigError, ContigError, InvalidCpu,
    InvariantViolation, LocalError, RangeProblem, ReportingProblem,
};
pub use events::{
    AllocEvent, AllocKind, DrainEvent, EventSink, FallbackEvent, FreeEvent, FreeKind,
};
pub use layout::{MemRange, MemoryMap};
pub use observe::report;
pub use observe::report::{BuddyInfo, FragIndex, FragIndexKind, PageTypeInfo, ZoneInfo};
pub use observe::walk::BlockInfo;
pub use pcp::lists::PcpInfo;
pub use pcp::local::LocalLists;
pub use policy::{
    Confinement, PackClaim, Packing, RegionMixing, RegionPolicy, ReportingPolicy,
    DEFAULT_REGION_BYTES, PACK_MAX_SMALL_ORDER,
};
pub use region::api::{RegionInfo, RegionReport, RegionState, ZoneRegions};
pub use region::power::{RegionId, RegionPower};
pub use reporting::api::{
    ReportPass, ReportPassError, ReportSink, ReportingInfo, ReportingState, ZoneReporting,
};
pub use reporting::cycle::ReportedBlock;
pub use stats::VmStats;
pub use sync::DefaultLock;
pub use units::{AllocFlags, CpuId, MigrateType, NodeId, Order, PageCount, Pfn, ZoneType};
