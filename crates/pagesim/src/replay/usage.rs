//! Allocated pages per pageblock and migratetype, kept by a policy's replay
//! as it allocates, frees and migrates, so that a census sample reads
//! them instead of walking every block of the machine
//! ([`crate::census::take_with`]). A replay takes a hundred censuses of a
//! machine holding some 150,000 blocks; the walk cost about a third of a
//! policy's replay.
//!
//! What the engine allocates is known to the replay: every allocation it
//! makes, every block it frees, every block its migrator moves, and, at
//! the start, whatever the seeding left allocated (read by one walk). The
//! counts are checked against a walk at the end of every replay, and at
//! every sample in debug builds (the tests): a drift is an internal error,
//! not a wrong figure.

use pagealloc::{Allocator, MigrateType, Order, PageState, Zone};

/// Types counted: unmovable, movable, reclaimable ([`MigrateType::idx`]).
const TYPES: usize = 3;

/// One zone's counts.
struct ZoneCounts {
    start: u64,
    end: u64,
    /// The pageblock holding `start`.
    base: u64,
    /// Allocated pages per pageblock and type.
    pages: Vec<[u32; TYPES]>,
}

/// The counts of every zone, and the type each allocated page was
/// allocated as (to uncount it when freed or moved).
pub(crate) struct Usage {
    pageblock: u8,
    zones: Vec<ZoneCounts>,
    /// By frame minus `first`: 0 for a page not allocated, else its type's
    /// index plus 1.
    types: Vec<u8>,
    first: u64,
}

impl Usage {
    /// The counts of what `allocator` holds allocated now (one walk).
    pub fn new(allocator: &Allocator) -> Usage {
        let pageblock = allocator.config().pageblock().get();
        let zones: Vec<ZoneCounts> = allocator
            .zones()
            .iter()
            .map(|z| {
                let (start, end) = (z.start_pfn().0, z.end_pfn().0);
                let base = start >> pageblock;
                let last = (end - 1) >> pageblock;
                ZoneCounts {
                    start,
                    end,
                    base,
                    pages: vec![[0; TYPES]; (last - base + 1) as usize],
                }
            })
            .collect();
        let first = zones.iter().map(|z| z.start).min().unwrap_or(0);
        let last = zones.iter().map(|z| z.end).max().unwrap_or(0);
        let mut usage = Usage {
            pageblock,
            zones,
            types: vec![0; (last - first) as usize],
            first,
        };
        for zone in allocator.zones() {
            for b in zone.blocks() {
                if let (PageState::AllocHead, Some(mt)) = (b.state, b.alloc_migratetype) {
                    usage.allocated(b.pfn.0, b.order, mt);
                }
            }
        }
        usage
    }

    /// The zone holding frame `pfn`.
    #[inline]
    fn zone_of(&self, pfn: u64) -> Option<usize> {
        self.zones
            .iter()
            .position(|z| z.start <= pfn && pfn < z.end)
    }

    /// Adds `pages` pages of type index `ty` from `pfn` on (inside one
    /// zone) to the counts, `sign` +1 or -1.
    #[inline(always)]
    fn count(&mut self, pfn: u64, pages: u64, ty: usize, sign: i64) {
        let Some(zi) = self.zone_of(pfn) else {
            return;
        };
        let shift = self.pageblock;
        let z = &mut self.zones[zi];
        if pages == 1 {
            // An order-0 block (99.5% of a real trace's): one pageblock.
            if let Some(c) = z.pages.get_mut(((pfn >> shift) - z.base) as usize) {
                c[ty] = c[ty].wrapping_add_signed(sign as i32);
            }
            return;
        }
        let mut p = pfn;
        let end = (pfn + pages).min(z.end);
        while p < end {
            let upto = (((p >> shift) + 1) << shift).min(end);
            if let Some(c) = z.pages.get_mut(((p >> shift) - z.base) as usize) {
                c[ty] = (i64::from(c[ty]) + sign * (upto - p) as i64) as u32;
            }
            p = upto;
        }
    }

    /// Sets the type slots of the block at `pfn` of `pages` pages.
    #[inline]
    fn set_slots(&mut self, pfn: u64, pages: u64, value: u8) {
        let lo = pfn.saturating_sub(self.first) as usize;
        if pages == 1 {
            if let Some(slot) = self.types.get_mut(lo) {
                *slot = value;
            }
            return;
        }
        let hi = (lo + pages as usize).min(self.types.len());
        self.types[lo.min(hi)..hi].fill(value);
    }

    /// A block of `order` at `pfn` was allocated as `mt`.
    #[inline]
    pub fn allocated(&mut self, pfn: u64, order: Order, mt: MigrateType) {
        let ty = mt.idx();
        if ty >= TYPES {
            return;
        }
        let pages = order.nr_pages().0;
        self.set_slots(pfn, pages, ty as u8 + 1);
        self.count(pfn, pages, ty, 1);
    }

    /// The type index of the allocated page at `pfn`, if it is one.
    #[inline]
    fn type_at(&self, pfn: u64) -> Option<usize> {
        let slot = self.types.get(pfn.checked_sub(self.first)? as usize)?;
        usize::from(*slot).checked_sub(1)
    }

    /// The block of `order` at `pfn` was freed (or has moved away). A block
    /// has one type (a split block's pages are freed one by one, each of
    /// order 0).
    #[inline]
    pub fn freed(&mut self, pfn: u64, order: Order) {
        let Some(ty) = self.type_at(pfn) else {
            return;
        };
        let pages = order.nr_pages().0;
        self.set_slots(pfn, pages, 0);
        self.count(pfn, pages, ty, -1);
    }

    /// The block of `order` at `from` moved to `to`.
    pub fn moved(&mut self, from: u64, to: u64, order: Order) {
        let ty = self.type_at(from);
        self.freed(from, order);
        if let Some(mt) = ty.and_then(MigrateType::from_index) {
            self.allocated(to, order, mt);
        }
    }

    /// The census masks of zone `zi` (`zone`) into `masks`; returns its
    /// allocated unmovable and reclaimable pages
    /// ([`crate::census::take_with`]'s callback).
    pub fn masks(&self, zi: usize, zone: &Zone, masks: &mut [u8]) -> u64 {
        let Some(z) = self.zones.get(zi).filter(|z| z.start == zone.start_pfn().0) else {
            return 0;
        };
        let mut pages = 0;
        for (m, c) in masks.iter_mut().zip(&z.pages) {
            for (ty, &n) in c.iter().enumerate() {
                *m |= u8::from(n > 0) << ty;
            }
            pages += u64::from(c[MigrateType::Unmovable.idx()])
                + u64::from(c[MigrateType::Reclaimable.idx()]);
        }
        pages
    }
}
