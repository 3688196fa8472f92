//! The simulated machine: a memory map and an allocator configuration, from
//! a captured `/proc/zoneinfo`, from a size on the command line, or from a
//! scenario's `[machine]` table.

use pagealloc::{
    Allocator, Config, MemRange, MemoryMap, NodeId, PageCount, Pfn, ZoneBounds, ZoneType,
};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::procfs::ProcZone;
use crate::size::ByteSize;

/// Linux's page size on the traced machines (the zoneinfo does not say).
const TRACE_PAGE_SIZE_BYTES: u64 = 4096;

/// A machine to simulate.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Usable memory.
    pub map: MemoryMap,
    /// Geometry, zone bounds and tunables.
    pub config: Config,
    /// Where the layout came from, for reports.
    pub origin: String,
}

/// One zone of a built machine, for reports.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ZoneLayout {
    /// NUMA node.
    pub node: u16,
    /// Zone name as Linux prints it.
    pub zone: &'static str,
    /// First spanned frame.
    pub start_pfn: u64,
    /// One past the last spanned frame.
    pub end_pfn: u64,
    /// Usable pages.
    pub present_pages: u64,
    /// Min watermark in pages.
    pub watermark_min: u64,
    /// Low watermark in pages.
    pub watermark_low: u64,
    /// High watermark in pages.
    pub watermark_high: u64,
}

/// A built machine, for reports.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct MachineInfo {
    /// Where the layout came from.
    pub origin: String,
    /// Bytes per page.
    pub page_size_bytes: u64,
    /// Orders `0..nr_orders`.
    pub nr_orders: u8,
    /// Pageblock order.
    pub pageblock_order: u8,
    /// CPUs (each with its per-CPU lists).
    pub nr_cpus: u16,
    /// Usable pages in all zones.
    pub total_pages: u64,
    /// The zones.
    pub zones: Vec<ZoneLayout>,
}

impl Machine {
    /// The machine a `/proc/zoneinfo` describes: each zone's usable memory
    /// is its *managed* pages from its `start_pfn` (Linux manages fewer
    /// pages than a zone spans: boot reservations, holes), and the zone
    /// windows are the spans the file gives.
    pub fn from_zoneinfo(zones: &[ProcZone], origin: &str) -> Result<Machine> {
        let shift = TRACE_PAGE_SIZE_BYTES.trailing_zeros();
        let too_big = || Error::Procfs {
            origin: origin.to_owned(),
            detail: "a zone's start_pfn + spanned or managed pages overflows".to_owned(),
        };
        let end_of = |start: u64, pages: u64| {
            start
                .checked_add(pages)
                .filter(|end| end.leading_zeros() > shift)
                .ok_or_else(too_big)
        };
        for z in zones {
            end_of(z.start_pfn, z.spanned.max(z.managed))?;
        }
        let span_end = |t: ZoneType| {
            zones
                .iter()
                .filter(|z| z.zone == t)
                .map(|z| (z.start_pfn + z.spanned) << shift)
                .max()
        };
        let movable_start = zones
            .iter()
            .filter(|z| z.zone == ZoneType::Movable)
            .map(|z| z.start_pfn << shift)
            .min();
        let config = Config {
            page_size_bytes: TRACE_PAGE_SIZE_BYTES,
            zone_bounds: ZoneBounds {
                dma_end_bytes: span_end(ZoneType::Dma),
                dma32_end_bytes: span_end(ZoneType::Dma32),
                movable_start_bytes: movable_start,
            },
            ..Config::default()
        };
        let ranges = zones.iter().map(|z| MemRange {
            node: z.node,
            start: Pfn(z.start_pfn),
            end: Pfn(z.start_pfn + z.managed),
        });
        let map = MemoryMap::new(ranges).map_err(Error::Machine)?;
        let machine = Machine {
            map,
            config,
            origin: origin.to_owned(),
        };
        let built = machine.allocator()?;
        let got: Vec<(NodeId, ZoneType)> = built
            .zones()
            .iter()
            .map(|z| (z.node(), z.zone_type()))
            .collect();
        let want: Vec<(NodeId, ZoneType)> = zones.iter().map(|z| (z.node, z.zone)).collect();
        if got != want {
            return Err(Error::Procfs {
                origin: origin.to_owned(),
                detail: format!("the zones do not lay out as the file says (built {got:?})"),
            });
        }
        Ok(machine)
    }

    /// A single-node x86-64 machine of `size` from frame 0: DMA below 16
    /// MiB, DMA32 below 4 GiB, Normal above (so `2G` has DMA and DMA32 only,
    /// and Normal requests fall back to DMA32 as on such a PC).
    pub fn x86_64(size: ByteSize) -> Result<Machine> {
        let config = Config::default();
        let pages = size.0 / config.page_size_bytes;
        if pages == 0 {
            return Err(Error::Usage(format!("--mem {size}: smaller than one page")));
        }
        let map = MemoryMap::contiguous(Pfn(0), PageCount(pages)).map_err(Error::Machine)?;
        Ok(Machine {
            map,
            config,
            origin: format!("single-node x86-64 machine of {size}"),
        })
    }

    /// A fresh allocator with every page free.
    pub fn allocator(&self) -> Result<Allocator> {
        self.allocator_with(|_| {})
    }

    /// An allocator for this machine with its configuration adjusted by
    /// `configure` (a policy's engine settings).
    pub fn allocator_with(&self, configure: impl FnOnce(&mut Config)) -> Result<Allocator> {
        let mut config = self.config.clone();
        configure(&mut config);
        Allocator::new(self.map.clone(), config).map_err(Error::Machine)
    }

    /// The layout as reports show it.
    pub fn info(&self, allocator: &Allocator) -> MachineInfo {
        MachineInfo {
            origin: self.origin.clone(),
            page_size_bytes: self.config.page_size_bytes,
            nr_orders: self.config.nr_orders,
            pageblock_order: self.config.pageblock_order,
            nr_cpus: self.config.nr_cpus,
            total_pages: self.map.nr_present(),
            zones: allocator
                .zones()
                .iter()
                .map(|z| {
                    let w = z.watermarks();
                    ZoneLayout {
                        node: z.node().0,
                        zone: z.zone_type().linux_name(),
                        start_pfn: z.start_pfn().0,
                        end_pfn: z.end_pfn().0,
                        present_pages: z.nr_present().0,
                        watermark_min: w.min,
                        watermark_low: w.low,
                        watermark_high: w.high,
                    }
                })
                .collect(),
        }
    }
}

impl MachineInfo {
    /// One line: origin, size, zones and CPUs.
    pub fn describe(&self) -> String {
        let mib = (self.total_pages * self.page_size_bytes) >> 20;
        let zones: Vec<String> = self
            .zones
            .iter()
            .map(|z| format!("{} {} pages", z.zone, z.present_pages))
            .collect();
        let cpus = match self.nr_cpus {
            1 => String::new(),
            n => format!("; {n} CPUs"),
        };
        format!("{} ({mib} MiB: {}{cpus})", self.origin, zones.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{parse_zoneinfo, TRACED_MACHINE_ORIGIN, TRACED_MACHINE_ZONEINFO};

    #[test]
    fn traced_machine_builds_with_its_three_zones() {
        let zones = parse_zoneinfo(TRACED_MACHINE_ZONEINFO, "fixture").unwrap();
        let m = Machine::from_zoneinfo(&zones, TRACED_MACHINE_ORIGIN).unwrap();
        let a = m.allocator().unwrap();
        let info = m.info(&a);
        let names: Vec<_> = info.zones.iter().map(|z| z.zone).collect();
        assert_eq!(names, ["DMA", "DMA32", "Normal"]);
        assert_eq!(info.total_pages, 3840 + 772497 + 262144);
        assert_eq!(a.nr_free_pages(), info.total_pages);
    }

    #[test]
    fn sized_machine_uses_x86_zones() {
        let m = Machine::x86_64(ByteSize(2 << 30)).unwrap();
        let a = m.allocator().unwrap();
        let types: Vec<_> = a.zones().iter().map(|z| z.zone_type()).collect();
        assert_eq!(types, [ZoneType::Dma, ZoneType::Dma32]);
        assert!(Machine::x86_64(ByteSize(100)).is_err());
    }
}
