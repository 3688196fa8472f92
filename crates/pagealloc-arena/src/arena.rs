//! The arena: one mapping, one allocator over its frames, and the blocks
//! that join the two.

use std::sync::OnceLock;

use pagealloc::{
    AllocError, AllocFlags, Allocator, BuddyInfo, Config, ConfigError, InvariantViolation,
    MemoryMap, Order, PageCount, Pfn, VmStats,
};

use crate::block::{ArenaId, Block, Bytes, BytesMut, PinGuard};
use crate::error::{FreeError, HandleViolation, NewError, PinError};
use crate::lazy::LazyFreed;
use crate::mapping::{Fresh, Mapping};
use crate::migrate::MigrationCounters;
use crate::table::{HandleCensus, HandleTable, TooManyPins};

/// The bytes of a PMD-mapped transparent huge page on x86-64 and arm64
/// with 4 KiB pages. The mapping starts on such a boundary (at least), so
/// an aligned block of that size can be one huge page, and discarding it
/// drops the whole huge page instead of splitting one.
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// A region of anonymous memory whose frames a [`pagealloc::Allocator`]
/// hands out as [`Block`]s. See the crate docs for the design.
///
/// `Arena` is `Send + Sync`: allocation, freeing, access, pins and
/// contiguous allocation (with migration) take `&self` and may run on many
/// threads at once, each thread on its own per-CPU lists
/// ([`Allocator::this_cpu`]). Discarding takes `&mut self`.
#[derive(Debug)]
pub struct Arena {
    /// The memory.
    pub(crate) mapping: Mapping,
    /// The allocator over its frames. Never handed out: its `free` would
    /// let a frame go to a second block while the first still held it.
    pub(crate) allocator: Allocator,
    /// The frame at byte 0 of the mapping.
    pub(crate) start: Pfn,
    /// Frames in the arena.
    pub(crate) nr_pages: PageCount,
    /// `log2` of the page size.
    page_shift: u32,
    /// Pages given `MADV_FREE` and not written since; empty until the
    /// first such discard or report.
    pub(crate) lazy: OnceLock<LazyFreed>,
    /// Where each block is now (blocks name entries of it).
    pub(crate) table: HandleTable,
    /// What the migrator did, summed over calls.
    pub(crate) migration: MigrationCounters,
}

impl Arena {
    /// Maps `size_bytes` of anonymous memory and builds an allocator over
    /// it with `config`, every frame free.
    ///
    /// `size_bytes` must be a whole number of pages, and
    /// `config.page_size_bytes` the OS page size (4 KiB on x86-64, as
    /// [`Config::default`] has it). The mapping is `MAP_NORESERVE`: it costs
    /// address space, not memory, until a frame is touched, so an arena can
    /// be as large as the memory it may ever need.
    ///
    /// The frames are numbered from just above the configuration's low
    /// zones (4 GiB with the default x86-64 bounds), so the arena is one
    /// Normal zone: any [`AllocFlags`] that allow Normal can use it; flags
    /// limited to DMA or DMA32 fail with [`AllocError::NoZone`]. The first
    /// frame is aligned to the largest order, so the arena starts with
    /// whole top-order blocks. The watermarks of `config` hold back some
    /// frames from ordinary allocations, as they would in a kernel; a
    /// configuration with [`pagealloc::MinFree::Kbytes`] sets how many.
    /// `config.nr_cpus` sets how many per-CPU list sets the calling threads
    /// are spread over ([`Allocator::this_cpu`]); with one, threads contend
    /// for it and fall through to the zone lock.
    pub fn new(size_bytes: usize, config: Config) -> Result<Arena, NewError> {
        let page_size_bytes = rustix::param::page_size();
        if config.page_size_bytes != page_size_bytes as u64 {
            return Err(NewError::PageSize {
                config_bytes: config.page_size_bytes,
                os_bytes: page_size_bytes,
            });
        }
        if size_bytes == 0 || !size_bytes.is_multiple_of(page_size_bytes) {
            return Err(NewError::Size {
                size_bytes,
                page_size_bytes,
            });
        }
        let nr_pages = PageCount((size_bytes / page_size_bytes) as u64);
        let start = first_pfn(&config).map_err(NewError::Config)?;
        let map = MemoryMap::contiguous(start, nr_pages).map_err(NewError::Config)?;
        let max_block_bytes = page_size_bytes << config.max_order().get();
        let page_shift = config.page_shift();
        // The allocator first: a refused configuration costs no mapping.
        let allocator = Allocator::new(map, config).map_err(NewError::Config)?;
        let align = max_block_bytes.max(HUGE_PAGE_BYTES);
        let mapping = Mapping::new(ArenaId::fresh(), size_bytes, align)
            .map_err(|source| NewError::Map { size_bytes, source })?;
        Ok(Arena {
            mapping,
            allocator,
            start,
            nr_pages,
            page_shift,
            lazy: OnceLock::new(),
            table: HandleTable::new(nr_pages.0 as usize),
            migration: MigrationCounters::default(),
        })
    }

    /// Allocates a block of `2^order` frames (Linux `alloc_pages`), through
    /// the calling thread's per-CPU lists.
    ///
    /// Its bytes are whatever the frames last held: zeros if never touched
    /// or discarded with [`Advice::DontNeed`](crate::Advice::DontNeed),
    /// else a previous owner's bytes. Errors are the allocator's.
    ///
    /// A block allocated with a movable type (`AllocFlags::HIGHUSER_MOVABLE`,
    /// `AllocFlags::MOVABLE`) may be moved by a contiguous allocation
    /// (see [`Arena::alloc_contig_pages`]); any other stays where it is and
    /// makes its pageblock refuse.
    pub fn alloc(&self, order: Order, flags: AllocFlags) -> Result<Block, AllocError> {
        let cpu = self.allocator.this_cpu();
        let pfn = self.allocator.alloc_on_cpu(cpu, order, flags)?;
        let frame = self.page_index(pfn);
        self.keep_lazy(&Fresh::new(frame, order.nr_pages().0 as usize));
        let key = self.table.insert(frame, order);
        Ok(Block::new(
            self.mapping.id(),
            key,
            order,
            (order.nr_pages().0 as usize) << self.page_shift,
        ))
    }

    /// Frees `block` (Linux `__free_pages`), through the calling thread's
    /// per-CPU lists. Its bytes stay resident until discarded. If another
    /// thread is moving the block, waits for the move to end (one block's
    /// copy) and frees it where it went.
    ///
    /// A block of another arena is given back in the error.
    pub fn free(&self, block: Block) -> Result<(), FreeError> {
        if block.arena() != self.mapping.id() {
            return Err(FreeError::Foreign { block });
        }
        let Some(freeing) = self.table.begin_free(&block) else {
            return Err(FreeError::Foreign { block });
        };
        let pfn = self.pfn_at(freeing.frame());
        let cpu = self.allocator.this_cpu();
        match self.allocator.free_on_cpu(cpu, pfn, block.order()) {
            Ok(()) => {
                freeing.commit();
                Ok(())
            }
            Err(error) => {
                drop(freeing);
                Err(FreeError::Refused { block, pfn, error })
            }
        }
    }

    /// The bytes of `block`, to read, through a guard that keeps the block
    /// where it is until dropped (a migration meanwhile refuses it as
    /// busy). If another thread is moving the block, waits for the move to
    /// end (one block's copy). Costs an atomic add at each end; for many
    /// short accesses, keep the guard.
    ///
    /// # Panics
    ///
    /// If `block` came from another arena: a handle is only meaningful to
    /// the arena that made it, as an index is to its slice.
    pub fn bytes<'a>(&'a self, block: &'a Block) -> Bytes<'a> {
        if block.arena() != self.mapping.id() {
            foreign();
        }
        let held = self.table.borrow(block);
        match held.and_then(|held| self.mapping.bytes(held)) {
            Some(bytes) => bytes,
            None => foreign(),
        }
    }

    /// The bytes of `block`, to write. Exclusive: the borrow of `block`
    /// keeps every other access to them out until it ends. As
    /// [`Arena::bytes`], the guard keeps the block where it is.
    ///
    /// # Panics
    ///
    /// If `block` came from another arena, as [`Arena::bytes`].
    pub fn bytes_mut<'a>(&'a self, block: &'a mut Block) -> BytesMut<'a> {
        if block.arena() != self.mapping.id() {
            foreign();
        }
        let held = self.table.borrow_mut(block);
        match held.and_then(|held| self.mapping.bytes_mut(held)) {
            Some(bytes) => bytes,
            None => foreign(),
        }
    }

    /// Pins `block` where it is: until the guard is dropped, migration
    /// refuses it with [`MigrateRefusal::Pinned`](pagealloc::MigrateRefusal::Pinned),
    /// so its frames ([`PinGuard::pfn`]) can be handed to something that
    /// addresses memory by frame (a device, say). A contiguous allocation
    /// over a pinned block then fails with
    /// [`ContigError::Busy`](pagealloc::ContigError::Busy) after the
    /// engine's tries, or, for [`Arena::alloc_contig_pages`], skips to
    /// another candidate. Waits out a move in progress, as
    /// [`Arena::bytes`] does.
    ///
    /// A block can carry up to 1023 pins at once
    /// ([`PinError::TooManyPins`]); one of another arena is refused
    /// ([`PinError::Foreign`]).
    pub fn pin<'a>(&'a self, block: &'a Block) -> Result<PinGuard<'a>, PinError> {
        if block.arena() != self.mapping.id() {
            return Err(PinError::Foreign);
        }
        match self.table.pin(block) {
            Ok(Some(frame)) => Ok(PinGuard::new(&self.table, block, self.pfn_at(frame))),
            Ok(None) => Err(PinError::Foreign),
            Err(TooManyPins) => Err(PinError::TooManyPins {
                pfn: self.pfn(block),
            }),
        }
    }

    /// The first frame of `block` now. A migration may move an unpinned
    /// block at any time, so this is a snapshot; a [`PinGuard`] gives a
    /// frame that stays.
    ///
    /// # Panics
    ///
    /// If `block` came from another arena, as [`Arena::bytes`].
    pub fn pfn(&self, block: &Block) -> Pfn {
        if block.arena() != self.mapping.id() {
            foreign();
        }
        match self.table.frame(block) {
            Some(frame) => self.pfn_at(frame),
            None => foreign(),
        }
    }

    /// The first frame.
    pub fn start_pfn(&self) -> Pfn {
        self.start
    }

    /// One past the last frame.
    pub fn end_pfn(&self) -> Pfn {
        Pfn(self.start.0 + self.nr_pages.0)
    }

    /// Frames in the arena.
    pub fn nr_pages(&self) -> PageCount {
        self.nr_pages
    }

    /// Bytes in the arena.
    pub fn size_bytes(&self) -> usize {
        self.mapping.len()
    }

    /// Bytes per frame: the OS page size.
    pub fn page_size_bytes(&self) -> usize {
        1 << self.page_shift
    }

    /// Free frames on the buddy lists (frames cached on per-CPU lists are
    /// free too, but not counted here).
    pub fn nr_free_pages(&self) -> u64 {
        self.allocator.nr_free_pages()
    }

    /// The allocator's counters.
    pub fn stats(&self) -> VmStats {
        self.allocator.stats()
    }

    /// Free blocks per order, printed as `/proc/buddyinfo`.
    pub fn buddyinfo(&self) -> BuddyInfo {
        self.allocator.buddyinfo()
    }

    /// Returns every block cached on the per-CPU lists to the buddy lists
    /// (Linux `drain_all_pages`), where they merge and, at or above the
    /// reporting order, can be reported. Returns the pages drained.
    ///
    /// The per-CPU lists keep orders 0 to 3 and the pageblock order, and
    /// their high mark tunes itself up to an eighth of the arena during a
    /// burst of frees; the engine has no timer to decay it again (Linux
    /// does, from its `vmstat` work), so after a large free up to that
    /// much free memory waits there, unreportable, until it is allocated
    /// or drained.
    pub fn drain_cpu_lists(&self) -> u64 {
        self.allocator.drain_all()
    }

    /// Pages cached on the per-CPU lists (free, but on no buddy list).
    pub fn nr_cached_pages(&self) -> u64 {
        self.allocator.nr_pcp_pages()
    }

    /// Pages allocated: in blocks and in contiguous runs. With nothing
    /// isolated (no contiguous allocation running),
    /// `nr_free_pages + nr_cached_pages + nr_allocated_pages` is every
    /// frame of the arena.
    pub fn nr_allocated_pages(&self) -> u64 {
        self.allocator.nr_allocated_pages()
    }

    /// Checks every invariant of the allocator (docs/DESIGN.md). Runs
    /// beside other threads' calls (it holds every lock of the engine for
    /// the walk).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.allocator.check_invariants()
    }

    /// Checks the handle table: every live block's entry names an
    /// allocated block of its order that starts at a frame mapping back to
    /// it, no two live blocks share a frame, no entry is locked, and every
    /// frame-to-block mapping points to a live block there. Returns how
    /// many blocks and pages are live, with their borrows and pins.
    ///
    /// Takes `&mut self` so that nothing allocates, frees or moves
    /// meanwhile (and no access guard or pin is live, except any leaked
    /// with `mem::forget`, which are counted).
    pub fn check_handles(&mut self) -> Result<HandleCensus, HandleViolation> {
        let allocator = &self.allocator;
        self.table.census(self.start, |pfn| {
            allocator.allocated_block(pfn).map(|(o, _)| o)
        })
    }

    /// Bytes the handle table takes: 8 per frame for the entries, 4 per
    /// frame for the map from frames to blocks, a bit per frame for the
    /// used map (about 12 bytes per frame, beside the engine's 8).
    pub fn handle_table_bytes(&self) -> usize {
        self.table.size_bytes()
    }

    /// The index of `pfn` from the arena's first frame. `pfn` is one of the
    /// arena's frames.
    pub(crate) fn page_index(&self, pfn: Pfn) -> usize {
        (pfn.0 - self.start.0) as usize
    }

    /// The index of `pfn` from the arena's first frame, if it is one of the
    /// arena's frames.
    pub(crate) fn frame_index(&self, pfn: Pfn) -> Option<usize> {
        (pfn >= self.start && pfn < self.end_pfn()).then(|| self.page_index(pfn))
    }

    /// The frame at index `frame` from the arena's first.
    pub(crate) fn pfn_at(&self, frame: usize) -> Pfn {
        Pfn(self.start.0 + frame as u64)
    }

    /// Writes one byte of each page of `fresh` given `MADV_FREE` and not
    /// written since, so the kernel keeps it (see `lazy.rs`), and forgets
    /// the marks.
    pub(crate) fn keep_lazy(&self, fresh: &Fresh) {
        if let Some(lazy) = self.lazy.get() {
            lazy.take(fresh.frame(), fresh.nr_pages(), |page| {
                self.mapping.keep_page(fresh, page);
            });
        }
    }

    /// `log2` of the page size.
    pub(crate) fn page_shift(&self) -> u32 {
        self.page_shift
    }

    /// The bitmap of lazily freed pages, made on first use.
    pub(crate) fn lazy_marks(&self) -> &LazyFreed {
        let nr_pages = self.nr_pages.0 as usize;
        self.lazy.get_or_init(|| LazyFreed::new(nr_pages))
    }
}

/// The arena's first frame: the first one at or above every low zone bound
/// of `config`, aligned to its largest order.
fn first_pfn(config: &Config) -> Result<Pfn, ConfigError> {
    let bounds = config.zone_bounds;
    let low_end_bytes = [bounds.dma_end_bytes, bounds.dma32_end_bytes]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
    let low_end = Pfn(low_end_bytes >> config.page_shift());
    low_end
        .align_up(config.max_order())
        .ok_or(ConfigError::PfnOverflow { start: low_end })
}

/// The panic for a block used with an arena that did not allocate it.
#[cold]
#[track_caller]
fn foreign() -> ! {
    panic!("block belongs to another arena")
}
