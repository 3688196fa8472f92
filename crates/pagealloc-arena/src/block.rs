//! Blocks: the handles through which an arena's frames are owned.

use std::sync::atomic::{AtomicU64, Ordering};

use pagealloc::{Order, PageCount, Pfn};

/// Which arena a block came from: a number no other arena of this process
/// ever had, so a block cannot be mistaken for one of another arena, even
/// one mapped later at the same address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ArenaId(u64);

impl ArenaId {
    /// A fresh id. 2^64 arenas outlast any process.
    pub(crate) fn fresh() -> ArenaId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        ArenaId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// An allocated block of `2^order` frames of an [`Arena`](crate::Arena):
/// the right to its bytes.
///
/// **Invariant** (what the crate's `unsafe` rests on): a `Block` names
/// frames that the arena's allocator handed out to it alone. It is made in
/// one place, [`Arena::alloc`](crate::Arena::alloc), right after the engine
/// allocated the frames, and ends in [`Arena::free`](crate::Arena::free),
/// which consumes it before the frames go back. It is neither `Clone` nor
/// `Copy`, so `&mut Block` is the only way to its bytes for writing, and
/// while that borrow lasts no other reference to them can exist:
///
/// ```compile_fail,E0505
/// # use pagealloc_arena::{AllocFlags, Arena, Config, Order};
/// let arena = Arena::new(8 << 20, Config::default()).unwrap();
/// let mut block = arena.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
/// let bytes = arena.bytes_mut(&mut block);
/// arena.free(block).unwrap(); // error: `block` is borrowed by `bytes`
/// bytes[0] = 1;
/// ```
///
/// Freeing twice does not compile either: `free` takes the block by value.
///
/// ```compile_fail,E0382
/// # use pagealloc_arena::{AllocFlags, Arena, Config, Order};
/// let arena = Arena::new(8 << 20, Config::default()).unwrap();
/// let block = arena.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
/// arena.free(block).unwrap();
/// arena.free(block).unwrap(); // error: use of moved value `block`
/// ```
///
/// A block dropped without [`Arena::free`](crate::Arena::free) stays
/// allocated (its frames are leaked) until the arena itself is dropped.
#[must_use = "a block that is dropped instead of freed stays allocated until the arena is dropped"]
#[derive(Debug)]
pub struct Block {
    /// The arena that allocated it.
    arena: ArenaId,
    /// The first frame.
    pfn: Pfn,
    /// Its size as a buddy order.
    order: Order,
    /// Where its bytes start in the arena's mapping.
    offset_bytes: usize,
    /// How many bytes it has.
    size_bytes: usize,
}

impl Block {
    /// The handle for frames `pfn`/`order`, allocated to it alone, whose
    /// bytes lie at `offset_bytes` in the mapping of arena `arena`. Only
    /// [`Arena::alloc`](crate::Arena::alloc) may call this (see the type's
    /// invariant).
    pub(crate) fn new(
        arena: ArenaId,
        pfn: Pfn,
        order: Order,
        offset_bytes: usize,
        size_bytes: usize,
    ) -> Block {
        Block {
            arena,
            pfn,
            order,
            offset_bytes,
            size_bytes,
        }
    }

    /// The first frame. Frames are numbered as the arena's allocator
    /// numbers them, from [`Arena::start_pfn`](crate::Arena::start_pfn).
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// The block's size as a buddy order: `2^order` frames.
    pub fn order(&self) -> Order {
        self.order
    }

    /// Frames in the block.
    pub fn nr_pages(&self) -> PageCount {
        self.order.nr_pages()
    }

    /// Bytes in the block (its frames times the page size); never zero.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// The arena that allocated it.
    pub(crate) fn arena(&self) -> ArenaId {
        self.arena
    }

    /// Where its bytes start in the arena's mapping.
    pub(crate) fn offset_bytes(&self) -> usize {
        self.offset_bytes
    }
}
