//! What compaction costs per order-9 block it yields: a 1 GiB zone is
//! filled with movable allocations (orders 0..=3, `--orders` to change the
//! top), a share of them (`--free` percent, default 50) freed at random so
//! no free block of order 9 is left, then order-9 allocations through
//! direct compaction (`alloc_compacting`) until one fails. Prints the
//! blocks obtained and, per block, the pages the migrate and free scanners
//! looked at and the pages migrated, from the engine's counters.
//!
//! `cargo run --release -p pagealloc --example compaction_cost -- [--free P] [--seed S]`

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::time::Instant;

use common::{machine, XorShift, FRAMES};
use pagealloc::{AllocFlags, CpuId, MigrateRefusal, Order, PcpMode, Pfn};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("compaction_cost: {name} wants a number, got {v:?}");
                std::process::exit(2)
            })
        })
        .unwrap_or(default)
}

fn main() {
    let free_pct = arg("--free", 50).min(95);
    let top = arg("--orders", 3).min(8) as u8;
    let mut rng = XorShift(arg("--seed", 1) | 1);
    let a = machine(PcpMode::Enabled);
    let all = AllocFlags::HIGHUSER_MOVABLE | AllocFlags::NO_WATERMARKS;
    let mut held: HashMap<Pfn, Order> = HashMap::new();
    for o in (0..=top).rev() {
        let o = Order::new(o).expect("order");
        while let Ok(p) = a.alloc(o, all) {
            held.insert(p, o);
            if rng.next().is_multiple_of(4) && o > Order::ZERO {
                break;
            }
        }
    }
    while let Ok(p) = a.alloc(Order::ZERO, all) {
        held.insert(p, Order::ZERO);
    }
    let mut frames: Vec<Pfn> = held.keys().copied().collect();
    frames.sort();
    for p in frames {
        if rng.next() % 100 < free_pct {
            let o = held.remove(&p).expect("held");
            a.free(p, o).expect("free");
        }
    }
    a.drain_all();
    let nine = Order::new(9).expect("order 9");
    let huge_before: u64 = a.zones()[0].nr_free_blocks_of_order(nine)
        + a.zones()[0].nr_free_blocks_of_order(Order::new(10).expect("order 10"));
    let before = a.stats();
    let start = Instant::now();
    let mut blocks = 0u64;
    let mut migrator = |from: Pfn, to: Pfn, o: Order| match held.remove(&from) {
        Some(h) if h == o => {
            held.insert(to, o);
            Ok(())
        }
        Some(h) => {
            held.insert(from, h);
            Err(MigrateRefusal::Busy)
        }
        None => Err(MigrateRefusal::Busy),
    };
    let mut got = Vec::new();
    while let Ok(p) =
        a.alloc_compacting(CpuId(0), nine, AllocFlags::HIGHUSER_MOVABLE, &mut migrator)
    {
        got.push(p);
        blocks += 1;
    }
    let elapsed = start.elapsed();
    let s = a.stats();
    a.check_invariants().expect("invariants");
    let per = |v: u64| v as f64 / blocks.max(1) as f64;
    let migrated = s.pgmigrate_success - before.pgmigrate_success;
    let mscan = s.compact_migrate_scanned - before.compact_migrate_scanned;
    let fscan = s.compact_free_scanned - before.compact_free_scanned;
    println!(
        "compaction_cost: {FRAMES} frames, {free_pct}% freed at random (orders 0..={top}), {huge_before} free blocks of order >= 9 before"
    );
    println!(
        "order-9 blocks obtained {blocks}; compact_stall {} success {} fail {}; per block: migrate-scanned {:.0} free-scanned {:.0} migrated {:.0} pages; {:.1} ms in all",
        s.compact_stall - before.compact_stall,
        s.compact_success - before.compact_success,
        s.compact_fail - before.compact_fail,
        per(mscan),
        per(fscan),
        per(migrated),
        elapsed.as_secs_f64() * 1e3
    );
}
