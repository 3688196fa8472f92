//! Builds the memory map of the machine the sample traces came from (x86-64,
//! DMA + 3 GiB DMA32 + 1 GiB Normal), runs a little mixed load, and prints
//! the Linux-format reports.

use pagealloc::{
    AllocFlags, Allocator, Config, FragIndexKind, MemRange, MemoryMap, NodeId, Order, Pfn,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let range = |start, end| MemRange {
        node: NodeId(0),
        start: Pfn(start),
        end: Pfn(end),
    };
    let map = MemoryMap::new([
        range(0x1, 0x9f),
        range(0x100, 0xc0000),
        range(0x100000, 0x140000),
    ])?;
    let a: Allocator = Allocator::new(map, Config::default())?;
    let mut held = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..200_000u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let flags = match seed % 10 {
            0 => AllocFlags::KERNEL,
            1 => AllocFlags::KERNEL_RECLAIMABLE,
            _ => AllocFlags::HIGHUSER_MOVABLE,
        };
        let order = Order::new(if seed.is_multiple_of(97) { 3 } else { 0 }).unwrap_or(Order::ZERO);
        if let Ok(pfn) = a.alloc(order, flags) {
            held.push((pfn, order));
        }
        if i % 3 == 0 && !held.is_empty() {
            let victim = (seed >> 20) as usize % held.len();
            let (pfn, order) = held.swap_remove(victim);
            a.free(pfn, order)?;
        }
    }
    a.check_invariants()?;
    println!("## buddyinfo\n{}", a.buddyinfo());
    println!("## pagetypeinfo\n{}", a.pagetypeinfo());
    println!("## zoneinfo\n{}", a.zoneinfo());
    println!(
        "## unusable_index\n{}",
        a.frag_index(FragIndexKind::Unusable)
    );
    println!("## extfrag_index\n{}", a.frag_index(FragIndexKind::Extfrag));
    println!("## stats\n{:#?}", a.stats());
    Ok(())
}
