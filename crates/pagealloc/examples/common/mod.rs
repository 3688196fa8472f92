//! What the `hot_loops` examples share: the benchmarks' machine and its
//! prefill (benches/pcp.rs), built from calls every version of the crate
//! since the per-CPU front end has.

use pagealloc::{
    AllocFlags, Allocator, Config, MemoryMap, Order, PageCount, PcpHigh, PcpMode, Pfn, ZoneBounds,
};

/// Frames managed: 1 GiB of 4 KiB pages.
pub const FRAMES: u64 = 262_144;
/// Pages per bulk call.
pub const BULK: usize = 64;

/// Marsaglia's xorshift64, as the benchmarks use.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The benchmarks' machine, with per-CPU lists on or off.
pub fn machine(pcp: PcpMode) -> Allocator {
    let map = MemoryMap::contiguous(Pfn(0x4_0000), PageCount(FRAMES)).expect("map");
    let config = Config {
        nr_cpus: 1,
        pcp,
        pcp_high: PcpHigh::AutoTune,
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        ..Config::default()
    };
    Allocator::new(map, config).expect("allocator")
}

/// Holds half the frames in blocks of random orders 0..=3.
pub fn prefill(a: &Allocator) -> Vec<(Pfn, Order)> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut held, mut used) = (Vec::new(), 0);
    while used < FRAMES / 2 {
        let order = Order::new((rng.next() % 4) as u8).expect("order");
        held.push((a.alloc(order, AllocFlags::KERNEL).expect("prefill"), order));
        used += order.nr_pages().0;
    }
    held
}

/// `churn`'s state instead: `held` freed, half the frames held as order-0
/// pages.
pub fn order0_pages(a: &Allocator, held: Vec<(Pfn, Order)>) -> Vec<Pfn> {
    for (pfn, order) in held {
        a.free(pfn, order).expect("free");
    }
    (0..FRAMES / 2)
        .map(|_| a.alloc(Order::ZERO, AllocFlags::KERNEL).expect("prefill"))
        .collect()
}
