//! Blocks: the handles through which an arena's frames are owned, and the
//! guards through which their bytes are reached.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

use pagealloc::{Order, PageCount, Pfn};

use crate::table::{HandleTable, Held, HeldMut, Key};

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
/// A block names an entry of the arena's handle table, not a frame: the
/// arena may move a block to other frames (migration, for a contiguous
/// allocation), copying its bytes and updating the entry, and the block
/// stays valid. [`Arena::pfn`](crate::Arena::pfn) says where it is now;
/// [`Arena::pin`](crate::Arena::pin) keeps it there.
///
/// **Invariant** (what the crate's `unsafe` rests on): the frames a
/// block's entry names were handed out by the arena's allocator to it
/// alone. It is made in one place, [`Arena::alloc`](crate::Arena::alloc),
/// right after the engine allocated the frames, and ends in
/// [`Arena::free`](crate::Arena::free), which consumes it before the
/// frames go back; a move changes the entry only while no borrow of the
/// block's bytes is live. A block is neither `Clone` nor `Copy`, so
/// `&mut Block` is the only way to its bytes for writing, and while that
/// borrow lasts no other reference to them can exist:
///
/// ```compile_fail,E0505
/// # use pagealloc_arena::{AllocFlags, Arena, Config, Order};
/// let arena = Arena::new(8 << 20, Config::default()).unwrap();
/// let mut block = arena.alloc(Order::ZERO, AllocFlags::KERNEL).unwrap();
/// let mut bytes = arena.bytes_mut(&mut block);
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
    /// Its entry in the arena's handle table.
    key: Key,
    /// Its size as a buddy order.
    order: Order,
    /// How many bytes it has.
    size_bytes: usize,
}

impl Block {
    /// The handle for the entry `key` of arena `arena`, a block of `order`
    /// and `size_bytes`. Only [`Arena::alloc`](crate::Arena::alloc) may call
    /// this (see the type's invariant).
    pub(crate) fn new(arena: ArenaId, key: Key, order: Order, size_bytes: usize) -> Block {
        Block {
            arena,
            key,
            order,
            size_bytes,
        }
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

    /// Its entry in the arena's handle table.
    pub(crate) fn key(&self) -> Key {
        self.key
    }
}

/// The bytes of a [`Block`], to read: from [`Arena::bytes`](crate::Arena::bytes).
///
/// While it lives the block cannot move (the arena's migrator refuses it
/// as busy) and cannot be freed (it borrows the block); dropping it lets
/// migration have the block again. It costs an atomic add at each end.
///
/// The slice is lent for borrows of the guard only, so it cannot outlive
/// the count that keeps the block in place:
///
/// ```compile_fail,E0597
/// # use pagealloc_arena::{AllocFlags, Arena, Config, Order};
/// let arena = Arena::new(8 << 20, Config::default()).unwrap();
/// let block = arena.alloc(Order::ZERO, AllocFlags::MOVABLE).unwrap();
/// let slice: &[u8] = {
///     let guard = arena.bytes(&block);
///     &guard[..] // error: `guard` does not live long enough
/// };
/// ```
#[derive(Debug)]
pub struct Bytes<'a> {
    /// The slice, valid while `_held` counts the borrow.
    bytes: &'a [u8],
    /// The counted borrow.
    _held: Held<'a>,
}

impl<'a> Bytes<'a> {
    /// Ties `bytes` to the borrow `held` counts. Only the mapping makes
    /// one, from the hold it was given.
    pub(crate) fn new(bytes: &'a [u8], held: Held<'a>) -> Bytes<'a> {
        Bytes { bytes, _held: held }
    }
}

impl Deref for Bytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

/// The bytes of a [`Block`], to write: from
/// [`Arena::bytes_mut`](crate::Arena::bytes_mut). As [`Bytes`], and
/// exclusive: it borrows the block mutably.
#[derive(Debug)]
pub struct BytesMut<'a> {
    /// The slice, valid and exclusive while `_held` counts the borrow.
    bytes: &'a mut [u8],
    /// The counted, exclusive borrow.
    _held: HeldMut<'a>,
}

impl<'a> BytesMut<'a> {
    /// Ties `bytes` to the borrow `held` counts. Only the mapping makes
    /// one, from the hold it was given.
    pub(crate) fn new(bytes: &'a mut [u8], held: HeldMut<'a>) -> BytesMut<'a> {
        BytesMut { bytes, _held: held }
    }
}

impl Deref for BytesMut<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl DerefMut for BytesMut<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}

/// A pin on a [`Block`], from [`Arena::pin`](crate::Arena::pin): while it
/// lives the block stays at [`PinGuard::pfn`], and the arena's migrator
/// refuses it with [`MigrateRefusal::Pinned`](pagealloc::MigrateRefusal::Pinned)
/// (what a device doing DMA to the frame needs). It borrows the block, so
/// the block cannot be freed while pinned; reading its bytes meanwhile is
/// fine, writing needs the pin dropped (`&mut Block`).
#[derive(Debug)]
#[must_use = "the pin ends when the guard is dropped"]
pub struct PinGuard<'a> {
    /// The arena's table.
    table: &'a HandleTable,
    /// The pinned block.
    block: &'a Block,
    /// Its first frame, fixed while pinned.
    pfn: Pfn,
}

impl<'a> PinGuard<'a> {
    /// The guard for a pin just counted on `block`, at `pfn`.
    pub(crate) fn new(table: &'a HandleTable, block: &'a Block, pfn: Pfn) -> PinGuard<'a> {
        PinGuard { table, block, pfn }
    }

    /// The block's first frame, which does not change while the pin lives.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// The pinned block.
    pub fn block(&self) -> &'a Block {
        self.block
    }
}

impl Drop for PinGuard<'_> {
    fn drop(&mut self) {
        self.table.unpin(self.block.key());
    }
}
