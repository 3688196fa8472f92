//! The invariants of the placement services over the engine, beside the
//! engine's own walk in [`super::invariants`]: invariant 8 (confinement)
//! and invariant 9 (memory regions, seed 000).

use alloc::format;
use alloc::vec;

use super::invariants::violation;
use crate::engine::free_area::FreeAreas;
use crate::engine::zone::ZoneCore;
use crate::error::InvariantViolation;
use crate::policy::{Confinement, Packing};
use crate::units::MigrateType;

/// Invariant 8 for one zone: the confined area holds no wholly free
/// pageblock, and a zone without the policy has counted nothing of it
/// (but evacuations, under small-order packing).
pub(super) fn check_confinement(
    zone: &ZoneCore,
    free: &FreeAreas,
) -> Result<(), InvariantViolation> {
    let s = &free.stats;
    if zone.confinement == Confinement::Off {
        let counted = (
            s.confined_claims,
            s.confined_releases,
            s.confined_fallbacks,
            // Small-order packing empties pageblocks too.
            if zone.packing == Packing::SmallOrders {
                0
            } else {
                s.confined_evacuations + s.confined_evacuation_fail
            },
        );
        if counted != (0, 0, 0, 0) {
            return Err(violation(
                8,
                zone,
                format!(
                    "confinement is off, but counts {} claims, {} releases, {} fallbacks, \
                     {} evacuations tried",
                    counted.0, counted.1, counted.2, counted.3
                ),
            ));
        }
        return Ok(());
    }
    for order in zone.geo.orders().filter(|o| *o >= zone.geo.pageblock) {
        for mt in [MigrateType::Unmovable, MigrateType::Reclaimable] {
            if let Some(idx) = free.areas[order.idx()].lists[mt.idx()].first() {
                return Err(violation(
                    8,
                    zone,
                    format!(
                        "free block {} of {order} is on the {mt} list: a wholly free \
                         confined pageblock",
                        zone.pfn(idx)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Invariant 9 (seed 000): the region counters equal what the walk found
/// (present, free and held pages per region), a held region is held whole
/// (every present page in a held block, so none is on a free or per-CPU
/// list, whose entries the list walks require to be free or per-CPU
/// heads), and every free list is sorted by region with the right entry
/// points and bitmap.
pub(super) fn check_regions(
    zone: &ZoneCore,
    free: &FreeAreas,
    pages: &[u64],
    free_pages: &[u64],
    held_pages: &[u64],
    held: u64,
) -> Result<(), InvariantViolation> {
    let (Some(map), Some(rg)) = (&zone.regions, free.regions.as_deref()) else {
        if free.regions.is_some() || zone.regions.is_some() {
            return Err(violation(9, zone, "regions half set up".into()));
        }
        return Ok(());
    };
    let mut nr_held = 0;
    for r in 0..map.len() {
        let is_held = rg.is_held(r);
        nr_held += u64::from(is_held);
        let checks = [
            ("present pages", pages[r], map.present[r]),
            ("free pages", free_pages[r], rg.free[r]),
            (
                "held pages",
                held_pages[r],
                if is_held { map.present[r] } else { 0 },
            ),
        ];
        for (name, walked, counted) in checks {
            if walked != counted {
                return Err(violation(
                    9,
                    zone,
                    format!(
                        "region {r} ({}): {name} {counted} counted, {walked} found",
                        if is_held { "held" } else { "in service" }
                    ),
                ));
            }
        }
    }
    if nr_held != rg.nr_held || held != rg.nr_held_pages {
        return Err(violation(
            9,
            zone,
            format!(
                "{nr_held} regions and {held} pages held, the book says {} and {}",
                rg.nr_held, rg.nr_held_pages
            ),
        ));
    }
    for order in zone.geo.orders() {
        let area = &free.areas[order.idx()];
        for mt in MigrateType::ALL {
            let l = crate::engine::list_ops::list_number(order, mt);
            if area.first_reported[mt.idx()] != crate::engine::page::NIL {
                return Err(violation(
                    9,
                    zone,
                    format!("the {mt} list of {order} records a reported run"),
                ));
            }
            let mut expected = vec![crate::engine::page::NIL; map.len()];
            let mut last = 0;
            for idx in area.lists[mt.idx()].iter(&zone.pages) {
                let r = map.of_idx(idx);
                if r < last {
                    return Err(violation(
                        9,
                        zone,
                        format!(
                            "the {mt} list of {order}: {} of region {r} after region {last}",
                            zone.pfn(idx)
                        ),
                    ));
                }
                if expected[r] == crate::engine::page::NIL {
                    expected[r] = idx;
                }
                last = r;
            }
            for (r, &want) in expected.iter().enumerate() {
                let got = rg.sorted.entry(l, r);
                let bit = rg.sorted.has_segment(l, r);
                if got != want || bit != (want != crate::engine::page::NIL) {
                    return Err(violation(
                        9,
                        zone,
                        format!(
                            "the {mt} list of {order}: region {r} starts at {want}, entry {got}, bit {bit}"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
