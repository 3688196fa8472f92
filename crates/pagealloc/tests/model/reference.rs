//! The reference model: which blocks are held, and what the allocator must
//! answer to a call, computed from the memory map and flags alone.

use std::collections::BTreeMap;

use pagealloc::{
    AllocFlags, BlockError, CmaSupport, Config, MigrateType, Order, PageTypeInfo, Pfn,
};

use crate::common::ExpectedZone;

/// A block the model knows to be allocated.
#[derive(Clone, Copy, Debug)]
pub struct Held {
    pub order: u8,
    pub mt: MigrateType,
    pub zone: usize,
    /// The `split_page` call it came from, for split pieces.
    pub group: Option<u64>,
}

/// The reference model.
pub struct Model {
    pub config: Config,
    pub zones: Vec<ExpectedZone>,
    /// Hole intervals inside zone spans.
    pub holes: Vec<(u64, u64)>,
    pub total: u64,
    pub held: BTreeMap<u64, Held>,
    pub alloc_in_zone: Vec<u64>,
    pub pages: u64,
    /// Recently freed blocks, for double frees.
    pub freed: Vec<(u64, u8)>,
    pub next_group: u64,
}

impl Model {
    pub fn new(config: &Config, zones: Vec<ExpectedZone>) -> Model {
        let mut holes = Vec::new();
        for z in &zones {
            let mut at = z.start;
            for &(s, e) in &z.present {
                if at < s {
                    holes.push((at, s));
                }
                at = e;
            }
            if at < z.end {
                holes.push((at, z.end));
            }
        }
        Model {
            config: config.clone(),
            total: zones.iter().map(ExpectedZone::nr_present).sum(),
            alloc_in_zone: vec![0; zones.len()],
            zones,
            holes,
            held: BTreeMap::new(),
            pages: 0,
            freed: Vec::new(),
            next_group: 0,
        }
    }

    pub fn max(&self) -> u8 {
        self.config.max_order().get()
    }

    pub fn zone_index(&self, pfn: u64) -> Option<usize> {
        self.zones.iter().position(|z| z.spans(pfn))
    }

    /// The held block holding `pfn`, as its head and record.
    pub fn containing(&self, pfn: u64) -> Option<(u64, Held)> {
        let (&head, &h) = self.held.range(..=pfn).next_back()?;
        (pfn < head + (1 << h.order)).then_some((head, h))
    }

    /// What `free(pfn, order)` or `split_page(pfn, order)` must return.
    pub fn expect_block(&self, pfn: u64, order: u8) -> Result<(), BlockError> {
        let o = Order::new(order).unwrap();
        let max = self.config.max_order();
        if o > max {
            return Err(BlockError::InvalidOrder { order: o, max });
        }
        let p = Pfn(pfn);
        let Some(zi) = self.zone_index(pfn) else {
            return Err(BlockError::OutOfRange { pfn: p });
        };
        if !self.zones[zi].is_present(pfn) {
            return Err(BlockError::InHole { pfn: p });
        }
        if pfn & ((1u64 << order) - 1) != 0 {
            return Err(BlockError::Misaligned { pfn: p, order: o });
        }
        match self.containing(pfn) {
            Some((head, h)) if head == pfn && h.order == order => Ok(()),
            Some((head, h)) if head == pfn => Err(BlockError::WrongOrder {
                pfn: p,
                order: o,
                allocated: Order::new(h.order).unwrap(),
            }),
            Some(_) => Err(BlockError::NotAllocated { pfn: p }),
            None => Err(BlockError::AlreadyFree { pfn: p }),
        }
    }

    /// The zones an allocation may use; empty when none exists.
    pub fn allowed_zones(&self, node: Option<u16>, flags: AllocFlags) -> Vec<usize> {
        let node = node.unwrap_or(self.zones[0].node);
        if !self.zones.iter().any(|z| z.node == node) {
            return Vec::new();
        }
        let highest = flags.highest_zone();
        let this_node = flags.contains(AllocFlags::THIS_NODE);
        (0..self.zones.len())
            .filter(|&i| self.zones[i].zone_type <= highest)
            .filter(|&i| !this_node || self.zones[i].node == node)
            .collect()
    }

    /// Whether some allowed zone has a free block of `order` or more on a
    /// list the request may take from.
    pub fn could_serve(
        &self,
        pti: &PageTypeInfo,
        zones: &[usize],
        order: u8,
        flags: AllocFlags,
        unreserved: bool,
    ) -> bool {
        let mt = flags.migratetype();
        let mut types = vec![mt];
        if mt == MigrateType::Movable && self.config.cma == CmaSupport::Enabled {
            types.push(MigrateType::Cma);
        }
        if !flags.contains(AllocFlags::NO_FALLBACK) {
            types.extend(
                [
                    MigrateType::Unmovable,
                    MigrateType::Movable,
                    MigrateType::Reclaimable,
                ]
                .into_iter()
                .filter(|&t| t != mt),
            );
        }
        let atomic = flags.contains(AllocFlags::ATOMIC) && !flags.contains(AllocFlags::NO_MEMALLOC);
        if atomic || unreserved {
            types.push(MigrateType::HighAtomic);
        }
        zones.iter().any(|&zi| {
            types.iter().any(|t| {
                pti.migratetypes
                    .iter()
                    .position(|m| m == t)
                    .is_some_and(|i| {
                        pti.zones[zi].free[i][order as usize..]
                            .iter()
                            .any(|&n| n > 0)
                    })
            })
        })
    }

    pub fn insert(&mut self, pfn: u64, h: Held) {
        self.pages += 1 << h.order;
        self.alloc_in_zone[h.zone] += 1 << h.order;
        assert!(self.held.insert(pfn, h).is_none());
    }

    pub fn remove(&mut self, pfn: u64) -> Held {
        let h = self.held.remove(&pfn).unwrap();
        self.pages -= 1 << h.order;
        self.alloc_in_zone[h.zone] -= 1 << h.order;
        h
    }

    pub fn nth_held(&self, pick: usize) -> Option<(u64, Held)> {
        if self.held.is_empty() {
            return None;
        }
        self.held
            .iter()
            .nth(pick % self.held.len())
            .map(|(&p, &h)| (p, h))
    }

    /// A present page chosen by `raw`.
    pub fn present_pfn(&self, raw: u64) -> u64 {
        let mut k = raw % self.total;
        for z in &self.zones {
            for &(s, e) in &z.present {
                if k < e - s {
                    return s + k;
                }
                k -= e - s;
            }
        }
        unreachable!()
    }
}
