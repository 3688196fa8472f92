//! Touches 1 GiB of an arena, frees it, runs free page reporting passes,
//! and prints the process's resident set after each step and each pass.
//!
//! ```text
//! cargo run --release -p pagealloc-arena --example rss [-- [--advice dontneed|free] [--reporting on|off]]
//! ```
//!
//! Three quarters of the gigabyte go in order-9 blocks (2 MiB, a huge page
//! each when transparent huge pages are on), a quarter in order-0 blocks
//! (4 KiB). Then every block is freed and reporting passes run, with the
//! engine's default policy (Linux's: blocks of at least the pageblock order,
//! 32 a batch, about a sixteenth of each free list a pass), until a pass
//! finds nothing left to report; each reported block is `madvise`d. The
//! order-9 blocks cached on the per-CPU lists (up to an eighth of the
//! arena after a burst of frees) are not on the free lists, so the passes
//! cannot see them: once a pass finds nothing, the example drains those
//! lists (`Arena::drain_cpu_lists`) and runs passes again until one finds
//! nothing. The output says after how many passes 95% of the free memory
//! at or above the reporting order was reported (counting from the last
//! pass below 95%). With `--reporting off` the arena is
//! built without reporting: the passes are refused and the resident set
//! stays up (the baseline). Last, 256 MiB are allocated again: reported
//! blocks read as zeros (with `MADV_DONTNEED`), unreported ones hold their
//! old bytes.

use std::error::Error;
use std::time::Instant;

use pagealloc_arena::{
    lazy_free_bytes, resident_bytes, Advice, AllocFlags, Arena, Block, Config, Order, ReportError,
    ReportingPolicy,
};

/// Bytes touched.
const TOUCHED_BYTES: usize = 1 << 30;
/// The arena: twice what is touched, so its watermarks never get in the way.
/// `MAP_NORESERVE` makes the untouched half cost nothing.
const ARENA_BYTES: usize = 2 * TOUCHED_BYTES;
/// Bytes per MiB, for printing.
const MIB: f64 = (1 << 20) as f64;
/// Passes at most; the default policy needs about 16.
const MAX_PASSES: u32 = 64;
/// Rounds shown with reporting off.
const BASELINE_ROUNDS: u32 = 3;

/// Prints one step: resident set, lazily freed bytes, how long the step
/// took, and `extra`.
fn report(step: &str, started: Instant, extra: &str) -> Result<(), Box<dyn Error>> {
    let elapsed = started.elapsed();
    println!(
        "{step:<34} resident {:>7.1} MiB  lazily freed {:>7.1} MiB  ({:>6.1} ms){extra}",
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

/// The share of reportable free memory reported, as a percentage.
fn reported_percent(arena: &Arena) -> f64 {
    arena
        .reporting_info()
        .map_or(0.0, |info| info.reported_fraction() * 100.0)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut advice = Advice::DontNeed;
    let mut reporting = true;
    let usage =
        || format!("usage: rss [--advice dontneed|free] [--reporting on|off], not {args:?}");
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1).map(String::as_str)) {
            ("--advice", Some("dontneed")) => advice = Advice::DontNeed,
            ("--advice", Some("free")) => advice = Advice::Free,
            ("--reporting", Some("on")) => reporting = true,
            ("--reporting", Some("off")) => reporting = false,
            _ => return Err(usage().into()),
        }
    }
    report("start", Instant::now(), "")?;

    let t = Instant::now();
    let config = Config {
        reporting: reporting.then(ReportingPolicy::default),
        ..Config::default()
    };
    let arena = Arena::new(ARENA_BYTES, config)?;
    let mode = if reporting {
        advice.linux_name()
    } else {
        "reporting off"
    };
    report(&format!("2 GiB arena mapped ({mode})"), t, "")?;

    let t = Instant::now();
    let huge = Order::new(9).ok_or("order 9")?;
    let mut blocks = touch(&arena, huge, TOUCHED_BYTES / 4 * 3)?;
    let nr_huge = blocks.len();
    blocks.extend(touch(&arena, Order::ZERO, TOUCHED_BYTES / 4)?);
    let touched = format!(
        "touched {nr_huge} x 2 MiB + {} x 4 KiB",
        blocks.len() - nr_huge
    );
    report(&touched, t, "")?;

    let t = Instant::now();
    for block in blocks {
        arena.free(block)?;
    }
    report(
        "all freed",
        t,
        &format!("  state {:?}", arena.reporting_state()),
    )?;

    if reporting {
        let mut to_95 = None;
        let mut drained = false;
        for n in 1..=MAX_PASSES {
            let t = Instant::now();
            let pass = match arena.report_pass(advice) {
                Ok(pass) => pass,
                Err(ReportError::Advise { pass, source, .. }) => {
                    println!("  ({} batches failed: {source})", pass.failed_batches);
                    pass
                }
                Err(other) => return Err(other.into()),
            };
            let percent = reported_percent(&arena);
            if percent >= 95.0 && to_95.is_none() {
                to_95 = Some(n);
            }
            if percent < 95.0 {
                to_95 = None; // the drain added unreported memory
            }
            let extra = format!(
                "  {:>3} batches {:>7.1} MiB reported, {percent:5.1}% of free",
                pass.batches,
                (pass.pages_reported << 12) as f64 / MIB
            );
            report(&format!("pass {n}"), t, &extra)?;
            arena.check_invariants()?;
            if pass.batches == 0 {
                if drained {
                    break;
                }
                // What the passes cannot see: blocks cached on the per-CPU
                // lists, whose high mark tuned itself up during the frees.
                let t = Instant::now();
                let pages = arena.drain_cpu_lists();
                drained = true;
                let extra = format!(
                    "  {:.1} MiB back to the buddy lists",
                    (pages << 12) as f64 / MIB
                );
                report("per-CPU lists drained", t, &extra)?;
            }
        }
        match to_95 {
            Some(n) => println!(
                "95% of free memory at or above the reporting order reported after {n} passes"
            ),
            None => println!("95% not reached in {MAX_PASSES} passes"),
        }
        if let Some(info) = arena.reporting_info() {
            print!("{info}");
        }
    } else {
        for n in 1..=BASELINE_ROUNDS {
            let t = Instant::now();
            let refused = match arena.report_pass(advice) {
                Err(e @ ReportError::Off) => e.to_string(),
                other => format!("{other:?}"),
            };
            report(
                &format!("round {n}"),
                t,
                &format!("  pass refused: {refused}"),
            )?;
        }
    }

    let t = Instant::now();
    let reallocated_before = arena.stats().reported_reallocated;
    let mut blocks = Vec::new();
    let mut zeros = 0;
    while blocks.len() < TOUCHED_BYTES / 4 / (arena.page_size_bytes() << 9) {
        let block = arena.alloc(huge, AllocFlags::HIGHUSER_MOVABLE)?;
        zeros += usize::from(arena.bytes(&block).iter().all(|&b| b == 0));
        blocks.push(block);
    }
    let nr = blocks.len();
    for block in &mut blocks {
        arena.bytes_mut(block).fill(0xa5);
    }
    let extra = format!(
        "  {zeros} of {nr} blocks read as zeros, {} pages from reported blocks",
        arena.stats().reported_reallocated - reallocated_before
    );
    report("256 MiB allocated and touched again", t, &extra)?;
    for block in blocks {
        arena.free(block)?;
    }
    let s = arena.stats();
    println!(
        "stats: report_passes {} report_batches {} report_failures {} reported_pages {} reported_reallocated {}",
        s.report_passes, s.report_batches, s.report_failures, s.reported_pages, s.reported_reallocated
    );
    arena.check_invariants()?;
    Ok(())
}
