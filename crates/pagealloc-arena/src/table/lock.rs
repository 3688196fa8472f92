//! Locking an entry for a move or a free: the two ways a block's word
//! changes under someone else's feet, each a `Drop` guard that puts the
//! word back unless the change is committed.

use std::sync::atomic::Ordering;

use pagealloc::Order;

use super::{frame_of, live_at, order_of, Backoff, HandleTable, Key};
use super::{FRAME_MASK, LIVE, LOCKED, PIN_MASK, PLACE_MASK};
use crate::block::Block;

/// Why the table would not lock a block for a move.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum MoveRefusal {
    /// Pinned.
    Pinned,
    /// A byte borrow is live, or another move or a free holds it.
    InUse,
    /// No live block starts at that frame with that order (freed since
    /// the engine looked, or never a block of ours).
    Gone,
}

impl HandleTable {
    /// Locks the live block starting at frame `from` with `order` for a
    /// move, if nothing holds it. The lock puts the entry back when
    /// dropped, unless [`MoveLock::complete`] moved it.
    pub(crate) fn lock_for_move(
        &self,
        from: usize,
        order: Order,
    ) -> Result<MoveLock<'_>, MoveRefusal> {
        let head = self
            .heads
            .get(from)
            .map_or(0, |h| h.load(Ordering::Relaxed));
        let Some(key) = head.checked_sub(1).map(Key) else {
            return Err(MoveRefusal::Gone);
        };
        let Some(entry) = self.entry(key) else {
            return Err(MoveRefusal::Gone);
        };
        let idle = live_at(from, order);
        // Acquire: the bytes written under the block's last borrow are
        // visible to the copy.
        match entry.compare_exchange(idle, idle | LOCKED, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => Ok(MoveLock {
                table: self,
                key,
                from,
                idle,
                moved: false,
            }),
            Err(now) if now & LIVE == 0 || now & PLACE_MASK != idle & PLACE_MASK => {
                Err(MoveRefusal::Gone)
            }
            Err(now) if now & PIN_MASK != 0 => Err(MoveRefusal::Pinned),
            Err(_) => Err(MoveRefusal::InUse),
        }
    }

    /// Locks `block` for its free, waiting out a move. The lock clears the
    /// frame's head (so no move finds it) and puts everything back when
    /// dropped, unless [`Freeing::commit`] vacated the key. `None` if the
    /// key is not this table's.
    pub(crate) fn begin_free(&self, block: &Block) -> Option<Freeing<'_>> {
        let key = block.key();
        let entry = self.entry(key)?;
        let mut backoff = Backoff(0);
        let before = loop {
            let word = entry.load(Ordering::Relaxed);
            if word & LOCKED != 0 {
                backoff.wait();
                continue;
            }
            if entry
                .compare_exchange_weak(word, word | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                break word;
            }
        };
        let frame = frame_of(before);
        self.heads[frame].store(0, Ordering::Relaxed);
        Some(Freeing {
            table: self,
            key,
            before,
            done: false,
        })
    }
}

/// A live block locked for a move: no borrow, no pin, and nobody else can
/// take one until the lock ends. Dropped without
/// [`MoveLock::complete`], it leaves the block where it was.
#[derive(Debug)]
pub(crate) struct MoveLock<'a> {
    /// The table.
    table: &'a HandleTable,
    /// The block's key.
    key: Key,
    /// Its first frame index.
    from: usize,
    /// Its word when idle at `from`.
    idle: u64,
    /// Whether [`MoveLock::complete`] ran.
    moved: bool,
}

impl MoveLock<'_> {
    /// The block's first frame index.
    pub(crate) fn from(&self) -> usize {
        self.from
    }

    /// Frames in the block.
    pub(crate) fn nr_pages(&self) -> usize {
        order_of(self.idle).nr_pages().0 as usize
    }

    /// Records that the block now starts at frame index `to` (whose
    /// frames the caller allocated for it and copied its bytes to) and
    /// unlocks it there.
    pub(crate) fn complete(mut self, to: usize) {
        let heads = &self.table.heads;
        heads[to].store(self.key.0 + 1, Ordering::Relaxed);
        heads[self.from].store(0, Ordering::Relaxed);
        let order = self.idle & PLACE_MASK & !FRAME_MASK;
        // Release: the next borrow sees the new frame and the copied bytes.
        self.table.entries[self.key.index()].store(LIVE | order | to as u64, Ordering::Release);
        self.moved = true;
    }
}

impl Drop for MoveLock<'_> {
    fn drop(&mut self) {
        if !self.moved {
            self.table.entries[self.key.index()].store(self.idle, Ordering::Release);
        }
    }
}

/// A live block locked for its free (its frame's head cleared). Dropped
/// without [`Freeing::commit`], it puts the block back as it was.
#[derive(Debug)]
pub(crate) struct Freeing<'a> {
    /// The table.
    table: &'a HandleTable,
    /// The block's key.
    key: Key,
    /// Its word before the lock.
    before: u64,
    /// Whether [`Freeing::commit`] ran.
    done: bool,
}

impl Freeing<'_> {
    /// The block's first frame index.
    pub(crate) fn frame(&self) -> usize {
        frame_of(self.before)
    }

    /// The engine took the frames back: vacate the key.
    pub(crate) fn commit(mut self) {
        self.table.entries[self.key.index()].store(0, Ordering::Relaxed);
        self.table.release(self.key);
        self.done = true;
    }
}

impl Drop for Freeing<'_> {
    fn drop(&mut self) {
        if !self.done {
            let frame = self.frame();
            self.table.heads[frame].store(self.key.0 + 1, Ordering::Relaxed);
            self.table.entries[self.key.index()].store(self.before, Ordering::Release);
        }
    }
}
