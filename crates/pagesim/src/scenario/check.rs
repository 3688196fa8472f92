//! Checking a parsed scenario file and building the [`Scenario`] the
//! simulator runs: phase references, order ranges, actor fields that apply
//! to the actor's kind, variant overrides merged into the base actors.
//! Errors carry the line of what they are about.

use std::collections::BTreeMap;

use pagealloc::{Config, MemRange, MemoryMap, MinFree, NodeId, Order, Pfn, ZoneBounds};
use toml::Spanned;

use super::spec::{
    ActorKind, ActorSpec, Lifetime, MachineSpec, MigrateName, OrderWeights, PhaseSpec,
    ScenarioFile, VariantSpec, ZoneLayoutName,
};
use super::{Actor, Behaviour, Phase, Reclaim, Scenario, ScenarioError, Variant};
use crate::gfp::{parse_gfp, Strictness};
use crate::machine::Machine;
use crate::size::ByteSize;

/// The most steps a scenario may have (a sanity bound: a step costs at
/// least a few nanoseconds per actor).
const MAX_TOTAL_STEPS: u64 = 1 << 40;
/// The most blocks an actor may ask for per step.
const MAX_RATE: f64 = 1e7;

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
                packing: None,
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
        emit_trace: None,
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
            if steps > MAX_TOTAL_STEPS - start {
                return Err(self.err(
                    Some(s.span().start),
                    format!("the phases add up to more than {MAX_TOTAL_STEPS} steps"),
                ));
            }
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
            packing: spec.packing.unwrap_or_default().packing(),
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
                if !(rate.is_finite() && (0.0..=MAX_RATE).contains(&rate)) {
                    return Err(format!(
                        "rate {rate:?} must be a number from 0 to {MAX_RATE}"
                    ));
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
