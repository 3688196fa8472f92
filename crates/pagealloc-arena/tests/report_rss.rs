//! Reporting gives freed memory back to the OS, as the kernel counts it;
//! with reporting off it stays resident.
//!
//! One test in its own binary (its own process), so no other test touches
//! memory while the resident set is measured. The assertions compare
//! measured figures with each other, not with fixed numbers.

use pagealloc_arena::{
    resident_bytes, Advice, AllocFlags, Arena, Block, Config, Order, ReportError, ReportingPolicy,
    ReportingState,
};

/// Bytes touched: 64 MiB.
const TOUCHED_BYTES: usize = 64 << 20;
/// The arena: large enough that the engine's "low watermark plus a batch"
/// (64 MiB of order-9 blocks with the defaults) leaves room to report.
const ARENA_BYTES: usize = 4 * TOUCHED_BYTES;

const MIB: f64 = (1 << 20) as f64;

fn arena(reporting: bool) -> Arena {
    let config = Config {
        reporting: reporting.then(ReportingPolicy::default),
        ..Config::default()
    };
    Arena::new(ARENA_BYTES, config).unwrap()
}

/// Allocates `TOUCHED_BYTES` in 2 MiB blocks and writes every byte.
fn touch(arena: &Arena) -> Vec<Block> {
    let order = Order::new(9).unwrap();
    let mut blocks = Vec::new();
    while blocks.len() * (4096 << 9) < TOUCHED_BYTES {
        let mut block = arena.alloc(order, AllocFlags::HIGHUSER_MOVABLE).unwrap();
        arena.bytes_mut(&mut block).fill(0x3c);
        blocks.push(block);
    }
    blocks
}

/// Touches, frees and drains the per-CPU lists (the pageblock-order list
/// caches freed 2 MiB blocks, where no pass can see them); returns the
/// resident set before touching, after touching, and after freeing.
fn touch_and_free(arena: &Arena) -> (u64, u64, u64) {
    let before = resident_bytes().unwrap();
    let blocks = touch(arena);
    let touched = resident_bytes().unwrap();
    for block in blocks {
        arena.free(block).unwrap();
    }
    arena.drain_cpu_lists();
    (before, touched, resident_bytes().unwrap())
}

#[test]
fn reporting_passes_shrink_the_resident_set_and_reporting_off_keeps_it() {
    // Baseline: reporting off. Freed memory stays resident.
    let off = arena(false);
    let (before, touched, freed) = touch_and_free(&off);
    let grown = touched.saturating_sub(before);
    assert!(
        grown >= (TOUCHED_BYTES as u64) * 3 / 4,
        "touching {TOUCHED_BYTES} bytes grew the resident set by only {grown}"
    );
    assert_eq!(off.reporting_state(), ReportingState::Off);
    assert!(matches!(
        off.report_pass(Advice::DontNeed),
        Err(ReportError::Off)
    ));
    let kept = resident_bytes().unwrap();
    eprintln!(
        "reporting off: resident {:.1} MiB before, {:.1} touched, {:.1} freed, {:.1} after a refused pass",
        before as f64 / MIB,
        touched as f64 / MIB,
        freed as f64 / MIB,
        kept as f64 / MIB
    );
    assert!(
        kept + grown / 4 >= touched,
        "with reporting off the resident set fell from {touched} to {kept}"
    );
    drop(off); // unmapped: its memory goes back with the mapping

    // Reporting on: each pass gives some back, until nothing is left.
    let on = arena(true);
    let (before, touched, freed) = touch_and_free(&on);
    let grown = touched.saturating_sub(before);
    assert!(grown >= (TOUCHED_BYTES as u64) * 3 / 4);
    assert_eq!(on.reporting_state(), ReportingState::Requested);
    let mut resident = vec![freed];
    loop {
        let pass = on.report_pass(Advice::DontNeed).unwrap();
        on.check_invariants().unwrap();
        resident.push(resident_bytes().unwrap());
        if pass.batches == 0 {
            break;
        }
        assert!(resident.len() < 64, "passes never ended: {resident:?}");
    }
    let mib: Vec<String> = resident
        .iter()
        .map(|&r| format!("{:.1}", r as f64 / MIB))
        .collect();
    eprintln!(
        "reporting on: resident {:.1} MiB before, {:.1} touched, then per pass (MiB): {}",
        before as f64 / MIB,
        touched as f64 / MIB,
        mib.join(" ")
    );
    let last = *resident.last().unwrap();
    let dropped = touched.saturating_sub(last);
    assert!(
        dropped >= grown * 3 / 4,
        "reporting gave back {dropped} bytes of the {grown} touched: {resident:?}"
    );
    let info = on.reporting_info().unwrap();
    assert_eq!(info.reported_fraction(), 1.0, "{info}");
}
