//! Where Linux's pageblock types and free blocks go in one of our zones.
//!
//! `/proc/pagetypeinfo` says how many pageblocks of each type a zone has and
//! how many free blocks of each order and type, not where they are. The
//! arrangement chosen here is deterministic and rests on two assumptions:
//!
//! * **Types lie in runs, lowest addresses first: Unmovable, then
//!   Reclaimable, then Movable.** Linux fills its free lists in ascending
//!   address order at boot and serves them from the head, so the kernel's
//!   early unmovable and reclaimable allocations claim the lowest pageblocks.
//!   A pageblock the zone does not span whole, or with fewer than half its
//!   pages present, stays Movable (the engine's initial type): no
//!   allocation smaller than a pageblock may claim it (Linux
//!   `prep_move_freepages_block`, `try_to_claim_block`).
//! * **Free blocks sit where they cannot merge, lowest addresses of their
//!   type first, largest first.** Each block is placed as the lower half of
//!   its parent (its buddy above it), or as the upper half when the lower
//!   half holds a page that is not present. Then no free block's buddy can
//!   ever be wholly free: the last page of a buddy above is never free
//!   (every free block ends in the lower half of its parent), and a buddy
//!   below holds a hole. So the buddy allocator keeps exactly the blocks
//!   placed, neither merged nor split. Blocks of the largest order, which
//!   never merge, go to any aligned place.
//!
//! The buddy allocator's decisions depend on addresses only through
//! merging, so these two choices are what the replay assumes about the
//! layout. A block that finds no place is split in two halves of the order
//! below, down to single pages; pages that still find no place (a zone
//! whose free pages fill its own layout, say) are freed one by one from the
//! type's pageblocks, then from any, where they may merge: the free pages of
//! the zone stay Linux's, the blocks then differ, and the report shows by
//! how much.

use pagealloc::MigrateType;

/// The types whose pageblocks are recreated, in the order their runs take
/// addresses. Movable is the engine's initial type; the other types
/// (high-atomic, CMA, isolated) cannot be created through allocations, and
/// their pageblocks and free blocks count as Movable.
pub(crate) const RUN_ORDER: [MigrateType; 3] = [
    MigrateType::Unmovable,
    MigrateType::Reclaimable,
    MigrateType::Movable,
];

/// The usable pages of one zone.
#[derive(Clone, Debug)]
pub(crate) struct Geometry {
    /// First spanned frame.
    pub start: u64,
    /// One past the last spanned frame.
    pub end: u64,
    /// Present ranges `[start, end)`, sorted, inside the span.
    pub present: Vec<(u64, u64)>,
    /// The pageblock order.
    pub pageblock_order: u8,
    /// The largest order.
    pub max_order: u8,
}

impl Geometry {
    /// Whether every page of `lo..hi` is present.
    fn all_present(&self, lo: u64, hi: u64) -> bool {
        let i = self.present.partition_point(|r| r.1 <= lo);
        self.present
            .get(i)
            .is_some_and(|&(s, e)| s <= lo && hi <= e)
    }

    /// Present pages in `lo..hi`.
    fn count_present(&self, lo: u64, hi: u64) -> u64 {
        self.present
            .iter()
            .map(|&(s, e)| e.min(hi).saturating_sub(s.max(lo)))
            .sum()
    }

    fn pageblock_pages(&self) -> u64 {
        1 << self.pageblock_order
    }
}

/// What Linux's snapshot says about one zone.
#[derive(Clone, Debug)]
pub(crate) struct Targets {
    /// Pageblocks per migratetype index.
    pub blocks: [u64; MigrateType::ALL.len()],
    /// Free blocks, `[migratetype index][order]`.
    pub free: Vec<Vec<u64>>,
}

/// The arrangement of one zone.
#[derive(Clone, Debug, Default)]
pub(crate) struct ZonePlan {
    /// Our pageblocks (those with a present page), by start, with their type.
    pub pageblocks: Vec<(u64, MigrateType)>,
    /// Free blocks to make, `(pfn, order)`, none overlapping.
    pub free_blocks: Vec<(u64, u8)>,
    /// Single pages to free as well, where the blocks found no place.
    pub loose_pages: Vec<u64>,
}

/// Arranges `targets` in the zone `geo`.
pub(crate) fn plan(geo: &Geometry, targets: &Targets) -> ZonePlan {
    let pageblocks = assign_types(geo, &targets.blocks);
    let mut placer = Placer::new(geo, &pageblocks);
    let nr_orders = usize::from(geo.max_order) + 1;
    let mut demand = [
        vec![0u64; nr_orders],
        vec![0; nr_orders],
        vec![0; nr_orders],
    ];
    for (mt, per_order) in MigrateType::ALL.iter().zip(&targets.free) {
        let run = run_index(*mt);
        for (o, &n) in per_order.iter().enumerate().take(nr_orders) {
            demand[run][o] = demand[run][o].saturating_add(n);
        }
    }
    let mut leftover = [0u64; RUN_ORDER.len()];
    for o in (0..nr_orders).rev() {
        for run in 0..RUN_ORDER.len() {
            let need = demand[run][o];
            if need == 0 {
                continue;
            }
            let placed = placer.place(run, o as u8, need);
            let unplaced = need - placed;
            if o > 0 {
                demand[run][o - 1] = demand[run][o - 1].saturating_add(unplaced.saturating_mul(2));
            } else {
                leftover[run] = unplaced;
            }
        }
    }
    for (run, &n) in leftover.iter().enumerate() {
        placer.loose(run, n);
    }
    ZonePlan {
        pageblocks,
        free_blocks: placer.free_blocks,
        loose_pages: placer.loose_pages,
    }
}

/// Which run a migratetype's pageblocks and free blocks join.
fn run_index(mt: MigrateType) -> usize {
    RUN_ORDER
        .iter()
        .position(|&m| m == mt)
        .unwrap_or(RUN_ORDER.len() - 1)
}

/// Our pageblocks with their types: Linux's counts per type (scaled to our
/// number of pageblocks when the zone is not the same size), in runs.
fn assign_types(geo: &Geometry, linux: &[u64; MigrateType::ALL.len()]) -> Vec<(u64, MigrateType)> {
    let pb = geo.pageblock_pages();
    let first = geo.start & !(pb - 1);
    // Each pageblock with a present page, and whether it may be claimed.
    let mut blocks: Vec<(u64, bool)> = Vec::new();
    let mut s = first;
    while s < geo.end {
        let n = geo.count_present(s.max(geo.start), (s + pb).min(geo.end));
        if n > 0 {
            let whole = s >= geo.start && s + pb <= geo.end;
            blocks.push((s, whole && n >= pb / 2));
        }
        s += pb;
    }
    let mut per_run = [0u64; RUN_ORDER.len()];
    for (mt, &n) in MigrateType::ALL.iter().zip(linux) {
        let r = &mut per_run[run_index(*mt)];
        *r = r.saturating_add(n);
    }
    let wanted = scale(&per_run, blocks.len() as u64);
    let mut out: Vec<(u64, MigrateType)> = blocks
        .iter()
        .map(|&(s, _)| (s, MigrateType::Movable))
        .collect();
    // Runs in address order; a pageblock no small allocation may claim
    // stays Movable.
    let mut eligible = blocks
        .iter()
        .enumerate()
        .filter(|(_, &(_, claimable))| claimable)
        .map(|(i, _)| i);
    for (run, &mt) in RUN_ORDER.iter().enumerate() {
        if mt == MigrateType::Movable {
            continue;
        }
        for i in eligible.by_ref().take(wanted[run] as usize) {
            out[i].1 = mt;
        }
    }
    out
}

/// `counts` scaled to sum to `total`, by largest remainder (ties to the
/// earlier entry); `counts` as they are if they already do.
pub(crate) fn scale<const N: usize>(counts: &[u64; N], total: u64) -> [u64; N] {
    let sum: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if sum == u128::from(total) || sum == 0 {
        return *counts;
    }
    let mut out = [0u64; N];
    let mut rest: Vec<(u128, usize)> = Vec::with_capacity(N);
    let mut given = 0;
    for (i, &c) in counts.iter().enumerate() {
        let exact = u128::from(c) * u128::from(total);
        out[i] = (exact / sum) as u64;
        given += out[i];
        rest.push((exact % sum, i));
    }
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in rest.iter().take((total - given) as usize) {
        out[i] += 1;
    }
    out
}

/// Places free blocks, marking the pages it has used.
struct Placer<'a> {
    geo: &'a Geometry,
    /// Pageblock starts per run, ascending.
    runs: [Vec<u64>; RUN_ORDER.len()],
    /// The type of each pageblock, by index from `first`.
    types: Vec<Option<MigrateType>>,
    first: u64,
    /// Pages placed free, one bit each from `first`.
    used: Vec<u64>,
    free_blocks: Vec<(u64, u8)>,
    loose_pages: Vec<u64>,
}

impl<'a> Placer<'a> {
    fn new(geo: &'a Geometry, pageblocks: &[(u64, MigrateType)]) -> Placer<'a> {
        let pb = geo.pageblock_pages();
        let first = geo.start & !(pb - 1);
        let nr_pb = (geo.end - first).div_ceil(pb) as usize;
        let mut types = vec![None; nr_pb];
        let mut runs: [Vec<u64>; RUN_ORDER.len()] = Default::default();
        for &(s, mt) in pageblocks {
            types[((s - first) / pb) as usize] = Some(mt);
            runs[run_index(mt)].push(s);
        }
        Placer {
            geo,
            runs,
            types,
            first,
            used: vec![0; (nr_pb * pb as usize).div_ceil(64)],
            free_blocks: Vec::new(),
            loose_pages: Vec::new(),
        }
    }

    fn is_used(&self, pfn: u64) -> bool {
        let i = (pfn - self.first) as usize;
        self.used[i / 64] & (1 << (i % 64)) != 0
    }

    fn mark(&mut self, pfn: u64, pages: u64) {
        for p in pfn..pfn + pages {
            let i = (p - self.first) as usize;
            self.used[i / 64] |= 1 << (i % 64);
        }
    }

    fn type_at(&self, pfn: u64) -> Option<MigrateType> {
        let i = ((pfn - self.first) >> self.geo.pageblock_order) as usize;
        self.types.get(i).copied().flatten()
    }

    /// Whether a free block of `order` at `pfn` can never merge: the
    /// largest order, or the lower half of its parent, or the upper half
    /// next to a lower half that holds a page that is not present.
    fn cannot_merge(&self, pfn: u64, order: u8) -> bool {
        let size = 1u64 << order;
        order >= self.geo.max_order
            || pfn & size == 0
            || pfn < self.geo.start + size
            || !self.geo.all_present(pfn - size, pfn)
    }

    /// Whether a free block of `order` may go at `pfn` in `run`.
    fn fits(&self, run: usize, pfn: u64, order: u8) -> bool {
        let size = 1u64 << order;
        let Some(end) = pfn.checked_add(size) else {
            return false;
        };
        if pfn < self.geo.start || end > self.geo.end || !self.geo.all_present(pfn, end) {
            return false;
        }
        if self.is_used(pfn) {
            return false;
        }
        let pb = self.geo.pageblock_pages();
        if size > pb {
            // Every pageblock it covers is the run's.
            let mut s = pfn;
            while s < end {
                if self.type_at(s) != Some(RUN_ORDER[run]) {
                    return false;
                }
                s += pb;
            }
        }
        self.cannot_merge(pfn, order)
    }

    /// Places up to `need` blocks of `order` for `run`; returns how many.
    fn place(&mut self, run: usize, order: u8, need: u64) -> u64 {
        let size = 1u64 << order;
        let pb = self.geo.pageblock_pages();
        let mut placed = 0;
        let starts = std::mem::take(&mut self.runs[run]);
        'blocks: for &s in &starts {
            // A block larger than a pageblock starts at an aligned pageblock;
            // a smaller one at any aligned offset inside this one.
            let (from, step, to) = if size >= pb {
                if s % size != 0 {
                    continue;
                }
                (s, size, s + 1)
            } else {
                (s, size, s + pb)
            };
            let mut p = from;
            while p < to {
                if placed == need {
                    break 'blocks;
                }
                if self.fits(run, p, order) {
                    self.mark(p, size);
                    self.free_blocks.push((p, order));
                    placed += 1;
                }
                p += step;
            }
        }
        self.runs[run] = starts;
        placed
    }

    /// Frees `n` more pages one by one: unused present pages of the run's
    /// pageblocks first, then of any pageblock, lowest first.
    fn loose(&mut self, run: usize, mut n: u64) {
        let pb = self.geo.pageblock_pages();
        let mut order: Vec<u64> = self.runs[run].clone();
        order.extend(
            (0..RUN_ORDER.len())
                .filter(|&r| r != run)
                .flat_map(|r| self.runs[r].iter().copied()),
        );
        for s in order {
            let (lo, hi) = (s.max(self.geo.start), (s + pb).min(self.geo.end));
            for p in lo..hi {
                if n == 0 {
                    return;
                }
                if !self.is_used(p) && self.geo.all_present(p, p + 1) {
                    self.mark(p, 1);
                    self.loose_pages.push(p);
                    n -= 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_table(entries: &[(MigrateType, u8, u64)]) -> Vec<Vec<u64>> {
        let mut t = vec![vec![0; 11]; MigrateType::ALL.len()];
        for &(mt, o, n) in entries {
            t[mt.idx()][o as usize] = n;
        }
        t
    }

    fn geo(start: u64, pages: u64) -> Geometry {
        Geometry {
            start,
            end: start + pages,
            present: vec![(start, start + pages)],
            pageblock_order: 9,
            max_order: 10,
        }
    }

    /// The blocks the buddy allocator would hold if exactly the planned
    /// pages were free: maximal aligned free runs whose buddy is not free.
    fn merged(geo: &Geometry, plan: &ZonePlan) -> Vec<(u64, u8)> {
        let mut free = std::collections::BTreeSet::new();
        for &(p, o) in &plan.free_blocks {
            free.extend(p..p + (1 << o));
        }
        free.extend(plan.loose_pages.iter().copied());
        let mut blocks: Vec<(u64, u8)> = free.iter().map(|&p| (p, 0)).collect();
        loop {
            let set: std::collections::BTreeSet<(u64, u8)> = blocks.iter().copied().collect();
            let mut next = Vec::new();
            let mut changed = false;
            let mut skip = std::collections::BTreeSet::new();
            for &(p, o) in &blocks {
                if skip.contains(&p) {
                    continue;
                }
                let buddy = p ^ (1 << o);
                let parent = p & !(1 << o);
                if o < geo.max_order
                    && set.contains(&(buddy, o))
                    && geo.all_present(parent, parent + (2 << o))
                {
                    skip.insert(buddy);
                    next.push((parent, o + 1));
                    changed = true;
                } else {
                    next.push((p, o));
                }
            }
            next.sort_unstable();
            blocks = next;
            if !changed {
                return blocks;
            }
        }
    }

    #[test]
    fn runs_and_scaling() {
        assert_eq!(scale(&[1, 7, 0], 8), [1, 7, 0]);
        assert_eq!(scale(&[0, 1528, 0], 1509), [0, 1509, 0]);
        assert_eq!(scale(&[125, 375, 12], 256), [63, 187, 6]);
        assert_eq!(scale(&[u64::MAX, u64::MAX, 0], 3), [2, 1, 0]);
        let g = geo(0x1000, 8 * 512);
        let mut blocks = [0u64; 6];
        blocks[0] = 2;
        blocks[1] = 5;
        blocks[2] = 1;
        let types: Vec<MigrateType> = assign_types(&g, &blocks).iter().map(|b| b.1).collect();
        use MigrateType::*;
        assert_eq!(
            types,
            [
                Unmovable,
                Unmovable,
                Reclaimable,
                Movable,
                Movable,
                Movable,
                Movable,
                Movable
            ]
        );
    }

    #[test]
    fn placed_blocks_never_merge() {
        // 16 pageblocks, one partial at each end.
        let g = Geometry {
            start: 0x1001,
            end: 0x1000 + 16 * 512 - 100,
            present: vec![(0x1001, 0x1000 + 16 * 512 - 100)],
            pageblock_order: 9,
            max_order: 10,
        };
        let mut blocks = [0u64; 6];
        blocks[0] = 3;
        blocks[1] = 12;
        blocks[2] = 1;
        use MigrateType::*;
        let free = free_table(&[
            (Unmovable, 0, 40),
            (Unmovable, 3, 7),
            (Unmovable, 9, 1),
            (Movable, 10, 3),
            (Movable, 9, 2),
            (Movable, 8, 3),
            (Movable, 0, 100),
            (Reclaimable, 5, 2),
        ]);
        let p = plan(&g, &Targets { blocks, free });
        assert!(p.loose_pages.is_empty());
        let mut want: Vec<(u64, u8)> = p.free_blocks.clone();
        want.sort_unstable();
        assert_eq!(merged(&g, &p), want);
        let count = |o: u8| p.free_blocks.iter().filter(|b| b.1 == o).count();
        assert_eq!((count(10), count(9), count(8), count(0)), (3, 3, 3, 140));
        // Each block lies in pageblocks of its own type.
        let type_of = |pfn: u64| p.pageblocks.iter().find(|b| b.0 == pfn & !511).unwrap().1;
        for &(pfn, o) in &p.free_blocks {
            let want = match o {
                10 | 8 => Movable,
                5 => Reclaimable,
                3 => Unmovable,
                _ => type_of(pfn),
            };
            assert_eq!(type_of(pfn), want, "block {pfn:#x} order {o}");
        }
    }

    #[test]
    fn a_zone_that_is_all_free_keeps_its_free_pages() {
        // Linux's DMA zone of the traced machine, in our smaller layout:
        // every page free, the blocks cannot all be Linux's.
        let g = geo(1, 3840);
        let mut blocks = [0u64; 6];
        blocks[0] = 1;
        blocks[1] = 7;
        use MigrateType::*;
        let free = free_table(&[(Unmovable, 8, 1), (Movable, 9, 1), (Movable, 10, 3)]);
        let p = plan(&g, &Targets { blocks, free });
        let pages: u64 =
            p.free_blocks.iter().map(|b| 1u64 << b.1).sum::<u64>() + p.loose_pages.len() as u64;
        assert_eq!(pages, 3840);
        // The first pageblock starts below the zone: it cannot be claimed.
        assert_eq!(p.pageblocks[0], (0, Movable));
        assert_eq!(p.pageblocks[1], (512, Unmovable));
    }
}
