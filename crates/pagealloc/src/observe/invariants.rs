//! `check_invariants`: a full walk proving the invariants of docs/DESIGN.md.
//!
//! It is O(pages) and meant for tests (after every step of the randomized
//! ones) and for debugging, not for production paths.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use alloc::vec::Vec;

use lock_api::RawMutex;

use super::services;
use crate::allocator::Allocator;
use crate::config::CmaArea;
use crate::contig::area::Bitmap;
use crate::engine::buddy::merge_across_pageblocks;
use crate::engine::free_area::FreeAreas;
use crate::engine::page::PageState;
use crate::engine::zone::ZoneCore;
use crate::error::InvariantViolation;
use crate::pcp::lists::Pcp;
use crate::stats::VmStats;
use crate::units::{MigrateType, Pfn, MAX_NR_ORDERS, NR_MIGRATE_TYPES};

pub(super) fn violation(invariant: u8, zone: &ZoneCore, detail: String) -> InvariantViolation {
    InvariantViolation {
        invariant,
        detail: format!("node {} zone {}: {detail}", zone.node.0, zone.zone_type),
    }
}

impl<R: RawMutex> Allocator<R> {
    /// Walks every page, list and counter and checks the invariants of
    /// docs/DESIGN.md:
    ///
    /// 1. every present page is in exactly one block (free, per-CPU,
    ///    allocated or offline) and holes are in none;
    /// 2. a free block of order o starts at a multiple of 2^o, lies inside
    ///    one zone and crosses no hole;
    /// 3. no two free buddies that could merge are both left free;
    /// 4. every counter equals what the walk finds;
    /// 5. a free block is on the list of its pageblocks' migratetype;
    /// 6. reported blocks (seed 002) are free, of at least the reporting
    ///    order, and form the tail of their list;
    /// 7. contiguous allocation (seed 003): the isolated pageblocks and
    ///    offline pages are what the zone counts, an isolated free block
    ///    lies inside one pageblock, and a contiguous page in a CMA area
    ///    has its bitmap bit set;
    /// 8. confinement ([`Confinement::LowEnd`](crate::Confinement)): no free
    ///    block of pageblock order or more is on an unmovable or reclaimable
    ///    list (a confined pageblock that became wholly free went back to
    ///    movable); the confinement counters are zero in zones without the
    ///    policy (but the evacuations under small-order packing), and its
    ///    claims and fallbacks are among the fallback events counted.
    /// 9. memory regions (seed 000): every region counter (present, free,
    ///    held pages; regions held) equals the walk, a held region has
    ///    every present page in held blocks and so none on any free or
    ///    per-CPU list, and every free list is sorted by region with
    ///    exact entry points and bitmap.
    ///
    /// It holds every lock at once (per-CPU lists first, then zones, the
    /// order the allocation path uses) for the whole walk, and no call
    /// changes a page record without one of them, so it may run beside
    /// any other calls. A thread holding [`LocalLists`](crate::LocalLists)
    /// calls [`LocalLists::check_invariants`](crate::LocalLists::check_invariants).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let held = self.hold_all();
        // The CMA bitmaps after every zone lock: nobody takes a zone lock
        // while holding a bitmap.
        let bitmaps: Vec<_> = self.cma.iter().map(|c| c.bitmap.lock()).collect();
        let mut allocated = 0;
        let mut stats = VmStats::default();
        for (zi, zone) in self.zones.iter().enumerate() {
            let free = held.zones[zi].free_areas();
            let zone_pcps: Vec<&Pcp> = held.cpus.iter().map(|cpu| &cpu.zones[zi]).collect();
            let cma: Vec<(CmaArea, &Bitmap)> = self
                .cma
                .iter()
                .zip(&bitmaps)
                .filter(|(c, _)| c.zone == zi)
                .map(|(c, b)| (c.area, &**b))
                .collect();
            allocated += check_zone(&zone.core, free, &zone_pcps, &cma)?;
            services::check_confinement(&zone.core, free)?;
            stats.merge(&free.stats);
        }
        for cpu in &held.cpus {
            for pcp in cpu.zones.iter() {
                stats.merge(&pcp.stats);
            }
        }
        drop(bitmaps);
        drop(held);
        if stats.confined_claims > stats.pageblock_claims
            || stats.confined_fallbacks > stats.extfrag_events
        {
            return Err(InvariantViolation {
                invariant: 8,
                detail: format!(
                    "{} confined claims and {} confined fallbacks, but {} pageblock claims \
                     and {} fallback events",
                    stats.confined_claims,
                    stats.confined_fallbacks,
                    stats.pageblock_claims,
                    stats.extfrag_events
                ),
            });
        }
        let outstanding = stats.pgalloc.wrapping_sub(stats.pgfree);
        if outstanding != allocated {
            return Err(InvariantViolation {
                invariant: 4,
                detail: format!(
                    "{allocated} pages in allocated blocks, counters say {outstanding}"
                ),
            });
        }
        Ok(())
    }
}

/// Checks one zone; returns the pages it found allocated.
fn check_zone(
    zone: &ZoneCore,
    free: &FreeAreas,
    pcps: &[&Pcp],
    cma: &[(CmaArea, &Bitmap)],
) -> Result<u64, InvariantViolation> {
    let geo = zone.geo;
    // Pass 1: the linear walk (invariants 1, 2, 3, and counts for 4).
    let mut heads_free = [[0u64; NR_MIGRATE_TYPES]; MAX_NR_ORDERS];
    let first_block = zone.start.0 >> geo.pageblock.get();
    let last_block = (zone.end.0 - 1) >> geo.pageblock.get();
    let mut free_per_block = vec![0u64; (last_block - first_block + 1) as usize];
    let mut allocated = 0u64;
    let mut cached = 0u64;
    let mut covered = 0u64;
    let (mut reported, mut reporting, mut offline) = (0u64, 0u64, 0u64);
    // Seed 000, per region: pages in blocks, free pages (listed or held),
    // held pages.
    let nr_regions = zone.regions.as_ref().map_or(0, |m| m.len());
    let mut region_pages = vec![0u64; nr_regions];
    let mut region_free = vec![0u64; nr_regions];
    let mut region_held = vec![0u64; nr_regions];
    let mut held = 0u64;
    let mut pfn = zone.start;
    while pfn < zone.end {
        let meta = zone.meta(pfn);
        if meta.state() == PageState::Tail {
            if zone.is_present(pfn) {
                return Err(violation(
                    1,
                    zone,
                    format!("present page {pfn} is in no block"),
                ));
            }
            pfn.0 += 1;
            continue;
        }
        let order = meta.order();
        if order > geo.max_order {
            return Err(violation(
                2,
                zone,
                format!("block {pfn} has {order} above the largest"),
            ));
        }
        if !pfn.is_aligned(order) {
            return Err(violation(
                2,
                zone,
                format!("block {pfn} is not aligned to {order}"),
            ));
        }
        if !zone.block_is_present(pfn, order) {
            return Err(violation(
                2,
                zone,
                format!("block {pfn} of {order} crosses a hole or the zone's end"),
            ));
        }
        let nr = order.nr_pages().0;
        for k in 1..nr {
            let tail = Pfn(pfn.0 + k);
            if zone.meta(tail).state() != PageState::Tail {
                return Err(violation(
                    1,
                    zone,
                    format!("page {tail} heads a block inside block {pfn} of {order}"),
                ));
            }
        }
        covered += nr;
        let region = zone.regions.as_ref().map(|m| m.of_pfn(pfn));
        if let Some(r) = region {
            region_pages[r] += nr;
            match meta.state() {
                PageState::FreeHead => region_free[r] += nr,
                PageState::HeldHead => {
                    region_free[r] += nr;
                    region_held[r] += nr;
                }
                _ => {}
            }
        }
        if meta.flag() && meta.state() != PageState::FreeHead && !meta.is_contig() {
            return Err(violation(
                6,
                zone,
                format!("{pfn} is marked reported but is {:?}", meta.state()),
            ));
        }
        if meta.is_contig() {
            // A page of a contiguous run inside a CMA area was handed out
            // by `cma_alloc`, which set its bit first and clears it last.
            let area = cma
                .iter()
                .find(|(a, _)| a.start <= pfn && pfn.0 < a.start.0 + a.nr_pages.0);
            if let Some((a, bitmap)) = area {
                if !bitmap.get(((pfn.0 - a.start.0) >> a.order_per_bit) as usize) {
                    return Err(violation(
                        7,
                        zone,
                        format!("{pfn} is a contiguous page of a CMA area, its bit is clear"),
                    ));
                }
            }
        }
        if meta.flag()
            && meta.state() == PageState::FreeHead
            && zone.report_order.is_none_or(|t| order < t)
        {
            return Err(violation(
                6,
                zone,
                format!("{pfn} of {order} is marked reported below the reporting order"),
            ));
        }
        match meta.state() {
            PageState::FreeHead => {
                let mt = zone.block_mt(pfn);
                let pb = geo.pageblock_nr_pages();
                for k in 0..(nr / pb).max(1) {
                    let other = zone.block_mt(Pfn(pfn.0 + k * pb));
                    if other != mt {
                        return Err(violation(
                            5,
                            zone,
                            format!(
                                "free block {pfn} of {order} spans pageblocks of {mt} and {other}"
                            ),
                        ));
                    }
                }
                heads_free[order.idx()][mt.idx()] += 1;
                for k in 0..nr {
                    let block = ((pfn.0 + k) >> geo.pageblock.get()) - first_block;
                    free_per_block[block as usize] += 1;
                }
                check_no_mergeable_buddy(zone, pfn, order, mt)?;
                if meta.flag() {
                    reported += nr;
                }
            }
            PageState::ReportingHead => reporting += nr,
            PageState::HeldHead => {
                if region.is_none() {
                    return Err(violation(
                        9,
                        zone,
                        format!("{pfn} is held by a region allocator, but regions are off"),
                    ));
                }
                for k in 0..nr {
                    let block = ((pfn.0 + k) >> geo.pageblock.get()) - first_block;
                    free_per_block[block as usize] += 1;
                }
                held += nr;
            }
            PageState::AllocHead => allocated += nr,
            PageState::PcpHead => cached += nr,
            PageState::OfflineHead => offline += nr,
            PageState::Tail => {}
        }
        pfn.0 += nr;
    }
    if offline != zone.nr_offline {
        return Err(violation(
            7,
            zone,
            format!(
                "{offline} pages offline, the zone counts {}",
                zone.nr_offline
            ),
        ));
    }
    if covered != zone.nr_present {
        return Err(violation(
            1,
            zone,
            format!("{covered} pages in blocks, {} present", zone.nr_present),
        ));
    }
    // The per-CPU lists (invariants 1 and 4).
    let mut on_list = vec![false; zone.pages.len()];
    let mut listed = 0u64;
    for pcp in pcps {
        let mut pages = 0;
        for (idx, order) in pcp.blocks(zone) {
            let pfn = zone.pfn(idx);
            let meta = zone.pages.get(idx);
            if meta.state() != PageState::PcpHead || meta.order() != order {
                return Err(violation(
                    4,
                    zone,
                    format!("{pfn} on a per-CPU list of {order} is {meta:?}"),
                ));
            }
            if core::mem::replace(&mut on_list[idx as usize], true) {
                return Err(violation(
                    1,
                    zone,
                    format!("{pfn} is on per-CPU lists twice"),
                ));
            }
            pages += order.nr_pages().0;
        }
        if pages != pcp.count {
            return Err(violation(
                4,
                zone,
                format!("a per-CPU list set holds {pages} pages, says {}", pcp.count),
            ));
        }
        if let Some(idx) = pcp.broken_back_link(zone) {
            return Err(violation(
                4,
                zone,
                format!("{} on a per-CPU list has a broken back link", zone.pfn(idx)),
            ));
        }
        listed += pages;
    }
    if listed != cached {
        return Err(violation(
            1,
            zone,
            format!("{cached} pages marked per-CPU, {listed} on per-CPU lists"),
        ));
    }

    // Pass 2: the free lists (invariants 4 and 5).
    let (mut free_pages, mut cma, mut highatomic) = (0u64, 0u64, 0u64);
    for order in geo.orders() {
        let area = &free.areas[order.idx()];
        let mut blocks = 0;
        for mt in MigrateType::ALL {
            let list = &area.lists[mt.idx()];
            let mut n = 0u64;
            let mut prev = None;
            let mut run_start = None;
            for idx in list.iter(&zone.pages) {
                let pfn = zone.pfn(idx);
                let meta = zone.pages.get(idx);
                // Reported blocks are the list's tail run (seed 002), so
                // allocation from the head takes every unreported block of
                // the list first.
                match (meta.flag(), run_start) {
                    // With regions (seed 000) reported blocks end their
                    // region's segment, not the list.
                    _ if free.regions.is_some() => {}
                    (true, None) => run_start = Some(idx),
                    (false, Some(_)) => {
                        return Err(violation(
                            6,
                            zone,
                            format!(
                            "unreported {pfn} follows reported blocks on the {mt} list of {order}"
                        ),
                        ))
                    }
                    _ => {}
                }
                if !meta.is_free_of_order(order) {
                    return Err(violation(
                        4,
                        zone,
                        format!("{pfn} on the {mt} list of {order} is {meta:?}"),
                    ));
                }
                if mt == MigrateType::Isolate && order > geo.pageblock {
                    return Err(violation(
                        7,
                        zone,
                        format!("isolated free block {pfn} of {order} spans pageblocks"),
                    ));
                }
                if zone.block_mt(pfn) != mt {
                    return Err(violation(
                        5,
                        zone,
                        format!(
                            "{pfn} on the {mt} list of {order} is in a {} pageblock",
                            zone.block_mt(pfn)
                        ),
                    ));
                }
                if core::mem::replace(&mut on_list[idx as usize], true) {
                    return Err(violation(1, zone, format!("{pfn} is on a free list twice")));
                }
                let expected_prev = prev.unwrap_or(crate::engine::page::NIL);
                if zone.pages.prev(idx) != expected_prev {
                    return Err(violation(4, zone, format!("{pfn} has a broken back link")));
                }
                prev = Some(idx);
                n += 1;
            }
            let recorded = area.first_reported[mt.idx()];
            if run_start.unwrap_or(crate::engine::page::NIL) != recorded {
                return Err(violation(
                    6,
                    zone,
                    format!("the {mt} list of {order}: reported run starts at {run_start:?}, recorded {recorded}"),
                ));
            }
            if n != list.len() || list.last() != prev {
                return Err(violation(
                    4,
                    zone,
                    format!("the {mt} list of {order} holds {n}, says {}", list.len()),
                ));
            }
            if n != heads_free[order.idx()][mt.idx()] {
                return Err(violation(
                    5,
                    zone,
                    format!(
                        "{} free heads of {order} in {mt} pageblocks, {n} on that list",
                        heads_free[order.idx()][mt.idx()]
                    ),
                ));
            }
            let has_bit = free.nonempty[mt.idx()] & (1 << order.get()) != 0;
            if has_bit != (n > 0) {
                return Err(violation(
                    4,
                    zone,
                    format!("non-empty bit of the {mt} list of {order} is wrong"),
                ));
            }
            let pages = n << order.get();
            match mt {
                MigrateType::Isolate => {}
                MigrateType::Cma => {
                    cma += pages;
                    free_pages += pages
                }
                MigrateType::HighAtomic => {
                    highatomic += pages;
                    free_pages += pages
                }
                _ => free_pages += pages,
            }
            blocks += n;
        }
        if blocks != area.nr_free {
            return Err(violation(
                4,
                zone,
                format!(
                    "{order} has {blocks} free blocks, nr_free says {}",
                    area.nr_free
                ),
            ));
        }
    }
    services::check_regions(zone, free, &region_pages, &region_free, &region_held, held)?;
    let counters = [
        ("nr_free_pages", free_pages + held, free.nr_free_pages),
        ("nr_free_cma", cma, free.nr_free_cma),
        ("nr_free_highatomic", highatomic, free.nr_free_highatomic),
        ("nr_reported_pages", reported, free.nr_reported_pages),
        ("nr_reporting_pages", reporting, free.nr_reporting_pages),
    ];
    for (name, walked, counter) in counters {
        if walked != counter {
            return Err(violation(
                4,
                zone,
                format!("{name} is {counter}, the lists hold {walked}"),
            ));
        }
    }
    let first_block = zone.start.0 >> geo.pageblock.get();
    for (k, &walked) in free_per_block.iter().enumerate() {
        let block = Pfn((first_block + k as u64) << geo.pageblock.get());
        let counted = zone.blocks.free_pages(block.max(zone.start)) as u64;
        if walked != counted {
            return Err(violation(
                4,
                zone,
                format!("pageblock {block} has {walked} free pages, its counter says {counted}"),
            ));
        }
    }
    let isolated_blocks = zone
        .pageblock_starts()
        .filter(|&p| zone.blocks.is_isolated(p))
        .count() as u64;
    if isolated_blocks != free.nr_isolated_pageblocks {
        return Err(violation(
            7,
            zone,
            format!(
                "{isolated_blocks} pageblocks isolated, the zone counts {}",
                free.nr_isolated_pageblocks
            ),
        ));
    }
    // An isolated reserve pageblock stays reserved: count the type under
    // the mark.
    let reserved_blocks = zone
        .pageblock_starts()
        .filter(|&p| zone.blocks.base(p) == MigrateType::HighAtomic)
        .count() as u64;
    if reserved_blocks * geo.pageblock_nr_pages() != free.nr_reserved_highatomic {
        return Err(violation(
            4,
            zone,
            format!(
                "{reserved_blocks} high-atomic pageblocks, nr_reserved_highatomic is {}",
                free.nr_reserved_highatomic
            ),
        ));
    }
    Ok(allocated)
}

/// Invariant 3: the free block `pfn`/`order` of type `mt` has no free buddy
/// it could merge with.
fn check_no_mergeable_buddy(
    zone: &ZoneCore,
    pfn: Pfn,
    order: crate::units::Order,
    mt: MigrateType,
) -> Result<(), InvariantViolation> {
    if order >= zone.geo.max_order {
        return Ok(());
    }
    let buddy = pfn.buddy(order);
    if !zone.spans(buddy) || !zone.meta(buddy).is_free_of_order(order) {
        return Ok(());
    }
    let buddy_mt = zone.block_mt(buddy);
    let may_merge = order < zone.geo.pageblock || merge_across_pageblocks(mt, buddy_mt);
    if may_merge {
        return Err(violation(
            3,
            zone,
            format!("free buddies {pfn} and {buddy} of {order} were not merged"),
        ));
    }
    Ok(())
}
