//! The mapping: the crate's only `unsafe`, fenced here.
//!
//! [`Mapping`] owns one anonymous private mapping from `mmap` to `munmap`
//! and is the only code that turns its addresses into references or hands
//! them to the kernel. Its interface is safe, and each operation takes the
//! proof it needs:
//!
//! * a slice of a block's bytes takes the [`Block`] (`&` for a shared
//!   slice, `&mut` for an exclusive one), whose invariant says it alone owns
//!   those frames of this mapping;
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

use crate::block::{ArenaId, Block};
use crate::report::InFlight;

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
// borrowing its `Block` (shared or exclusive, as the slice is), and advice
// on a reported block the engine holds in flight (`advise_in_flight`, a
// frame range in no `Block` and on no free list for the call); blocks never
// share a frame (see `Block`) and an in-flight block is in none. Any other
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

    /// The first byte of `block` and its length, if the block is this
    /// mapping's and lies inside it.
    fn locate(&self, block: &Block) -> Option<(NonNull<u8>, usize)> {
        let (offset, len) = (block.offset_bytes(), block.size_bytes());
        if block.arena() != self.id || offset.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: (7) `offset + len <= self.len` was checked above, so the
        // offset stays inside the mapping.
        Some((unsafe { self.start.add(offset) }, len))
    }

    /// The bytes of `block`, or `None` if it belongs to another arena.
    pub(crate) fn bytes<'a>(&'a self, block: &'a Block) -> Option<&'a [u8]> {
        let (ptr, len) = self.locate(block)?;
        // SAFETY: (8) `ptr..ptr + len` lies inside this live mapping
        // (`locate`), is readable, and is initialized (anonymous memory
        // reads as zeros until written). The frames are `block`'s alone
        // (its invariant), and a `&mut` to them can only come from
        // `bytes_mut` with `&mut Block`, which the shared borrow of `block`
        // excludes for `'a`; `madvise` and `munmap` need `&mut self`,
        // excluded by the borrow of `self`.
        Some(unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) })
    }

    /// The bytes of `block` for writing, or `None` if it belongs to another
    /// arena.
    pub(crate) fn bytes_mut<'a>(&'a self, block: &'a mut Block) -> Option<&'a mut [u8]> {
        let (ptr, len) = self.locate(block)?;
        // SAFETY: (9) as (8), and exclusive: every other reference to these
        // frames would have to borrow `block`, which is borrowed mutably
        // for `'a`.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) })
    }

    /// Writes one byte of page `page` of `block` (a zero at its start), so
    /// that the kernel keeps the page if it was given `MADV_FREE`: a
    /// lazily freed page that is written again is no longer dropped, so its
    /// bytes cannot change under a slice handed out later.
    ///
    /// Does nothing if the block is not this mapping's or has no such page.
    pub(crate) fn keep_page(&self, block: &mut Block, page: usize) {
        let page_size_bytes = self.page_size_bytes;
        let Some(bytes) = self.bytes_mut(block) else {
            return;
        };
        let Some(byte) = page
            .checked_mul(page_size_bytes)
            .and_then(|at| bytes.get_mut(at))
        else {
            return;
        };
        // SAFETY: (10) `byte` is a valid, exclusive `&mut u8`; a volatile
        // write so the store is not elided: its effect that matters (the
        // page's dirty bit) is invisible to the compiler.
        unsafe { std::ptr::write_volatile(byte, 0) };
    }

    /// Tells the kernel `advice` for `len` bytes at `offset`. The range must
    /// be page-aligned and inside the mapping, or nothing is done and the
    /// error is `InvalidInput`.
    pub(crate) fn advise(&mut self, offset: usize, len: usize, advice: Advice) -> io::Result<()> {
        self.check_range(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: (11) the range lies inside this mapping (checked above)
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
        // SAFETY: (12) the range lies inside this mapping (checked above)
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
        // SAFETY: (13) `start..start + len` is exactly what `new` kept
        // mapped, and `&mut self` in drop means no slice of it is live (a
        // `Block` holds no pointer, only an offset). The error is ignored:
        // munmap of a range we mapped can only fail on a kernel out of
        // memory for splitting VMAs, and then the range stays mapped
        // (leaked), which is still sound.
        let _ = unsafe { mm::munmap(self.start.as_ptr().cast(), self.len) };
    }
}
