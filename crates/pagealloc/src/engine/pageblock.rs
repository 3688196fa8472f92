//! The pageblock table: per pageblock, its migratetype and its free pages.

use crate::sync::atomic::{AtomicU32, Ordering};
use alloc::boxed::Box;

use crate::units::{MigrateType, Order, Pfn};

/// Per pageblock: its migratetype, its isolate mark and how many of its
/// pages are free on the buddy lists, in one atomic word
/// (`mt | isolated << 7 | free << 8`). The type is read
/// without the zone lock (Linux reads `get_pfnblock_migratetype` locklessly
/// too); both are written under it. The free count is what lets packed
/// allocation (seed 001) find the fullest pageblocks of a type.
pub(crate) struct BlockTable {
    slots: Box<[AtomicU32]>,
    base: u64,
    shift: u8,
}

/// Bits of a [`BlockTable`] slot holding the migratetype.
const BLOCK_MT_MASK: u32 = 0x7f;
/// The isolate mark (Linux `PB_migrate_isolate`), kept apart from the
/// migratetype so that undoing an isolation restores the type it had.
const BLOCK_ISOLATE_BIT: u32 = 0x80;

/// The type the free lists see for each low byte of a slot: `Isolate`
/// with the mark, else the stored type (movable for a value no type has,
/// which nothing stores).
static BLOCK_TYPES: [MigrateType; 256] = {
    let mut table = [MigrateType::Movable; 256];
    let mut bits = 0;
    while bits < 256 {
        table[bits] = if bits as u32 & BLOCK_ISOLATE_BIT != 0 {
            MigrateType::Isolate
        } else {
            let mt = bits & BLOCK_MT_MASK as usize;
            if mt < MigrateType::ALL.len() {
                MigrateType::ALL[mt]
            } else {
                MigrateType::Movable
            }
        };
        bits += 1;
    }
    table
};

/// Shift of the free-page count in a [`BlockTable`] slot.
const BLOCK_FREE_SHIFT: u32 = 8;

impl Clone for BlockTable {
    fn clone(&self) -> BlockTable {
        BlockTable {
            slots: self
                .slots
                .iter()
                .map(|a| AtomicU32::new(a.load(Ordering::Relaxed)))
                .collect(),
            base: self.base,
            shift: self.shift,
        }
    }
}

impl BlockTable {
    #[inline]
    fn slot(&self, pfn: Pfn) -> &AtomicU32 {
        &self.slots[((pfn.0 >> self.shift) - self.base) as usize]
    }

    /// The pageblock's type as the free lists see it: `Isolate` while the
    /// isolate mark is set, else its migratetype.
    #[inline]
    pub(crate) fn get(&self, pfn: Pfn) -> MigrateType {
        // The low byte is the type and the isolate mark: one table load.
        BLOCK_TYPES[self.slot(pfn).load(Ordering::Relaxed) as u8 as usize]
    }

    /// The pageblock's migratetype under any isolate mark: the type an
    /// isolation restores.
    #[inline]
    pub(crate) fn base(&self, pfn: Pfn) -> MigrateType {
        let bits = self.slot(pfn).load(Ordering::Relaxed) & BLOCK_MT_MASK;
        MigrateType::from_index(bits as usize).unwrap_or(MigrateType::Movable)
    }

    /// Whether the pageblock carries the isolate mark.
    #[inline]
    pub(crate) fn is_isolated(&self, pfn: Pfn) -> bool {
        self.slot(pfn).load(Ordering::Relaxed) & BLOCK_ISOLATE_BIT != 0
    }

    /// Sets or clears the isolate mark, keeping the type and the free
    /// count (zone lock held).
    pub(crate) fn set_isolated(&self, pfn: Pfn, on: bool) {
        let slot = self.slot(pfn);
        let old = slot.load(Ordering::Relaxed);
        let new = if on {
            old | BLOCK_ISOLATE_BIT
        } else {
            old & !BLOCK_ISOLATE_BIT
        };
        slot.store(new, Ordering::Relaxed)
    }

    /// Sets the migratetype, keeping the isolate mark and the free count
    /// (zone lock held). `Isolate` is not a type but the mark: use
    /// [`BlockTable::set_isolated`].
    #[inline]
    pub(crate) fn set(&self, pfn: Pfn, mt: MigrateType) {
        debug_assert!(mt != MigrateType::Isolate);
        let slot = self.slot(pfn);
        let old = slot.load(Ordering::Relaxed);
        slot.store((old & !BLOCK_MT_MASK) | mt as u32, Ordering::Relaxed)
    }

    /// Free pages of the pageblock holding `pfn` on the buddy lists.
    #[inline]
    pub(crate) fn free_pages(&self, pfn: Pfn) -> u32 {
        self.slot(pfn).load(Ordering::Relaxed) >> BLOCK_FREE_SHIFT
    }

    /// Adds or removes `nr` free pages of the pageblock holding `pfn` (zone
    /// lock held).
    #[inline]
    pub(crate) fn account(&self, pfn: Pfn, nr: u32, joining: bool) {
        let slot = self.slot(pfn);
        let old = slot.load(Ordering::Relaxed);
        let delta = nr << BLOCK_FREE_SHIFT;
        let new = if joining { old + delta } else { old - delta };
        slot.store(new, Ordering::Relaxed)
    }
}

impl BlockTable {
    /// One slot per pageblock of `start..end`, every one `mt` with no free
    /// page.
    pub(crate) fn new(start: Pfn, end: Pfn, pageblock: Order, mt: MigrateType) -> BlockTable {
        let base = start.align_down(pageblock).0 >> pageblock.get();
        let block_end = end.align_up(pageblock).unwrap_or(end).0 >> pageblock.get();
        BlockTable {
            slots: (base..block_end)
                .map(|_| AtomicU32::new(mt as u32))
                .collect(),
            base,
            shift: pageblock.get(),
        }
    }

    /// Bytes of the table.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * core::mem::size_of::<AtomicU32>()
    }
}
