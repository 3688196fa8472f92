//! The command line (clap derive). `pagesim` alone runs the embedded default
//! scenario; `--json` and `--out` apply to every command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Simulator of the `pagealloc` physical page allocator.
#[derive(Parser, Debug)]
#[command(name = "pagesim", version, about, long_about = None)]
pub struct Cli {
    /// What to do (default: `run` the embedded default scenario).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options every command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Print one JSON document with every figure instead of the text report
    /// (schema: docs/json-schema.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// Write SVG plots (free blocks, unusable index, mixed pageblocks over
    /// time) into DIR, created if needed.
    #[arg(long, global = true, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario (default: the embedded seed-001 experiment).
    Run(RunArgs),
    /// Replay Linux ftrace page-allocator traces (plain, .gz or .zst).
    Replay(ReplayArgs),
}

/// `pagesim run`.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Scenario file (TOML, docs/pagesim.md); omitted: the default scenario.
    pub file: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Multiply every phase's length by this factor (for quick looks; the
    /// dynamics change with it).
    #[arg(long, value_name = "FACTOR")]
    pub scale: Option<f64>,
    /// Write the allocator's decisions as Linux ftrace text (`.zst`, `.gz`:
    /// compressed); with several variants, one file each, named
    /// FILE with `.VARIANT` before its extension.
    #[arg(long, value_name = "FILE")]
    pub emit_trace: Option<PathBuf>,
}

/// `pagesim replay`.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Trace files, replayed one after the other as one stream.
    #[arg(required = true, value_name = "TRACE")]
    pub traces: Vec<PathBuf>,
    /// Replay into a single-node x86-64 machine of this size (e.g. 2G)
    /// instead of the traced machine.
    #[arg(long, value_name = "SIZE", conflicts_with = "procfs")]
    pub mem: Option<String>,
    /// Take the zone layout from a captured /proc/zoneinfo (each zone's
    /// start_pfn and managed pages); if the file also holds a
    /// /proc/pagetypeinfo (the snapshot taken just before the trace), the
    /// replay starts from that state.
    #[arg(long, value_name = "FILE")]
    pub procfs: Option<PathBuf>,
    /// Start from empty memory even when the --procfs file holds a
    /// pagetypeinfo section.
    #[arg(long, requires = "procfs")]
    pub empty_start: bool,
    /// Linux's /proc snapshot after the trace (its zoneinfo's `pages
    /// free`), to report how far the replay's free pages end from it.
    /// Default: the --procfs file with `.before.` in its name read as
    /// `.after.`, if there is one.
    #[arg(long, value_name = "FILE")]
    pub procfs_after: Option<PathBuf>,
    /// Allocation policy to replay with; repeat to compare side by side.
    #[arg(long = "policy", value_name = "NAME", default_value = "linux")]
    pub policies: Vec<String>,
    /// Skip and count malformed lines instead of failing on the first.
    #[arg(long)]
    pub lenient: bool,
    /// Replay without compaction (by default a failing order > 0 request
    /// compacts, and a proactive round runs at every census sample).
    #[arg(long)]
    pub no_compaction: bool,
    /// Census samples over the replay (time series resolution).
    #[arg(long, default_value_t = crate::DEFAULT_REPLAY_SAMPLES, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub samples: u32,
    /// CPUs of the machine (default: those the zoneinfo shows per-CPU
    /// pagesets for; 1 with --mem). Each event runs on its traced CPU,
    /// modulo this number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub cpus: Option<u16>,
    /// Write each policy's decisions as Linux ftrace text (`.zst`, `.gz`:
    /// compressed); with several policies, one file each, named FILE with
    /// `.POLICY` before its extension.
    #[arg(long, value_name = "FILE")]
    pub emit_trace: Option<PathBuf>,
    /// Memory regions (seed 000) of this size (e.g. 64M) in every policy's
    /// allocator: free lists sorted by region and the region allocator
    /// behind them; the report counts fully free regions of this size.
    #[arg(long, value_name = "SIZE", conflicts_with = "count_regions")]
    pub regions: Option<String>,
    /// Count fully free regions of this size without turning regions on
    /// (the baseline for --regions).
    #[arg(long, value_name = "SIZE")]
    pub count_regions: Option<String>,
}
