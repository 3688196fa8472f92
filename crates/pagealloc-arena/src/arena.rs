//! The arena: one mapping, one allocator over its frames, and the blocks
//! that join the two.

use std::sync::OnceLock;

use pagealloc::{
    AllocError, AllocFlags, Allocator, BuddyInfo, Config, ConfigError, InvariantViolation,
    MemoryMap, Order, PageCount, Pfn, VmStats,
};

use crate::block::{ArenaId, Block};
use crate::error::{FreeError, NewError};
use crate::lazy::LazyFreed;
use crate::mapping::Mapping;

/// The bytes of a PMD-mapped transparent huge page on x86-64 and arm64
/// with 4 KiB pages. The mapping starts on such a boundary (at least), so
/// an aligned block of that size can be one huge page, and discarding it
/// drops the whole huge page instead of splitting one.
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// A region of anonymous memory whose frames a [`pagealloc::Allocator`]
/// hands out as [`Block`]s. See the crate docs for the design.
///
/// `Arena` is `Send + Sync`: allocation, freeing and access take `&self`
/// and may run on many threads at once, each thread on its own per-CPU
/// lists ([`Allocator::this_cpu`]). Discarding takes `&mut self`.
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
        })
    }

    /// Allocates a block of `2^order` frames (Linux `alloc_pages`), through
    /// the calling thread's per-CPU lists.
    ///
    /// Its bytes are whatever the frames last held: zeros if never touched
    /// or discarded with [`Advice::DontNeed`](crate::Advice::DontNeed),
    /// else a previous owner's bytes. Errors are the allocator's.
    pub fn alloc(&self, order: Order, flags: AllocFlags) -> Result<Block, AllocError> {
        let cpu = self.allocator.this_cpu();
        let pfn = self.allocator.alloc_on_cpu(cpu, order, flags)?;
        let first = self.page_index(pfn);
        let nr_pages = order.nr_pages().0 as usize;
        let mut block = Block::new(
            self.mapping.id(),
            pfn,
            order,
            first << self.page_shift,
            nr_pages << self.page_shift,
        );
        if let Some(lazy) = self.lazy.get() {
            lazy.take(first, nr_pages, |page| {
                self.mapping.keep_page(&mut block, page);
            });
        }
        Ok(block)
    }

    /// Frees `block` (Linux `__free_pages`), through the calling thread's
    /// per-CPU lists. Its bytes stay resident until discarded.
    ///
    /// A block of another arena is given back in the error.
    pub fn free(&self, block: Block) -> Result<(), FreeError> {
        if block.arena() != self.mapping.id() {
            return Err(FreeError::Foreign { block });
        }
        let cpu = self.allocator.this_cpu();
        match self.allocator.free_on_cpu(cpu, block.pfn(), block.order()) {
            Ok(()) => Ok(()),
            Err(error) => Err(FreeError::Refused { block, error }),
        }
    }

    /// The bytes of `block`.
    ///
    /// # Panics
    ///
    /// If `block` came from another arena: a handle is only meaningful to
    /// the arena that made it, as an index is to its slice.
    pub fn bytes<'a>(&'a self, block: &'a Block) -> &'a [u8] {
        match self.mapping.bytes(block) {
            Some(bytes) => bytes,
            None => foreign(block.pfn()),
        }
    }

    /// The bytes of `block`, to write. Exclusive: the borrow of `block`
    /// keeps every other access to them out until it ends.
    ///
    /// # Panics
    ///
    /// If `block` came from another arena, as [`Arena::bytes`].
    pub fn bytes_mut<'a>(&'a self, block: &'a mut Block) -> &'a mut [u8] {
        let pfn = block.pfn();
        match self.mapping.bytes_mut(block) {
            Some(bytes) => bytes,
            None => foreign(pfn),
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

    /// Checks every invariant of the allocator (docs/DESIGN.md).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.allocator.check_invariants()
    }

    /// The index of `pfn` from the arena's first frame. `pfn` is one of the
    /// arena's frames.
    pub(crate) fn page_index(&self, pfn: Pfn) -> usize {
        (pfn.0 - self.start.0) as usize
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

/// The panic for a block (at `pfn`) used with an arena that did not
/// allocate it.
#[cold]
#[track_caller]
fn foreign(pfn: Pfn) -> ! {
    panic!("block at frame {pfn} belongs to another arena")
}
