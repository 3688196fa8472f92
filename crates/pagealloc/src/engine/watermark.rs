//! Watermarks and lowmem reserves: when a zone is too low to serve a request.
//!
//! Formulas follow mm/page_alloc.c (Linux 6.x): `__setup_per_zone_wmarks`,
//! `setup_per_zone_lowmem_reserve`, `__zone_watermark_ok`, and
//! `calculate_min_free_kbytes` / khugepaged's recommended value.

use crate::config::{Config, MinFree};
use crate::sync::atomic::Ordering;
use crate::units::{MigrateType, Order, ZoneType, NR_MIGRATE_TYPES, NR_PCP_TYPES, NR_ZONE_TYPES};

use lock_api::RawMutex;

use crate::engine::zone::{Watermarks, Zone, ZoneCore, ZoneOps};

bitflags::bitflags! {
    /// How an allocation attempt may use a zone (Linux `ALLOC_*`, from
    /// mm/internal.h), derived from the caller's [`crate::AllocFlags`].
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(crate) struct AllocMode: u16 {
        /// Check against the min watermark (default: low).
        const WMARK_MIN = 1 << 0;
        /// Skip watermark checks.
        const NO_WATERMARKS = 1 << 1;
        /// `__GFP_HIGH`: half the min reserve.
        const MIN_RESERVE = 1 << 2;
        /// Cannot block: a further quarter of the min reserve.
        const NON_BLOCK = 1 << 3;
        /// May use, and reserve, high-atomic pageblocks.
        const HIGHATOMIC = 1 << 4;
        /// May use CMA pageblocks.
        const CMA = 1 << 5;
        /// Do not fragment: only claim whole pageblocks of other types.
        const NOFRAGMENT = 1 << 6;
        /// Never fall back to another migratetype.
        const NO_FALLBACK = 1 << 7;
        /// Check against the high watermark.
        const WMARK_HIGH = 1 << 8;
        /// The first attempt before a pageblock is evacuated (confinement's,
        /// or small-order packing's): the request takes its own lists, the
        /// packed or confined source's wholly free pageblock, never Linux's
        /// fallback.
        const CONFINED_ONLY = 1 << 9;
    }
}

impl AllocMode {
    /// Linux `ALLOC_RESERVES`: any right to the reserves below min.
    pub(crate) const RESERVES: AllocMode = AllocMode::NON_BLOCK
        .union(AllocMode::MIN_RESERVE)
        .union(AllocMode::HIGHATOMIC);
}

/// The free counters a watermark check reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FreeCounts {
    pub free: u64,
    pub cma: u64,
    pub highatomic: u64,
}

impl ZoneCore {
    /// The free counters as last published by a zone-lock holder: what a
    /// lockless check reads.
    #[inline]
    pub(crate) fn published_counts(&self) -> FreeCounts {
        FreeCounts {
            free: self.published_free.load(Ordering::Relaxed),
            cma: self.published_free_cma.load(Ordering::Relaxed),
            highatomic: self.published_free_highatomic.load(Ordering::Relaxed),
        }
    }

    /// Whether `order` may be taken by a request whose highest allowed zone
    /// is `highest`, read without the zone lock from the counters the last
    /// lock holder published (Linux `zone_watermark_fast`).
    #[inline]
    pub(crate) fn watermark_ok(&self, order: Order, highest: ZoneType, mode: AllocMode) -> bool {
        watermark_ok(
            self,
            self.published_counts(),
            || self.published_bitmaps(),
            order,
            highest,
            mode,
        )
    }

    /// The fast path's test for an order-0 request without reserves: free
    /// pages above the high watermark (Linux checks the high mark first
    /// while the zone is not flagged below it; passing settles it). The
    /// same arithmetic as [`ZoneCore::watermark_ok`] with `WMARK_HIGH`,
    /// without the mode decoding.
    #[inline]
    pub(crate) fn order0_above_high(&self, highest: ZoneType, cma_usable: bool) -> bool {
        let free = self.published_free.load(Ordering::Relaxed);
        let mut unusable = self.published_free_highatomic.load(Ordering::Relaxed);
        if !cma_usable {
            unusable += self.published_free_cma.load(Ordering::Relaxed);
        }
        free > unusable + self.watermarks.high + self.lowmem_reserve[highest.idx()]
    }

    /// The published non-empty bitmaps of the free lists.
    fn published_bitmaps(&self) -> [u16; NR_MIGRATE_TYPES] {
        self.published_nonempty
            .each_ref()
            .map(|b| b.load(Ordering::Relaxed))
    }

    /// Whether `nr` order-0 pages may be taken at once (Linux
    /// `__alloc_pages_bulk` raises the mark by the request).
    pub(crate) fn watermark_ok_bulk(&self, nr: u64, highest: ZoneType, mode: AllocMode) -> bool {
        let mut counts = self.published_counts();
        counts.free = counts.free.saturating_sub(nr);
        watermark_ok(
            self,
            counts,
            || self.published_bitmaps(),
            Order::ZERO,
            highest,
            mode,
        )
    }
}

impl ZoneOps<'_> {
    /// Whether free memory is back above the high watermark (Linux
    /// `zone_watermark_ok(zone, 0, high_wmark_pages(zone), ZONE_MOVABLE, 0)`).
    pub(crate) fn high_watermark_met(&self) -> bool {
        let counts = FreeCounts {
            free: self.f.nr_free_pages,
            cma: self.f.nr_free_cma,
            highatomic: self.f.nr_free_highatomic,
        };
        let high = AllocMode::WMARK_HIGH;
        watermark_ok(
            self.z,
            counts,
            || self.f.nonempty,
            Order::ZERO,
            ZoneType::Movable,
            high,
        )
    }
}

/// Linux `__zone_watermark_ok`. `nonempty` gives the free-list bitmaps,
/// read only for orders above 0.
#[inline]
fn watermark_ok(
    z: &ZoneCore,
    counts: FreeCounts,
    nonempty: impl FnOnce() -> [u16; NR_MIGRATE_TYPES],
    order: Order,
    highest: ZoneType,
    mode: AllocMode,
) -> bool {
    if mode.contains(AllocMode::NO_WATERMARKS) {
        return true;
    }
    let mut min = if mode.contains(AllocMode::WMARK_MIN) {
        z.watermarks.min
    } else if mode.contains(AllocMode::WMARK_HIGH) {
        z.watermarks.high
    } else {
        z.watermarks.low
    } as i64;
    // Free pages the request cannot count on (Linux
    // `__zone_watermark_unusable_free`).
    let mut unusable = order.nr_pages().0 - 1;
    if !mode.intersects(AllocMode::RESERVES) {
        unusable += counts.highatomic;
    }
    if !mode.contains(AllocMode::CMA) {
        unusable += counts.cma;
    }
    let free = counts.free as i64 - unusable as i64;
    if mode.contains(AllocMode::MIN_RESERVE) {
        // __GFP_HIGH gets half of the min reserve; a non-blocking request
        // (GFP_ATOMIC) a further quarter of what is left.
        min -= min / 2;
        if mode.contains(AllocMode::NON_BLOCK) {
            min -= min / 4;
        }
    }
    if free <= min + z.lowmem_reserve[highest.idx()] as i64 {
        return false;
    }
    if order == Order::ZERO {
        return true;
    }
    // A high-order request also needs one suitable free block.
    let nonempty = nonempty();
    let suitable = |mt: MigrateType| nonempty[mt.idx()] >> order.get() != 0;
    MigrateType::ALL[..NR_PCP_TYPES]
        .iter()
        .any(|&mt| suitable(mt))
        || (mode.contains(AllocMode::CMA) && suitable(MigrateType::Cma))
        || (mode.contains(AllocMode::HIGHATOMIC) && suitable(MigrateType::HighAtomic))
}

/// `min_free_kbytes` for a machine whose low zones manage `lowmem_pages`
/// pages over `nr_lowmem_zones` populated zones up to Normal.
pub(crate) fn min_free_kbytes(config: &Config, lowmem_pages: u64, nr_lowmem_zones: u64) -> u64 {
    // calculate_min_free_kbytes: int_sqrt(lowmem_kbytes * 16), clamped.
    const MIN_KB: u64 = 128;
    const MAX_KB: u64 = 262_144;
    let lowmem_kbytes = config.pages_to_kbytes(lowmem_pages);
    let sqrt = (lowmem_kbytes.saturating_mul(16))
        .isqrt()
        .clamp(MIN_KB, MAX_KB);
    match config.min_free {
        MinFree::Kbytes(kb) => kb,
        MinFree::Sqrt => sqrt,
        MinFree::ThpRecommended => {
            // set_recommended_min_free_kbytes: two free pageblocks per zone,
            // plus one per pair of the three mobility types, at most 5% of
            // lowmem.
            let pb = config.pageblock_nr_pages();
            let pcp = NR_PCP_TYPES as u64;
            let pages = (pb * nr_lowmem_zones * 2 + pb * nr_lowmem_zones * pcp * pcp)
                .min(lowmem_pages / 20);
            sqrt.max(config.pages_to_kbytes(pages))
        }
    }
}

/// Sets every zone's watermarks and lowmem reserves.
pub(crate) fn setup_zone_watermarks<R: RawMutex>(zones: &mut [Zone<R>], config: &Config) {
    let is_lowmem = |z: &&Zone<R>| z.core.zone_type <= ZoneType::Normal;
    let lowmem_pages: u64 = zones
        .iter()
        .filter(is_lowmem)
        .map(|z| z.core.nr_managed())
        .sum();
    let nr_lowmem_zones = zones.iter().filter(is_lowmem).count() as u64;
    let pages_min = config.kbytes_to_pages(min_free_kbytes(config, lowmem_pages, nr_lowmem_zones));
    // Linux sizes watermarks against all managed pages except highmem; the
    // Movable zone counts (it is not highmem on 64-bit).
    let total: u64 = zones.iter().map(|z| z.core.nr_managed()).sum();
    for zone in zones.iter_mut() {
        let zone = &mut zone.core;
        let managed = zone.nr_managed();
        let min = (pages_min as u128 * managed as u128 / total.max(1) as u128) as u64;
        let gap = (min / 4).max(managed * config.watermark_scale_factor as u64 / 10_000);
        zone.watermarks = Watermarks {
            min,
            low: min + gap,
            high: min + 2 * gap,
            promo: min + 3 * gap,
        };
    }
    setup_lowmem_reserve(zones, config);
}

/// Linux `setup_per_zone_lowmem_reserve`: zone `i` keeps
/// `managed(i+1..=j) / ratio[i]` pages from requests whose highest zone is
/// `j`, per node.
fn setup_lowmem_reserve<R: RawMutex>(zones: &mut [Zone<R>], config: &Config) {
    for i in 0..zones.len() {
        let (node, ty) = (zones[i].core.node, zones[i].core.zone_type);
        let mut reserve = [0u64; NR_ZONE_TYPES];
        let ratio = config.lowmem_reserve_ratio[ty.idx()] as u64;
        let mut upper = 0;
        for (j, slot) in reserve.iter_mut().enumerate().skip(ty.idx() + 1) {
            upper += zones
                .iter()
                .filter(|z| z.core.node == node && z.core.zone_type.idx() == j)
                .map(|z| z.core.nr_managed())
                .sum::<u64>();
            *slot = upper.checked_div(ratio).unwrap_or(0);
        }
        zones[i].core.lowmem_reserve = reserve;
    }
}
