//! Untraced memory: what Linux had allocated before the trace began, held
//! by the replay, and given back when the trace frees such a page.
//!
//! A trace's free of a pfn it never allocated releases untraced memory of
//! the same zone and order, and of the type the trace suggests for that
//! pfn's pageblock (the decoder's guess, [`crate::replay`]): the lowest
//! block of that order, or the lower end of the smallest larger block (the
//! rest goes back as halves, as the buddy allocator's `expand` would leave
//! them), or, when the type has no block that large, several smaller blocks
//! (counted as *composed*). When the suggested type has too little left,
//! another type of the zone gives (Movable, Unmovable, Reclaimable, counted
//! as *another type*); when the zone has nothing left, nothing is released
//! (counted as *unmatched*). Blocks the seeding had to split (`split_page`)
//! are released page by page and merge in the buddy allocator as they go.

use std::collections::BTreeMap;

use pagealloc::{Allocator, MigrateType, Order, Pfn};

use super::plan::RUN_ORDER;

/// How an untraced block is held.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Held {
    /// One allocated block of its order.
    Whole,
    /// Order-0 pages (split by the seeding or the pool).
    Pieces,
}

/// One zone and type's untraced blocks, per order, by pfn.
#[derive(Clone, Debug, Default)]
struct Pool {
    by_order: Vec<BTreeMap<u64, Held>>,
    pages: u64,
}

impl Pool {
    fn insert(&mut self, pfn: u64, order: u8, held: Held) {
        let o = usize::from(order);
        if self.by_order.len() <= o {
            self.by_order.resize_with(o + 1, BTreeMap::new);
        }
        self.by_order[o].insert(pfn, held);
        self.pages += 1 << order;
    }

    fn pop(&mut self, order: usize) -> Option<(u64, Held)> {
        let got = self.by_order.get_mut(order)?.pop_first()?;
        self.pages -= 1 << order;
        Some(got)
    }
}

/// What one release gave back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Release {
    /// Blocks to free, `(pfn, order)`.
    pub blocks: Vec<(Pfn, Order)>,
    /// Pages in them.
    pub pages: u64,
    /// Another type than the suggested one gave them.
    pub other_type: bool,
    /// Several smaller blocks made them up.
    pub composed: bool,
    /// Fewer pages than asked for were left.
    pub short: bool,
    /// `split_page` calls that failed (a bug if not 0).
    pub split_errors: u64,
}

/// Untraced memory of every zone, and where the trace's pfns lie.
#[derive(Clone, Debug)]
pub struct Untraced {
    /// `[zone index][run index]`.
    pools: Vec<[Pool; RUN_ORDER.len()]>,
    /// Linux's zone spans `[start, end)` with our zone index.
    spans: Vec<(u64, u64, usize)>,
}

impl Untraced {
    /// An empty pool for `nr_zones` zones; Linux's zones span `spans`
    /// (`[start, end)`, our zone index).
    pub(crate) fn new(nr_zones: usize, spans: Vec<(u64, u64, usize)>) -> Untraced {
        Untraced {
            pools: (0..nr_zones).map(|_| Default::default()).collect(),
            spans,
        }
    }

    /// Adds an allocated block (`order` > 0, or a genuine single page) held
    /// whole.
    pub(crate) fn add_whole(&mut self, zone: usize, mt: MigrateType, pfn: u64, order: u8) {
        self.pools[zone][run(mt)].insert(pfn, order, Held::Whole);
    }

    /// Adds order-0 pages `start..end` (one pageblock's, consecutive) as
    /// the largest aligned blocks that make them up.
    pub(crate) fn add_pieces(&mut self, zone: usize, mt: MigrateType, mut start: u64, end: u64) {
        while start < end {
            let fit = 63 - (end - start).leading_zeros();
            let order = start.trailing_zeros().min(fit) as u8;
            self.pools[zone][run(mt)].insert(start, order, Held::Pieces);
            start += 1 << order;
        }
    }

    /// Untraced pages left, all zones.
    pub fn pages(&self) -> u64 {
        self.pools.iter().flatten().map(|p| p.pages).sum()
    }

    /// Our zone for Linux's frame `pfn`.
    pub fn zone_of(&self, pfn: u64) -> Option<usize> {
        self.spans
            .iter()
            .find(|&&(s, e, _)| s <= pfn && pfn < e)
            .map(|s| s.2)
    }

    /// Releases `2^order` pages of zone `zone`, of type `hint` if it has
    /// enough; splits blocks in `alloc` as needed and returns what to free.
    /// An empty release means the zone had nothing left.
    pub fn release(
        &mut self,
        alloc: &Allocator,
        zone: usize,
        hint: MigrateType,
        order: u8,
    ) -> Release {
        let mut out = Release::default();
        let Some(pools) = self.pools.get_mut(zone) else {
            return out;
        };
        let want = 1u64 << order;
        let hinted = run(hint);
        let mut candidates = vec![hinted];
        candidates.extend(
            [
                MigrateType::Movable,
                MigrateType::Unmovable,
                MigrateType::Reclaimable,
            ]
            .map(run)
            .into_iter()
            .filter(|&r| r != hinted),
        );
        let chosen = candidates
            .iter()
            .copied()
            .find(|&r| pools[r].pages >= want)
            .or_else(|| {
                candidates
                    .iter()
                    .copied()
                    .filter(|&r| pools[r].pages > 0)
                    .max_by_key(|&r| (pools[r].pages, std::cmp::Reverse(r)))
            });
        let Some(r) = chosen else {
            return out;
        };
        out.other_type = r != hinted;
        let pool = &mut pools[r];
        let o = usize::from(order);
        // The smallest block of this order or above.
        let larger = (o..pool.by_order.len()).find(|&k| !pool.by_order[k].is_empty());
        if let Some(k) = larger {
            let Some((pfn, held)) = pool.pop(k) else {
                return out;
            };
            if k == o {
                push(&mut out, pfn, k, held);
            } else {
                if held == Held::Whole {
                    split(alloc, pfn, k, &mut out);
                }
                // Keep the lowest 2^order pages, give back the halves above.
                for j in o..k {
                    pool.insert(pfn + (1u64 << j), j as u8, Held::Pieces);
                }
                push(&mut out, pfn, o, Held::Pieces);
            }
            return out;
        }
        // No block that large: the largest smaller ones, lowest first.
        out.composed = true;
        let mut left = want;
        for k in (0..o.min(pool.by_order.len())).rev() {
            while left >= 1 << k {
                let Some((pfn, held)) = pool.pop(k) else {
                    break;
                };
                push(&mut out, pfn, k, held);
                left -= 1 << k;
            }
        }
        out.short = left > 0;
        out
    }
}

fn run(mt: MigrateType) -> usize {
    RUN_ORDER
        .iter()
        .position(|&m| m == mt)
        .unwrap_or(RUN_ORDER.len() - 1)
}

/// Adds block `pfn`/`order` to the release: one free if held whole, a free
/// per page if held as pieces.
fn push(out: &mut Release, pfn: u64, order: usize, held: Held) {
    let pages = 1u64 << order;
    out.pages += pages;
    match (held, Order::new(order as u8)) {
        (Held::Whole, Some(o)) => out.blocks.push((Pfn(pfn), o)),
        _ => out
            .blocks
            .extend((pfn..pfn + pages).map(|p| (Pfn(p), Order::ZERO))),
    }
}

fn split(alloc: &Allocator, pfn: u64, order: usize, out: &mut Release) {
    let ok = Order::new(order as u8).is_some_and(|o| alloc.split_page(Pfn(pfn), o).is_ok());
    if !ok {
        out.split_errors += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagealloc::{AllocFlags, Config, MemoryMap, PageCount};

    fn allocator() -> Allocator {
        let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(4096)).unwrap();
        Allocator::new(map, Config::default()).unwrap()
    }

    #[test]
    fn pieces_are_the_largest_aligned_blocks() {
        let mut u = Untraced::new(1, vec![(0, 1 << 20, 0)]);
        u.add_pieces(0, MigrateType::Movable, 0x1003, 0x1010);
        let m = &u.pools[0][run(MigrateType::Movable)];
        let got: Vec<(usize, u64)> = m
            .by_order
            .iter()
            .enumerate()
            .flat_map(|(o, b)| b.keys().map(move |&p| (o, p)))
            .collect();
        assert_eq!(got, [(0, 0x1003), (2, 0x1004), (3, 0x1008)]);
        assert_eq!(u.pages(), 13);
    }

    #[test]
    fn release_prefers_the_order_then_splits_then_composes() {
        let a = allocator();
        let o9 = Order::new(9).unwrap();
        let big = a.alloc(o9, AllocFlags::HIGHUSER_MOVABLE).unwrap();
        let mut u = Untraced::new(1, vec![(0, 1 << 20, 0)]);
        u.add_whole(0, MigrateType::Movable, big.0, 9);
        u.add_pieces(0, MigrateType::Unmovable, 0x9000, 0x9001);
        // Order 2 of Movable: the order-9 block is split, its lowest four
        // pages go, and halves of orders 2..=8 stay.
        let r = u.release(&a, 0, MigrateType::Movable, 2);
        assert_eq!(r.pages, 4);
        assert_eq!(r.blocks.len(), 4);
        assert!(!r.other_type && !r.composed && !r.short);
        assert_eq!(r.split_errors, 0);
        for (p, o) in &r.blocks {
            a.free(*p, *o).unwrap();
        }
        assert_eq!(u.pages(), 512 - 4 + 1);
        // Unmovable has one page: order 1 comes from Movable instead.
        let r = u.release(&a, 0, MigrateType::Unmovable, 1);
        assert!(r.other_type);
        assert_eq!(r.pages, 2);
        // Order 9 from Movable: no block that large is left, so the halves
        // compose it, short of the pages already given.
        let r = u.release(&a, 0, MigrateType::Movable, 9);
        assert!(r.composed && r.short);
        assert_eq!(r.pages, 512 - 4 - 2);
        for (p, o) in &r.blocks {
            a.free(*p, *o).unwrap();
        }
        assert_eq!(u.zone_of(0x5000), Some(0));
        assert_eq!(u.zone_of(1 << 21), None);
    }
}
