//! The price of the event sink on the hottest path: an order-0 allocation
//! and its free through the per-CPU lists (default [`Config`]), with no sink
//! installed and with a trivial one (a counter), measured in the same run.
//!
//! `cargo bench -p pagealloc --bench sink`; medians are in
//! `target/criterion/order0_alloc_free/*/new/estimates.json`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use pagealloc::{
    AllocEvent, AllocFlags, Allocator, Config, EventSink, FreeEvent, MemoryMap, Order, PageCount,
    Pfn,
};

/// Counts events, nothing more.
#[derive(Default)]
struct Counter(AtomicU64);

impl EventSink for Counter {
    fn alloc(&self, _: &AllocEvent) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn free(&self, _: &FreeEvent) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// 64 MiB of 4 KiB pages from 16 MiB: one DMA32 zone, as in the crate's
/// example.
fn allocator() -> Allocator {
    let map = MemoryMap::contiguous(Pfn(0x1000), PageCount(16384)).unwrap();
    Allocator::new(map, Config::default()).unwrap()
}

fn alloc_free(a: &Allocator) {
    let p = a.alloc(Order::ZERO, black_box(AllocFlags::KERNEL)).unwrap();
    a.free(black_box(p), Order::ZERO).unwrap();
}

fn sink(c: &mut Criterion) {
    let mut g = c.benchmark_group("order0_alloc_free");
    let plain = allocator();
    g.bench_function("no_sink", |b| b.iter(|| alloc_free(&plain)));
    let mut counted = allocator();
    let counter = Arc::new(Counter::default());
    counted.set_event_sink(Some(counter.clone()));
    g.bench_function("counter_sink", |b| b.iter(|| alloc_free(&counted)));
    g.finish();
    assert!(
        counter.0.load(Ordering::Relaxed) > 0,
        "the sink saw the events"
    );
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    sink(&mut c);
    c.final_summary();
}
