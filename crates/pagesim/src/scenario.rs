//! Scenario files: the TOML format (documented in docs/pagesim.md), parsed
//! with `deny_unknown_fields` everywhere so a misspelt key is an error that
//! names the key and its line, then checked and turned into a [`Scenario`]
//! the simulator ([`crate::sim`]) runs.
//!
//! A scenario is a machine, phases (named step ranges), actors (who
//! allocates what, when, for how long), a reclaim model and *variants*:
//! named overrides of actors or reclaim, all run from the same seed and
//! reported side by side.

use std::collections::BTreeMap;

use pagealloc::{AllocFlags, Config, MemRange, MemoryMap, MinFree, NodeId, Order, Pfn, ZoneBounds};
use serde::Deserialize;
use toml::Spanned;

use crate::gfp::{parse_gfp, Strictness};
use crate::machine::Machine;
use crate::size::ByteSize;

/// The default scenario: the seed-001 experiment.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../scenarios/default.toml");

/// A scenario file is invalid: where, and what.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScenarioError {
    /// The file, or `<default scenario>`.
    pub origin: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// A migratetype an actor may ask for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrateName {
    /// Kernel memory.
    Unmovable,
    /// User and page-cache memory.
    Movable,
    /// Shrinkable slab.
    Reclaimable,
}

impl MigrateName {
    fn flags(self) -> AllocFlags {
        match self {
            MigrateName::Unmovable => AllocFlags::KERNEL,
            MigrateName::Movable => AllocFlags::HIGHUSER_MOVABLE,
            MigrateName::Reclaimable => AllocFlags::KERNEL_RECLAIMABLE,
        }
    }
}

/// What an actor does.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// Allocates `rate` blocks per step, each freed after its lifetime.
    #[default]
    Churn,
    /// Takes `hold` bytes, `chunk` bytes per step, and keeps them.
    Hold,
}

impl ActorKind {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Churn => "churn",
            ActorKind::Hold => "hold",
        }
    }
}

/// How an actor's requests reach the engine.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocMode {
    /// One `alloc` per block, as `alloc_pages()` does.
    #[default]
    Plain,
    /// Order-0 unmovable pages packed into pageblocks the caller already
    /// owns (seed 001's `alloc_pages_compact`): needs an engine call this
    /// build does not have.
    Packed,
}

/// How long a churn allocation lives, in steps.
#[derive(Clone, Copy, PartialEq, Debug, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Lifetime {
    /// Exponential with this mean.
    Exponential {
        /// Mean steps.
        mean: f64,
    },
    /// Uniform in `min..=max`.
    Uniform {
        /// Fewest steps.
        min: u64,
        /// Most steps.
        max: u64,
    },
    /// Exactly this many steps.
    Fixed {
        /// Steps.
        steps: u64,
    },
    /// Until reclaim takes it (or the run ends).
    Forever,
}

/// Order weights, `{ 0 = 0.9, 3 = 0.1 }`.
#[derive(Clone, PartialEq, Debug)]
pub struct OrderWeights(pub Vec<(u8, f64)>);

impl<'de> Deserialize<'de> for OrderWeights {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<OrderWeights, D::Error> {
        use serde::de::Error;
        let raw = BTreeMap::<String, f64>::deserialize(d)?;
        let mut out = Vec::new();
        for (k, w) in raw {
            let order: u8 = k
                .parse()
                .map_err(|_| D::Error::custom(format!("order `{k}` is not a number")))?;
            if !(w.is_finite() && w >= 0.0) {
                return Err(D::Error::custom(format!(
                    "weight {w} of order {k} must be a finite number >= 0"
                )));
            }
            out.push((order, w));
        }
        out.sort_by_key(|(o, _)| *o);
        if !out.iter().any(|(_, w)| *w > 0.0) {
            return Err(D::Error::custom("no order has a positive weight"));
        }
        Ok(OrderWeights(out))
    }
}

/// `[[actor]]` as written; also a variant's override of one (where `name`
/// must be absent and every field given replaces the base's).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    name: Option<String>,
    kind: Option<ActorKind>,
    migratetype: Option<MigrateName>,
    gfp: Option<Spanned<String>>,
    rate: Option<f64>,
    orders: Option<OrderWeights>,
    lifetime: Option<Lifetime>,
    max: Option<ByteSize>,
    hold: Option<ByteSize>,
    chunk: Option<ByteSize>,
    release: Option<Spanned<String>>,
    alloc_mode: Option<AllocMode>,
    reclaimable: Option<bool>,
    start: Option<Spanned<String>>,
    stop: Option<Spanned<String>>,
    enabled: Option<bool>,
}

impl ActorSpec {
    /// Replaces every field the patch gives.
    fn apply(&mut self, patch: &ActorSpec) {
        macro_rules! merge {
            ($($f:ident),*) => { $( if patch.$f.is_some() { self.$f = patch.$f.clone(); } )* };
        }
        merge!(
            kind,
            migratetype,
            gfp,
            rate,
            orders,
            lifetime,
            max,
            hold,
            chunk,
            release,
            alloc_mode,
            reclaimable,
            start,
            stop,
            enabled
        );
    }
}

/// `[reclaim]` (all fields optional, so a variant can override one).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReclaimSpec {
    enabled: Option<bool>,
    types: Option<Vec<MigrateName>>,
}

/// `[machine]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MachineSpec {
    memory: Option<ByteSize>,
    ranges: Option<Vec<RangeSpec>>,
    page_size: Option<ByteSize>,
    orders: Option<u8>,
    pageblock_order: Option<u8>,
    zones: Option<ZoneLayoutName>,
    min_free_kbytes: Option<u64>,
    watermark_scale_factor: Option<u32>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ZoneLayoutName {
    /// One Normal zone.
    Normal,
    /// DMA below 16 MiB, DMA32 below 4 GiB, Normal above.
    X86_64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeSpec {
    start: ByteSize,
    size: ByteSize,
    #[serde(default)]
    node: u16,
}

/// `[[phase]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseSpec {
    name: String,
    steps: u64,
    snapshot: Option<String>,
}

/// `[[variant]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantSpec {
    name: String,
    description: Option<String>,
    #[serde(default)]
    actor: BTreeMap<String, Spanned<ActorSpec>>,
    reclaim: Option<ReclaimSpec>,
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    description: Option<String>,
    seed: u64,
    sample_every: Option<u64>,
    probe_orders: Option<Vec<u8>>,
    machine: MachineSpec,
    #[serde(default)]
    reclaim: ReclaimSpec,
    phase: Vec<Spanned<PhaseSpec>>,
    actor: Vec<Spanned<ActorSpec>>,
    #[serde(default)]
    variant: Vec<Spanned<VariantSpec>>,
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
}

impl Scenario {
    /// Steps in all phases.
    pub fn total_steps(&self) -> u64 {
        self.phases.last().map_or(0, Phase::end)
    }
}

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
        message: e.message().to_owned(),
    })?;
    let machine = ctx.machine(&file.machine)?;
    let phases = ctx.phases(&file.phase, scale)?;
    let total = phases.last().map_or(0, Phase::end);
    let nr_orders = machine.config.nr_orders;
    let probe_orders = file
        .probe_orders
        .clone()
        .unwrap_or(DEFAULT_PROBE_ORDERS.to_vec())
        .into_iter()
        .map(|o| {
            Order::new(o).filter(|_| o < nr_orders).ok_or_else(|| {
                ctx.err(
                    None,
                    format!("probe order {o} is not below orders = {nr_orders}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
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
            },
        ));
    }
    let mut variants = Vec::new();
    for v in &specs {
        let spec = v.get_ref();
        if variants.iter().any(|x: &Variant| x.name == spec.name) {
            return Err(ctx.err(
                Some(v.span().start),
                format!("two variants are named `{}`", spec.name),
            ));
        }
        variants.push(ctx.variant(&file, spec, &phases, &machine.config)?);
    }
    let sample_every = match file.sample_every {
        Some(0) => return Err(ctx.err(None, "sample_every must be at least 1".into())),
        Some(n) => scale.map_or(n, |f| ((n as f64 * f).round() as u64).max(1)),
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
    })
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
            message,
        }
    }

    fn machine(&self, m: &MachineSpec) -> Result<Machine, ScenarioError> {
        let defaults = Config::default();
        let page_size = m.page_size.map_or(defaults.page_size_bytes, |b| b.0);
        let zone_bounds = match m.zones.unwrap_or(ZoneLayoutName::Normal) {
            ZoneLayoutName::Normal => ZoneBounds::NORMAL_ONLY,
            ZoneLayoutName::X86_64 => ZoneBounds::X86_64,
        };
        let config = Config {
            page_size_bytes: page_size,
            nr_orders: m.orders.unwrap_or(defaults.nr_orders),
            pageblock_order: m.pageblock_order.unwrap_or(defaults.pageblock_order),
            zone_bounds,
            min_free: m.min_free_kbytes.map_or(defaults.min_free, MinFree::Kbytes),
            watermark_scale_factor: m
                .watermark_scale_factor
                .unwrap_or(defaults.watermark_scale_factor),
            ..defaults
        };
        config
            .validate()
            .map_err(|e| self.err(None, format!("[machine]: {e}")))?;
        let pages = |b: ByteSize| b.0 / page_size;
        let ranges: Vec<MemRange> = match (&m.memory, &m.ranges) {
            (Some(size), None) => vec![MemRange {
                node: NodeId(0),
                start: Pfn(0),
                end: Pfn(pages(*size)),
            }],
            (None, Some(rs)) => rs
                .iter()
                .map(|r| MemRange {
                    node: NodeId(r.node),
                    start: Pfn(pages(r.start)),
                    end: Pfn(pages(r.start) + pages(r.size)),
                })
                .collect(),
            _ => {
                return Err(self.err(
                    None,
                    "[machine] needs exactly one of `memory` or `ranges`".into(),
                ))
            }
        };
        let map = MemoryMap::new(ranges).map_err(|e| self.err(None, format!("[machine]: {e}")))?;
        let size = ByteSize(map.nr_present() * page_size);
        let machine = Machine {
            map,
            config,
            origin: format!("scenario machine of {size}"),
        };
        machine
            .allocator()
            .map_err(|e| self.err(None, format!("[machine]: {e}")))?;
        Ok(machine)
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
            if p.steps == 0 {
                return Err(self.err(
                    Some(s.span().start),
                    format!("phase `{}` has no steps", p.name),
                ));
            }
            let steps = scale.map_or(p.steps, |f| ((p.steps as f64 * f).round() as u64).max(1));
            phases.push(Phase {
                name: p.name.clone(),
                start,
                steps,
                snapshot: p.snapshot.clone(),
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

    fn variant(
        &self,
        file: &ScenarioFile,
        spec: &VariantSpec,
        phases: &[Phase],
        config: &Config,
    ) -> Result<Variant, ScenarioError> {
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
            let actor = self
                .actor(&name, &merged, phases, config, &reclaim)
                .map_err(|message| {
                    let scope = if spec.actor.contains_key(&name) {
                        format!("variant `{}`, actor `{name}`", spec.name)
                    } else {
                        format!("actor `{name}`")
                    };
                    self.err(Some(at), format!("{scope}: {message}"))
                })?;
            actors.push(actor);
        }
        Ok(Variant {
            name: spec.name.clone(),
            description: spec.description.clone(),
            actors,
            reclaim,
        })
    }

    /// Checks one actor; the message is prefixed with its scope by the
    /// caller, except for errors that carry their own line.
    fn actor(
        &self,
        name: &str,
        a: &ActorSpec,
        phases: &[Phase],
        config: &Config,
        reclaim: &Reclaim,
    ) -> Result<Actor, String> {
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
        let kind = a.kind.unwrap_or_default();
        let reject = |field: &str, present: bool| -> Result<(), String> {
            if present {
                Err(format!(
                    "`{field}` does not apply to a {} actor",
                    kind.name()
                ))
            } else {
                Ok(())
            }
        };
        let behaviour = match kind {
            ActorKind::Churn => {
                reject("hold", a.hold.is_some())?;
                reject("chunk", a.chunk.is_some())?;
                reject("release", a.release.is_some())?;
                let rate = a
                    .rate
                    .ok_or("a churn actor needs `rate` (blocks per step)")?;
                if !(rate.is_finite() && rate >= 0.0) {
                    return Err(format!("rate {rate} must be a finite number >= 0"));
                }
                let lifetime = a.lifetime.ok_or("a churn actor needs `lifetime`")?;
                check_lifetime(&lifetime)?;
                Behaviour::Churn {
                    rate,
                    lifetime,
                    max_pages: a.max.map(|b| b.0.div_ceil(page_size)),
                }
            }
            ActorKind::Hold => {
                reject("rate", a.rate.is_some())?;
                reject("lifetime", a.lifetime.is_some())?;
                reject("max", a.max.is_some())?;
                let hold = a.hold.ok_or("a hold actor needs `hold` (bytes to hold)")?;
                let chunk = a
                    .chunk
                    .ok_or("a hold actor needs `chunk` (bytes per step)")?;
                if chunk.0 < page_size {
                    return Err(format!("chunk {chunk} is smaller than a page"));
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
