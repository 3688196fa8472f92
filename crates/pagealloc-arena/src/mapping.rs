//! The mapping: the crate's only `unsafe`, fenced here.
//!
//! [`Mapping`] owns one anonymous private mapping from `mmap` to `munmap`
//! and is the only code that turns its addresses into references, copies
//! between them, or hands them to the kernel. Its interface is safe, and
//! each operation takes the proof it needs:
//!
//! * a slice of a block's bytes takes a [`Held`] (shared) or [`HeldMut`]
//!   (exclusive): a borrow counted in the block's handle-table entry, made
//!   from `&Block` / `&mut Block`, which fixes the block's frames until it
//!   is dropped; the slice is returned inside a guard that owns the hold;
//! * a slice of a contiguous run takes the [`ContigRun`] (`&` or `&mut`),
//!   whose frames never move;
//! * a write to frames just allocated takes a [`Fresh`] range, and the
//!   copy of a migration takes the block's [`MoveLock`] and the fresh
//!   destination;
//! * `madvise`, which may change bytes behind the program's back, takes
//!   `&mut Mapping`: every slice borrows the mapping, so none is live;
//! * or, for a block that free page reporting holds in flight, an
//!   [`InFlight`] range, which only the arena's reporting sink makes, from
//!   a block the engine handed it: free, off every list, in no [`Block`];
//! * `munmap` runs in `Drop`, when nothing can borrow the mapping any more.
//!
//! Every range is checked against the mapping's length here, whatever the
//! caller checked before, so a bug elsewhere in the crate cannot make this
//! module touch memory that is not its own.

use std::io;
use std::ptr::NonNull;

use rustix::mm::{self, Advice, MapFlags, ProtFlags};

use crate::block::{ArenaId, Bytes, BytesMut};
use crate::contig::ContigRun;
use crate::report::InFlight;
use crate::table::{Held, HeldMut, MoveLock};

/// Frames the engine has just handed to the caller, in no handle yet:
/// nobody else can reach their bytes. Made only where the engine's answer
/// arrives: [`Arena::alloc`](crate::Arena::alloc) before the block is
/// recorded, the arena's migrator for the destination the engine allocated
/// for the move, and the contiguous calls for the run they took.
pub(crate) struct Fresh {
    /// The first frame index.
    frame: usize,
    /// Frames.
    nr_pages: usize,
}

impl Fresh {
    /// The frames `frame..frame + nr_pages` (indices from the arena's first
    /// frame), just handed over by the engine.
    pub(crate) fn new(frame: usize, nr_pages: usize) -> Fresh {
        Fresh { frame, nr_pages }
    }

    /// The first frame index.
    pub(crate) fn frame(&self) -> usize {
        self.frame
    }

    /// Frames.
    pub(crate) fn nr_pages(&self) -> usize {
        self.nr_pages
    }
}

/// One anonymous private mapping, read-write, `MAP_NORESERVE`: address
/// space only, each page backed by memory when first touched.
#[derive(Debug)]
pub(crate) struct Mapping {
    /// The arena whose blocks may borrow from this mapping.
    id: ArenaId,
    /// The first byte, aligned as asked at creation.
    start: NonNull<u8>,
    /// Bytes mapped from `start`.
    len: usize,
    /// The OS page size, the unit of `mmap` and `madvise`.
    page_size_bytes: usize,
}

// SAFETY: (1) a `Mapping` is an owned address range, like a `Box<[u8]>`:
// moving it to another thread moves the ownership, and nothing in it is
// tied to the creating thread.
unsafe impl Send for Mapping {}
// SAFETY: (2) through `&Mapping` the accesses are slices of blocks, each
// holding a counted borrow of its `Block` (shared or exclusive, as the
// slice is); slices of contiguous runs, each borrowing its `ContigRun`;
// writes to and copies into frames just handed over by the engine (in no
// handle); copies out of a block locked for a move (no borrow live, none
// possible); and advice on a reported block the engine holds in flight
// (`advise_in_flight`, a frame range in no `Block` and on no free list for
// the call). Blocks and runs never share a frame (see `Block`,
// `ContigRun`), and an in-flight or fresh range is in none. Any other
// advice, and unmapping, need `&mut Mapping`. So sharing `&Mapping`
// between threads gives no two threads conflicting access to any byte.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes (a multiple of the OS page size) whose start is a
    /// multiple of `align` (a power of two), for the arena `id`.
    ///
    /// The kernel only promises page alignment, so `len + align` bytes are
    /// reserved (address space only) and the unaligned head and the tail
    /// given back.
    pub(crate) fn new(id: ArenaId, len: usize, align: usize) -> io::Result<Mapping> {
        let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
        let page_size_bytes = rustix::param::page_size();
        if len == 0 || !len.is_multiple_of(page_size_bytes) || !align.is_power_of_two() {
            return Err(invalid());
        }
        let align = align.max(page_size_bytes);
        let reserve = len.checked_add(align).ok_or_else(invalid)?;
        let flags = MapFlags::PRIVATE | MapFlags::NORESERVE;
        let prot = ProtFlags::READ | ProtFlags::WRITE;
        // SAFETY: (3) a null hint lets the kernel choose an unused range,
        // so no existing memory is replaced.
        let raw = unsafe { mm::mmap_anonymous(std::ptr::null_mut(), reserve, prot, flags) }?;
        let raw = raw.cast::<u8>();
        let head = (raw as usize).next_multiple_of(align) - raw as usize;
        let tail = reserve - head - len;
        if head > 0 {
            // SAFETY: (4) `raw..raw + head` is the start of the mapping
            // made just above, page-aligned at both ends (`raw` and the
            // aligned start are), and no reference to it was ever made.
            unsafe { mm::munmap(raw.cast(), head) }?;
        }
        // SAFETY: (5) `head < align <= reserve - len`, so the aligned start
        // lies inside the reservation: the offset stays in bounds.
        let start = unsafe { raw.add(head) };
        if tail > 0 {
            // SAFETY: (6) `start + len..raw + reserve` is the end of the
            // mapping made above, page-aligned (`len` is a multiple of the
            // page size, checked above, and so is `reserve`), and no
            // reference to it was ever made.
            unsafe { mm::munmap(start.add(len).cast(), tail) }?;
        }
        let start = NonNull::new(start).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping {
            id,
            start,
            len,
            page_size_bytes,
        })
    }

    /// The arena this mapping belongs to.
    pub(crate) fn id(&self) -> ArenaId {
        self.id
    }

    /// Bytes mapped.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first byte of frames `frame..frame + nr_pages` and their length
    /// in bytes, if they lie inside the mapping.
    fn locate(&self, frame: usize, nr_pages: usize) -> Option<(NonNull<u8>, usize)> {
        let offset = frame.checked_mul(self.page_size_bytes)?;
        let len = nr_pages.checked_mul(self.page_size_bytes)?;
        if offset.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: (7) `offset + len <= self.len` was checked above, so the
        // offset stays inside the mapping.
        Some((unsafe { self.start.add(offset) }, len))
    }

    /// The bytes of the block `held` holds, inside a guard that owns the
    /// hold; `None` (and the hold given back) if its frames are not inside
    /// the mapping.
    pub(crate) fn bytes<'a>(&'a self, held: Held<'a>) -> Option<Bytes<'a>> {
        let (ptr, len) = self.locate(held.frame(), held.nr_pages())?;
        // SAFETY: (8) `ptr..ptr + len` lies inside this live mapping
        // (`locate`), is readable, and is initialized (anonymous memory
        // reads as zeros until written). They are the frames of a live
        // block (the `Block` invariant: its entry names frames the engine
        // handed to it alone, and blocks and runs never share a frame), and
        // `held` counts a borrow of its entry: while that count is
        // non-zero no move can lock the entry, so the frames stay the
        // block's and nothing copies over them; the block cannot be freed,
        // since `held` borrows it for `'a`; a `&mut` to them can only come
        // from `bytes_mut` with `&mut Block`, which that shared borrow
        // excludes. The slice goes into `Bytes` with `held`, and `Bytes`
        // lends it only for borrows of itself, so it never outlives the
        // count. `madvise` and `munmap` need `&mut self`, excluded by the
        // borrow of `self`.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) };
        Some(Bytes::new(bytes, held))
    }

    /// The bytes of the block `held` holds, for writing, inside a guard
    /// that owns the hold; `None` if its frames are not inside the mapping.
    pub(crate) fn bytes_mut<'a>(&'a self, held: HeldMut<'a>) -> Option<BytesMut<'a>> {
        let (frame, nr_pages) = (held.held().frame(), held.held().nr_pages());
        let (ptr, len) = self.locate(frame, nr_pages)?;
        // SAFETY: (9) as (8), and exclusive: `held` was made from `&mut
        // Block`, borrowed for `'a`, and every other slice of these frames
        // (a `Bytes`, a `BytesMut`) needs a hold made from a borrow of the
        // same block; no copy reads them while the count is non-zero.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) };
        Some(BytesMut::new(bytes, held))
    }

    /// The bytes of the contiguous run `run`, or `None` if it belongs to
    /// another arena.
    pub(crate) fn run_bytes<'a>(&'a self, run: &'a ContigRun) -> Option<&'a [u8]> {
        if run.arena() != self.id {
            return None;
        }
        let (ptr, len) = self.locate(run.first_frame(), run.nr_frames())?;
        // SAFETY: (10) inside the live mapping (`locate`) and initialized,
        // as (8). The frames are the run's alone (the `ContigRun`
        // invariant: the engine took them for it, as pages of a contiguous
        // run), and they never move: the engine refuses to isolate a range
        // holding such pages, so no migration reads or writes them, and no
        // discard or report advises allocated frames. A `&mut` to them
        // needs `&mut ContigRun`, excluded by the shared borrow of `run`
        // for `'a`; the run is freed by value, also excluded.
        Some(unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) })
    }

    /// The bytes of the contiguous run `run`, for writing, or `None` if it
    /// belongs to another arena.
    pub(crate) fn run_bytes_mut<'a>(&'a self, run: &'a mut ContigRun) -> Option<&'a mut [u8]> {
        if run.arena() != self.id {
            return None;
        }
        let (ptr, len) = self.locate(run.first_frame(), run.nr_frames())?;
        // SAFETY: (11) as (10), and exclusive: every other reference to
        // these frames would have to borrow `run`, which is borrowed
        // mutably for `'a`.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) })
    }

    /// Writes one byte of page `page` of the `fresh` frames (a zero at its
    /// start), so that the kernel keeps the page if it was given
    /// `MADV_FREE`: a lazily freed page that is written again is no longer
    /// dropped, so its bytes cannot change under a slice handed out later.
    ///
    /// Does nothing if `fresh` has no such page inside the mapping.
    pub(crate) fn keep_page(&self, fresh: &Fresh, page: usize) {
        if page >= fresh.nr_pages {
            return;
        }
        let Some((ptr, _)) = self.locate(fresh.frame + page, 1) else {
            return;
        };
        // SAFETY: (12) `ptr` is the first byte of a page inside this live
        // mapping (`locate`), which is writable. The page is one of frames
        // the engine has just handed to the caller and that no handle names
        // yet (`Fresh`), so no reference to it exists anywhere. A volatile
        // write so the store is not elided: its effect that matters (the
        // page's dirty bit) is invisible to the compiler.
        unsafe { std::ptr::write_volatile(ptr.as_ptr(), 0) };
    }

    /// Copies the bytes of the block `lock` holds for a move to the fresh
    /// frames `to` (the same number of frames). Returns `false`, copying
    /// nothing, if either range is not inside the mapping or their lengths
    /// differ.
    pub(crate) fn copy(&self, lock: &MoveLock<'_>, to: &Fresh) -> bool {
        let Some((src, len)) = self.locate(lock.from(), to.nr_pages) else {
            return false;
        };
        let Some((dst, dst_len)) = self.locate(to.frame, to.nr_pages) else {
            return false;
        };
        if len != dst_len || to.nr_pages != lock.nr_pages() {
            return false;
        }
        // SAFETY: (13) both ranges lie inside this live mapping (`locate`)
        // and are initialized. `src` is the frames of a live block whose
        // entry `lock` holds: the lock was taken from a word with no borrow
        // and no pin, and nobody can take one while it is held, so no slice
        // of these bytes is live and none is written meanwhile (only read
        // here). `dst` is frames the engine allocated for this move (`to`)
        // and that no handle names yet, so no reference to them exists. The
        // two are different engine blocks, so they do not overlap
        // (invariant 1 of the engine: every page in exactly one block).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_ptr(), len) };
        true
    }

    /// Tells the kernel `advice` for `len` bytes at `offset`. The range must
    /// be page-aligned and inside the mapping, or nothing is done and the
    /// error is `InvalidInput`.
    pub(crate) fn advise(&mut self, offset: usize, len: usize, advice: Advice) -> io::Result<()> {
        self.check_range(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: (14) the range lies inside this mapping (checked above)
        // and is page-aligned; `&mut self` means no slice of the mapping is
        // live, so bytes the kernel drops (or later drops, for `MADV_FREE`)
        // change under no reference. The mapping is private anonymous
        // memory, for which both advices are defined.
        unsafe { mm::madvise(self.start.add(offset).as_ptr().cast(), len, advice) }?;
        Ok(())
    }

    /// Tells the kernel `advice` for the bytes of `range`, a reported block
    /// that the engine holds in flight, with only `&self`: other threads
    /// may be reading and writing other blocks meanwhile. The range must be
    /// page-aligned and inside the mapping, or nothing is done and the
    /// error is `InvalidInput`.
    pub(crate) fn advise_in_flight(&self, range: &InFlight, advice: Advice) -> io::Result<()> {
        let (offset, len) = (range.offset_bytes(), range.len_bytes());
        self.check_range(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: (15) the range lies inside this mapping (checked above)
        // and is page-aligned. It is the bytes of a block that free page
        // reporting took off the free lists into the in-flight state
        // (`ReportingHead`) and handed to the arena's sink, which made
        // `range` from it for this call (`InFlight` is made nowhere else).
        // Until the sink returns, the block is free and on no list, so no
        // allocation can hand it out; it was free when taken, so no `Block`
        // covers any of its frames (a `Block` names only frames the engine
        // allocated to it, and blocks never share a frame). So no slice of
        // these bytes is live, and none can be made until the engine puts
        // the block back, after this call: bytes the kernel drops now (or
        // later, for `MADV_FREE`) change under no reference. A block
        // handed out later reads zeros for dropped bytes, which is a valid
        // `u8`; the arena keeps `MADV_FREE` pages stable once they are
        // handed out (`LazyFreed`). Concurrent access to other blocks
        // touches other bytes, and the kernel serializes the page-table
        // changes. The mapping is private anonymous memory, for which both
        // advices are defined.
        unsafe { mm::madvise(self.start.add(offset).as_ptr().cast(), len, advice) }?;
        Ok(())
    }

    /// `Ok` if `len` bytes at `offset` are inside the mapping and
    /// page-aligned, else `InvalidInput`.
    fn check_range(&self, offset: usize, len: usize) -> io::Result<()> {
        let inside = offset.checked_add(len).is_some_and(|end| end <= self.len);
        let page = self.page_size_bytes;
        let aligned = offset.is_multiple_of(page) && len.is_multiple_of(page);
        if inside && aligned {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::InvalidInput))
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: (16) `start..start + len` is exactly what `new` kept
        // mapped, and `&mut self` in drop means no slice of it is live (a
        // `Block` or `ContigRun` holds no pointer, only a frame number;
        // every guard borrows the arena). The error is ignored:
        // munmap of a range we mapped can only fail on a kernel out of
        // memory for splitting VMAs, and then the range stays mapped
        // (leaked), which is still sound.
        let _ = unsafe { mm::munmap(self.start.as_ptr().cast(), self.len) };
    }
}
