//! Scenario files: the TOML format (documented in docs/pagesim.md), parsed
//! with `deny_unknown_fields` everywhere so a misspelt key is an error that
//! names the key and its line, then checked and turned into a [`Scenario`]
//! the simulator ([`crate::sim`]) runs.
//!
//! A scenario is a machine, phases (named step ranges), actors (who
//! allocates what, when, for how long), a reclaim model and *variants*:
//! named overrides of actors or reclaim, all run from the same seed and
//! reported side by side.

mod check;
mod spec;

use std::path::PathBuf;

use pagealloc::{
    AllocFlags, CmaArea, CmaReservation, CmaSupport, Config, Confinement, ContigConstraints, Order,
    Packing, PageCount, Pfn, ReportingPolicy,
};

use crate::machine::Machine;

pub use check::parse;
pub use spec::{
    ActorKind, ActorSpec, AllocMode, ContigVia, Lifetime, MigrateName, OrderWeights, PackingName,
    ReclaimSpec, ZoneName,
};

/// The default scenario: the seed-001 experiment.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../../scenarios/default.toml");

/// A scenario file is invalid: where, and what.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScenarioError {
    /// The file, or `<default scenario>`.
    pub origin: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// Which kind of error.
    pub kind: ScenarioErrorKind,
    /// The key the error is about, as written on its line (`hold`,
    /// `actor.driver.hold` in a variant, `sample_every`, `[[actor]]` for a
    /// table too many), when it is about one. The message names it too.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The kinds of [`ScenarioError`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScenarioErrorKind {
    /// Not TOML, an unknown key, a value of the wrong type, a reference to
    /// nothing, keys that contradict each other.
    Invalid,
    /// A value beyond what the machine has or pagesim simulates: an actor
    /// holding more than the machine's memory, more samples, phases,
    /// actors or variants than the documented maximum, a machine larger
    /// than pagesim simulates at once (docs/pagesim.md, "Limits").
    OutOfBounds,
}

/// A phase: a named range of steps.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Phase {
    /// Name.
    pub name: String,
    /// First step.
    pub start: u64,
    /// Steps.
    pub steps: u64,
    /// If set, a snapshot with this title is taken at the phase's end.
    pub snapshot: Option<String>,
}

impl Phase {
    /// One past the last step.
    pub fn end(&self) -> u64 {
        self.start + self.steps
    }
}

/// What a checked actor does.
#[derive(Clone, PartialEq, Debug)]
pub enum Behaviour {
    /// Allocates `rate` blocks per step; each lives `lifetime` steps.
    Churn {
        /// Blocks per step (fractions accumulate).
        rate: f64,
        /// Lifetime of each block.
        lifetime: Lifetime,
        /// No new block while the actor holds this many pages.
        max_pages: Option<u64>,
    },
    /// Takes `hold_pages`, `chunk_pages` per step, and keeps them.
    Hold {
        /// Pages to hold.
        hold_pages: u64,
        /// Pages taken per step while below `hold_pages`.
        chunk_pages: u64,
        /// At the start of this phase everything is freed and taken again.
        release_step: Option<u64>,
    },
    /// Asks for a contiguous run every `every` steps (seed 003).
    Contig(ContigBehaviour),
}

/// What a contig actor asks for, and how often.
#[derive(Clone, PartialEq, Debug)]
pub struct ContigBehaviour {
    /// Pages per request.
    pub nr_pages: u64,
    /// Steps between requests, from the actor's first active step.
    pub every: u64,
    /// How long each run is held.
    pub lifetime: Lifetime,
    /// No new request while the actor holds this many pages.
    pub max_pages: Option<u64>,
    /// The engine call and its arguments.
    pub call: ContigCall,
}

/// The engine call a contig actor makes.
#[derive(Clone, PartialEq, Debug)]
pub enum ContigCall {
    /// `alloc_contig_range` on a range drawn uniformly among the starts
    /// aligned to `align_pages` whose run lies in `low..high`.
    Range {
        /// Alignment of the start, in pages (a power of two).
        align_pages: u64,
        /// Lowest frame of the window.
        low: Pfn,
        /// One past the highest frame of the window.
        high: Pfn,
    },
    /// `alloc_contig_pages` with these constraints.
    Pages(ContigConstraints),
    /// `cma_alloc` from the variant's CMA area number `area` (the
    /// engine's numbering), aligned to `2^align` pages.
    Cma {
        /// The engine's index of the area.
        area: usize,
        /// Its name in the scenario.
        name: String,
        /// Alignment order.
        align: Order,
    },
}

impl ContigCall {
    /// How the scenario file names the call (`via`).
    pub fn via(&self) -> ContigVia {
        match self {
            ContigCall::Range { .. } => ContigVia::Range,
            ContigCall::Pages(_) => ContigVia::Pages,
            ContigCall::Cma { .. } => ContigVia::Cma,
        }
    }
}

/// A checked actor.
#[derive(Clone, PartialEq, Debug)]
pub struct Actor {
    /// Name.
    pub name: String,
    /// Allocation flags.
    pub flags: AllocFlags,
    /// What it does.
    pub behaviour: Behaviour,
    /// Orders with cumulative probabilities (the last is 1).
    pub orders: Vec<(Order, f64)>,
    /// How requests reach the engine.
    pub alloc_mode: AllocMode,
    /// Reclaim may free its blocks (oldest first).
    pub reclaimable: bool,
    /// First active step.
    pub start: u64,
    /// One past the last active step.
    pub stop: u64,
}

/// The reclaim model: when free memory falls to the low watermark (summed
/// over zones), free the oldest reclaimable blocks until the high
/// watermark is met (what kswapd does, without its LRU subtleties).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Reclaim {
    /// Reclaim runs at all.
    pub enabled: bool,
    /// The migratetypes whose actors' blocks are reclaimable by default.
    pub types: Vec<MigrateName>,
}

/// One variant: the actors and reclaim model after its overrides.
#[derive(Clone, PartialEq, Debug)]
pub struct Variant {
    /// Name.
    pub name: String,
    /// What it changes.
    pub description: Option<String>,
    /// Enabled actors, in file order.
    pub actors: Vec<Actor>,
    /// Reclaim.
    pub reclaim: Reclaim,
    /// The engine's packing policy (`packing = "unmovable"` in the file;
    /// off unless given).
    pub packing: Packing,
    /// The engine's confinement policy (`confinement = "low-end"` in the
    /// file; off unless given).
    pub confinement: Confinement,
    /// Free page reporting (`reporting = { ... }` in the file; off unless
    /// given).
    pub reporting: Option<Reporting>,
    /// CMA areas: the machine's `cma`, or the variant's own `cma`.
    pub cma: Vec<CmaDecl>,
    /// Compaction (`compaction = { ... }` in the file; on with Linux's
    /// defaults unless `enabled = false`): `None` when off.
    pub compaction: Option<Compaction>,
    /// Memory regions (seed 000; `regions = "64M"` in the file; off
    /// unless given).
    pub regions: Option<pagealloc::RegionPolicy>,
}

impl Variant {
    /// Applies the variant's engine settings to a machine's configuration:
    /// packing, confinement, reporting, regions and CMA areas. `cma` says whether the kernel has
    /// CMA at all (every variant of a scenario where one has an area: the
    /// same kernel, booted with `cma=0` in the others).
    pub fn configure(&self, config: &mut Config, cma: CmaSupport) {
        config.packing = self.packing;
        config.confinement = self.confinement;
        config.reporting = self.reporting.map(|r| r.policy);
        config.regions = self.regions;
        CmaDecl::configure(&self.cma, config, cma);
    }
}

/// A CMA area of a scenario: its name and how it is placed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CmaDecl {
    /// Name (`cma0`, `cma1`... unless given), what contig actors' `area`
    /// refers to.
    pub name: String,
    /// Where it lies.
    pub placement: CmaPlacement,
}

/// Where a CMA area lies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CmaPlacement {
    /// A fixed range.
    Fixed(CmaArea),
    /// A size on a node, placed by the engine at the top of the node.
    Reserved(CmaReservation),
}

impl CmaDecl {
    /// Sets `config`'s CMA support and areas to `areas`.
    pub fn configure(areas: &[CmaDecl], config: &mut Config, support: CmaSupport) {
        config.cma = support;
        config.cma_areas = areas.iter().filter_map(CmaDecl::fixed).collect();
        config.cma_reservations = areas.iter().filter_map(CmaDecl::reserved).collect();
    }

    /// Its size.
    pub fn nr_pages(&self) -> PageCount {
        match self.placement {
            CmaPlacement::Fixed(a) => a.nr_pages,
            CmaPlacement::Reserved(r) => r.nr_pages,
        }
    }

    fn fixed(&self) -> Option<CmaArea> {
        match self.placement {
            CmaPlacement::Fixed(a) => Some(a),
            CmaPlacement::Reserved(_) => None,
        }
    }

    fn reserved(&self) -> Option<CmaReservation> {
        match self.placement {
            CmaPlacement::Fixed(_) => None,
            CmaPlacement::Reserved(r) => Some(r),
        }
    }

    /// The engine's number of each of `areas` (what `cma_alloc` takes):
    /// fixed areas first, then reservations, each in file order.
    pub fn engine_indices(areas: &[CmaDecl]) -> Vec<usize> {
        let nr_fixed = areas.iter().filter(|a| a.fixed().is_some()).count();
        let (mut fixed, mut reserved) = (0, nr_fixed);
        areas
            .iter()
            .map(|a| {
                let slot = if a.fixed().is_some() {
                    &mut fixed
                } else {
                    &mut reserved
                };
                *slot += 1;
                *slot - 1
            })
            .collect()
    }
}

/// Whether direct compaction runs for a failed request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DirectCompaction {
    /// Requests of order above 0 whose flags may wait compact the
    /// zonelist's zones and retry (`Allocator::alloc_compacting`).
    On,
    /// Only kcompactd's proactive compaction runs.
    Off,
}

/// Compaction in a variant (Linux's: `CONFIG_COMPACTION`, kcompactd and
/// `vm.compaction_proactiveness`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Compaction {
    /// Direct compaction of failed requests.
    pub direct: DirectCompaction,
    /// `vm.compaction_proactiveness` (0 to 100; 0: no proactive runs).
    pub proactiveness: u8,
    /// Steps between kcompactd's looks at the fragmentation score (after
    /// `--scale`); Linux looks every 500 ms (`HPAGE_FRAG_CHECK_INTERVAL_MSEC`).
    pub every: u64,
}

/// Free page reporting in a variant: the engine's policy and how often the
/// simulated reporting worker looks for a pending request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Reporting {
    /// The engine's policy (`Config::reporting`).
    pub policy: ReportingPolicy,
    /// Steps between the worker's looks (after `--scale`): a pass runs at
    /// the end of every `every`-th step when one is wanted (Linux runs its
    /// pass 2 s after a request).
    pub every: u64,
}

/// A checked scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// What it models.
    pub description: Option<String>,
    /// Seed of every actor's random stream.
    pub seed: u64,
    /// Steps between census samples.
    pub sample_every: u64,
    /// Orders the summary probes (allocation test, unusable index).
    pub probe_orders: Vec<Order>,
    /// The machine.
    pub machine: Machine,
    /// Phases, in order.
    pub phases: Vec<Phase>,
    /// Variants (at least one).
    pub variants: Vec<Variant>,
    /// Not from the file: `--emit-trace`, where to write each variant's
    /// allocator decisions as ftrace text.
    pub emit_trace: Option<PathBuf>,
}

impl Scenario {
    /// Steps in all phases.
    pub fn total_steps(&self) -> u64 {
        self.phases.last().map_or(0, Phase::end)
    }

    /// Whether the simulated kernel has CMA: some variant has an area.
    pub fn cma_support(&self) -> CmaSupport {
        if self.variants.iter().any(|v| !v.cma.is_empty()) {
            CmaSupport::Enabled
        } else {
            CmaSupport::Disabled
        }
    }
}
