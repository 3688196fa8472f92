//! The one request path: what an allocation asks for, and where in a zone
//! its block may come from.
//!
//! Every allocation, whatever its entry point (single, per-CPU refill,
//! bulk, packed), is first turned into one [`Request`] by
//! [`Request::new`]: the order, the migratetype and highest zone its flags
//! name, and the [`AllocMode`] its flags allow (CMA, no fallback, no
//! watermarks). Inside a zone, [`ZoneOps::rmqueue`] then tries the
//! [`Source`]s in one fixed order, each of which looks at the mode itself,
//! so a mode such as [`AllocMode::NO_FALLBACK`] holds on every path that
//! reaches the buddy lists. A new placement policy (reported pages last,
//! lowest region first) is a new source or an order inside one, not a new
//! branch in the callers.

use crate::config::{CmaSupport, Config};
use crate::engine::watermark::AllocMode;
use crate::engine::zone::ZoneOps;
use crate::events::FallbackEvent;
use crate::pcp::index::PcpList;
use crate::policy::PackClaim;
use crate::stats::VmStats;
use crate::units::{AllocFlags, MigrateType, Order, ZoneType};

/// How many entries of each small-order list the packing policy (as opposed
/// to an explicit packed call) looks at to find candidate pageblocks: it
/// runs on every refill, so it must stay cheap.
pub(crate) const POLICY_SCAN_LIMIT: usize = 64;

/// One allocation request, derived once from the caller's flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    /// The order of the block.
    pub order: Order,
    /// The migratetype the flags ask for (Linux `gfp_migratetype`).
    pub mt: MigrateType,
    /// The highest zone the flags allow (Linux `gfp_zone`).
    pub highest: ZoneType,
    /// What the flags allow in every zone and pass: CMA for movable
    /// requests on a CMA kernel, no fallback, no watermarks.
    pub mode: AllocMode,
}

impl Request {
    /// The request for a block of `order` with `flags` on a machine
    /// configured as `config`.
    #[inline]
    pub(crate) fn new(order: Order, flags: AllocFlags, config: &Config) -> Request {
        let mt = flags.migratetype();
        let mut mode = AllocMode::empty();
        if mt == MigrateType::Movable && config.cma == CmaSupport::Enabled {
            mode |= AllocMode::CMA;
        }
        if flags.contains(AllocFlags::NO_FALLBACK) {
            mode |= AllocMode::NO_FALLBACK;
        }
        if flags.contains(AllocFlags::NO_WATERMARKS) {
            mode |= AllocMode::NO_WATERMARKS;
        }
        Request {
            order,
            mt,
            highest: flags.highest_zone(),
            mode,
        }
    }
}

/// Where a block may come from inside a zone, in the order
/// [`ZoneOps::rmqueue`] tries them (Linux `rmqueue_buddy` + `__rmqueue`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Source {
    /// High-order atomic requests: the high-atomic reserve first.
    HighAtomicReserve,
    /// Movable requests on a CMA kernel: CMA pageblocks first while they
    /// hold more than half of the zone's free pages (Linux's balancing).
    CmaFirst,
    /// The packing policy (seed 001): blocks of the types and orders it
    /// covers from the type's own pageblocks, fullest first.
    Packed,
    /// Confinement, movable requests: a whole free pageblock is broken
    /// from the top of the highest one, away from the confined area.
    MovableTop,
    /// The type's own lists, smallest block first.
    Own,
    /// Confinement, unmovable and reclaimable requests: the lowest wholly
    /// free pageblock is claimed (never with [`AllocMode::NO_FALLBACK`]).
    Confined,
    /// Movable requests on a CMA kernel: CMA pageblocks after their own.
    CmaAfter,
    /// Memory regions (seed 000): the lowest region the region allocator
    /// holds comes back as the type's own, then the type's lists again.
    /// Before any fallback, so types keep to their own regions while any
    /// region is held.
    Region,
    /// Other types' pageblocks, claimed or stolen (never with
    /// [`AllocMode::NO_FALLBACK`] or [`AllocMode::CONFINED_ONLY`]).
    Fallback,
    /// Atomic requests may use the high-atomic reserve rather than fail.
    HighAtomicLast,
}

/// The sources, in the order they are tried.
const SOURCES: [Source; 10] = [
    Source::HighAtomicReserve,
    Source::CmaFirst,
    Source::Packed,
    Source::MovableTop,
    Source::Own,
    Source::Confined,
    Source::CmaAfter,
    Source::Region,
    Source::Fallback,
    Source::HighAtomicLast,
];

impl ZoneOps<'_> {
    /// Takes a block of `order` for `mt` from the first [`Source`] that has
    /// one and allows `mode`; the block is left as a plain tail for the
    /// caller to label. A fallback is returned as its event.
    #[inline]
    pub(crate) fn rmqueue(
        &mut self,
        order: Order,
        mt: MigrateType,
        mode: AllocMode,
    ) -> Option<(u32, Option<FallbackEvent>)> {
        SOURCES
            .iter()
            .find_map(|&source| self.take_from(source, order, mt, mode))
    }

    /// One [`Source`]'s attempt, inlined into [`ZoneOps::rmqueue`]'s loop
    /// (it costs the same instructions as the sources written out one by
    /// one: `scripts/instructions.sh single` 198, `nopcp` 2133).
    #[inline(always)]
    fn take_from(
        &mut self,
        source: Source,
        order: Order,
        mt: MigrateType,
        mode: AllocMode,
    ) -> Option<(u32, Option<FallbackEvent>)> {
        let plain = |idx| (idx, None);
        match source {
            Source::HighAtomicReserve if mode.contains(AllocMode::HIGHATOMIC) => self
                .rmqueue_smallest(order, MigrateType::HighAtomic)
                .map(plain),
            Source::CmaFirst
                if mode.contains(AllocMode::CMA)
                    && self.f.nr_free_cma > self.f.nr_free_pages / 2 =>
            {
                self.rmqueue_smallest(order, MigrateType::Cma).map(plain)
            }
            Source::Packed if self.z.packing.packs_order(mt, order) => {
                self.rmqueue_packed_one(order, mt, mode)
            }
            Source::MovableTop if self.z.confinement.steers_movable(mt) => {
                self.rmqueue_movable_top(order).map(plain)
            }
            Source::Own => self.rmqueue_smallest(order, mt).map(plain),
            Source::Confined
                if self.z.confinement.confines(mt) && !mode.contains(AllocMode::NO_FALLBACK) =>
            {
                self.rmqueue_confined(order, mt)
            }
            Source::CmaAfter if mode.contains(AllocMode::CMA) => {
                self.rmqueue_smallest(order, MigrateType::Cma).map(plain)
            }
            Source::Region if self.f.regions.is_some() && mt.is_mergeable() => {
                if !self.draw_region(order, mt) {
                    return None;
                }
                // From the drawn region: the lists had nothing lower.
                self.rmqueue_own(order, mt).map(plain)
            }
            Source::Fallback
                if !mode.intersects(AllocMode::NO_FALLBACK | AllocMode::CONFINED_ONLY) =>
            {
                let (idx, event) = self.rmqueue_fallback(order, mt, mode)?;
                if self.z.confinement.confines(mt) || self.z.confinement.steers_movable(mt) {
                    // The last resort under confinement, counted apart.
                    self.f.stats.confined_fallbacks += 1;
                }
                Some((idx, Some(event)))
            }
            Source::HighAtomicLast if mode.contains(AllocMode::NON_BLOCK) => self
                .rmqueue_smallest(order, MigrateType::HighAtomic)
                .map(plain),
            _ => None,
        }
    }

    /// One packed block of `order` for `mt` (the packing policy's source);
    /// a pageblock claimed on the way is returned as its event.
    fn rmqueue_packed_one(
        &mut self,
        order: Order,
        mt: MigrateType,
        mode: AllocMode,
    ) -> Option<(u32, Option<FallbackEvent>)> {
        let mut found = None;
        let mut event = None;
        self.rmqueue_packed(
            mt,
            order,
            1,
            PackClaim::ClaimFreePageblocks,
            mode,
            POLICY_SCAN_LIMIT,
            &mut |idx| found = Some(idx),
            &mut |e| event = Some(e),
        );
        Some((found?, event))
    }
}

impl ZoneOps<'_> {
    /// Takes up to `count` blocks of `order` for `mt` onto a per-CPU list,
    /// in one lock round (Linux `rmqueue_bulk`). Returns how many.
    pub(crate) fn rmqueue_bulk(
        &mut self,
        order: Order,
        mt: MigrateType,
        mode: AllocMode,
        count: u64,
        mut list: PcpList<'_>,
        cpu_stats: &mut VmStats,
    ) -> u64 {
        let mut got = 0;
        if self.z.packing.packs_order(mt, order) {
            // One scan for candidate pageblocks serves the whole batch.
            let pages = self.z;
            let pb = self.z.geo.pageblock;
            got = self.rmqueue_packed(
                mt,
                order,
                count as usize,
                PackClaim::ClaimFreePageblocks,
                mode,
                POLICY_SCAN_LIMIT,
                &mut |idx| list.push_back(&pages.pages, idx, order),
                &mut |event| cpu_stats.count_fallback(&event, pb),
            ) as u64;
        }
        // Refills use `__rmqueue`: no high-atomic reserve.
        let pcp_mode = mode - AllocMode::HIGHATOMIC - AllocMode::NON_BLOCK;
        while got < count {
            let Some((idx, event)) = self.rmqueue(order, mt, pcp_mode) else {
                break;
            };
            if let Some(event) = event {
                cpu_stats.count_fallback(&event, self.z.geo.pageblock);
            }
            list.push_back(&self.z.pages, idx, order);
            got += 1;
        }
        got
    }
}
