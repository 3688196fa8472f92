//! Sizing and tuning of the per-CPU lists, after mm/page_alloc.c (Linux
//! 6.7+): `zone_batchsize`, `zone_highsize`, and the auto-tuning of `high`
//! between `high_min` and `high_max` (`nr_pcp_alloc`, `nr_pcp_high`,
//! `nr_pcp_free`).

use crate::config::{Config, PcpHigh};
use crate::pcp::index::COSTLY_ORDER;
use crate::units::Order;

/// How far batches scale up under sustained one-way traffic (Linux
/// `CONFIG_PCP_BATCH_SCALE_MAX`).
const BATCH_SCALE_MAX: u32 = 5;
/// Upper bound of the batch in bytes (Linux: 1 MiB, then divided by 4).
const BATCH_MAX_BYTES: u64 = 1 << 20;
/// `high_max` is the zone divided by this (Linux
/// `MIN_PERCPU_PAGELIST_HIGH_FRACTION`).
const HIGH_MAX_FRACTION: u64 = 8;

/// Linux `zone_batchsize`: ~0.1% of the zone or 1 MiB, whichever is
/// smaller, divided by 4 and clamped to `2^n - 1`, at least 1.
pub(crate) fn zone_batchsize(managed: u64, config: &Config) -> u64 {
    let max = BATCH_MAX_BYTES / config.page_size_bytes;
    let batch = ((managed >> 10).min(max) / 4).max(1);
    let scaled = batch + batch / 2;
    let pow2 = 1u64 << (63 - scaled.leading_zeros());
    (pow2 - 1).max(1)
}

/// Linux `zone_highsize`: `total / cpus`, at least four batches. The
/// minimum is sized from the low watermark, the maximum from an eighth of
/// the zone.
pub(crate) fn zone_highsize(total: u64, nr_cpus: u64, batch: u64) -> u64 {
    (total / nr_cpus.max(1)).max(batch << 2)
}

/// The tuning state of one CPU's lists for one zone (the sizing fields of
/// Linux `struct per_cpu_pages`).
#[derive(Clone, Debug)]
pub(crate) struct Tuning {
    pub(crate) high: u64,
    pub(crate) high_min: u64,
    pub(crate) high_max: u64,
    pub(crate) batch: u64,
    /// Doubles the refill batch while the CPU keeps allocating without
    /// freeing.
    alloc_factor: u32,
    /// Pages freed in a row, halved by every allocation: grows the drain
    /// batch under sustained freeing.
    free_count: u64,
    /// The previous free was of order `1..=COSTLY_ORDER`.
    prev_free_high_order: bool,
}

impl Tuning {
    pub(crate) fn new(managed: u64, low_wmark: u64, nr_cpus: u64, config: &Config) -> Tuning {
        let batch = zone_batchsize(managed, config);
        let high_min = zone_highsize(low_wmark, nr_cpus, batch);
        let high_max = match config.pcp_high {
            PcpHigh::AutoTune => zone_highsize(managed / HIGH_MAX_FRACTION, nr_cpus, batch),
            PcpHigh::Fixed => high_min,
        };
        // A low watermark above an eighth of the zone (a large
        // `watermark_scale_factor` or `min_free_kbytes`) puts high_min above
        // high_max. Linux's clamp then settles on high_max; here the bounds
        // are ordered once, so every later clamp is well-formed.
        let high_min = high_min.min(high_max);
        Tuning {
            high: high_min,
            high_min,
            high_max,
            batch,
            alloc_factor: 0,
            free_count: 0,
            prev_free_high_order: false,
        }
    }

    /// Sizes the lists again for a zone whose managed pages or low
    /// watermark changed (Linux `zone_pcp_update` after memory hotplug);
    /// a count above the new high drains on the next free.
    pub(crate) fn resize(&mut self, managed: u64, low_wmark: u64, nr_cpus: u64, config: &Config) {
        let fresh = Tuning::new(managed, low_wmark, nr_cpus, config);
        self.batch = fresh.batch;
        self.high_min = fresh.high_min;
        self.high_max = fresh.high_max;
        self.high = self.high.clamp(self.high_min, self.high_max);
    }

    /// How many blocks to refill with (Linux `nr_pcp_alloc`) when the
    /// lists hold `count` pages, growing `high` when the CPU keeps
    /// refilling.
    pub(crate) fn refill_batch(&mut self, order: Order, below_high: bool, count: u64) -> u64 {
        let base = self.batch;
        self.high = self.high.clamp(self.high_min, self.high_max);
        if self.high < base {
            return 1;
        }
        let mut batch = if order == Order::ZERO {
            base << self.alloc_factor
        } else {
            base
        };
        if self.high_min != self.high_max && !below_high {
            self.high = (self.high + batch).min(self.high_max);
        }
        if order == Order::ZERO {
            let max_nr_alloc = self.high.saturating_sub(count + base).max(base);
            if batch <= max_nr_alloc && self.alloc_factor < BATCH_SCALE_MAX {
                self.alloc_factor += 1;
            }
            batch = batch.min(max_nr_alloc);
        }
        if batch > 1 {
            batch = (batch >> order.get()).max(2);
        }
        batch
    }

    /// `blocks` blocks were allocated from the lists: each halves the
    /// free count, whatever its order (Linux `rmqueue_pcplist`).
    #[inline(always)]
    pub(crate) fn taken(&mut self, blocks: u64) {
        self.free_count >>= blocks.min(u64::BITS as u64 - 1);
    }

    /// A block of `order` joined the lists, which now hold `count` pages
    /// (Linux `free_frozen_page_commit`): the free-burst heuristics and
    /// the high mark. Returns the high mark to drain down from and whether
    /// a burst of high-order frees is under way.
    #[inline(always)]
    pub(crate) fn freed(&mut self, order: Order, count: u64, below_high: bool) -> (u64, bool) {
        self.alloc_factor >>= 1;
        let mut free_high = false;
        if order > Order::ZERO && order.get() <= COSTLY_ORDER {
            free_high =
                self.free_count >= self.batch + self.high_min / 2 && self.prev_free_high_order;
            self.prev_free_high_order = true;
        } else {
            self.prev_free_high_order = false;
        }
        if self.free_count < self.batch << BATCH_SCALE_MAX {
            self.free_count += order.nr_pages().0;
        }
        (
            self.high_after_free(free_high, below_high, count),
            free_high,
        )
    }

    /// The high mark after a free (Linux `nr_pcp_high`), shrinking it when
    /// the zone is below its high watermark or a burst of high-order frees
    /// is under way.
    #[inline(always)]
    fn high_after_free(&mut self, free_high: bool, below_high: bool, count: u64) -> u64 {
        // Every update keeps `high` inside its bounds, which are ordered
        // at construction and never change (Linux clamps here because a
        // sysctl may move them).
        debug_assert!((self.high_min..=self.high_max).contains(&self.high));
        if self.high == 0 {
            return 0;
        }
        if free_high {
            self.high = self
                .high
                .saturating_sub(self.batch << BATCH_SCALE_MAX)
                .max(self.high_min);
            return 0;
        }
        if self.high_min == self.high_max {
            return self.high;
        }
        if below_high {
            let shrink = self.free_count.max(self.batch);
            self.high = self.high.saturating_sub(shrink).max(self.high_min);
            return count.max(self.high_min);
        }
        if count >= self.high {
            let need = self.free_count + self.batch;
            if self.high < need {
                self.high = need.clamp(self.high_min, self.high_max);
            }
        }
        self.high
    }

    /// How many pages to drain once over `high` (Linux `nr_pcp_free`)
    /// from lists holding `count` pages.
    pub(crate) fn drain_amount(&self, high: u64, free_high: bool, count: u64) -> u64 {
        if free_high {
            return count.min(self.batch << BATCH_SCALE_MAX);
        }
        if high < self.batch {
            return 1;
        }
        self.free_count
            .clamp(self.batch, (high - self.batch).max(self.batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pagesets of the sample machine's `/proc/zoneinfo` (2 CPUs):
    /// managed pages and low watermark in, batch/high_min/high_max out.
    #[test]
    fn sizing_matches_the_linux_sample() {
        let config = Config::default();
        for (managed, low, batch, high_min, high_max) in [
            (3840, 77, 1, 38, 240),
            (772_497, 15_710, 63, 7855, 48_281),
            (262_144, 5331, 63, 2665, 16_384),
        ] {
            let tune = Tuning::new(managed, low, 2, &config);
            assert_eq!(
                (tune.batch, tune.high_min, tune.high_max),
                (batch, high_min, high_max),
                "managed {managed}"
            );
        }
        let fixed = Config {
            pcp_high: PcpHigh::Fixed,
            ..Config::default()
        };
        let tune = Tuning::new(262_144, 5331, 2, &fixed);
        assert_eq!(tune.high_max, tune.high_min);
    }

    #[test]
    fn a_low_watermark_above_an_eighth_of_the_zone_orders_the_bounds() {
        // watermark_scale_factor 3000 on one CPU: low ~79k pages, an eighth
        // of the zone 32k.
        let tune = Tuning::new(262_144, 79_000, 1, &Config::default());
        assert!(tune.high_min <= tune.high_max, "{tune:?}");
        assert_eq!(tune.high, tune.high_min);
        // The whole allocator with that setting refills, frees and drains.
        let config = Config {
            watermark_scale_factor: 3000,
            zone_bounds: crate::ZoneBounds::NORMAL_ONLY,
            ..Config::default()
        };
        let map =
            crate::MemoryMap::contiguous(crate::Pfn(0x4_0000), crate::PageCount(262_144)).unwrap();
        let a: crate::Allocator = crate::Allocator::new(map, config).unwrap();
        let pages: alloc::vec::Vec<_> = (0..5000)
            .map(|_| a.alloc(Order::ZERO, crate::AllocFlags::KERNEL).unwrap())
            .collect();
        for p in pages {
            a.free(p, Order::ZERO).unwrap();
        }
        a.drain_all();
        a.check_invariants().unwrap();
    }
}
