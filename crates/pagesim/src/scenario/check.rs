//! Checking a parsed scenario file and building the [`Scenario`] the
//! simulator runs: phase references, order ranges, actor fields that apply
//! to the actor's kind, variant overrides merged into the base actors.
//! Values that size memory or count what pagesim keeps are bounded by the
//! machine or by a documented maximum (docs/pagesim.md, "Limits"): beyond
//! it they are [`ScenarioErrorKind::OutOfBounds`] errors with their key.
//! Errors carry the line of what they are about.

use std::collections::BTreeMap;

use pagealloc::policy::MAX_REPORT_CAPACITY;
use pagealloc::{
    Config, ConfigError, MemRange, MemoryMap, MinFree, NodeId, Order, Pfn, ReportingPolicy,
    ZoneBounds, ZoneType,
};
use toml::Spanned;

use super::spec::{
    ActorKind, ActorSpec, CompactionSpec, Lifetime, MachineSpec, MigrateName, OrderWeights,
    PhaseSpec, ReportingSpec, ScenarioFile, VariantSpec, ZoneLayoutName,
};
use super::{
    Actor, Behaviour, CmaDecl, Compaction, DirectCompaction, Phase, Reclaim, Reporting, Scenario,
    ScenarioError, ScenarioErrorKind, Variant,
};
use crate::gfp::{parse_gfp, Strictness};
use crate::machine::Machine;
use crate::size::ByteSize;

mod contig;

/// The most steps a scenario may have (a sanity bound: a step costs at
/// least a few nanoseconds per actor).
pub(super) const MAX_TOTAL_STEPS: u64 = 1 << 40;
/// The most blocks an actor may ask for per step (whatever the machine).
const MAX_RATE: f64 = 1e7;
/// The most pages pagesim simulates at once, over all variants: every
/// variant runs its own allocator, which keeps 8 bytes per spanned page,
/// and a snapshot's probes copy it. 2^26 pages is 256 GiB of 4 KiB pages,
/// 512 MiB of page records.
const MAX_SIMULATED_PAGES: u64 = 1 << 26;
/// Node ids are below this: Linux's `MAX_NUMNODES` with the x86-64
/// default `CONFIG_NODES_SHIFT=6`. The engine's zonelists grow with the
/// square of the number of nodes.
pub(super) const MAX_NODES: u16 = 64;
/// The most variants (each one a thread with its own allocator).
const MAX_VARIANTS: usize = 16;
/// The most actors (a block's owner is recorded in 16 bits; checking and
/// reporting are per actor).
const MAX_ACTORS: usize = 1024;
/// The most phases (every step looks for the phases ending there).
const MAX_PHASES: usize = 1024;
/// The most snapshots (each is kept, per variant, until the report).
const MAX_SNAPSHOTS: usize = 256;
/// The most census samples per variant (each is kept until the report).
const MAX_SAMPLES: u64 = 20_000;

/// Steps between reporting passes when a variant's `reporting` table does
/// not give `every`.
const DEFAULT_REPORT_EVERY: u64 = 1;

/// Linux's default `vm.compaction_proactiveness`.
const DEFAULT_PROACTIVENESS: i64 = 20;
/// Steps between kcompactd's looks when `compaction.every` is not given: a
/// step is abstract time, and ten of them stand for kcompactd's 500 ms.
const DEFAULT_COMPACT_EVERY: u64 = 10;

/// Samples per run when `sample_every` is not given.
const DEFAULT_SAMPLES: u64 = 200;
/// The orders probed when `probe_orders` is not given (seed 001 asks about
/// order 3; order 9 is a huge page).
const DEFAULT_PROBE_ORDERS: [u8; 2] = [3, 9];

/// Parses and checks a scenario. `origin` names the text in errors;
/// `scale` multiplies every phase's length.
pub fn parse(text: &str, origin: &str, scale: Option<f64>) -> Result<Scenario, ScenarioError> {
    let ctx = Ctx { text, origin };
    let file: ScenarioFile = toml::from_str(text).map_err(|e| ScenarioError {
        origin: origin.to_owned(),
        line: e.span().map(|s| ctx.line_of(s.start)),
        kind: ScenarioErrorKind::Invalid,
        key: None,
        message: e.message().to_owned(),
    })?;
    let (machine, size) = ctx.machine(&file.machine)?;
    let machine_cma = match &file.machine.get_ref().cma {
        Some(list) => ctx.cma_areas("[machine]", list, &machine, &size)?,
        None => Vec::new(),
    };
    let phases = ctx.phases(&file.phase, scale)?;
    let total = phases.last().map_or(0, Phase::end);
    let nr_orders = machine.config.nr_orders;
    let probe_orders = match &file.probe_orders {
        Some(list) => ctx.probe_orders(list, nr_orders)?,
        None => DEFAULT_PROBE_ORDERS
            .into_iter()
            .map(|o| {
                Order::new(o).filter(|_| o < nr_orders).ok_or_else(|| {
                    ctx.err(
                        None,
                        format!("probe order {o} is not below orders = {nr_orders}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if let Some(a) = file.actor.get(MAX_ACTORS) {
        return Err(ctx.bound(
            a.span().start,
            "[[actor]]",
            format!("more than {MAX_ACTORS} actors"),
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for a in &file.actor {
        let Some(name) = a.get_ref().name.as_deref() else {
            return Err(ctx.err(Some(a.span().start), "an [[actor]] needs a `name`".into()));
        };
        if names.contains(&name) {
            return Err(ctx.err(
                Some(a.span().start),
                format!("two actors are named `{name}`"),
            ));
        }
        names.push(name);
    }
    let mut specs: Vec<Spanned<VariantSpec>> = file.variant.clone();
    if specs.is_empty() {
        specs.push(Spanned::new(
            0..0,
            VariantSpec {
                name: "base".to_owned(),
                description: None,
                actor: BTreeMap::new(),
                reclaim: None,
                packing: None,
                confinement: None,
                reporting: None,
                cma: None,
                compaction: None,
                regions: None,
            },
        ));
    }
    let mut variants = Vec::new();
    for v in &specs {
        let spec = v.get_ref();
        if variants.len() == MAX_VARIANTS {
            return Err(ctx.bound(
                v.span().start,
                "[[variant]]",
                format!("more than {MAX_VARIANTS} variants"),
            ));
        }
        // Every variant runs its own allocator, all at once.
        let simulated = (variants.len() as u64 + 1) * size.spanned_pages;
        if simulated > MAX_SIMULATED_PAGES {
            return Err(ctx.bound(
                v.span().start,
                "[[variant]]",
                format!(
                    "variant `{}`: {} variants of a machine spanning {} pages simulate {simulated} pages at once; pagesim simulates at most {MAX_SIMULATED_PAGES} (every variant runs its own allocator)",
                    spec.name,
                    variants.len() + 1,
                    size.spanned_pages,
                ),
            ));
        }
        if variants.iter().any(|x: &Variant| x.name == spec.name) {
            return Err(ctx.err(
                Some(v.span().start),
                format!("two variants are named `{}`", spec.name),
            ));
        }
        variants.push(ctx.variant(&file, spec, &phases, &machine, &size, &machine_cma, scale)?);
    }
    let sample_every = match &file.sample_every {
        Some(n) => {
            let at = n.span().start;
            let n = *n.get_ref();
            if n == 0 {
                return Err(ctx.bound(
                    at,
                    "sample_every",
                    "`sample_every` must be at least 1".into(),
                ));
            }
            let every = scale.map_or(n, |f| ((n as f64 * f).round() as u64).max(1));
            let samples = total.div_ceil(every);
            if samples > MAX_SAMPLES {
                return Err(ctx.bound(
                    at,
                    "sample_every",
                    format!(
                        "`sample_every` = {every} takes {samples} samples of the {total} steps; at most {MAX_SAMPLES} (sample_every >= {})",
                        total.div_ceil(MAX_SAMPLES)
                    ),
                ));
            }
            every
        }
        None => (total / DEFAULT_SAMPLES).max(1),
    };
    Ok(Scenario {
        name: file.name.unwrap_or_else(|| origin.to_owned()),
        description: file.description,
        seed: file.seed,
        sample_every,
        probe_orders,
        machine,
        phases,
        variants,
        emit_trace: None,
    })
}

/// What the checked machine offers, for the bounds on actors and variants.
struct MachineSize {
    /// Usable memory.
    memory: ByteSize,
    /// Pages the allocator keeps records for: each node's span, holes
    /// included.
    spanned_pages: u64,
    /// One past the last usable frame.
    end_pfn: u64,
    /// The zones the machine has, by node.
    zones: Vec<(NodeId, ZoneType)>,
}

/// Why an actor was refused.
enum ActorProblem {
    /// About the actor as a whole (or a key with its own line in the
    /// message): reported at the actor's line.
    Whole(String),
    /// A bad value: reported at the value's line, with its key.
    Value {
        /// Where the value is.
        at: usize,
        /// The key in an `[[actor]]` table.
        key: &'static str,
        /// What is wrong, after the key.
        detail: String,
        /// `OutOfBounds` for a value beyond a bound, `Invalid` for one
        /// that is wrong whatever the machine (an alignment that is not a
        /// power of two, a key that contradicts another).
        kind: ScenarioErrorKind,
    },
}

impl ActorProblem {
    /// A value beyond a bound.
    fn bound(at: usize, key: &'static str, detail: String) -> ActorProblem {
        ActorProblem::Value {
            at,
            key,
            detail,
            kind: ScenarioErrorKind::OutOfBounds,
        }
    }

    /// A value wrong whatever the machine, with its key.
    fn invalid(at: usize, key: &'static str, detail: String) -> ActorProblem {
        ActorProblem::Value {
            at,
            key,
            detail,
            kind: ScenarioErrorKind::Invalid,
        }
    }
}

impl From<String> for ActorProblem {
    fn from(s: String) -> ActorProblem {
        ActorProblem::Whole(s)
    }
}

impl From<&str> for ActorProblem {
    fn from(s: &str) -> ActorProblem {
        ActorProblem::Whole(s.to_owned())
    }
}

/// The text being parsed, for error positions.
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(&self, offset: Option<usize>, message: String) -> ScenarioError {
        ScenarioError {
            origin: self.origin.to_owned(),
            line: offset.map(|o| self.line_of(o)),
            kind: ScenarioErrorKind::Invalid,
            key: None,
            message,
        }
    }

    /// A value beyond a bound, at the line of `key`; the message names the
    /// key.
    fn bound(&self, offset: usize, key: &str, message: String) -> ScenarioError {
        ScenarioError {
            origin: self.origin.to_owned(),
            line: Some(self.line_of(offset)),
            kind: ScenarioErrorKind::OutOfBounds,
            key: Some(key.to_owned()),
            message,
        }
    }

    fn probe_orders(
        &self,
        list: &Spanned<Vec<u8>>,
        nr_orders: u8,
    ) -> Result<Vec<Order>, ScenarioError> {
        let at = list.span().start;
        let mut out: Vec<Order> = Vec::new();
        for &o in list.get_ref() {
            let order = Order::new(o).filter(|_| o < nr_orders).ok_or_else(|| {
                self.bound(
                    at,
                    "probe_orders",
                    format!("`probe_orders`: order {o} is not below orders = {nr_orders}"),
                )
            })?;
            if out.contains(&order) {
                return Err(self.bound(
                    at,
                    "probe_orders",
                    format!("`probe_orders`: order {o} is listed twice"),
                ));
            }
            out.push(order);
        }
        Ok(out)
    }

    fn machine(
        &self,
        spec: &Spanned<MachineSpec>,
    ) -> Result<(Machine, MachineSize), ScenarioError> {
        let m = spec.get_ref();
        let table = spec.span().start;
        let defaults = Config::default();
        let page_size = m
            .page_size
            .as_ref()
            .map_or(defaults.page_size_bytes, |b| b.get_ref().0);
        let zone_bounds = match m.zones.unwrap_or(ZoneLayoutName::Normal) {
            ZoneLayoutName::Normal => ZoneBounds::NORMAL_ONLY,
            ZoneLayoutName::X86_64 => ZoneBounds::X86_64,
        };
        let config = Config {
            page_size_bytes: page_size,
            nr_orders: m
                .orders
                .as_ref()
                .map_or(defaults.nr_orders, |o| *o.get_ref()),
            pageblock_order: m
                .pageblock_order
                .as_ref()
                .map_or(defaults.pageblock_order, |o| *o.get_ref()),
            zone_bounds,
            min_free: m
                .min_free_kbytes
                .as_ref()
                .map_or(defaults.min_free, |k| MinFree::Kbytes(*k.get_ref())),
            watermark_scale_factor: m
                .watermark_scale_factor
                .as_ref()
                .map_or(defaults.watermark_scale_factor, |w| *w.get_ref()),
            ..defaults
        };
        config.validate().map_err(|e| {
            // The key the engine refused, at its line.
            let span_of = |s: Option<usize>, key: &str| match s {
                Some(at) => self.bound(at, key, format!("[machine]: `{key}`: {e}")),
                None => self.err(Some(table), format!("[machine]: {e}")),
            };
            match e {
                ConfigError::PageSize { .. } => {
                    span_of(m.page_size.as_ref().map(|s| s.span().start), "page_size")
                }
                ConfigError::NrOrders { .. } => {
                    span_of(m.orders.as_ref().map(|s| s.span().start), "orders")
                }
                ConfigError::PageblockOrder { .. } => span_of(
                    m.pageblock_order.as_ref().map(|s| s.span().start),
                    "pageblock_order",
                ),
                ConfigError::WatermarkScaleFactor { .. } => span_of(
                    m.watermark_scale_factor.as_ref().map(|s| s.span().start),
                    "watermark_scale_factor",
                ),
                _ => self.err(Some(table), format!("[machine]: {e}")),
            }
        })?;
        let pages = |b: ByteSize| b.0 / page_size;
        let (ranges, key, key_at): (Vec<MemRange>, &str, usize) = match (&m.memory, &m.ranges) {
            (Some(size), None) => (
                vec![MemRange {
                    node: NodeId(0),
                    start: Pfn(0),
                    end: Pfn(pages(*size.get_ref())),
                }],
                "memory",
                size.span().start,
            ),
            (None, Some(rs)) => {
                let mut out = Vec::new();
                for r in rs.get_ref() {
                    let spec = r.get_ref();
                    if spec.node >= MAX_NODES {
                        return Err(self.bound(
                            r.span().start,
                            "node",
                            format!(
                                "[machine]: `ranges`: `node` = {} is not below {MAX_NODES} (Linux's MAX_NUMNODES on x86-64)",
                                spec.node
                            ),
                        ));
                    }
                    out.push(MemRange {
                        node: NodeId(spec.node),
                        start: Pfn(pages(spec.start)),
                        end: Pfn(pages(spec.start) + pages(spec.size)),
                    });
                }
                (out, "ranges", rs.span().start)
            }
            _ => {
                return Err(self.err(
                    Some(table),
                    "[machine] needs exactly one of `memory` or `ranges`".into(),
                ))
            }
        };
        let map = MemoryMap::new(ranges)
            .map_err(|e| self.err(Some(key_at), format!("[machine]: `{key}`: {e}")))?;
        // The allocator keeps a record per page of each zone's span; nodes
        // do not interleave, so the zones lie within the node spans.
        let mut spanned_pages: u64 = 0;
        for node in map.ranges().chunk_by(|a, b| a.node == b.node) {
            if let (Some(first), Some(last)) = (node.first(), node.last()) {
                spanned_pages = spanned_pages.saturating_add(last.end.0 - first.start.0);
            }
        }
        if spanned_pages > MAX_SIMULATED_PAGES {
            return Err(self.bound(
                key_at,
                key,
                format!(
                    "[machine]: `{key}` spans {spanned_pages} pages (holes included); pagesim simulates at most {MAX_SIMULATED_PAGES} pages ({} of {} pages) at once",
                    ByteSize(MAX_SIMULATED_PAGES * page_size),
                    ByteSize(page_size),
                ),
            ));
        }
        let size = ByteSize(map.nr_present() * page_size);
        if let Some(kb) = &m.min_free_kbytes {
            if kb.get_ref().saturating_mul(1024) > size.0 {
                return Err(self.bound(
                    kb.span().start,
                    "min_free_kbytes",
                    format!(
                        "[machine]: `min_free_kbytes` = {} is more than the machine's memory ({size} = {} KiB)",
                        kb.get_ref(),
                        size.0 / 1024
                    ),
                ));
            }
        }
        let machine = Machine {
            map,
            config,
            origin: format!("scenario machine of {size}"),
        };
        let built = machine
            .allocator()
            .map_err(|e| self.err(Some(table), format!("[machine]: {e}")))?;
        let zones = built
            .zones()
            .iter()
            .map(|z| (z.node(), z.zone_type()))
            .collect();
        let end_pfn = machine.map.ranges().last().map_or(0, |r| r.end.0);
        Ok((
            machine,
            MachineSize {
                memory: size,
                spanned_pages,
                end_pfn,
                zones,
            },
        ))
    }

    fn phases(
        &self,
        specs: &[Spanned<PhaseSpec>],
        scale: Option<f64>,
    ) -> Result<Vec<Phase>, ScenarioError> {
        if specs.is_empty() {
            return Err(self.err(None, "a scenario needs at least one [[phase]]".into()));
        }
        if let Some(f) = scale {
            if !(f.is_finite() && f > 0.0) {
                return Err(self.err(None, format!("--scale {f} must be a positive number")));
            }
        }
        if let Some(s) = specs.get(MAX_PHASES) {
            return Err(self.bound(
                s.span().start,
                "[[phase]]",
                format!("more than {MAX_PHASES} phases"),
            ));
        }
        if let Some(snap) = specs
            .iter()
            .filter_map(|s| s.get_ref().snapshot.as_ref())
            .nth(MAX_SNAPSHOTS)
        {
            return Err(self.bound(
                snap.span().start,
                "snapshot",
                format!("more than {MAX_SNAPSHOTS} phases take a `snapshot`"),
            ));
        }
        let mut phases: Vec<Phase> = Vec::new();
        let mut start = 0;
        for s in specs {
            let p = s.get_ref();
            if phases.iter().any(|x| x.name == p.name) {
                return Err(self.err(
                    Some(s.span().start),
                    format!("two phases are named `{}`", p.name),
                ));
            }
            let at = p.steps.span().start;
            let given = *p.steps.get_ref();
            if given == 0 {
                return Err(self.bound(at, "steps", format!("phase `{}` has no steps", p.name)));
            }
            let steps = scale.map_or(given, |f| ((given as f64 * f).round() as u64).max(1));
            if steps > MAX_TOTAL_STEPS - start {
                return Err(self.bound(
                    at,
                    "steps",
                    format!(
                        "phase `{}`: `steps`: the phases add up to more than {MAX_TOTAL_STEPS} steps",
                        p.name
                    ),
                ));
            }
            phases.push(Phase {
                name: p.name.clone(),
                start,
                steps,
                snapshot: p.snapshot.as_ref().map(|t| t.get_ref().clone()),
            });
            start += steps;
        }
        Ok(phases)
    }

    fn phase_ref(&self, phases: &[Phase], name: &Spanned<String>) -> Result<usize, ScenarioError> {
        phases
            .iter()
            .position(|p| p.name == *name.get_ref())
            .ok_or_else(|| {
                let known: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
                self.err(
                    Some(name.span().start),
                    format!(
                        "no phase named `{}` (phases: {})",
                        name.get_ref(),
                        known.join(", ")
                    ),
                )
            })
    }

    #[allow(clippy::too_many_arguments)]
    fn variant(
        &self,
        file: &ScenarioFile,
        spec: &VariantSpec,
        phases: &[Phase],
        machine: &Machine,
        size: &MachineSize,
        machine_cma: &[CmaDecl],
        scale: Option<f64>,
    ) -> Result<Variant, ScenarioError> {
        let config = &machine.config;
        let cma = match &spec.cma {
            Some(list) => {
                self.cma_areas(&format!("variant `{}`", spec.name), list, machine, size)?
            }
            None => machine_cma.to_vec(),
        };
        let reporting = spec
            .reporting
            .as_ref()
            .map(|r| self.reporting(&spec.name, r, config, scale))
            .transpose()?;
        let compaction = self.compaction(&spec.name, spec.compaction.as_ref(), scale)?;
        let regions = match &spec.regions {
            None => None,
            Some(r) => {
                let policy = pagealloc::RegionPolicy {
                    size_bytes: r.get_ref().0,
                    ..Default::default()
                };
                // The engine's own check: a power of two of at least the
                // largest block.
                Config {
                    regions: Some(policy),
                    ..config.clone()
                }
                .validate()
                .map_err(|e| {
                    self.bound(
                        r.span().start,
                        "regions",
                        format!("variant `{}`: `regions`: {e}", spec.name),
                    )
                })?;
                Some(policy)
            }
        };
        let mut reclaim_spec = file.reclaim.clone();
        if let Some(r) = &spec.reclaim {
            if r.enabled.is_some() {
                reclaim_spec.enabled = r.enabled;
            }
            if r.types.is_some() {
                reclaim_spec.types = r.types.clone();
            }
        }
        let reclaim = Reclaim {
            enabled: reclaim_spec.enabled.unwrap_or(true),
            types: reclaim_spec
                .types
                .unwrap_or(vec![MigrateName::Movable, MigrateName::Reclaimable]),
        };
        for (name, patch) in &spec.actor {
            if !file
                .actor
                .iter()
                .any(|a| a.get_ref().name.as_deref() == Some(name))
            {
                return Err(self.err(
                    Some(patch.span().start),
                    format!("variant `{}` overrides unknown actor `{name}`", spec.name),
                ));
            }
            if patch.get_ref().name.is_some() {
                return Err(self.err(
                    Some(patch.span().start),
                    format!(
                        "variant `{}`: an actor override cannot set `name`",
                        spec.name
                    ),
                ));
            }
        }
        let mut actors = Vec::new();
        for a in &file.actor {
            let mut merged = a.get_ref().clone();
            let name = merged.name.clone().unwrap_or_default();
            let mut at = a.span().start;
            if let Some(patch) = spec.actor.get(&name) {
                merged.apply(patch.get_ref());
                at = patch.span().start;
            }
            if merged.enabled == Some(false) {
                continue;
            }
            let patch = spec.actor.get(&name).map(Spanned::get_ref);
            let actor = self
                .actor(&name, &merged, phases, config, &reclaim, size, &cma)
                .map_err(|problem| {
                    let scope = match patch {
                        Some(_) => format!("variant `{}`, actor `{name}`", spec.name),
                        None => format!("actor `{name}`"),
                    };
                    match problem {
                        ActorProblem::Whole(message) => {
                            self.err(Some(at), format!("{scope}: {message}"))
                        }
                        ActorProblem::Value {
                            at: value_at,
                            key,
                            detail,
                            kind,
                        } => {
                            // The key as written where the value is: in the
                            // variant (`actor.NAME.KEY`) or in the actor.
                            let key = if patch.is_some_and(|p| p.gives(key)) {
                                format!("actor.{name}.{key}")
                            } else {
                                key.to_owned()
                            };
                            let mut e =
                                self.bound(value_at, &key, format!("{scope}: `{key}` {detail}"));
                            e.kind = kind;
                            e
                        }
                    }
                })?;
            actors.push(actor);
        }
        Ok(Variant {
            name: spec.name.clone(),
            description: spec.description.clone(),
            actors,
            reclaim,
            packing: spec.packing.unwrap_or_default().packing(),
            confinement: spec.confinement.unwrap_or_default().confinement(),
            reporting,
            cma,
            compaction,
            regions,
        })
    }

    /// Checks a variant's `compaction` table (absent: on with Linux's
    /// defaults), each value reported with its key (`compaction.every`).
    fn compaction(
        &self,
        variant: &str,
        spec: Option<&Spanned<CompactionSpec>>,
        scale: Option<f64>,
    ) -> Result<Option<Compaction>, ScenarioError> {
        let c = spec.map(Spanned::get_ref).cloned().unwrap_or_default();
        if c.enabled == Some(false) {
            return Ok(None);
        }
        let bounded = |key: &str, v: &Option<Spanned<i64>>, lo: i64, hi: i64, why: &str| match v {
            Some(x) if !(lo..=hi).contains(x.get_ref()) => Err(self.bound(
                x.span().start,
                &format!("compaction.{key}"),
                format!(
                    "variant `{variant}`: `compaction.{key}` = {} must be from {lo} to {hi}{why}",
                    x.get_ref()
                ),
            )),
            Some(x) => Ok(Some(*x.get_ref())),
            None => Ok(None),
        };
        let proactiveness = bounded(
            "proactiveness",
            &c.proactiveness,
            0,
            100,
            " (Linux's vm.compaction_proactiveness)",
        )?
        .unwrap_or(DEFAULT_PROACTIVENESS) as u8;
        let every = bounded(
            "every",
            &c.every,
            1,
            MAX_TOTAL_STEPS as i64,
            " (steps between kcompactd's looks)",
        )?
        .map_or(DEFAULT_COMPACT_EVERY, |e| e as u64);
        let every = scale.map_or(every, |f| ((every as f64 * f).round() as u64).max(1));
        Ok(Some(Compaction {
            direct: match c.direct {
                Some(false) => DirectCompaction::Off,
                _ => DirectCompaction::On,
            },
            proactiveness,
            every,
        }))
    }

    /// Checks a variant's `reporting` table: every value within its bound
    /// (docs/pagesim.md, "Limits"), reported with its key
    /// (`reporting.capacity`) at its line.
    fn reporting(
        &self,
        variant: &str,
        spec: &Spanned<ReportingSpec>,
        config: &Config,
        scale: Option<f64>,
    ) -> Result<Reporting, ScenarioError> {
        let r = spec.get_ref();
        let defaults = ReportingPolicy::default();
        let max_order = i64::from(config.nr_orders) - 1;
        // A value in `lo..=hi`, or an error naming `reporting.KEY`.
        let bounded = |key: &str, v: &Option<Spanned<i64>>, lo: i64, hi: i64, why: &str| match v {
            Some(x) if !(lo..=hi).contains(x.get_ref()) => Err(self.bound(
                x.span().start,
                &format!("reporting.{key}"),
                format!(
                    "variant `{variant}`: `reporting.{key}` = {} must be from {lo} to {hi}{why}",
                    x.get_ref()
                ),
            )),
            Some(x) => Ok(Some(*x.get_ref())),
            None => Ok(None),
        };
        let order = bounded(
            "order",
            &r.order,
            0,
            max_order,
            &format!(" (below the machine's orders = {})", config.nr_orders),
        )?
        .map(|o| o as u8);
        let capacity = bounded(
            "capacity",
            &r.capacity,
            1,
            i64::from(MAX_REPORT_CAPACITY),
            " (blocks per batch; the engine's MAX_REPORT_CAPACITY)",
        )?
        .map_or(defaults.capacity, |c| c as u16);
        let budget_fraction = bounded(
            "budget_fraction",
            &r.budget_fraction,
            1,
            i64::from(u16::MAX),
            " (a pass handles about 1/budget_fraction of each free list)",
        )?
        .map_or(defaults.budget_fraction, |b| b as u16);
        let every = bounded(
            "every",
            &r.every,
            1,
            MAX_TOTAL_STEPS as i64,
            " (steps between reporting passes)",
        )?
        .map_or(DEFAULT_REPORT_EVERY, |e| e as u64);
        let every = scale.map_or(every, |f| ((every as f64 * f).round() as u64).max(1));
        let policy = ReportingPolicy {
            order,
            capacity,
            budget_fraction,
        };
        // The engine's own check, for anything the bounds above missed.
        Config {
            reporting: Some(policy),
            ..config.clone()
        }
        .validate()
        .map_err(|e| {
            self.bound(
                spec.span().start,
                "reporting",
                format!("variant `{variant}`: `reporting`: {e}"),
            )
        })?;
        Ok(Reporting { policy, every })
    }

    /// Checks one actor; the message is prefixed with its scope by the
    /// caller, except for errors that carry their own line. `cma` is the
    /// variant's CMA areas, which a contig actor's `area` names.
    #[allow(clippy::too_many_arguments)]
    fn actor(
        &self,
        name: &str,
        a: &ActorSpec,
        phases: &[Phase],
        config: &Config,
        reclaim: &Reclaim,
        size: &MachineSize,
        cma: &[CmaDecl],
    ) -> Result<Actor, ActorProblem> {
        let kind = a.kind.unwrap_or_default();
        if kind == ActorKind::Contig {
            return self.contig_actor(name, a, phases, config, size, cma);
        }
        if let Some(key) = a.contig_key() {
            return Err(format!(
                "`{key}` does not apply to a {} actor (only to kind = \"contig\")",
                kind.name()
            )
            .into());
        }
        let nr_orders = config.nr_orders;
        let page_size = config.page_size_bytes;
        let flags = match (&a.migratetype, &a.gfp) {
            (Some(mt), None) => mt.flags(),
            (None, Some(g)) => parse_gfp(g.get_ref().as_bytes(), Strictness::Strict)
                .map_err(|e| format!("gfp: {e}"))?,
            (None, None) => return Err("needs `migratetype` or `gfp`".into()),
            (Some(_), Some(_)) => return Err("give `migratetype` or `gfp`, not both".into()),
        };
        let weights = a.orders.clone().unwrap_or(OrderWeights(vec![(0, 1.0)]));
        let total: f64 = weights.0.iter().map(|(_, w)| w).sum();
        let mut acc = 0.0;
        let mut orders = Vec::new();
        for (o, w) in &weights.0 {
            let order = Order::new(*o).filter(|_| *o < nr_orders).ok_or_else(|| {
                format!("order {o} is not below the machine's orders = {nr_orders}")
            })?;
            if *w > 0.0 {
                acc += w / total;
                orders.push((order, acc));
            }
        }
        if let Some(last) = orders.last_mut() {
            last.1 = 1.0;
        }
        let within_memory = |key, v: &_| within_memory(size, key, v);
        let (start, stop) = self.active_steps(a, phases)?;
        let reject = |field: &str, present: bool| -> Result<(), ActorProblem> {
            if present {
                Err(format!("`{field}` does not apply to a {} actor", kind.name()).into())
            } else {
                Ok(())
            }
        };
        let behaviour = match kind {
            ActorKind::Churn => {
                reject("hold", a.hold.is_some())?;
                reject("chunk", a.chunk.is_some())?;
                reject("release", a.release.is_some())?;
                let spanned_rate = a
                    .rate
                    .as_ref()
                    .ok_or("a churn actor needs `rate` (blocks per step)")?;
                let rate = *spanned_rate.get_ref();
                if !(rate.is_finite() && (0.0..=MAX_RATE).contains(&rate)) {
                    return Err(ActorProblem::bound(
                        spanned_rate.span().start,
                        "rate",
                        format!("= {rate:?} must be a number from 0 to {MAX_RATE}"),
                    ));
                }
                let lifetime = a.lifetime.ok_or("a churn actor needs `lifetime`")?;
                check_lifetime(&lifetime)?;
                Behaviour::Churn {
                    rate,
                    lifetime,
                    max_pages: within_memory("max", &a.max)?.map(|b| b.0.div_ceil(page_size)),
                }
            }
            ActorKind::Hold => {
                reject("rate", a.rate.is_some())?;
                reject("lifetime", a.lifetime.is_some())?;
                reject("max", a.max.is_some())?;
                let hold = within_memory("hold", &a.hold)?
                    .ok_or("a hold actor needs `hold` (bytes to hold)")?;
                let chunk = within_memory("chunk", &a.chunk)?
                    .ok_or("a hold actor needs `chunk` (bytes per step)")?;
                if chunk.0 < page_size {
                    return Err(format!("chunk {chunk} is smaller than a page").into());
                }
                let release_step = match &a.release {
                    Some(r) => {
                        let i = self.phase_ref(phases, r).map_err(|e| e.to_string())?;
                        Some(phases[i].start)
                    }
                    None => None,
                };
                Behaviour::Hold {
                    hold_pages: hold.0.div_ceil(page_size),
                    chunk_pages: chunk.0 / page_size,
                    release_step,
                }
            }
            ActorKind::Contig => unreachable!("contig actors are checked above"),
        };
        let alloc_mode = a.alloc_mode.unwrap_or_default();
        let mt = flags.migratetype();
        let reclaimable = a.reclaimable.unwrap_or_else(|| {
            kind == ActorKind::Churn && reclaim.types.iter().any(|t| t.flags().migratetype() == mt)
        });
        Ok(Actor {
            name: name.to_owned(),
            flags,
            behaviour,
            orders,
            alloc_mode,
            reclaimable,
            start,
            stop,
        })
    }
}

impl Ctx<'_> {
    /// The steps an actor is active: from the start of its `start` phase to
    /// the end of its `stop` phase.
    fn active_steps(&self, a: &ActorSpec, phases: &[Phase]) -> Result<(u64, u64), ActorProblem> {
        let phase_of = |p: &Option<Spanned<String>>| -> Result<Option<usize>, String> {
            p.as_ref()
                .map(|s| self.phase_ref(phases, s).map_err(|e| e.to_string()))
                .transpose()
        };
        let start = phase_of(&a.start)?.map_or(0, |i| phases[i].start);
        let stop =
            phase_of(&a.stop)?.map_or(phases.last().map_or(0, Phase::end), |i| phases[i].end());
        if stop <= start {
            return Err("`stop` phase comes before `start`".into());
        }
        Ok((start, stop))
    }
}

/// A size an actor gives (`hold`, `chunk`, `max`, `size`), if it is not
/// beyond the machine's memory.
fn within_memory(
    size: &MachineSize,
    key: &'static str,
    v: &Option<Spanned<ByteSize>>,
) -> Result<Option<ByteSize>, ActorProblem> {
    match v {
        Some(b) if *b.get_ref() > size.memory => Err(ActorProblem::bound(
            b.span().start,
            key,
            format!(
                "= {} is more than the machine's memory ({}): an actor cannot hold more than the machine has",
                b.get_ref(),
                size.memory
            ),
        )),
        _ => Ok(v.as_ref().map(|b| *b.get_ref())),
    }
}

fn check_lifetime(l: &Lifetime) -> Result<(), String> {
    match *l {
        Lifetime::Exponential { mean } if !(mean.is_finite() && mean > 0.0) => {
            Err(format!("lifetime mean {mean} must be a positive number"))
        }
        Lifetime::Uniform { min, max } if min > max => {
            Err(format!("lifetime min {min} is above max {max}"))
        }
        _ => Ok(()),
    }
}
