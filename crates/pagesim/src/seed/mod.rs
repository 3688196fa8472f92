//! Starting a replay where Linux was: the state of a captured
//! `/proc/pagetypeinfo`, recreated in a fresh allocator through its public
//! API only, and the untraced memory that state leaves allocated.
//!
//! Per zone, the snapshot gives the pageblocks of each migratetype and the
//! free blocks of each order and migratetype; everything else was allocated
//! before the trace began (page cache, kernel memory) and is held here as
//! *untraced memory* of its pageblock's type ([`Untraced`]). Where things
//! lie is unknown; the arrangement (module `plan`) assumes that types lie
//! in runs, lowest addresses first: Unmovable, Reclaimable, Movable (the
//! kernel's early allocations claim the lowest pageblocks, since free lists
//! are filled in address order and served from the head), and places each
//! free block where it cannot merge (the lower half of its parent, or the
//! upper half beside a hole). The engine is driven only through
//! allocations and frees:
//!
//! 1. every page is allocated as Movable (the engine's initial type), in
//!    blocks of the pageblock order and below, with `NO_WATERMARKS`;
//! 2. each pageblock that must change type is freed, so that it is the only
//!    free memory in the machine, and allocated again with the new type:
//!    the engine's fallback claims it, as Linux's does;
//! 3. the planned free blocks are freed (split with `split_page` where they
//!    lie inside a larger held block), and the per-CPU lists drained.
//!
//! What the engine then shows is compared with the snapshot
//! ([`StartReport`]): pageblocks per type, free pages and free blocks per
//! order and type, per zone. The state is the same for the same input and
//! policy configuration.

mod plan;
mod untraced;

use std::collections::BTreeMap;

use pagealloc::{AllocError, AllocFlags, Allocator, CpuId, MigrateType, Order, Pfn, ZoneType};

use crate::error::{Error, Result, SnapshotError};
use crate::machine::Machine;
use crate::pagetypeinfo::PageTypes;
use crate::procfs::ProcZone;
use crate::report::{StartReport, TypeCount, ZoneStart};

pub use untraced::{Release, Untraced};

/// Linux's state before the trace, checked against the machine.
#[derive(Clone, Debug)]
pub struct StartState {
    /// The file it came from.
    pub origin: String,
    /// Per zone of the machine, in the allocator's zone order.
    zones: Vec<ZoneTarget>,
    /// Linux's zone spans `[start, end)` with our zone index, for frees.
    spans: Vec<(u64, u64, usize)>,
}

#[derive(Clone, Debug)]
struct ZoneTarget {
    node: u16,
    zone: ZoneType,
    targets: plan::Targets,
    capped: bool,
}

impl StartState {
    /// The state `types` describes (Linux's zones `linux_zones`, from the
    /// same file's zoneinfo) for `machine`. Counts the machine cannot hold
    /// are errors naming their line: another pageblock order, orders beyond
    /// the machine's, zones it does not have (or has and the file does
    /// not), more free pages than a zone has.
    pub fn new(
        types: &PageTypes,
        linux_zones: &[ProcZone],
        machine: &Machine,
        origin: &str,
    ) -> Result<StartState> {
        let err = |line: usize, kind: SnapshotError| Error::Snapshot {
            origin: origin.to_owned(),
            line,
            kind,
        };
        let pb = machine.config.pageblock_order;
        if types.pageblock_order != pb {
            return Err(err(
                types.pageblock_order_line,
                SnapshotError::PageblockOrder {
                    file: types.pageblock_order,
                    machine: pb,
                },
            ));
        }
        let alloc = machine.allocator()?;
        let max = machine.config.max_order().get();
        let mut zones = Vec::with_capacity(alloc.zones().len());
        for z in alloc.zones() {
            let (node, zone) = (z.node().0, z.zone_type());
            let Some(rows) = types
                .zones
                .iter()
                .find(|r| r.node.0 == node && r.zone == zone)
            else {
                let line = types.zones.first().map_or(1, |r| r.free_line);
                return Err(err(
                    line,
                    SnapshotError::ZoneMissing {
                        node,
                        zone: zone.linux_name(),
                    },
                ));
            };
            for per_order in &rows.free {
                if let Some(order) = per_order
                    .iter()
                    .enumerate()
                    .skip(usize::from(max) + 1)
                    .find(|(_, &n)| n > 0)
                    .map(|(o, _)| o)
                {
                    return Err(err(
                        rows.free_line,
                        SnapshotError::OrderBeyond { order, max },
                    ));
                }
            }
            let free_pages = rows.free_pages();
            let zone_pages = z.nr_present().0;
            if free_pages > zone_pages {
                return Err(err(
                    rows.free_line,
                    SnapshotError::TooManyFree {
                        node,
                        zone: zone.linux_name(),
                        free_pages,
                        zone_pages,
                    },
                ));
            }
            if rows.nr_blocks() == 0 {
                return Err(err(
                    rows.blocks_line,
                    SnapshotError::NoPageblocks {
                        node,
                        zone: zone.linux_name(),
                    },
                ));
            }
            zones.push(ZoneTarget {
                node,
                zone,
                targets: plan::Targets {
                    blocks: rows.blocks,
                    free: rows.free.clone(),
                },
                capped: rows.capped,
            });
        }
        for rows in &types.zones {
            if !zones
                .iter()
                .any(|z| z.node == rows.node.0 && z.zone == rows.zone)
            {
                return Err(err(
                    rows.free_line,
                    SnapshotError::ZoneNotInMachine {
                        node: rows.node.0,
                        zone: rows.zone.linux_name(),
                    },
                ));
            }
        }
        let spans = linux_zones
            .iter()
            .filter_map(|lz| {
                let i = zones
                    .iter()
                    .position(|z| z.node == lz.node.0 && z.zone == lz.zone)?;
                let end = lz.start_pfn.saturating_add(lz.spanned.max(lz.managed));
                Some((lz.start_pfn, end, i))
            })
            .collect();
        Ok(StartState {
            origin: origin.to_owned(),
            zones,
            spans,
        })
    }

    /// Recreates the state in `alloc`, a fresh allocator of the machine
    /// this state was checked against; returns the untraced memory and how
    /// close the result is to the snapshot.
    pub fn recreate(&self, alloc: &Allocator) -> Result<(Untraced, StartReport)> {
        if alloc.zones().len() != self.zones.len() || alloc.nr_allocated_pages() != 0 {
            return Err(Error::Internal(
                "seeding needs a fresh allocator of the checked machine".to_owned(),
            ));
        }
        let config = alloc.config();
        let pb_order = config.pageblock_order;
        let max_order = config.max_order().get();
        let mut held = Held::default();
        // 1. Take every page, as Movable.
        held.take_all(alloc, AllocFlags::HIGHUSER_MOVABLE, pb_order)?;
        if alloc.nr_free_pages() + alloc.nr_pcp_pages() != 0 {
            return Err(Error::Internal(format!(
                "seeding could not take every page ({} left free)",
                alloc.nr_free_pages() + alloc.nr_pcp_pages()
            )));
        }
        let mut plans = Vec::with_capacity(self.zones.len());
        let mut loose_pages = 0;
        for (z, target) in alloc.zones().iter().zip(&self.zones) {
            let geo = plan::Geometry {
                start: z.start_pfn().0,
                end: z.end_pfn().0,
                present: present_ranges(alloc, z.start_pfn().0, z.end_pfn().0),
                pageblock_order: pb_order,
                max_order,
            };
            let p = plan::plan(&geo, &target.targets);
            // 2. Retype pageblocks, each alone free.
            for &(start, mt) in &p.pageblocks {
                // Nothing but movable memory may take a Movable zone's pages.
                if mt != MigrateType::Movable && z.zone_type() != ZoneType::Movable {
                    held.retype(alloc, z.zone_type(), start, pb_order, mt)?;
                }
            }
            loose_pages += p.loose_pages.len() as u64;
            plans.push(p);
        }
        // 3. Free the planned blocks.
        for p in &plans {
            for &(pfn, order) in &p.free_blocks {
                held.free_range(alloc, pfn, order)?;
            }
            for &pfn in &p.loose_pages {
                held.free_range(alloc, pfn, 0)?;
            }
        }
        alloc.drain_all();
        let untraced = self.untraced(alloc, &held.blocks, pb_order);
        let report = self.report(alloc, &untraced, loose_pages);
        Ok((untraced, report))
    }

    /// The held blocks as untraced memory by zone and type.
    fn untraced(&self, alloc: &Allocator, held: &BTreeMap<u64, u8>, pb_order: u8) -> Untraced {
        let zones: Vec<(u64, u64)> = alloc
            .zones()
            .iter()
            .map(|z| (z.start_pfn().0, z.end_pfn().0))
            .collect();
        let zone_of = |pfn: u64| zones.iter().position(|&(s, e)| s <= pfn && pfn < e);
        let type_of = |pfn: u64| {
            alloc
                .pageblock_migratetype(Pfn(pfn))
                .unwrap_or(MigrateType::Movable)
        };
        let mut u = Untraced::new(zones.len(), self.spans.clone());
        // Runs of single pages in one pageblock become aligned blocks.
        let mut run: Option<(u64, u64)> = None;
        let flush = |u: &mut Untraced, run: &mut Option<(u64, u64)>| {
            if let Some((s, e)) = run.take() {
                if let Some(z) = zone_of(s) {
                    u.add_pieces(z, type_of(s), s, e);
                }
            }
        };
        for (&pfn, &order) in held {
            if order > 0 {
                flush(&mut u, &mut run);
                if let Some(z) = zone_of(pfn) {
                    u.add_whole(z, type_of(pfn), pfn, order);
                }
                continue;
            }
            match &mut run {
                Some((s, e)) if *e == pfn && (*s >> pb_order) == (pfn >> pb_order) => *e += 1,
                _ => {
                    flush(&mut u, &mut run);
                    run = Some((pfn, pfn + 1));
                }
            }
        }
        flush(&mut u, &mut run);
        u
    }

    fn report(&self, alloc: &Allocator, untraced: &Untraced, loose_pages: u64) -> StartReport {
        let ours = alloc.pagetypeinfo();
        let zones = self
            .zones
            .iter()
            .zip(alloc.zones())
            .zip(&ours.zones)
            .map(|((t, z), o)| {
                let nr_orders = o.free.first().map_or(0, Vec::len);
                let pageblocks = MigrateType::ALL
                    .iter()
                    .map(|&mt| TypeCount {
                        migratetype: mt.linux_name(),
                        linux: t.targets.blocks[mt.idx()],
                        ours: column(&ours.migratetypes, &o.blocks, mt),
                    })
                    .filter(|c| c.linux > 0 || c.ours > 0)
                    .collect();
                let linux_free: Vec<Vec<u64>> = MigrateType::ALL
                    .iter()
                    .map(|&mt| {
                        let mut row = t.targets.free[mt.idx()].clone();
                        row.resize(nr_orders, 0);
                        row
                    })
                    .collect();
                let ours_free: Vec<Vec<u64>> = MigrateType::ALL
                    .iter()
                    .map(|&mt| {
                        ours.migratetypes
                            .iter()
                            .position(|&m| m == mt)
                            .map_or_else(|| vec![0; nr_orders], |i| o.free[i].clone())
                    })
                    .collect();
                let free_blocks_off = linux_free
                    .iter()
                    .flatten()
                    .zip(ours_free.iter().flatten())
                    .map(|(a, b)| a.abs_diff(*b))
                    .sum();
                let pages = |rows: &[Vec<u64>]| -> u64 {
                    rows.iter()
                        .flat_map(|r| r.iter().enumerate())
                        .map(|(o, &n)| n << o)
                        .sum()
                };
                ZoneStart {
                    node: t.node,
                    zone: t.zone.linux_name(),
                    pageblocks,
                    free_pages_linux: pages(&linux_free),
                    free_pages_ours: z.nr_free().0,
                    free_blocks_off,
                    free_blocks_linux: linux_free,
                    free_blocks_ours: ours_free,
                    capped: t.capped,
                }
            })
            .collect();
        StartReport {
            origin: self.origin.clone(),
            zones,
            untraced_pages: untraced.pages(),
            loose_pages,
        }
    }
}

fn column(types: &[MigrateType], values: &[u64], mt: MigrateType) -> u64 {
    types.iter().position(|&m| m == mt).map_or(0, |i| values[i])
}

/// The present ranges of the machine inside `start..end`.
fn present_ranges(alloc: &Allocator, start: u64, end: u64) -> Vec<(u64, u64)> {
    alloc
        .memory_map()
        .ranges()
        .iter()
        .map(|r| (r.start.0.max(start), r.end.0.min(end)))
        .filter(|(s, e)| s < e)
        .collect()
}

/// The flags that reach zone `zone` first, for a block of type `mt`.
fn flags_for(zone: ZoneType, mt: MigrateType) -> AllocFlags {
    let zone_bits = match zone {
        ZoneType::Dma => AllocFlags::DMA,
        ZoneType::Dma32 => AllocFlags::DMA32,
        ZoneType::Normal => AllocFlags::empty(),
        ZoneType::Movable => AllocFlags::HIGHMEM,
    };
    zone_bits | AllocFlags::for_migratetype(mt) | AllocFlags::NO_WATERMARKS
}

/// The blocks the seeding holds, by pfn, with their orders.
#[derive(Default)]
struct Held {
    blocks: BTreeMap<u64, u8>,
}

impl Held {
    /// Allocates everything `flags` can reach, largest blocks first (up to
    /// `max`).
    fn take_all(&mut self, alloc: &Allocator, flags: AllocFlags, max: u8) -> Result<()> {
        let flags = flags | AllocFlags::NO_WATERMARKS | AllocFlags::NO_WARN;
        for o in (0..=max).rev() {
            let Some(order) = Order::new(o) else {
                continue;
            };
            loop {
                match alloc.alloc(order, flags) {
                    Ok(pfn) => {
                        self.blocks.insert(pfn.0, o);
                    }
                    Err(AllocError::NoMemory { .. }) => break,
                    Err(e) => return Err(Error::Internal(format!("seeding: {e}"))),
                }
            }
        }
        Ok(())
    }

    /// Gives pageblock `start` the type `mt`: frees what is held in it,
    /// so that it is the only free memory, and takes it back as `mt`.
    fn retype(
        &mut self,
        alloc: &Allocator,
        zone: ZoneType,
        start: u64,
        pb_order: u8,
        mt: MigrateType,
    ) -> Result<()> {
        let end = start + (1u64 << pb_order);
        let inside: Vec<(u64, u8)> = self
            .blocks
            .range(start..end)
            .map(|(&p, &o)| (p, o))
            .collect();
        for (pfn, o) in inside {
            self.free_block(alloc, pfn, o)?;
        }
        alloc
            .drain_local(CpuId(0))
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.take_all(alloc, flags_for(zone, mt), pb_order)?;
        if alloc.nr_free_pages() + alloc.nr_pcp_pages() != 0 {
            return Err(Error::Internal(format!(
                "seeding: pageblock {start:#x} was not taken back whole"
            )));
        }
        Ok(())
    }

    fn free_block(&mut self, alloc: &Allocator, pfn: u64, order: u8) -> Result<()> {
        self.blocks.remove(&pfn);
        let o = Order::new(order).unwrap_or(Order::ZERO);
        alloc
            .free(Pfn(pfn), o)
            .map_err(|e| Error::Internal(format!("seeding: free {pfn:#x}: {e}")))
    }

    /// Frees exactly the pages `pfn..pfn + 2^order`, splitting the held
    /// block that covers them if it is larger.
    fn free_range(&mut self, alloc: &Allocator, pfn: u64, order: u8) -> Result<()> {
        let end = pfn + (1u64 << order);
        let covering = self
            .blocks
            .range(..=pfn)
            .next_back()
            .map(|(&s, &o)| (s, o))
            .filter(|&(s, o)| s + (1u64 << o) > pfn);
        if let Some((s, o)) = covering {
            if s < pfn || s + (1u64 << o) > end {
                let order = Order::new(o).unwrap_or(Order::ZERO);
                alloc
                    .split_page(Pfn(s), order)
                    .map_err(|e| Error::Internal(format!("seeding: split {s:#x}: {e}")))?;
                for p in s..s + (1u64 << o) {
                    self.blocks.insert(p, 0);
                }
            }
        }
        let inside: Vec<(u64, u8)> = self.blocks.range(pfn..end).map(|(&p, &o)| (p, o)).collect();
        for (p, o) in inside {
            self.free_block(alloc, p, o)?;
        }
        Ok(())
    }
}
