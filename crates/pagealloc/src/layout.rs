//! Layout: from a firmware memory map (usable ranges with holes, per node) to
//! zone spans.
//!
//! A zone spans the part of its node that falls inside the zone's physical
//! window, holes included (Linux's `spanned_pages`); its present pages are
//! those of the usable ranges inside it. Zones with no present page are not
//! created, as Linux leaves them unpopulated.

use alloc::vec::Vec;

use crate::config::Config;
use crate::engine::page::MAX_ZONE_PAGES;
use crate::error::ConfigError;
use crate::units::{NodeId, PageCount, Pfn, ZoneType};

/// One usable range of frames on a node, `start..end`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MemRange {
    /// The node the range belongs to.
    pub node: NodeId,
    /// First usable frame.
    pub start: Pfn,
    /// One past the last usable frame.
    pub end: Pfn,
}

/// The usable memory of a machine: what an e820 map or a device tree gives.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MemoryMap {
    ranges: Vec<MemRange>,
}

impl MemoryMap {
    /// A map from ranges in any order. Ranges must be non-empty and must not
    /// overlap, and nodes must not interleave (each node's ranges lie between
    /// the previous node's and the next one's).
    pub fn new(ranges: impl IntoIterator<Item = MemRange>) -> Result<MemoryMap, ConfigError> {
        let mut ranges: Vec<MemRange> = ranges.into_iter().collect();
        if ranges.is_empty() {
            return Err(ConfigError::EmptyMap);
        }
        for r in &ranges {
            if r.start >= r.end {
                return Err(ConfigError::EmptyRange {
                    start: r.start,
                    end: r.end,
                });
            }
        }
        ranges.sort_by_key(|r| r.start);
        for pair in ranges.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.start < a.end || b.node < a.node {
                return Err(ConfigError::OverlappingRanges {
                    first_start: a.start,
                    second_start: b.start,
                });
            }
        }
        Ok(MemoryMap { ranges })
    }

    /// One node of `nr_pages` usable pages starting at `start`.
    pub fn contiguous(start: Pfn, nr_pages: PageCount) -> Result<MemoryMap, ConfigError> {
        let end = start
            .checked_add(nr_pages)
            .ok_or(ConfigError::PfnOverflow { start })?;
        MemoryMap::new([MemRange {
            node: NodeId(0),
            start,
            end,
        }])
    }

    /// The ranges, sorted by start.
    pub fn ranges(&self) -> &[MemRange] {
        &self.ranges
    }

    /// Whether `pfn` lies in a usable range.
    pub fn is_present(&self, pfn: Pfn) -> bool {
        let i = self.ranges.partition_point(|r| r.end <= pfn);
        self.ranges.get(i).is_some_and(|r| r.start <= pfn)
    }

    /// Total usable pages.
    pub fn nr_present(&self) -> u64 {
        self.ranges.iter().map(|r| r.end.0 - r.start.0).sum()
    }
}

/// Where one zone lies.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ZoneSpan {
    /// The node.
    pub node: NodeId,
    /// The zone type.
    pub zone_type: ZoneType,
    /// First spanned frame (Linux `zone_start_pfn`).
    pub start: Pfn,
    /// One past the last spanned frame.
    pub end: Pfn,
    /// The usable ranges inside the span, clipped to it.
    pub present: Vec<(Pfn, Pfn)>,
}

impl ZoneSpan {
    /// Pages spanned, holes included.
    pub fn nr_spanned(&self) -> u64 {
        self.end.0 - self.start.0
    }

    /// Usable pages.
    pub fn nr_present(&self) -> u64 {
        self.present.iter().map(|(s, e)| e.0 - s.0).sum()
    }
}

/// The physical window of each zone type in frames, `[lo, hi)`.
fn zone_windows(config: &Config) -> [(u64, u64); 4] {
    let shift = config.page_shift();
    let b = config.zone_bounds;
    let dma_end = b.dma_end_bytes.map_or(0, |v| v >> shift);
    let dma32_end = b.dma32_end_bytes.map_or(dma_end, |v| v >> shift);
    let movable_start = b.movable_start_bytes.map_or(u64::MAX, |v| v >> shift);
    [
        (0, dma_end),
        (dma_end, dma32_end),
        (dma32_end, movable_start),
        (movable_start, u64::MAX),
    ]
}

/// The populated zones of `map`, sorted by start frame (so by node, then by
/// zone type).
pub(crate) fn zone_spans(map: &MemoryMap, config: &Config) -> Result<Vec<ZoneSpan>, ConfigError> {
    let windows = zone_windows(config);
    let mut spans = Vec::new();
    let ranges = map.ranges();
    // A frame's physical address must fit in 64 bits. Refusing frames
    // beyond that also keeps `pfn + 2^order` and pageblock rounding from
    // overflowing.
    let end_limit = 1u64 << (u64::BITS - config.page_shift());
    if let Some(r) = ranges.iter().find(|r| r.end.0 > end_limit) {
        return Err(ConfigError::PfnOverflow { start: r.start });
    }
    let mut i = 0;
    while i < ranges.len() {
        let node = ranges[i].node;
        let j = i + ranges[i..].iter().take_while(|r| r.node == node).count();
        let node_ranges = &ranges[i..j];
        let node_start = node_ranges[0].start.0;
        let node_end = node_ranges[node_ranges.len() - 1].end.0;
        for zone_type in ZoneType::ALL {
            let (lo, hi) = windows[zone_type.idx()];
            let (start, end) = (node_start.max(lo), node_end.min(hi));
            if start >= end {
                continue;
            }
            let mut present: Vec<(Pfn, Pfn)> = Vec::new();
            for r in node_ranges {
                let (s, e) = (Pfn(r.start.0.max(start)), Pfn(r.end.0.min(end)));
                if s >= e {
                    continue;
                }
                match present.last_mut() {
                    // Ranges that touch are one run of memory: kept apart,
                    // they would stop buddies merging across the seam.
                    Some(last) if last.1 == s => last.1 = e,
                    _ => present.push((s, e)),
                }
            }
            if present.is_empty() {
                continue;
            }
            let nr_pages = end - start;
            if nr_pages > MAX_ZONE_PAGES {
                return Err(ConfigError::ZoneTooLarge {
                    node,
                    zone: zone_type,
                    nr_pages,
                    max: MAX_ZONE_PAGES,
                });
            }
            spans.push(ZoneSpan {
                node,
                zone_type,
                start: Pfn(start),
                end: Pfn(end),
                present,
            });
        }
        i = j;
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(node: u16, start: u64, end: u64) -> MemRange {
        MemRange {
            node: NodeId(node),
            start: Pfn(start),
            end: Pfn(end),
        }
    }

    #[test]
    fn x86_zones_with_holes() {
        // Like a 6 GiB PC: pfn 1..0x9f, 0x100..0xc0000 (3 GiB), 4 GiB..6 GiB.
        let map = MemoryMap::new([
            r(0, 0x100, 0xc0000),
            r(0, 1, 0x9f),
            r(0, 0x100000, 0x180000),
        ])
        .unwrap();
        let spans = zone_spans(&map, &Config::default()).unwrap();
        let kinds: Vec<_> = spans.iter().map(|s| s.zone_type).collect();
        assert_eq!(kinds, [ZoneType::Dma, ZoneType::Dma32, ZoneType::Normal]);
        assert_eq!((spans[0].start, spans[0].end), (Pfn(1), Pfn(0x1000)));
        assert_eq!(spans[0].nr_present(), 0x9e + 0x1000 - 0x100);
        // DMA32 spans up to 4 GiB although memory stops at 3 GiB (Linux's
        // spanned vs present).
        assert_eq!((spans[1].start, spans[1].end), (Pfn(0x1000), Pfn(0x100000)));
        assert_eq!(spans[2].nr_spanned(), 0x80000);
        assert!(map.is_present(Pfn(0x9e)));
        assert!(!map.is_present(Pfn(0x9f)));
        assert!(!map.is_present(Pfn(0)));
        assert!(!map.is_present(Pfn(0x180000)));
    }

    #[test]
    fn touching_ranges_are_one_run() {
        let map = MemoryMap::new([r(0, 5, 8), r(0, 0, 5), r(1, 8, 12)]).unwrap();
        let c = Config {
            zone_bounds: crate::config::ZoneBounds::NORMAL_ONLY,
            ..Config::default()
        };
        let spans = zone_spans(&map, &c).unwrap();
        assert_eq!(spans[0].present, [(Pfn(0), Pfn(8))]);
        assert_eq!(spans[1].present, [(Pfn(8), Pfn(12))]);
    }

    #[test]
    fn bad_maps_are_refused() {
        assert_eq!(MemoryMap::new([]), Err(ConfigError::EmptyMap));
        assert_eq!(
            MemoryMap::new([r(0, 5, 5)]),
            Err(ConfigError::EmptyRange {
                start: Pfn(5),
                end: Pfn(5)
            })
        );
        assert_eq!(
            MemoryMap::new([r(0, 0, 10), r(0, 9, 20)]),
            Err(ConfigError::OverlappingRanges {
                first_start: Pfn(0),
                second_start: Pfn(9)
            })
        );
        assert!(matches!(
            MemoryMap::new([r(1, 0, 10), r(0, 10, 20)]),
            Err(ConfigError::OverlappingRanges { .. })
        ));
        assert_eq!(
            MemoryMap::contiguous(Pfn(u64::MAX), PageCount(2)),
            Err(ConfigError::PfnOverflow {
                start: Pfn(u64::MAX)
            })
        );
    }

    #[test]
    fn frames_beyond_the_address_space_are_refused() {
        let c = Config::default();
        let top = 1u64 << 52; // 2^64 bytes in 4 KiB pages
        let fits = MemoryMap::new([r(0, top - 8, top)]).unwrap();
        assert!(zone_spans(&fits, &c).is_ok());
        let beyond = MemoryMap::new([r(0, top - 8, top + 1)]).unwrap();
        assert_eq!(
            zone_spans(&beyond, &c),
            Err(ConfigError::PfnOverflow {
                start: Pfn(top - 8)
            })
        );
    }

    #[test]
    fn huge_zone_is_refused() {
        let map = MemoryMap::contiguous(Pfn(0), PageCount(MAX_ZONE_PAGES + 1)).unwrap();
        let c = Config {
            zone_bounds: crate::config::ZoneBounds::NORMAL_ONLY,
            ..Config::default()
        };
        assert!(matches!(
            zone_spans(&map, &c),
            Err(ConfigError::ZoneTooLarge { .. })
        ));
    }
}
