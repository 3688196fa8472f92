//! # pagealloc-arena: real memory under `pagealloc`
//!
//! The `pagealloc` engine never touches the memory it manages; this crate
//! gives it some. An [`Arena`] is one anonymous private mapping
//! (`MAP_NORESERVE`: address space until touched) and a
//! [`pagealloc::Allocator`] whose memory map is that mapping's pages, one
//! frame per OS page. Frame `pfn` is the bytes at
//! `(pfn - start_pfn) * page_size` in the mapping; the frames are numbered
//! from above the configuration's low zones, so the arena is one Normal
//! zone and the engine's Linux policies (per-CPU lists, mobility grouping,
//! watermarks) apply to it unchanged.
//!
//! ## Frames as handles
//!
//! [`Arena::alloc`] returns a [`Block`]: the right to `2^order` frames. A
//! block is neither `Clone` nor `Copy`, so whoever holds it is the only one
//! who can reach its bytes: [`Arena::bytes`] borrows it shared,
//! [`Arena::bytes_mut`] exclusively, each returning a guard that derefs to
//! the slice ([`Bytes`], [`BytesMut`]), and [`Arena::free`] consumes it, so
//! a double free or a use after free does not compile. A block remembers
//! its arena, and another arena refuses it. The arena never lends out its
//! allocator: a raw `free(pfn)` could give a frame to a second block while
//! the first still held it.
//!
//! ## Migration, pins and contiguous runs
//!
//! A block names an entry of the arena's handle table, which holds its
//! current frame, so the arena can move it: [`Arena::alloc_contig_pages`],
//! [`Arena::alloc_contig_range`] and [`Arena::cma_alloc`] take a
//! [`ContigRun`] of any length through the engine's contiguous allocation
//! (seed 003), and the arena's migrator copies each movable block in the
//! way to the frames the engine chose and points its entry there; the
//! [`Block`] stays valid, with its bytes. An access guard counts a borrow in
//! the entry, and the migrator moves only a block with no borrow, so no
//! slice is ever live while its block moves (the block is refused as busy
//! instead, and the access waits out a move in progress). [`Arena::pin`]
//! makes the migrator refuse a block as pinned and gives a frame that
//! stays ([`PinGuard::pfn`]), for something that addresses memory by frame.
//! Runs never move, so [`Arena::run_bytes`] is a plain slice.
//!
//! Measured (`cargo bench -p pagealloc-arena --bench contig`: a 1 GiB
//! arena half full of movable blocks of orders 0 to 3; thread CPU time,
//! two runs): taking the first 64 MiB (`alloc_contig_range`) moves
//! 31.5 MiB in 1,736 blocks in 8.8 ms, 1.15-1.55 times a bare `memcpy` of
//! those bytes; `cma_alloc` of 64 MiB from a 256 MiB area moves 32.8 MiB
//! in 1.22-1.29 times. `alloc_contig_pages` of 64 MiB at any alignment
//! takes 0.6 s, all but 9 ms of it in the engine's search for a candidate;
//! aligned to 64 MiB (as Linux aligns its candidates) it costs what
//! `alloc_contig_range` does. docs/benchmarks.md has the figures.
//!
//! ## Giving memory back
//!
//! Freeing a block leaves its bytes resident, as Linux's free lists do.
//! [`Arena::discard`] and [`Arena::discard_range`] tell the kernel that
//! free frames' contents are not needed, with `madvise`: [`Advice::DontNeed`]
//! drops them at once (they read back as zeros), [`Advice::Free`] lets the
//! kernel drop them when it needs memory. A lazily freed page that the
//! kernel has not dropped yet keeps its bytes, and could turn to zeros
//! later under a live slice; so the arena remembers such pages and writes
//! one byte of each when it hands it out again, which makes the kernel keep
//! it. [`resident_bytes`] and [`lazy_free_bytes`] read what the kernel
//! counts, so the effect can be measured (`examples/rss.rs`).
//!
//! Discarding takes `&mut Arena`: no allocation can take a frame between
//! the check that the range is free and the advice.
//!
//! ## Free page reporting
//!
//! With `Config::reporting` set (a [`ReportingPolicy`]; Linux's defaults
//! report free blocks of at least the pageblock order, 2 MiB),
//! [`Arena::report_pass`] runs one pass of the engine's free page reporting
//! (seed 002) with a sink that `madvise`s each reported block
//! ([`Advice::DontNeed`] or [`Advice::Free`]). The engine takes each batch
//! off its free lists for the call, so nobody can allocate those frames and
//! no [`Block`] covers them: a pass needs only `&Arena` and runs beside
//! allocation and access on other threads. Reported blocks go back marked
//! and are allocated last; a reused reported block reads as zeros
//! (`MADV_DONTNEED`) or, with `MADV_FREE`, is written once per page as it
//! is handed out, as after a discard. A `madvise` error leaves its batch
//! unreported and comes back as [`ReportError::Advise`]. A pass reports
//! about a sixteenth of each free list (Linux's budget), so an idle arena
//! takes several; [`Arena::reporting_info`] says how far it got, and a
//! [`Reporter`] thread runs passes on an `Arc<Arena>` while they are wanted.
//! Blocks cached on the per-CPU lists are not on the free lists and are not
//! reported until they are drained ([`Arena::drain_cpu_lists`]).
//!
//! Measured (`cargo run --release -p pagealloc-arena --example rss`, 1 GiB
//! touched in a 2 GiB arena, freed, then passes with `MADV_DONTNEED`; the
//! resident set after each): 1035.1 MiB freed, then 783.1, 527.6, 271.6,
//! 263.6 MiB, flat to pass 9 (95% of the free lists reported after 7
//! passes, all after 8); the remaining 251.6 MiB sat on the per-CPU
//! pageblock-order list, and after draining it one more pass gave
//! 11.6 MiB, of which about 5 MiB is the handle table (12 bytes per frame,
//! written when the arena is made). With `-- --reporting off` the resident
//! set stays at 1035.2 MiB. docs/DESIGN.md, "pagealloc-arena", has the
//! full output.
//!
//! ## Where the `unsafe` is
//!
//! In one private module, `mapping`: `mmap`, `munmap`, `madvise` (through
//! `rustix`), the slices of blocks and runs and the copy of a move, each
//! block with a numbered `// SAFETY:` note, each operation taking its proof
//! (a counted borrow of a block, a run, frames just handed over, a block
//! locked for a move); the rest of the crate is safe code, as the whole
//! engine is. The slices rest on one fact the engine guarantees and its
//! randomized tests check after every step (invariant 1 of docs/DESIGN.md:
//! every page is in exactly one block), and on the handle table, which
//! changes a block's frame only while no borrow of it is live: two live
//! blocks or runs never share a frame, and a slice's frames stay its own.
//!
//! ## Example
//!
//! ```
//! use pagealloc_arena::{Advice, AllocFlags, Arena, Config, Order};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 64 MiB of address space; memory only where touched.
//! let mut arena = Arena::new(64 << 20, Config::default())?;
//!
//! let huge = Order::new(9).unwrap(); // 2 MiB
//! let mut block = arena.alloc(huge, AllocFlags::HIGHUSER_MOVABLE)?;
//! arena.bytes_mut(&mut block).fill(0xa5);
//! assert!(arena.bytes(&block).iter().all(|&b| b == 0xa5));
//!
//! let (pfn, order) = (arena.pfn(&block), block.order());
//! arena.free(block)?;
//! arena.discard(pfn, order, Advice::DontNeed)?; // the 2 MiB go back to the OS
//!
//! // Discarded frames read as zeros when allocated again (and the others
//! // were never touched).
//! let block = arena.alloc(huge, AllocFlags::HIGHUSER_MOVABLE)?;
//! assert!(arena.bytes(&block).iter().all(|&b| b == 0));
//! arena.free(block)?;
//! arena.check_invariants()?;
//! # Ok(())
//! # }
//! ```

#[cfg(not(target_os = "linux"))]
compile_error!("pagealloc-arena needs Linux: it maps memory with mmap and returns it with madvise");

mod arena;
mod block;
mod contig;
mod discard;
mod error;
mod lazy;
#[allow(unsafe_code)]
mod mapping;
mod migrate;
mod report;
mod reporter;
mod resident;
mod table;

pub use arena::Arena;
pub use block::{Block, Bytes, BytesMut, PinGuard};
pub use contig::{ContigRequest, ContigRun};
pub use discard::Advice;
pub use error::{
    ContigFreeError, DiscardError, FreeError, HandleViolation, NewError, PinError, ReportError,
};
pub use migrate::{AllowAll, MigrateGate, MigrationStats};
pub use reporter::{Reporter, ReporterStats};
pub use resident::{lazy_free_bytes, resident_bytes};
pub use table::HandleCensus;

pub use pagealloc;
pub use pagealloc::{
    AllocError, AllocFlags, CmaArea, CmaReservation, CmaSupport, Config, ContigAlloc,
    ContigConstraints, ContigError, MigrateRefusal, NodeId, Order, PageCount, Pfn, ReportPass,
    ReportingInfo, ReportingPolicy, ReportingState, CONTIG_MIGRATE_TRIES,
};
