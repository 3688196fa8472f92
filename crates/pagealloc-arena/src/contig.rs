//! Contiguous allocation over real memory (seed 003): runs of frames of any
//! length, taken with the engine's `alloc_contig_range`,
//! `alloc_contig_pages` or `cma_alloc`, with the arena's migrator moving
//! the movable blocks in the way.

use pagealloc::{CmaArea, ContigAlloc, ContigConstraints, ContigError, Order, PageCount, Pfn};

use crate::block::ArenaId;
use crate::error::ContigFreeError;
use crate::mapping::Fresh;
use crate::migrate::{AllowAll, ArenaMigrator, MigrateGate};
use crate::Arena;

/// What a contiguous allocation asks for: the three ways the engine takes
/// a run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ContigRequest {
    /// Exactly the frames `start..end` (Linux `alloc_contig_range`).
    Range {
        /// The first frame.
        start: Pfn,
        /// One past the last frame.
        end: Pfn,
    },
    /// `nr_pages` frames anywhere `constraints` allow (Linux
    /// `alloc_contig_pages`, with FreeBSD's bounds, alignment and boundary).
    Pages {
        /// Frames wanted.
        nr_pages: PageCount,
        /// Where the run may lie.
        constraints: ContigConstraints,
    },
    /// `count` frames of CMA area `area` (in [`Arena::cma_areas`] order),
    /// starting at a multiple of `2^align` frames (Linux `cma_alloc`).
    Cma {
        /// The area's index.
        area: usize,
        /// Frames wanted.
        count: PageCount,
        /// Alignment of the first frame, as an order.
        align: Order,
    },
}

/// A contiguous run of frames of an [`Arena`]: the right to its bytes,
/// from [`Arena::alloc_contig_pages`], [`Arena::alloc_contig_range`] or
/// [`Arena::cma_alloc`], freed with [`Arena::free_contig`] (or, for a CMA
/// run, [`Arena::cma_release`]).
///
/// **Invariant** (what the crate's `unsafe` rests on): the frames are ones
/// the engine took for this run alone, as pages of a contiguous run. Such
/// pages never move (the engine refuses to isolate a pageblock holding
/// them) and are never advised (they are allocated), so the run holds its
/// frame numbers directly and its bytes need no guard:
/// [`Arena::run_bytes`] borrows it shared, [`Arena::run_bytes_mut`]
/// exclusively, and freeing consumes it. Neither `Clone` nor `Copy`.
#[must_use = "a run that is dropped instead of freed stays allocated until the arena is dropped"]
#[derive(Debug)]
pub struct ContigRun {
    /// The arena that allocated it.
    arena: ArenaId,
    /// Its first frame.
    start: Pfn,
    /// Its first frame's index from the arena's first.
    first_frame: usize,
    /// Its frames.
    nr_pages: PageCount,
    /// Its bytes.
    size_bytes: usize,
    /// The CMA area it came from, if any.
    cma_area: Option<usize>,
}

impl ContigRun {
    /// The first frame.
    pub fn start(&self) -> Pfn {
        self.start
    }

    /// One past the last frame.
    pub fn end(&self) -> Pfn {
        Pfn(self.start.0 + self.nr_pages.0)
    }

    /// Frames in the run.
    pub fn nr_pages(&self) -> PageCount {
        self.nr_pages
    }

    /// Bytes in the run; never zero.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// The CMA area (its index in [`Arena::cma_areas`]) the run came from,
    /// if it came from one.
    pub fn cma_area(&self) -> Option<usize> {
        self.cma_area
    }

    /// The arena that allocated it.
    pub(crate) fn arena(&self) -> ArenaId {
        self.arena
    }

    /// Its first frame's index from the arena's first.
    pub(crate) fn first_frame(&self) -> usize {
        self.first_frame
    }

    /// Its frames, as a count.
    pub(crate) fn nr_frames(&self) -> usize {
        self.nr_pages.0 as usize
    }
}

impl Arena {
    /// Allocates `nr_pages` contiguous frames anywhere `constraints` allow
    /// (Linux `alloc_contig_pages`; FreeBSD's `low`/`high` bounds,
    /// alignment and boundary), moving the movable blocks in the way:
    /// candidate ranges from the lowest frame up, those already free
    /// first, then those holding only movable blocks. A candidate whose
    /// blocks cannot all move (pinned, borrowed) is given up and the next
    /// one tried. Returns the run and what it cost.
    ///
    /// Every moved [`Block`](crate::Block) stays valid, with its bytes, at
    /// its new frames. Runs beside other threads' allocation and access:
    /// a block whose bytes another thread is using is skipped (it is
    /// busy), and that thread's access waits for at most one block's copy.
    pub fn alloc_contig_pages(
        &self,
        nr_pages: PageCount,
        constraints: &ContigConstraints,
    ) -> Result<(ContigRun, ContigAlloc), ContigError> {
        let request = ContigRequest::Pages {
            nr_pages,
            constraints: *constraints,
        };
        self.alloc_contig_gated(&request, &mut AllowAll)
    }

    /// Allocates exactly the frames `start..end` (Linux
    /// `alloc_contig_range`), moving the movable blocks in the way; any
    /// length, inside the arena, outside CMA areas. A block that cannot
    /// move (pinned, borrowed) makes it fail with [`ContigError::Busy`]
    /// after the engine's tries ([`pagealloc::CONTIG_MIGRATE_TRIES`]); an
    /// unmovable block with [`ContigError::Unmovable`]. Blocks moved before
    /// a failure stay at their new frames, valid.
    pub fn alloc_contig_range(
        &self,
        start: Pfn,
        end: Pfn,
    ) -> Result<(ContigRun, ContigAlloc), ContigError> {
        self.alloc_contig_gated(&ContigRequest::Range { start, end }, &mut AllowAll)
    }

    /// Allocates `count` contiguous frames from CMA area `area`, starting
    /// at a multiple of `2^align` frames (Linux `cma_alloc`), moving the
    /// movable blocks that use the area; on a busy range the engine tries
    /// further on. Freed with [`Arena::cma_release`] or
    /// [`Arena::free_contig`].
    ///
    /// CMA areas come from the configuration: `Config::cma_reservations`
    /// (by size; the engine places them at the top of the arena) or
    /// `Config::cma_areas` (by frame, from [`Arena::start_pfn`], which is
    /// known before the arena is made: the first max-order boundary above
    /// the low zones).
    pub fn cma_alloc(
        &self,
        area: usize,
        count: PageCount,
        align: Order,
    ) -> Result<(ContigRun, ContigAlloc), ContigError> {
        let request = ContigRequest::Cma { area, count, align };
        self.alloc_contig_gated(&request, &mut AllowAll)
    }

    /// Any contiguous allocation, with `gate` asked before each move the
    /// arena's migrator would make (see [`MigrateGate`]): a policy that
    /// keeps some blocks in place, or fault injection in tests. The gate
    /// can only refuse; the moves themselves are always the arena's.
    pub fn alloc_contig_gated<G: MigrateGate + ?Sized>(
        &self,
        request: &ContigRequest,
        gate: &mut G,
    ) -> Result<(ContigRun, ContigAlloc), ContigError> {
        let mut migrator = ArenaMigrator::new(self, gate);
        let a = &self.allocator;
        let (done, cma_area) = match *request {
            ContigRequest::Range { start, end } => {
                (a.alloc_contig_range(start, end, &mut migrator)?, None)
            }
            ContigRequest::Pages {
                nr_pages,
                constraints,
            } => (
                a.alloc_contig_pages(nr_pages, &constraints, &mut migrator)?,
                None,
            ),
            ContigRequest::Cma { area, count, align } => {
                (a.cma_alloc(area, count, align, &mut migrator)?, Some(area))
            }
        };
        let first_frame = self.page_index(done.start);
        let nr_frames = done.nr_pages.0 as usize;
        self.keep_lazy(&Fresh::new(first_frame, nr_frames));
        let run = ContigRun {
            arena: self.mapping.id(),
            start: done.start,
            first_frame,
            nr_pages: done.nr_pages,
            size_bytes: nr_frames << self.page_shift(),
            cma_area,
        };
        Ok((run, done))
    }

    /// Frees the run (Linux `free_contig_range`; for a run from a CMA area,
    /// `cma_release`, which also clears the area's bitmap). Its bytes stay
    /// resident until discarded.
    pub fn free_contig(&self, run: ContigRun) -> Result<(), ContigFreeError> {
        if run.arena != self.mapping.id() {
            return Err(ContigFreeError::Foreign { run });
        }
        let freed = match run.cma_area {
            Some(area) => self.allocator.cma_release(area, run.start, run.nr_pages),
            None => self.allocator.free_contig_range(run.start, run.nr_pages),
        };
        freed.map_err(|error| ContigFreeError::Refused { run, error })
    }

    /// Frees a run from a CMA area (Linux `cma_release`) and clears its
    /// bits in the area's bitmap. A run not from a CMA area is given back
    /// ([`ContigFreeError::NotCma`]).
    pub fn cma_release(&self, run: ContigRun) -> Result<(), ContigFreeError> {
        if run.arena == self.mapping.id() && run.cma_area.is_none() {
            return Err(ContigFreeError::NotCma { run });
        }
        self.free_contig(run)
    }

    /// The bytes of `run`. Runs never move, so this is a plain slice.
    ///
    /// # Panics
    ///
    /// If `run` came from another arena, as [`Arena::bytes`].
    pub fn run_bytes<'a>(&'a self, run: &'a ContigRun) -> &'a [u8] {
        match self.mapping.run_bytes(run) {
            Some(bytes) => bytes,
            None => foreign_run(),
        }
    }

    /// The bytes of `run`, to write; exclusive, as [`Arena::bytes_mut`].
    ///
    /// # Panics
    ///
    /// If `run` came from another arena, as [`Arena::bytes`].
    pub fn run_bytes_mut<'a>(&'a self, run: &'a mut ContigRun) -> &'a mut [u8] {
        match self.mapping.run_bytes_mut(run) {
            Some(bytes) => bytes,
            None => foreign_run(),
        }
    }

    /// The CMA areas, placed, in the order [`Arena::cma_alloc`] numbers
    /// them: the configuration's fixed areas, then its reservations.
    pub fn cma_areas(&self) -> Vec<CmaArea> {
        self.allocator.cma_areas()
    }

    /// Frames of CMA area `area` handed out by [`Arena::cma_alloc`].
    pub fn cma_used_pages(&self, area: usize) -> Result<PageCount, ContigError> {
        self.allocator.cma_used_pages(area)
    }
}

/// The panic for a run used with an arena that did not allocate it.
#[cold]
#[track_caller]
fn foreign_run() -> ! {
    panic!("contiguous run belongs to another arena")
}
