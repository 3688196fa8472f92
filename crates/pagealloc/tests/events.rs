//! The event sink sees every allocation, free, fallback and per-CPU drain
//! exactly once: its tallies equal the allocator's own counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pagealloc::{
    AllocEvent, AllocFlags, Allocator, Config, CpuId, DrainEvent, EventSink, FallbackEvent,
    FreeEvent, MemoryMap, Order, PackClaim, PageCount, Pfn,
};

#[derive(Default)]
struct Tally {
    alloc_pages: AtomicU64,
    free_pages: AtomicU64,
    fallbacks: AtomicU64,
    drained_pages: AtomicU64,
}

impl EventSink for Tally {
    fn alloc(&self, e: &AllocEvent) {
        self.alloc_pages
            .fetch_add(e.order.nr_pages().0, Ordering::Relaxed);
    }
    fn free(&self, e: &FreeEvent) {
        self.free_pages
            .fetch_add(e.order.nr_pages().0, Ordering::Relaxed);
    }
    fn fallback(&self, _: &FallbackEvent) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }
    fn pcp_drain(&self, e: &DrainEvent) {
        self.drained_pages
            .fetch_add(e.order.nr_pages().0, Ordering::Relaxed);
    }
}

#[test]
fn the_sink_sees_what_the_counters_count() {
    let mut a: Allocator = Allocator::new(
        MemoryMap::contiguous(Pfn(0x1000), PageCount(8192)).unwrap(),
        Config::default(),
    )
    .unwrap();
    let tally = Arc::new(Tally::default());
    a.set_event_sink(Some(tally.clone()));
    let mut held = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let flags = [
            AllocFlags::KERNEL,
            AllocFlags::KERNEL_RECLAIMABLE,
            AllocFlags::HIGHUSER_MOVABLE,
        ][rng as usize % 3];
        match (rng >> 8) % 6 {
            0 | 1 => {
                let order = Order::new([0, 0, 1, 3, 9][(rng >> 16) as usize % 5]).unwrap();
                if let Ok(p) = a.alloc(order, flags) {
                    held.push((p, order));
                }
            }
            2 => {
                let mut out = [Pfn(0); 16];
                let got = a.alloc_bulk(CpuId(0), flags, &mut out).unwrap_or(0);
                held.extend(out[..got].iter().map(|&p| (p, Order::ZERO)));
            }
            3 => {
                let mut out = [Pfn(0); 8];
                let got = a
                    .alloc_packed(CpuId(0), flags, PackClaim::ClaimFreePageblocks, &mut out)
                    .unwrap();
                held.extend(out[..got].iter().map(|&p| (p, Order::ZERO)));
            }
            _ if !held.is_empty() => {
                let (p, o) = held.swap_remove((rng >> 20) as usize % held.len());
                a.free(p, o).unwrap();
            }
            _ => {}
        }
    }
    let singles: Vec<Pfn> = held
        .iter()
        .filter(|h| h.1 == Order::ZERO)
        .map(|h| h.0)
        .collect();
    a.free_bulk(CpuId(0), &singles).unwrap();
    a.drain_all();
    a.check_invariants().unwrap();
    let stats = a.stats();
    assert_eq!(tally.alloc_pages.load(Ordering::Relaxed), stats.pgalloc);
    assert_eq!(tally.free_pages.load(Ordering::Relaxed), stats.pgfree);
    assert_eq!(
        tally.fallbacks.load(Ordering::Relaxed),
        stats.extfrag_events
    );
    assert_eq!(
        tally.drained_pages.load(Ordering::Relaxed),
        stats.pcp_drained
    );
    assert!(
        stats.extfrag_events > 0 && stats.pcp_drained > 0,
        "{stats:?}"
    );
}
