//! The region calls of the [`Allocator`]: the clock and power hooks the
//! caller supplies, and the per-region report.

use crate::sync::atomic::Ordering;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use lock_api::RawMutex;

use crate::allocator::Allocator;
use crate::region::power::{RegionId, RegionPower};
use crate::units::{NodeId, PageCount, ZoneType};

/// Where a region is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RegionState {
    /// On the buddy lists: some of its pages may be in use.
    InService,
    /// Held by the region allocator: every page free, none on any list;
    /// the client may have powered it down.
    Held,
}

/// One region's figures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RegionInfo {
    /// Which region.
    pub id: RegionId,
    /// Present pages (fewer than a region's size at zone edges and holes).
    pub present: PageCount,
    /// Free pages: on the buddy lists or held. Pages cached on per-CPU
    /// lists are not free here.
    pub free: PageCount,
    /// In service or held.
    pub state: RegionState,
    /// Ticks of the caller's clock spent held, the current stretch
    /// included.
    pub idle_ticks: u64,
    /// Times it went to the region allocator.
    pub returns: u64,
    /// Times it came back into service.
    pub draws: u64,
}

/// One zone's regions.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ZoneRegions {
    /// The node.
    pub node: NodeId,
    /// The zone.
    pub zone: ZoneType,
    /// Pages in a whole region.
    pub region_pages: PageCount,
    /// Wholly free pageblocks of one type taken for another because they
    /// lay in a lower region than the requesting type's own free blocks
    /// (a cost of regions beside Linux's fallbacks).
    pub free_pageblock_claims: u64,
    /// Every region of the zone, lowest first.
    pub regions: Vec<RegionInfo>,
}

/// Every zone's regions at one moment ([`Allocator::region_report`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RegionReport {
    /// The caller's clock when the report was taken.
    pub now: u64,
    /// Per zone.
    pub zones: Vec<ZoneRegions>,
}

impl RegionReport {
    /// Regions whose every present page is free (held or not).
    pub fn fully_free(&self) -> u64 {
        self.regions()
            .filter(|r| r.present.0 > 0 && r.free == r.present)
            .count() as u64
    }

    /// Wholly free pageblocks retyped for a lower region, all zones.
    pub fn free_pageblock_claims(&self) -> u64 {
        self.zones.iter().map(|z| z.free_pageblock_claims).sum()
    }

    /// Regions the region allocator holds.
    pub fn held(&self) -> u64 {
        self.regions()
            .filter(|r| r.state == RegionState::Held)
            .count() as u64
    }

    /// Every region of every zone.
    pub fn regions(&self) -> impl Iterator<Item = &RegionInfo> {
        self.zones.iter().flat_map(|z| z.regions.iter())
    }

    /// The report as one JSON object (no dependency: the engine is
    /// `no_std`): `{"now":..,"zones":[{"node":..,"zone":"Normal",
    /// "region_pages":..,"free_pageblock_claims":..,"regions":[{"index":..,"start_pfn":..,"present":..,
    /// "free":..,"state":"held","idle_ticks":..,"returns":..,"draws":..}]}]}`.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "{{\"now\":{},\"zones\":[", self.now);
        for (i, z) in self.zones.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"node\":{},\"zone\":\"{}\",\"region_pages\":{},\"free_pageblock_claims\":{},\"regions\":[",
                z.node.0, z.zone, z.region_pages.0, z.free_pageblock_claims
            );
            for (j, r) in z.regions.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                let _ = write!(
                    s,
                    "{{\"index\":{},\"start_pfn\":{},\"present\":{},\"free\":{},\"state\":\"{}\",\"idle_ticks\":{},\"returns\":{},\"draws\":{}}}",
                    r.id.index,
                    r.id.start.0,
                    r.present.0,
                    r.free.0,
                    state_name(r.state),
                    r.idle_ticks,
                    r.returns,
                    r.draws
                );
            }
            s.push_str("]}");
        }
        s.push_str("]}");
        s
    }
}

fn state_name(state: RegionState) -> &'static str {
    match state {
        RegionState::InService => "in-service",
        RegionState::Held => "held",
    }
}

/// The compact text form: per zone a header line, then one line per
/// region: index, first frame, free/present pages, state, idle ticks,
/// returns and draws.
impl fmt::Display for RegionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for z in &self.zones {
            let held = z
                .regions
                .iter()
                .filter(|r| r.state == RegionState::Held)
                .count();
            writeln!(
                f,
                "Node {}, zone {:>8}: {} regions of {} pages, {} held, {} free pageblocks claimed, now {}",
                z.node.0,
                z.zone,
                z.regions.len(),
                z.region_pages.0,
                held,
                z.free_pageblock_claims,
                self.now
            )?;
            for r in &z.regions {
                writeln!(
                    f,
                    "  region {:>4} pfn {:>#10x} free {:>9}/{:<9} {:<10} idle {:>10} returns {:>6} draws {:>6}",
                    r.id.index,
                    r.id.start.0,
                    r.free.0,
                    r.present.0,
                    state_name(r.state),
                    r.idle_ticks,
                    r.returns,
                    r.draws
                )?;
            }
        }
        Ok(())
    }
}

impl<R: RawMutex> Allocator<R> {
    /// Whether memory regions (seed 000) are on.
    pub fn regions_enabled(&self) -> bool {
        self.config.regions.is_some()
    }

    /// Sets the clock region idle time is counted in: the engine has no
    /// clock of its own, so the caller passes its time (any monotonic
    /// unit: nanoseconds, a simulator's event count). A region's idle time
    /// is the sum of the clock's advances between its return to the region
    /// allocator and its draw back; until the first call the clock reads 0.
    pub fn set_region_time(&self, now: u64) {
        for zone in &self.zones {
            zone.core.region_now.store(now, Ordering::Relaxed);
        }
    }

    /// Installs (or removes) the client's [`RegionPower`] hooks. Regions
    /// already held stay held; the hooks hear only later changes.
    pub fn set_region_power(&mut self, power: Option<Arc<dyn RegionPower>>) {
        for zone in &mut self.zones {
            zone.core.region_power = power.clone();
        }
    }

    /// Every zone's regions, or `None` if regions are off. Taken zone by
    /// zone under each zone's lock; rendered after every lock is dropped.
    pub fn region_report(&self) -> Option<RegionReport> {
        self.config.regions?;
        let mut now = 0;
        let mut zones = Vec::with_capacity(self.zones.len());
        for zone in &self.zones {
            let z = &zone.core;
            let map = z.regions.as_ref()?;
            let t = z.region_time();
            now = now.max(t);
            let guard = zone.lock();
            let rg = guard.free_areas().regions.as_deref()?;
            let regions = (0..map.len())
                .map(|r| {
                    let rec = rg.records[r];
                    let held = rg.is_held(r);
                    let open = if held {
                        t.saturating_sub(rec.held_since)
                    } else {
                        0
                    };
                    RegionInfo {
                        id: z.region_id(r),
                        present: PageCount(map.present[r]),
                        free: PageCount(rg.free[r]),
                        state: if held {
                            RegionState::Held
                        } else {
                            RegionState::InService
                        },
                        idle_ticks: rec.idle_ticks + open,
                        returns: rec.returns,
                        draws: rec.draws,
                    }
                })
                .collect();
            let free_pageblock_claims = rg.free_pageblock_claims;
            drop(guard);
            zones.push(ZoneRegions {
                node: z.node,
                zone: z.zone_type,
                region_pages: PageCount(map.region_pages()),
                free_pageblock_claims,
                regions,
            });
        }
        Some(RegionReport { now, zones })
    }
}
