//! Migration through the owner: the engine never touches memory, so moving
//! an allocated block is the client's job, behind the [`Migrator`] seam.
//!
//! For each movable block in the way, the engine allocates a destination
//! outside the isolated range (any movable allocation is: nothing allocates
//! from isolated pageblocks), asks the migrator to move the block there, and
//! then frees the source into the isolated range, or gives the destination
//! back if the migrator refused.

use alloc::vec::Vec;

use lock_api::RawMutex;

use crate::allocator::Allocator;
use crate::engine::buddy::FreePlacement;
use crate::engine::page::{PageMeta, PageState};
use crate::engine::zone::ZoneOps;
use crate::error::ContigError;
use crate::units::{AllocFlags, Order, Pfn};

/// Why a [`Migrator`] did not move a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MigrateRefusal {
    /// The block is pinned (held for DMA, say) and may not move now.
    Pinned,
    /// The owner is busy with the block, or does not hold it (it was freed
    /// since the engine looked): try again later.
    Busy,
}

/// The owner of movable allocations: it moves one to a new place.
///
/// `migrate(from, to, order)` copies the contents of the allocated block
/// `from` of `order` into the block `to` (allocated by the engine for this
/// purpose, same order) and points every reference the owner has to `from`
/// at `to`. On `Ok` the engine frees `from`, and the owner holds `to` in its
/// place (it later frees `to`). On `Err` the engine frees `to` and `from`
/// stays as it was.
///
/// The owner must keep `from` from being freed or split while `migrate`
/// runs (Linux holds the page locked), and must refuse ([`MigrateRefusal::Busy`])
/// a block it does not hold: the engine reads the range without stopping
/// the owner, so it may name a block freed a moment before.
///
/// Closures `FnMut(Pfn, Pfn, Order) -> Result<(), MigrateRefusal>` are
/// migrators.
pub trait Migrator {
    /// Moves the block `from` of `order` to `to`.
    fn migrate(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal>;

    /// No destination of `order` could be allocated: the owner may free
    /// memory (reclaim it, as Linux's direct reclaim does for migration
    /// targets) and return `true` to have the allocation tried once more.
    /// The default frees nothing.
    fn reclaim(&mut self, order: Order) -> bool {
        let _ = order;
        false
    }

    /// No destination of `order` exists for the block `from`: the owner
    /// may agree (`true`) to hold it as `2^order` order-0 pages from now
    /// on, each freed on its own, as Linux splits a huge page it cannot
    /// move whole. The engine then splits it (`split_page`) and moves the
    /// pages one by one. The default keeps the block whole.
    fn split(&mut self, from: Pfn, order: Order) -> bool {
        let _ = (from, order);
        false
    }
}

impl<F: FnMut(Pfn, Pfn, Order) -> Result<(), MigrateRefusal>> Migrator for F {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: Order) -> Result<(), MigrateRefusal> {
        self(from, to, order)
    }
}

/// How the destinations of a contiguous allocation's migrations are
/// allocated (Linux `alloc_migration_target` for a movable page).
pub(crate) const MIGRATION_TARGETS: AllocFlags =
    AllocFlags::HIGHUSER_MOVABLE.union(AllocFlags::NO_WARN);

/// What one migration pass did.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PassOutcome {
    /// Blocks the migrator moved, and their pages.
    pub moved_blocks: u64,
    pub moved_pages: u64,
    /// Pages whose migration the migrator refused.
    pub refused_pages: u64,
}

impl ZoneOps<'_> {
    /// Frees the block of `order` at `pfn` if its head record still reads
    /// `expected`, claiming it with one compare-and-swap first, so a block
    /// its owner freed (or a racing free took) meanwhile is left alone:
    /// how a migration gives back the block it moved from, or the target
    /// it could not use. Returns whether it freed the block.
    pub(crate) fn free_if_unchanged(
        &mut self,
        pfn: Pfn,
        order: Order,
        expected: PageMeta,
        placement: FreePlacement,
    ) -> bool {
        let claimed = self
            .z
            .pages
            .replace(self.z.idx(pfn), expected, PageMeta::TAIL);
        if claimed.is_err() {
            return false;
        }
        self.free_block(pfn, order, placement);
        self.f.stats.count_free(order);
        true
    }
}

impl<R: RawMutex> Allocator<R> {
    /// Moves every allocated block overlapping `start..end` of zone `zi`
    /// (whose pageblocks are isolated) out of the range through `migrator`:
    /// one pass (Linux one `migrate_pages` call), each destination
    /// allocated with `targets`. A destination that cannot be allocated
    /// ends the pass with [`ContigError::NoMemory`].
    pub(crate) fn migrate_out<M: Migrator + ?Sized>(
        &self,
        zi: usize,
        (start, end): (Pfn, Pfn),
        targets: AllocFlags,
        migrator: &mut M,
    ) -> Result<PassOutcome, ContigError> {
        let zone = &self.zones[zi];
        let z = &zone.core;
        let mut blocks: Vec<(Pfn, PageMeta)> = Vec::new();
        {
            let _settled = zone.lock();
            let _ = z.try_for_each_head_overlapping(start, end, |pfn, meta| {
                if meta.state() == PageState::AllocHead {
                    blocks.push((pfn, meta));
                }
                Ok::<(), ()>(())
            });
        }
        let mut outcome = PassOutcome::default();
        // A stack, so the pages of a block split on the way go next.
        blocks.reverse();
        while let Some((from, meta)) = blocks.pop() {
            let order = meta.order();
            let nr = order.nr_pages().0;
            let mut target = self.alloc_on(z.node, order, targets);
            if target.is_err() && migrator.reclaim(order) {
                target = self.alloc_on(z.node, order, targets);
            }
            let to = match target {
                Ok(to) => to,
                Err(_) if order > Order::ZERO && migrator.split(from, order) => {
                    self.split_page(from, order)
                        .map_err(|_| ContigError::NoMemory)?;
                    let page = PageMeta::allocated(Order::ZERO, meta.alloc_migratetype());
                    for k in (0..nr).rev() {
                        blocks.push((Pfn(from.0 + k), page));
                    }
                    continue;
                }
                Err(_) => return Err(ContigError::NoMemory),
            };
            match migrator.migrate(from, to, order) {
                Ok(()) => {
                    // The owner holds `to` now; `from` is ours to free, if
                    // it is still the block we saw.
                    let mut guard = zone.lock();
                    let mut ops = guard.ops();
                    if ops.free_if_unchanged(from, order, meta, FreePlacement::Tail) {
                        ops.f.stats.pgmigrate_success += nr;
                    }
                    outcome.moved_blocks += 1;
                    outcome.moved_pages += nr;
                }
                Err(_) => {
                    // Ours since the allocation above: it cannot fail.
                    let _ = self.free(to, order);
                    zone.lock().ops().f.stats.pgmigrate_fail += nr;
                    outcome.refused_pages += nr;
                }
            }
        }
        Ok(outcome)
    }
}
