//! The seed 000 series' experiment, scaled to this machine: 2 GiB of
//! 64 MiB regions (32 regions), churn that touches all memory early and
//! then holds a fraction of it; then the regions whose every page is free,
//! with regions on and off, against the ideal (the regions live memory
//! does not need). The series reported 202 of 210 regions free with its
//! patches and 8 of 214 without (128 GiB, 20 × ebizzy).
//!
//! ```sh
//! cargo run --release -p pagealloc --example regions
//! cargo run --release -p pagealloc --example regions -- --fraction 0.5 --seed 7 --mixing segregated
//! ```
//!
//! Options: `--memory-mib` (2048), `--region-mib` (64), `--fraction`
//! (0.25), `--generations` (12), `--seed` (1), `--pcp on|off` (on),
//! `--mixing packed|segregated` (packed, the default policy).
//!
//! Phases: *fill* allocates blocks until 90% of memory is in use (order 0
//! mostly, some orders 1-3 and 9; 85% movable, 10% unmovable, 5%
//! reclaimable, two CPUs); *shrink* frees random blocks until the live
//! fraction is left; *churn* frees a random live block and allocates a new
//! one, `generations` times the live block count (ebizzy's
//! allocate-use-free at a steady size); finally every per-CPU list is
//! drained. A region is fully free when every present page of it is free
//! (on the buddy lists or held by the region allocator).

use std::error::Error;

use pagealloc::{
    AllocFlags, Allocator, Config, CpuId, MemoryMap, Order, PageCount, PageState, PcpMode, Pfn,
    RegionMixing, RegionPolicy, ZoneBounds,
};

/// Marsaglia's xorshift64.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Args {
    memory_mib: u64,
    region_mib: u64,
    fraction: f64,
    generations: u64,
    seed: u64,
    pcp: bool,
    mixing: RegionMixing,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let mut a = Args {
        memory_mib: 2048,
        region_mib: 64,
        fraction: 0.25,
        generations: 12,
        seed: 1,
        pcp: true,
        mixing: RegionMixing::Packed,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--memory-mib" => a.memory_mib = v.parse()?,
            "--region-mib" => a.region_mib = v.parse()?,
            "--fraction" => a.fraction = v.parse()?,
            "--generations" => a.generations = v.parse()?,
            "--seed" => a.seed = v.parse()?,
            "--pcp" => a.pcp = v == "on",
            "--mixing" => {
                a.mixing = match v.as_str() {
                    "segregated" => RegionMixing::Segregated,
                    "packed" => RegionMixing::Packed,
                    _ => return Err(format!("--mixing {v}: segregated or packed").into()),
                }
            }
            _ => return Err(format!("unknown option {k}").into()),
        }
    }
    if !(0.0..=0.9).contains(&a.fraction) {
        return Err("--fraction must be within 0..=0.9".into());
    }
    Ok(a)
}

/// Pages per MiB at 4 KiB.
const MIB: u64 = 256;

/// One block's kind: its order and flags.
fn kind(rng: &mut XorShift) -> (Order, AllocFlags) {
    let order = match rng.below(100) {
        0..=79 => 0,
        80..=89 => 1,
        90..=94 => 2,
        95..=97 => 3,
        _ => 9,
    };
    let flags = match rng.below(100) {
        0..=84 => AllocFlags::HIGHUSER_MOVABLE,
        85..=94 => AllocFlags::KERNEL,
        _ => AllocFlags::KERNEL_RECLAIMABLE,
    };
    (Order::new(order).expect("order"), flags)
}

/// Regions of `region_pages` whose every present page is free, counted
/// from the page records (the same count with regions on or off).
fn fully_free(a: &Allocator, region_pages: u64) -> (u64, u64) {
    let mut free = std::collections::BTreeMap::<u64, (u64, u64)>::new();
    for z in a.zones() {
        for b in z.blocks() {
            let e = free.entry(b.pfn.0 / region_pages).or_default();
            e.1 += b.order.nr_pages().0;
            if matches!(b.state, PageState::FreeHead | PageState::HeldHead) {
                e.0 += b.order.nr_pages().0;
            }
        }
    }
    let total = free.len() as u64;
    (free.values().filter(|(f, p)| f == p).count() as u64, total)
}

struct Outcome {
    fully_free: u64,
    regions: u64,
    ideal: u64,
    live_pages: u64,
    samples: Vec<(u64, u64)>,
    extfrag: u64,
    claims: u64,
    failures: u64,
    returns: u64,
    draws: u64,
    region_claims: u64,
}

fn run(args: &Args, regions: bool) -> Result<Outcome, Box<dyn Error>> {
    let pages = args.memory_mib * MIB;
    let region_pages = args.region_mib * MIB;
    // At 4 GiB, so the whole of it is one Normal zone aligned to regions.
    let map = MemoryMap::contiguous(Pfn(0x10_0000), PageCount(pages))?;
    let config = Config {
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        nr_cpus: 2,
        pcp: if args.pcp {
            PcpMode::Enabled
        } else {
            PcpMode::Disabled
        },
        regions: regions.then_some(RegionPolicy {
            size_bytes: args.region_mib << 20,
            mixing: args.mixing,
        }),
        ..Config::default()
    };
    let a = Allocator::new(map, config)?;
    let mut rng = XorShift(args.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut live: Vec<(Pfn, Order)> = Vec::new();
    let mut used = 0u64;
    let mut failures = 0u64;
    let mut step = 0u64;
    let mut alloc =
        |a: &Allocator, live: &mut Vec<(Pfn, Order)>, used: &mut u64, rng: &mut XorShift| {
            let (order, flags) = kind(rng);
            let cpu = CpuId((rng.next() & 1) as u16);
            match a.alloc_on_cpu(cpu, order, flags) {
                Ok(p) => {
                    live.push((p, order));
                    *used += order.nr_pages().0;
                }
                Err(_) => failures += 1,
            }
        };
    let free_one =
        |a: &Allocator, live: &mut Vec<(Pfn, Order)>, used: &mut u64, rng: &mut XorShift| {
            let i = rng.below(live.len() as u64) as usize;
            let (p, o) = live.swap_remove(i);
            a.free_on_cpu(CpuId((rng.next() & 1) as u16), p, o)
                .expect("free");
            *used -= o.nr_pages().0;
        };
    let mut samples = Vec::new();
    // Fill: touch 90% of memory.
    while used < pages * 9 / 10 {
        alloc(&a, &mut live, &mut used, &mut rng);
        step += 1;
    }
    a.set_region_time(step);
    samples.push((step, fully_free(&a, region_pages).0));
    // Shrink to the live fraction.
    let target = (pages as f64 * args.fraction) as u64;
    while used > target {
        free_one(&a, &mut live, &mut used, &mut rng);
        step += 1;
    }
    a.set_region_time(step);
    samples.push((step, fully_free(&a, region_pages).0));
    // Churn at that size.
    let churn = args.generations * live.len() as u64;
    let every = (churn / 8).max(1);
    for i in 0..churn {
        if !live.is_empty() {
            free_one(&a, &mut live, &mut used, &mut rng);
        }
        while used < target {
            alloc(&a, &mut live, &mut used, &mut rng);
        }
        step += 1;
        if (i + 1) % every == 0 {
            a.set_region_time(step);
            samples.push((step, fully_free(&a, region_pages).0));
        }
    }
    a.drain_all();
    a.set_region_time(step);
    a.check_invariants()?;
    let (fully_free, regions_total) = fully_free(&a, region_pages);
    if std::env::var_os("REGIONS_VERBOSE").is_some() {
        if let Some(r) = a.region_report() {
            print!("{r}");
        }
    }
    samples.push((step, fully_free));
    let stats = a.stats();
    let (returns, draws, region_claims) = a.region_report().map_or((0, 0, 0), |r| {
        (
            r.regions().map(|x| x.returns).sum(),
            r.regions().map(|x| x.draws).sum(),
            r.free_pageblock_claims(),
        )
    });
    let needed = used.div_ceil(region_pages);
    Ok(Outcome {
        fully_free,
        regions: regions_total,
        ideal: regions_total - needed,
        live_pages: used,
        samples,
        extfrag: stats.extfrag_events,
        claims: stats.pageblock_claims,
        failures,
        returns,
        draws,
        region_claims,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = args()?;
    println!(
        "{} MiB in {} MiB regions, live fraction {}, {} generations of churn, seed {}, per-CPU lists {}, mixing {:?}",
        args.memory_mib,
        args.region_mib,
        args.fraction,
        args.generations,
        args.seed,
        if args.pcp { "on" } else { "off" },
        args.mixing
    );
    let off = run(&args, false)?;
    let on = run(&args, true)?;
    println!(
        "{:<8} {:>10} {:>6} {:>8} {:>9} {:>10} {:>7} {:>9} {:>8} {:>8} {:>13}",
        "regions",
        "fully free",
        "ideal",
        "of ideal",
        "live MiB",
        "fallbacks",
        "claims",
        "failures",
        "returns",
        "draws",
        "region claims"
    );
    for (name, o) in [("off", &off), ("on", &on)] {
        println!(
            "{:<8} {:>4} of {:>3} {:>6} {:>7.1}% {:>9} {:>10} {:>7} {:>9} {:>8} {:>8} {:>13}",
            name,
            o.fully_free,
            o.regions,
            o.ideal,
            100.0 * o.fully_free as f64 / o.ideal.max(1) as f64,
            o.live_pages / MIB,
            o.extfrag,
            o.claims,
            o.failures,
            o.returns,
            o.draws,
            o.region_claims
        );
    }
    println!("fully free regions over time (step: off / on):");
    for ((s, f_off), (_, f_on)) in off.samples.iter().zip(&on.samples) {
        println!("  {s:>10}: {f_off:>3} / {f_on:>3}");
    }
    Ok(())
}
