//! Prints the allocator's metadata bytes per page, measured from the real
//! structures (`Allocator::metadata_bytes`, `Zone::metadata_bytes`), for a
//! 1 GiB machine (fresh, and after its per-CPU magazines have grown) and
//! the 64 GiB x86-64 layout of the benchmarks.
//!
//! ```sh
//! cargo run --release -p pagealloc --example meta_bytes
//! ```

use pagealloc::{
    AllocFlags, Allocator, Config, MemRange, MemoryMap, NodeId, Order, PageCount, Pfn,
    PAGE_RECORD_BYTES,
};

fn report(name: &str, a: &Allocator) {
    let present: u64 = a.zones().iter().map(|z| z.nr_present().0).sum();
    let spanned: u64 = a.zones().iter().map(|z| z.nr_spanned().0).sum();
    let bytes = a.metadata_bytes();
    println!("{name}: {present} present pages, {spanned} spanned, {bytes} bytes of metadata");
    for z in a.zones() {
        println!(
            "  {:>6}: {:>9} spanned pages, {:>10} bytes ({:.4} per spanned page)",
            z.zone_type().to_string(),
            z.nr_spanned().0,
            z.metadata_bytes(),
            z.metadata_bytes() as f64 / z.nr_spanned().0 as f64
        );
    }
    println!(
        "  {:.4} bytes per present page, {:.4} per spanned page",
        bytes as f64 / present as f64,
        bytes as f64 / spanned as f64
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("page record = {} bytes", PAGE_RECORD_BYTES);
    let one_gib = MemoryMap::contiguous(Pfn(0x100000), PageCount(1 << 18))?;
    let a = Allocator::new(one_gib, Config::default())?;
    report("1 GiB (one Normal zone)", &a);
    // The order-0 per-CPU magazines keep their rings as large as they have
    // grown: after half the memory went through CPU 0 as order-0 pages
    // of each ordinary type, they hold what they can at their high mark.
    for flags in [
        AllocFlags::KERNEL,
        AllocFlags::HIGHUSER_MOVABLE,
        AllocFlags::RECLAIMABLE,
    ] {
        let pages: Vec<Pfn> = (0..(1 << 17))
            .map_while(|_| a.alloc(Order::ZERO, flags).ok())
            .collect();
        for p in pages {
            a.free(p, Order::ZERO)?;
        }
    }
    report(
        "the same after 2^17 order-0 pages of each type were allocated and freed on CPU 0",
        &a,
    );
    let range = |start, end| MemRange {
        node: NodeId(0),
        start: Pfn(start),
        end: Pfn(end),
    };
    let x86 = MemoryMap::new([
        range(0x1, 0x9f),
        range(0x100, 0xc0000),
        range(0x100000, 0x1040000),
    ])?;
    report(
        "64 GiB x86-64 (1 GiB hole below 4 GiB)",
        &Allocator::new(x86, Config::default())?,
    );
    Ok(())
}
