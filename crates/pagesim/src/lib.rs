//! # pagesim: the simulator of `pagealloc`
//!
//! pagesim answers "what would this allocator, or this policy, have done to
//! fragmentation?" in two ways, and reports both the way Linux would.
//!
//! ## Scenarios (`pagesim run`)
//!
//! A scenario ([`scenario`]) is a machine, named phases, *actors* that
//! allocate with a migratetype, an order distribution and a lifetime
//! distribution (or take and hold a target amount), a reclaim model that
//! frees the oldest movable and reclaimable blocks from the low watermark
//! to the high one, and *variants*: named overrides run side by side from
//! the same seed. The simulator ([`sim`]) is deterministic: each actor draws
//! from its own seeded stream ([`rng`]). `pagesim` alone runs the embedded
//! default scenario, seed 001's experiment: a driver holding 400 MB of
//! order-0 unmovable pages in a 1 GiB machine under heavy mixed load.
//!
//! ## Replay (`pagesim replay`)
//!
//! Real `kmem:mm_page_*` ftrace text ([`trace`], read by [`input`] from
//! plain, gzip or zstd files) is replayed into one allocator per policy
//! ([`policy`], [`replay`]). Our allocator chooses its own frames; a map
//! from trace pfn to our block carries frees across. The rules that make a
//! replay of a real trace faithful — batched frees reported twice, frees of
//! pages allocated before tracing began, frees of split pieces — are in
//! [`replay`]'s documentation.
//!
//! ## Reports
//!
//! Both commands produce data first ([`report`]): snapshots of the engine's
//! `/proc/buddyinfo` and `/proc/pagetypeinfo`, a pageblock [`census`]
//! (mixed pageblocks, free blocks per order, the unusable free space index)
//! sampled over time, and counters. The data is rendered as text
//! ([`text`], with the `/proc` files verbatim), as one JSON document
//! ([`json`], `--json`) or as SVG plots ([`plot`], `--out DIR`).
//!
//! ## Errors
//!
//! Everything a user feeds pagesim fails with a typed [`Error`] naming the
//! file and line; nothing panics. Input errors exit with 2, runtime failures
//! with 1 ([`error::ExitKind`]).

pub mod census;
pub mod cli;
pub mod emit;
pub mod error;
pub mod gfp;
pub mod input;
pub mod json;
pub mod machine;
pub mod pagetypeinfo;
pub mod plot;
pub mod policy;
pub mod procfs;
pub mod progress;
pub mod replay;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod seed;
pub mod sim;
pub mod size;
pub mod text;
pub mod trace;

use std::path::Path;

pub use error::{Error, Result};

use cli::{Cli, Command, OutputArgs, ReplayArgs, RunArgs};
use machine::Machine;
use plot::{Series, XAxis};
use progress::Progress;
use report::{ReplayReport, ScenarioReport};

/// Census samples a replay takes when not told otherwise.
pub const DEFAULT_REPLAY_SAMPLES: u32 = 100;

/// Runs a parsed command line; returns what to print on stdout.
pub fn run(cli: Cli) -> Result<String> {
    let progress = Progress::for_terminal();
    match cli.command {
        None => run_command(&RunArgs::default(), &cli.output, &progress),
        Some(Command::Run(args)) => run_command(&args, &cli.output, &progress),
        Some(Command::Replay(args)) => replay_command(&args, &cli.output, &progress),
    }
}

/// `pagesim run [FILE]`.
pub fn run_command(args: &RunArgs, out: &OutputArgs, progress: &Progress) -> Result<String> {
    let report = run_scenario(args, progress)?;
    if let Some(dir) = &out.out {
        let series: Vec<Series> = report
            .variants
            .iter()
            .map(|v| Series {
                name: &v.name,
                samples: &v.samples,
            })
            .collect();
        let orders: Vec<u8> = report
            .variants
            .first()
            .and_then(|v| v.snapshots.first())
            .map_or(vec![3, 9], |s| {
                s.summary.probes.iter().map(|p| p.order).collect()
            });
        plot::write_all(
            dir,
            &format!("pagesim run: {}", report.name),
            XAxis::Steps,
            &series,
            report.machine.nr_orders as usize,
            &orders,
        )?;
        let reporting: Vec<Series<'_, report::ReportingPoint>> = report
            .variants
            .iter()
            .filter_map(|v| {
                v.reporting.as_ref().map(|r| Series {
                    name: &v.name,
                    samples: &r.samples,
                })
            })
            .collect();
        plot::write_reporting(
            dir,
            &format!("pagesim run: {} — free page reporting", report.name),
            &reporting,
            report.machine.page_size_bytes,
        )?;
    }
    Ok(if out.json {
        json::to_string(&report)
    } else {
        report.to_string()
    })
}

/// Parses and runs a scenario (the default one without a file).
pub fn run_scenario(args: &RunArgs, progress: &Progress) -> Result<ScenarioReport> {
    let (text, origin) = match &args.file {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| Error::Open {
                path: path.clone(),
                source,
            })?,
            path.display().to_string(),
        ),
        None => (
            scenario::DEFAULT_SCENARIO.to_owned(),
            "<default scenario>".to_owned(),
        ),
    };
    let mut s = scenario::parse(&text, &origin, args.scale)?;
    if let Some(seed) = args.seed {
        s.seed = seed;
    }
    s.emit_trace.clone_from(&args.emit_trace);
    sim::run(&s, progress)
}

/// `pagesim replay TRACE...`.
pub fn replay_command(args: &ReplayArgs, out: &OutputArgs, progress: &Progress) -> Result<String> {
    let report = replay_traces(args, progress)?;
    if let Some(dir) = &out.out {
        let series: Vec<Series> = report
            .policies
            .iter()
            .map(|p| Series {
                name: &p.name,
                samples: &p.samples,
            })
            .collect();
        let pb = report.machine.pageblock_order;
        plot::write_all(
            dir,
            "pagesim replay",
            XAxis::TraceSeconds,
            &series,
            report.machine.nr_orders as usize,
            &[3, pb],
        )?;
        let regions: Vec<Series<'_, report::RegionSample>> = report
            .policies
            .iter()
            .filter_map(|p| {
                let r = p.regions.as_ref()?;
                Some(Series {
                    name: &p.name,
                    samples: &r.samples,
                })
            })
            .collect();
        plot::write_regions(dir, "pagesim replay", XAxis::TraceSeconds, &regions)?;
    }
    Ok(if out.json {
        json::to_string(&report)
    } else {
        report.to_string()
    })
}

/// Builds the machine and policies of a replay and runs it.
pub fn replay_traces(args: &ReplayArgs, progress: &Progress) -> Result<ReplayReport> {
    let mut machine = replay_machine(args.mem.as_deref(), args.procfs.as_deref())?;
    if let Some(n) = args.cpus {
        machine.config.nr_cpus = n;
    }
    let policies = args
        .policies
        .iter()
        .map(|name| {
            policy::lookup(name).ok_or_else(|| {
                Error::Usage(format!(
                    "unknown policy `{name}` (known: {})",
                    policy::known_names()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let start = match (&args.procfs, args.empty_start) {
        (Some(path), false) => start_state(path, &machine)?,
        _ => None,
    };
    let after_path = args
        .procfs_after
        .clone()
        .or_else(|| args.procfs.as_deref().and_then(after_sibling));
    let after = after_path.map(|p| after_state(&p)).transpose()?;
    let mut region_census = None;
    for (flag, text, enable) in [
        ("--regions", &args.regions, true),
        ("--count-regions", &args.count_regions, false),
    ] {
        let Some(text) = text else { continue };
        let size: size::ByteSize = text
            .parse()
            .map_err(|e: size::SizeError| Error::Usage(format!("{flag}: {e}")))?;
        let policy = pagealloc::RegionPolicy {
            size_bytes: size.0,
            ..Default::default()
        };
        // The engine's own check, so a bad size is a usage error here too.
        let mut check = machine.config.clone();
        check.regions = Some(policy);
        check
            .validate()
            .map_err(|e| Error::Usage(format!("{flag}: {e}")))?;
        if enable {
            machine.config.regions = Some(policy);
        }
        region_census = Some(size.0 / machine.config.page_size_bytes);
    }
    let opts = replay::ReplayOptions {
        region_census,
        lenient: args.lenient,
        samples: args.samples,
        compaction: !args.no_compaction,
        emit_trace: args.emit_trace.clone(),
        start,
        after,
        ..replay::ReplayOptions::new(args.traces.clone(), machine, policies)
    };
    replay::replay(&opts, progress)
}

/// The machine of a replay: `--mem`, `--procfs`, or the traced machine,
/// with as many CPUs as the zoneinfo shows pagesets for (1 with `--mem`).
pub fn replay_machine(mem: Option<&str>, procfs_file: Option<&Path>) -> Result<Machine> {
    if let Some(size) = mem {
        let size = size
            .parse()
            .map_err(|e: size::SizeError| Error::Usage(format!("--mem: {e}")))?;
        return Machine::x86_64(size);
    }
    let (text, origin) = match procfs_file {
        Some(path) => read_procfs(path)?,
        None => (
            procfs::TRACED_MACHINE_ZONEINFO.to_owned(),
            procfs::TRACED_MACHINE_ORIGIN.to_owned(),
        ),
    };
    let mut machine = Machine::from_zoneinfo(&procfs::parse_zoneinfo(&text, &origin)?, &origin)?;
    machine.config.nr_cpus = procfs::nr_cpus(&text).unwrap_or(1);
    Ok(machine)
}

/// Linux's state in the snapshot `path`, for `machine`, if the file holds
/// a pagetypeinfo section (`None` if it does not).
pub fn start_state(path: &Path, machine: &Machine) -> Result<Option<seed::StartState>> {
    let (text, origin) = read_procfs(path)?;
    let Some(types) = pagetypeinfo::parse(&text, &origin)? else {
        return Ok(None);
    };
    let zones = procfs::parse_zoneinfo(&text, &origin)?;
    seed::StartState::new(&types, &zones, machine, &origin).map(Some)
}

/// Linux's zones in the snapshot `path` taken after the trace.
pub fn after_state(path: &Path) -> Result<replay::AfterState> {
    let (text, origin) = read_procfs(path)?;
    let zones = procfs::parse_zoneinfo(&text, &origin)?;
    Ok(replay::AfterState { origin, zones })
}

/// `X.before.procfs`'s sibling `X.after.procfs`, if it exists.
fn after_sibling(before: &Path) -> Option<std::path::PathBuf> {
    let name = before.file_name()?.to_str()?;
    let after = before.with_file_name(name.replacen(".before.", ".after.", 1));
    (after.as_path() != before && after.is_file()).then_some(after)
}

fn read_procfs(path: &Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    Ok((text, path.display().to_string()))
}
