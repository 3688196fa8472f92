//! Touches 1 GiB of an arena, frees it, discards it, and prints the
//! process's resident set after each step.
//!
//! ```text
//! cargo run --release -p pagealloc-arena --example rss [-- --advice free]
//! ```
//!
//! Three quarters of the gigabyte go in order-9 blocks (2 MiB, a huge page
//! each when transparent huge pages are on), a quarter in order-0 blocks
//! (4 KiB). The discard is one `madvise` over the whole arena; once free
//! page reporting lands, a reporting pass over the free lists replaces it.

use std::error::Error;
use std::time::Instant;

use pagealloc_arena::{
    lazy_free_bytes, resident_bytes, Advice, AllocFlags, Arena, Block, Config, Order,
};

/// Bytes touched.
const TOUCHED_BYTES: usize = 1 << 30;
/// The arena: twice what is touched, so its watermarks never get in the way.
/// `MAP_NORESERVE` makes the untouched half cost nothing.
const ARENA_BYTES: usize = 2 * TOUCHED_BYTES;
/// Bytes per MiB, for printing.
const MIB: f64 = (1 << 20) as f64;

/// Prints one step: resident set, lazily freed bytes, and how long the step
/// took.
fn report(step: &str, started: Instant) -> Result<(), Box<dyn Error>> {
    let elapsed = started.elapsed();
    println!(
        "{step:<36} resident {:>7.1} MiB   lazily freed {:>7.1} MiB   ({:>6.1} ms)",
        resident_bytes()? as f64 / MIB,
        lazy_free_bytes()? as f64 / MIB,
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Allocates `bytes` in blocks of `order` and writes every byte.
fn touch(arena: &Arena, order: Order, bytes: usize) -> Result<Vec<Block>, Box<dyn Error>> {
    let mut blocks = Vec::with_capacity(bytes / (arena.page_size_bytes() << order.get()));
    let mut done = 0;
    while done < bytes {
        let mut block = arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE)?;
        arena.bytes_mut(&mut block).fill(0x5a);
        done += block.size_bytes();
        blocks.push(block);
    }
    Ok(blocks)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let advice = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["--advice", "dontneed"] => Advice::DontNeed,
        ["--advice", "free"] => Advice::Free,
        _ => return Err(format!("usage: rss [--advice dontneed|free], not {args:?}").into()),
    };
    report("start", Instant::now())?;

    let t = Instant::now();
    let mut arena = Arena::new(ARENA_BYTES, Config::default())?;
    report("2 GiB arena mapped", t)?;

    let t = Instant::now();
    let huge = Order::new(9).ok_or("order 9")?;
    let mut blocks = touch(&arena, huge, TOUCHED_BYTES / 4 * 3)?;
    let nr_huge = blocks.len();
    blocks.extend(touch(&arena, Order::ZERO, TOUCHED_BYTES / 4)?);
    report(
        &format!(
            "touched {nr_huge} x 2 MiB + {} x 4 KiB",
            blocks.len() - nr_huge
        ),
        t,
    )?;

    let t = Instant::now();
    for block in blocks {
        arena.free(block)?;
    }
    report("all freed", t)?;

    let t = Instant::now();
    let (start, nr_pages) = (arena.start_pfn(), arena.nr_pages());
    arena.discard_range(start, nr_pages, advice)?;
    report(&format!("discarded ({})", advice.linux_name()), t)?;

    let t = Instant::now();
    let blocks = touch(&arena, huge, TOUCHED_BYTES / 4)?;
    report("256 MiB touched again", t)?;
    for block in blocks {
        arena.free(block)?;
    }
    arena.check_invariants()?;
    Ok(())
}
