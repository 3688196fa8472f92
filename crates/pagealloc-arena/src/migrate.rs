//! The arena's migrator: it moves a block's bytes to the frames the engine
//! allocated for it and points the block's handle there.
//!
//! The engine (seed 003, `pagealloc::Migrator`) isolates a range, and for
//! each allocated block in it allocates a destination outside and calls
//! `migrate(from, to, order)` with no lock of its own held. The arena
//! finds the block starting at `from` through its handle table, locks its
//! entry (refused if the block is pinned, borrowed, being freed or no
//! longer there), copies the bytes, and records `to` as the block's frame;
//! the engine then frees `from`. A refusal leaves everything as it was and
//! the engine frees `to`.
//!
//! The migrator is private: a contiguous call always passes the arena's
//! own. A caller's code can only add refusals, through a [`MigrateGate`]
//! consulted before each move. A migrator that answered `Ok` without
//! moving would make the engine free frames a [`Block`](crate::Block)
//! still names, so the arena does not take one from outside.

use std::sync::atomic::{AtomicU64, Ordering};

use pagealloc::{MigrateRefusal, Migrator, Order, PageCount, Pfn};

use crate::mapping::Fresh;
use crate::table::MoveRefusal;
use crate::Arena;

/// Asked before each move the arena's migrator would make: `Err` refuses
/// it (the engine counts it as a failed migration and tries again later,
/// up to its tries). A caller's policy (keep hot blocks where they are,
/// say) or a test's fault injection. Closures
/// `FnMut(Pfn, Pfn, Order) -> Result<(), MigrateRefusal>` are gates.
///
/// The gate runs on the calling thread, with no lock of the engine or the
/// table held: it may pin blocks, read them, or allocate.
pub trait MigrateGate {
    /// Whether the block starting at `from`, of `order`, may move to `to`.
    fn allow(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal>;
}

impl<F: FnMut(Pfn, Pfn, Order) -> Result<(), MigrateRefusal>> MigrateGate for F {
    fn allow(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal> {
        self(from, to, order)
    }
}

/// The gate that allows every move: what the plain contiguous calls use.
#[derive(Clone, Copy, Default, Debug)]
pub struct AllowAll;

impl MigrateGate for AllowAll {
    fn allow(&mut self, _: Pfn, _: Pfn, _: Order) -> Result<(), MigrateRefusal> {
        Ok(())
    }
}

/// What the arena's migrator did, summed over every contiguous call since
/// the arena was made ([`Arena::migration_stats`]).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct MigrationStats {
    /// Blocks moved.
    pub moved_blocks: u64,
    /// Pages moved.
    pub moved_pages: u64,
    /// Moves refused because the block was pinned.
    pub refused_pinned: u64,
    /// Moves refused because the block's bytes were borrowed, or another
    /// thread was freeing it.
    pub refused_busy: u64,
    /// Moves refused because no block of ours started at that frame with
    /// that order any more (freed since the engine looked).
    pub refused_gone: u64,
    /// Moves refused by the caller's [`MigrateGate`].
    pub refused_by_gate: u64,
}

/// The counters behind [`MigrationStats`], shared by every caller.
#[derive(Default, Debug)]
pub(crate) struct MigrationCounters {
    moved_blocks: AtomicU64,
    moved_pages: AtomicU64,
    refused_pinned: AtomicU64,
    refused_busy: AtomicU64,
    refused_gone: AtomicU64,
    refused_by_gate: AtomicU64,
}

impl MigrationCounters {
    /// The counters now.
    pub(crate) fn snapshot(&self) -> MigrationStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MigrationStats {
            moved_blocks: read(&self.moved_blocks),
            moved_pages: read(&self.moved_pages),
            refused_pinned: read(&self.refused_pinned),
            refused_busy: read(&self.refused_busy),
            refused_gone: read(&self.refused_gone),
            refused_by_gate: read(&self.refused_by_gate),
        }
    }
}

/// Adds one to `counter`.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The arena's migrator for one contiguous call, with the caller's gate.
pub(crate) struct ArenaMigrator<'a, G: ?Sized> {
    /// The arena whose blocks move.
    arena: &'a Arena,
    /// Asked before each move.
    gate: &'a mut G,
}

impl<'a, G: MigrateGate + ?Sized> ArenaMigrator<'a, G> {
    /// The migrator of `arena`, asking `gate` first.
    pub(crate) fn new(arena: &'a Arena, gate: &'a mut G) -> ArenaMigrator<'a, G> {
        ArenaMigrator { arena, gate }
    }
}

impl<G: MigrateGate + ?Sized> Migrator for ArenaMigrator<'_, G> {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal> {
        let arena = self.arena;
        let counters = &arena.migration;
        if let Err(refusal) = self.gate.allow(from, to, order) {
            bump(&counters.refused_by_gate);
            return Err(refusal);
        }
        let nr_pages = order.nr_pages().0 as usize;
        let last = to.checked_add(PageCount(order.nr_pages().0 - 1));
        let frames = (
            arena.frame_index(from),
            arena.frame_index(to),
            last.and_then(|last| arena.frame_index(last)),
        );
        let (Some(from_frame), Some(to_frame), Some(_)) = frames else {
            bump(&counters.refused_gone);
            return Err(MigrateRefusal::Busy);
        };
        let lock = match arena.table.lock_for_move(from_frame, order) {
            Ok(lock) => lock,
            Err(MoveRefusal::Pinned) => {
                bump(&counters.refused_pinned);
                return Err(MigrateRefusal::Pinned);
            }
            Err(MoveRefusal::InUse) => {
                bump(&counters.refused_busy);
                return Err(MigrateRefusal::Busy);
            }
            Err(MoveRefusal::Gone) => {
                bump(&counters.refused_gone);
                return Err(MigrateRefusal::Busy);
            }
        };
        let dest = Fresh::new(to_frame, nr_pages);
        if !arena.mapping.copy(&lock, &dest) {
            // Not reachable with the checks above; the lock's drop leaves
            // the block where it was.
            bump(&counters.refused_gone);
            return Err(MigrateRefusal::Busy);
        }
        // The copy wrote every byte of the destination, so the kernel
        // keeps any page of it given `MADV_FREE`: forget the marks.
        if let Some(lazy) = arena.lazy.get() {
            lazy.take(to_frame, nr_pages, |_| {});
        }
        lock.complete(to_frame);
        bump(&counters.moved_blocks);
        counters
            .moved_pages
            .fetch_add(nr_pages as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl Arena {
    /// What the arena's migrator did, summed over every contiguous call
    /// since the arena was made.
    pub fn migration_stats(&self) -> MigrationStats {
        self.migration.snapshot()
    }
}
