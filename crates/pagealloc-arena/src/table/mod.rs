//! The handle table: where each block lives now, and who is using it.
//!
//! A [`Block`](crate::Block) names a *key*, not a frame. The key's entry is
//! one atomic word holding the block's current first frame, its order, how
//! many byte borrows and pins it has, and two state bits; migration moves a
//! block by rewriting that word, so the handle stays valid. Beside the
//! entries, `heads` maps each frame index back to the key of the block that
//! starts there, so the migrator, handed a frame by the engine, finds the
//! owner in one load; `used` says which keys are taken.
//!
//! One word per entry makes every transition a single compare-and-swap on
//! the whole state, checked as a whole:
//!
//! * *borrow* (an access guard) and *pin*: wait while the entry is locked,
//!   then add one to the count; the frame read in the same word is where
//!   the block stays until the count is given back;
//! * *lock for a move*: succeeds only from exactly "live, at `from` with
//!   `order`, no borrow, no pin, not locked", so a stale frame from the
//!   engine, a pinned block and a block in use are all refused by the same
//!   compare; the lock is a guard that puts the word back unless the move
//!   completes;
//! * *lock for a free*: waits out a move, then holds the entry while the
//!   engine frees the frames.
//!
//! While locked, only the lock holder writes the word: borrowers, pinners
//! and freers wait without writing, and the lock is taken only from a word
//! with no borrow and no pin. So a slice of a block's bytes is never live
//! while the block moves (its borrow would have to be counted), and a move
//! never reads bytes that another thread is writing.
//!
//! No `unsafe` here: the table decides who may touch which frames; the
//! mapping (`mapping.rs`) turns that into slices and copies.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use pagealloc::{Order, MAX_ZONE_PAGES};

use crate::block::Block;

mod census;
mod lock;

pub use census::HandleCensus;
pub(crate) use lock::{MoveLock, MoveRefusal};

/// Bits of an entry word holding the frame index (an arena is one zone,
/// and a zone has fewer than 2^28 pages).
const FRAME_BITS: u32 = 28;
/// The frame index field.
const FRAME_MASK: u64 = (1 << FRAME_BITS) - 1;
/// Where the order field starts (4 bits: orders up to 15).
const ORDER_SHIFT: u32 = FRAME_BITS;
/// The frame index and order fields: where the block is.
const PLACE_MASK: u64 = (1 << (FRAME_BITS + 4)) - 1;
/// One byte borrow (an access guard).
const BORROW_ONE: u64 = 1 << 32;
/// The most byte borrows one block can have at once (20 bits).
const MAX_BORROWS: u64 = (1 << 20) - 1;
/// The borrow count field.
const BORROW_MASK: u64 = MAX_BORROWS * BORROW_ONE;
/// One pin.
const PIN_ONE: u64 = 1 << 52;
/// The most pins one block can have at once (10 bits).
pub(crate) const MAX_PINS: u64 = (1 << 10) - 1;
/// The pin count field.
const PIN_MASK: u64 = MAX_PINS * PIN_ONE;
/// The key belongs to a live block (clear: the entry is vacant).
const LIVE: u64 = 1 << 62;
/// A move or a free holds the entry.
const LOCKED: u64 = 1 << 63;

// Every frame index of an arena fits the field.
const _: () = assert!(MAX_ZONE_PAGES <= 1 << FRAME_BITS);

/// Spins before a waiter yields its time slice: a lock is held for one
/// block's copy or one free, microseconds.
const SPINS_BEFORE_YIELD: u32 = 64;

/// A block's key: the index of its entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Key(u32);

impl Key {
    /// The entry's index.
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// The word of a live block at `frame` of `order`, with no borrow or pin.
fn live_at(frame: usize, order: Order) -> u64 {
    LIVE | frame as u64 | u64::from(order.get()) << ORDER_SHIFT
}

/// The frame index of a word.
fn frame_of(word: u64) -> usize {
    (word & FRAME_MASK) as usize
}

/// The order of a word (the field holds an order the arena allocated, so
/// the fallback is never taken).
fn order_of(word: u64) -> Order {
    Order::new(((word >> ORDER_SHIFT) & 0xf) as u8).unwrap_or(Order::ZERO)
}

/// Pinning would pass [`MAX_PINS`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TooManyPins;

/// One waiter's backoff: spin a little, then yield.
struct Backoff(u32);

impl Backoff {
    fn wait(&mut self) {
        if self.0 < SPINS_BEFORE_YIELD {
            self.0 += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// The handle table of one arena: an entry per key, a used bit per key,
/// and the key of the block starting at each frame. Keys and frames are
/// both indices from the arena's first frame; an arena of `n` frames has
/// at most `n` blocks, so `n` keys always suffice.
#[derive(Debug)]
pub(crate) struct HandleTable {
    /// One word per key (see the module docs); 0 when vacant.
    entries: Box<[AtomicU64]>,
    /// Bit `k` set: key `k` is taken (bits past the last key are set for
    /// good).
    used: Box<[AtomicU64]>,
    /// Per frame index: 1 + the key of the live block whose first frame it
    /// is, or 0. A hint: every use is checked against the entry's word.
    heads: Box<[AtomicU32]>,
}

/// Bits per `used` word.
const WORD_BITS: usize = u64::BITS as usize;

impl HandleTable {
    /// A table for `nr_frames` frames (fewer than 2^28), every key vacant.
    pub(crate) fn new(nr_frames: usize) -> HandleTable {
        let words = nr_frames.div_ceil(WORD_BITS);
        let used: Box<[AtomicU64]> = (0..words).map(|_| AtomicU64::new(0)).collect();
        if let Some(last) = used.last() {
            let spare = words * WORD_BITS - nr_frames;
            if spare > 0 {
                last.store(!0 << (WORD_BITS - spare), Ordering::Relaxed);
            }
        }
        HandleTable {
            entries: (0..nr_frames).map(|_| AtomicU64::new(0)).collect(),
            used,
            heads: (0..nr_frames).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Bytes the table takes: 8 per key, 4 per frame, a bit per key.
    pub(crate) fn size_bytes(&self) -> usize {
        self.entries.len() * 8 + self.heads.len() * 4 + self.used.len() * 8
    }

    /// Records a block just allocated at `frame` (its first frame index)
    /// with `order`, and returns its key: `frame` itself if that key is
    /// free, as it is unless a block first allocated there has moved away
    /// and is still live; else the nearest free key after it.
    pub(crate) fn insert(&self, frame: usize, order: Order) -> Key {
        let key = self.claim(frame);
        self.heads[frame].store(key.0 + 1, Ordering::Relaxed);
        // Release: a lock or borrow that sees the word sees the head too.
        self.entries[key.index()].store(live_at(frame, order), Ordering::Release);
        key
    }

    /// Takes a free key, `natural` if it can. One always exists: the
    /// caller holds frames no live block holds, so fewer than `n` blocks
    /// are live. Under heavy churn on other threads a whole scan can miss
    /// every key freed meanwhile; it then yields and scans again.
    fn claim(&self, natural: usize) -> Key {
        let (w, bit) = (natural / WORD_BITS, 1u64 << (natural % WORD_BITS));
        if self.used[w].fetch_or(bit, Ordering::Acquire) & bit == 0 {
            return Key(natural as u32);
        }
        let n = self.used.len();
        loop {
            for wi in (w..n).chain(0..w) {
                let word = &self.used[wi];
                let mut seen = word.load(Ordering::Relaxed);
                while seen != !0 {
                    let b = (!seen).trailing_zeros() as usize;
                    let prev = word.fetch_or(1 << b, Ordering::Acquire);
                    if prev & (1 << b) == 0 {
                        return Key((wi * WORD_BITS + b) as u32);
                    }
                    seen = prev | 1 << b;
                }
            }
            std::thread::yield_now();
        }
    }

    /// Gives `key` back (its entry vacant already). `Release`: whoever
    /// claims it next sees the vacant entry.
    fn release(&self, key: Key) {
        let k = key.index();
        self.used[k / WORD_BITS].fetch_and(!(1 << (k % WORD_BITS)), Ordering::Release);
    }

    /// The entry of `key`, if the table has one.
    fn entry(&self, key: Key) -> Option<&AtomicU64> {
        self.entries.get(key.index())
    }

    /// Counts one byte borrow of `block` (waiting out a move) and returns
    /// the hold, which knows the frame the block stays at until it is
    /// dropped. `None` if the key is not this table's.
    ///
    /// # Panics
    ///
    /// If the block already has 2^20 − 1 borrows: only guards leaked with
    /// `mem::forget` can get there, as with `Arc`'s count.
    pub(crate) fn borrow<'a>(&'a self, block: &'a Block) -> Option<Held<'a>> {
        let entry = self.entry(block.key())?;
        let word = add_waiting(entry, BORROW_ONE, BORROW_MASK)
            .unwrap_or_else(|()| panic!("more than {MAX_BORROWS} live byte borrows of one block"));
        Some(Held {
            entry,
            frame: frame_of(word),
            nr_pages: block.nr_pages().0 as usize,
            _block: PhantomData,
        })
    }

    /// As [`HandleTable::borrow`], for writing: the `&mut Block` borrow
    /// makes the hold the only one.
    pub(crate) fn borrow_mut<'a>(&'a self, block: &'a mut Block) -> Option<HeldMut<'a>> {
        let held = self.borrow(block)?;
        Some(HeldMut {
            held,
            _exclusive: PhantomData,
        })
    }

    /// Counts one pin of `block` (waiting out a move) and returns the
    /// frame it stays at until [`HandleTable::unpin`]. `Ok(None)` if the
    /// key is not this table's.
    pub(crate) fn pin(&self, block: &Block) -> Result<Option<usize>, TooManyPins> {
        let Some(entry) = self.entry(block.key()) else {
            return Ok(None);
        };
        match add_waiting(entry, PIN_ONE, PIN_MASK) {
            Ok(word) => Ok(Some(frame_of(word))),
            Err(()) => Err(TooManyPins),
        }
    }

    /// Gives back one pin of `key`, taken with [`HandleTable::pin`].
    pub(crate) fn unpin(&self, key: Key) {
        if let Some(entry) = self.entry(key) {
            entry.fetch_sub(PIN_ONE, Ordering::Release);
        }
    }

    /// Where `block` is now (its first frame index): a snapshot, which a
    /// move may change at once unless the caller holds a pin or a borrow.
    pub(crate) fn frame(&self, block: &Block) -> Option<usize> {
        self.entry(block.key())
            .map(|e| frame_of(e.load(Ordering::Acquire)))
    }
}

/// Adds `one` to the count under `mask` of `entry` once it is not locked;
/// returns the word before, or `Err` if the count is full.
fn add_waiting(entry: &AtomicU64, one: u64, mask: u64) -> Result<u64, ()> {
    let mut backoff = Backoff(0);
    loop {
        let word = entry.load(Ordering::Relaxed);
        if word & LOCKED != 0 {
            backoff.wait();
            continue;
        }
        if word & mask == mask {
            return Err(());
        }
        // Acquire: a move that completed before is seen whole (the new
        // frame and the bytes copied there).
        if entry
            .compare_exchange_weak(word, word + one, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(word);
        }
    }
}

/// One counted byte borrow of a live block: while it lives, the block
/// stays at `frame` and is not freed (the `'a` borrow of the [`Block`]).
/// Dropping it gives the borrow back.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    /// The block's entry.
    entry: &'a AtomicU64,
    /// Its first frame index, fixed while held.
    frame: usize,
    /// Its frames.
    nr_pages: usize,
    /// The borrow of the block this hold stands for.
    _block: PhantomData<&'a Block>,
}

impl Held<'_> {
    /// The block's first frame index, fixed while held.
    pub(crate) fn frame(&self) -> usize {
        self.frame
    }

    /// Frames in the block.
    pub(crate) fn nr_pages(&self) -> usize {
        self.nr_pages
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Release: a move that locks the entry next sees every write made
        // under this borrow.
        self.entry.fetch_sub(BORROW_ONE, Ordering::Release);
    }
}

/// A [`Held`] made from `&mut Block`: no other hold of the block can exist
/// while it lives.
#[derive(Debug)]
pub(crate) struct HeldMut<'a> {
    /// The counted borrow.
    held: Held<'a>,
    /// The exclusive borrow of the block.
    _exclusive: PhantomData<&'a mut Block>,
}

impl HeldMut<'_> {
    /// The counted borrow.
    pub(crate) fn held(&self) -> &Held<'_> {
        &self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::ArenaId;
    use crate::error::HandleViolation;
    use pagealloc::Pfn;

    fn order(n: u8) -> Order {
        Order::new(n).unwrap()
    }

    /// A block for the entry `key`, as `Arena::alloc` would make it.
    fn block(key: Key, o: Order) -> Block {
        Block::new(ArenaId::fresh(), key, o, 4096 << o.get())
    }

    /// What the engine would say: the blocks `live` are allocated.
    fn engine(live: &[(usize, Order)]) -> impl Fn(Pfn) -> Option<Order> + '_ {
        |pfn| live.iter().find(|(f, _)| *f as u64 == pfn.0).map(|l| l.1)
    }

    #[test]
    fn a_block_takes_its_frame_as_key_unless_a_moved_block_holds_it() {
        let t = HandleTable::new(100);
        let a = t.insert(8, order(3));
        assert_eq!(a, Key(8));
        // `a` moves to 16; frame 8 is reused by a new block, whose natural
        // key is taken.
        t.lock_for_move(8, order(3)).unwrap().complete(16);
        let b = t.insert(8, order(0));
        assert_ne!(b, a);
        assert_eq!(t.frame(&block(a, order(3))), Some(16));
        assert_eq!(t.frame(&block(b, order(0))), Some(8));
        let census = t.census(Pfn(0), engine(&[(16, order(3)), (8, order(0))]));
        assert_eq!(census.unwrap().blocks, 2);
    }

    #[test]
    fn a_move_is_refused_for_a_pin_a_borrow_or_a_stale_frame() {
        let t = HandleTable::new(64);
        let key = t.insert(4, order(2));
        let b = block(key, order(2));
        assert_eq!(t.lock_for_move(5, order(2)).unwrap_err(), MoveRefusal::Gone);
        assert_eq!(t.lock_for_move(4, order(1)).unwrap_err(), MoveRefusal::Gone);
        assert_eq!(t.pin(&b), Ok(Some(4)));
        assert_eq!(
            t.lock_for_move(4, order(2)).unwrap_err(),
            MoveRefusal::Pinned
        );
        t.unpin(key);
        let held = t.borrow(&b).unwrap();
        assert_eq!(held.frame(), 4);
        assert_eq!(
            t.lock_for_move(4, order(2)).unwrap_err(),
            MoveRefusal::InUse
        );
        drop(held);
        // A lock dropped without completing leaves the block in place; a
        // second lock meanwhile is refused.
        let lock = t.lock_for_move(4, order(2)).unwrap();
        assert_eq!(
            t.lock_for_move(4, order(2)).unwrap_err(),
            MoveRefusal::InUse
        );
        drop(lock);
        assert_eq!(t.frame(&b), Some(4));
        t.lock_for_move(4, order(2)).unwrap().complete(32);
        assert_eq!(t.borrow(&b).unwrap().frame(), 32);
        // The old frame no longer leads to the block.
        assert_eq!(t.lock_for_move(4, order(2)).unwrap_err(), MoveRefusal::Gone);
        assert!(t.census(Pfn(0), engine(&[(32, order(2))])).is_ok());
    }

    #[test]
    fn a_free_vacates_the_key_or_puts_everything_back() {
        let t = HandleTable::new(64);
        let key = t.insert(10, order(1));
        let b = block(key, order(1));
        let freeing = t.begin_free(&b).unwrap();
        assert_eq!(freeing.frame(), 10);
        // While it is being freed, nothing can move it.
        assert_eq!(
            t.lock_for_move(10, order(1)).unwrap_err(),
            MoveRefusal::Gone
        );
        drop(freeing); // the engine refused: back as it was
        assert!(t.census(Pfn(0), engine(&[(10, order(1))])).is_ok());
        t.begin_free(&b).unwrap().commit();
        let census = t.census(Pfn(0), engine(&[])).unwrap();
        assert_eq!(census, HandleCensus::default());
        // The key is free again.
        assert_eq!(t.insert(10, order(0)), key);
    }

    #[test]
    fn pins_stop_at_their_limit() {
        let t = HandleTable::new(8);
        let b = block(t.insert(0, order(0)), order(0));
        for _ in 0..MAX_PINS {
            assert_eq!(t.pin(&b), Ok(Some(0)));
        }
        assert_eq!(t.pin(&b), Err(TooManyPins));
        let census = t.census(Pfn(0), engine(&[(0, order(0))])).unwrap();
        assert_eq!(census.pins, MAX_PINS);
    }

    #[test]
    fn the_census_finds_what_is_wrong() {
        let t = HandleTable::new(128);
        let key = t.insert(64, order(4));
        // The engine does not hold that block.
        assert!(matches!(
            t.census(Pfn(0), engine(&[(64, order(3))])),
            Err(HandleViolation::NotAllocated { key: 64, .. })
        ));
        // A head pointing at a key that lives elsewhere.
        t.heads[3].store(key.0 + 1, Ordering::Relaxed);
        assert!(matches!(
            t.census(Pfn(0), engine(&[(64, order(4))])),
            Err(HandleViolation::StrayHead { key: 64, .. })
        ));
        t.heads[3].store(0, Ordering::Relaxed);
        // Two live blocks over the same frames.
        t.insert(72, order(0));
        assert!(matches!(
            t.census(Pfn(0), engine(&[(64, order(4)), (72, order(0))])),
            Err(HandleViolation::Overlap { .. })
        ));
    }

    #[test]
    fn every_key_can_be_taken_once() {
        let t = HandleTable::new(70);
        let mut keys: Vec<u32> = (0..70).map(|_| t.insert(0, order(0)).0).collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..70).collect::<Vec<_>>());
    }
}
