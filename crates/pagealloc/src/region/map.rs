//! Where the regions of one zone lie: fixed, size-aligned ranges of frames
//! (a power of two of at least the largest block, so every buddy block lies
//! in one region), numbered from the region holding the zone's first frame.
//! A zone edge inside a region makes a partial region: it has fewer present
//! pages, and it leaves the lists when all of those are free.

use alloc::vec::Vec;

use crate::policy::RegionMixing;
use crate::units::Pfn;

/// The regions of one zone. Immutable after construction, so it lives in
/// the lockless half of the zone.
#[derive(Clone, Debug)]
pub(crate) struct RegionMap {
    /// `log2` of the pages in a region.
    pub(crate) shift: u32,
    /// The zone's first frame's offset inside its region: region of a
    /// zone-relative index `i` is `(i + offset) >> shift`.
    offset: u64,
    /// The zone's first frame.
    zone_start: Pfn,
    /// The zone's end (exclusive).
    zone_end: Pfn,
    /// Present pages per region (holes and zone edges excluded).
    pub(crate) present: Vec<u64>,
    /// The configuration's mixing policy.
    pub(crate) mixing: RegionMixing,
}

impl RegionMap {
    /// The regions over the zone `start..end` with the usable ranges
    /// `present`, of `2^shift` pages each.
    pub(crate) fn new(
        start: Pfn,
        end: Pfn,
        present: &[(Pfn, Pfn)],
        shift: u32,
        mixing: RegionMixing,
    ) -> RegionMap {
        let first = start.0 >> shift;
        let last = (end.0 - 1) >> shift;
        let mut counts = alloc::vec![0u64; (last - first + 1) as usize];
        for &(s, e) in present {
            let mut p = s.0;
            while p < e.0 {
                let r = (p >> shift) - first;
                let region_end = ((p >> shift) + 1) << shift;
                let upto = region_end.min(e.0);
                counts[r as usize] += upto - p;
                p = upto;
            }
        }
        RegionMap {
            shift,
            offset: start.0 - (first << shift),
            zone_start: start,
            zone_end: end,
            present: counts,
            mixing,
        }
    }

    /// Number of regions (partial ones included).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.present.len()
    }

    /// Pages in a whole region.
    pub(crate) fn region_pages(&self) -> u64 {
        1 << self.shift
    }

    /// The region of a zone-relative page index.
    #[inline(always)]
    pub(crate) fn of_idx(&self, idx: u32) -> usize {
        ((idx as u64 + self.offset) >> self.shift) as usize
    }

    /// The region holding `pfn` (which the zone spans).
    #[inline]
    pub(crate) fn of_pfn(&self, pfn: Pfn) -> usize {
        self.of_idx((pfn.0 - self.zone_start.0) as u32)
    }

    /// The frames of region `r` that the zone spans, `start..end`.
    pub(crate) fn span(&self, r: usize) -> (Pfn, Pfn) {
        let base = (self.zone_start.0 - self.offset) + ((r as u64) << self.shift);
        let start = base.max(self.zone_start.0);
        let end = (base + (1 << self.shift)).min(self.zone_end.0);
        (Pfn(start), Pfn(end))
    }

    /// The regions overlapping `start..end` (inside the zone).
    pub(crate) fn overlapping(&self, start: Pfn, end: Pfn) -> core::ops::Range<usize> {
        if end <= start {
            return 0..0;
        }
        self.of_pfn(start)..self.of_pfn(Pfn(end.0 - 1)) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_regions_at_unaligned_edges() {
        // Regions of 16 pages; the zone spans 10..50 with a hole at 20..30.
        let m = RegionMap::new(
            Pfn(10),
            Pfn(50),
            &[(Pfn(10), Pfn(20)), (Pfn(30), Pfn(50))],
            4,
            RegionMixing::Packed,
        );
        assert_eq!(m.len(), 4);
        assert_eq!(m.present, [6, 6, 16, 2]);
        assert_eq!(m.of_pfn(Pfn(10)), 0);
        assert_eq!(m.of_pfn(Pfn(16)), 1);
        assert_eq!(m.of_pfn(Pfn(49)), 3);
        assert_eq!(m.span(0), (Pfn(10), Pfn(16)));
        assert_eq!(m.span(3), (Pfn(48), Pfn(50)));
        assert_eq!(m.overlapping(Pfn(15), Pfn(33)), 0..3);
    }
}
