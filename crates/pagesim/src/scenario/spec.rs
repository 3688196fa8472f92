//! The scenario file as written: serde structs with `deny_unknown_fields`,
//! every field optional where a variant may override it. Checking happens
//! in [`super::check`].

use std::collections::BTreeMap;

use pagealloc::{AllocFlags, Confinement, Packing, ZoneType};
use serde::Deserialize;
use toml::Spanned;

use crate::size::ByteSize;

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
    pub(super) fn flags(self) -> AllocFlags {
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
    /// Asks for `size` bytes of contiguous memory every `every` steps and
    /// gives each run back after its lifetime (seed 003).
    Contig,
}

impl ActorKind {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Churn => "churn",
            ActorKind::Hold => "hold",
            ActorKind::Contig => "contig",
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
    /// Order-0 pages packed into pageblocks the migratetype already owns
    /// (seed 001's `alloc_pages_compact`, `Allocator::alloc_packed`), whole
    /// free pageblocks claimed when those run out; a hold actor asks for
    /// each chunk in one call. What packing cannot serve is allocated
    /// plainly. Orders above 0 are always plain.
    Packed,
}

/// Which engine call a contig actor makes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContigVia {
    /// `alloc_contig_range` on one range drawn at random in `low..high`
    /// (a caller that needs a particular range: memory hot-unplug,
    /// virtio-mem).
    Range,
    /// `alloc_contig_pages`: anywhere the constraints allow (Linux's
    /// gigantic pages, a DMA buffer).
    #[default]
    Pages,
    /// `cma_alloc` from a CMA area of the machine.
    Cma,
}

impl ContigVia {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ContigVia::Range => "range",
            ContigVia::Pages => "pages",
            ContigVia::Cma => "cma",
        }
    }
}

/// A zone type a contig actor may restrict itself to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneName {
    /// ZONE_DMA.
    Dma,
    /// ZONE_DMA32.
    Dma32,
    /// ZONE_NORMAL.
    Normal,
    /// ZONE_MOVABLE.
    Movable,
}

impl ZoneName {
    /// The engine's zone type.
    pub fn zone_type(self) -> ZoneType {
        match self {
            ZoneName::Dma => ZoneType::Dma,
            ZoneName::Dma32 => ZoneType::Dma32,
            ZoneName::Normal => ZoneType::Normal,
            ZoneName::Movable => ZoneType::Movable,
        }
    }
}

/// The engine's packing policy in a variant (`pagealloc::Packing`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackingName {
    /// Linux's placement.
    #[default]
    Off,
    /// Every unmovable order-0 allocation is packed first.
    Unmovable,
    /// Every unmovable and reclaimable order-0 allocation is packed first.
    UnmovableAndReclaimable,
    /// Every unmovable and reclaimable allocation of order 0 to 3 is packed
    /// first.
    SmallOrders,
}

impl PackingName {
    /// The engine's policy.
    pub fn packing(self) -> Packing {
        match self {
            PackingName::Off => Packing::Off,
            PackingName::Unmovable => Packing::Unmovable,
            PackingName::UnmovableAndReclaimable => Packing::UnmovableAndReclaimable,
            PackingName::SmallOrders => Packing::SmallOrders,
        }
    }
}

/// The engine's confinement policy in a variant (`pagealloc::Confinement`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfinementName {
    /// Linux's placement.
    #[default]
    Off,
    /// Unmovable and reclaimable memory at the low end of each zone.
    LowEnd,
}

impl ConfinementName {
    /// The engine's policy.
    pub fn confinement(self) -> Confinement {
        match self {
            ConfinementName::Off => Confinement::Off,
            ConfinementName::LowEnd => Confinement::LowEnd,
        }
    }
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
        if let Some(pair) = out.windows(2).find(|p| p[0].0 == p[1].0) {
            return Err(D::Error::custom(format!(
                "order {} is given twice",
                pair[0].0
            )));
        }
        if !out.iter().any(|(_, w)| *w > 0.0) {
            return Err(D::Error::custom("no order has a positive weight"));
        }
        // Weights are normalised by their sum, which must be a number.
        if !out.iter().map(|(_, w)| w).sum::<f64>().is_finite() {
            return Err(D::Error::custom(
                "the weights add up to more than the largest number; use smaller ones",
            ));
        }
        Ok(OrderWeights(out))
    }
}

/// `[[actor]]` as written; also a variant's override of one (where `name`
/// must be absent and every field given replaces the base's).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    pub(super) name: Option<String>,
    pub(super) kind: Option<ActorKind>,
    pub(super) migratetype: Option<MigrateName>,
    pub(super) gfp: Option<Spanned<String>>,
    pub(super) rate: Option<Spanned<f64>>,
    pub(super) orders: Option<OrderWeights>,
    pub(super) lifetime: Option<Lifetime>,
    pub(super) max: Option<Spanned<ByteSize>>,
    pub(super) hold: Option<Spanned<ByteSize>>,
    pub(super) chunk: Option<Spanned<ByteSize>>,
    pub(super) release: Option<Spanned<String>>,
    pub(super) alloc_mode: Option<AllocMode>,
    pub(super) reclaimable: Option<bool>,
    pub(super) start: Option<Spanned<String>>,
    pub(super) stop: Option<Spanned<String>>,
    pub(super) enabled: Option<bool>,
    // Contig actors (seed 003). Integers are read wide and bounded in
    // `check`, so an out-of-range value is an error with its key.
    pub(super) size: Option<Spanned<ByteSize>>,
    pub(super) every: Option<Spanned<i64>>,
    pub(super) via: Option<ContigVia>,
    pub(super) align: Option<Spanned<ByteSize>>,
    pub(super) boundary: Option<Spanned<ByteSize>>,
    pub(super) low: Option<Spanned<ByteSize>>,
    pub(super) high: Option<Spanned<ByteSize>>,
    pub(super) node: Option<Spanned<i64>>,
    pub(super) zone: Option<ZoneName>,
    pub(super) area: Option<Spanned<String>>,
}

impl ActorSpec {
    /// Whether this spec gives `key`, one of the keys whose values are
    /// checked with their line (`rate`, `max`, `hold`, `chunk`, and the
    /// contig keys).
    pub(super) fn gives(&self, key: &str) -> bool {
        match key {
            "rate" => self.rate.is_some(),
            "max" => self.max.is_some(),
            "hold" => self.hold.is_some(),
            "chunk" => self.chunk.is_some(),
            "size" => self.size.is_some(),
            "every" => self.every.is_some(),
            "align" => self.align.is_some(),
            "boundary" => self.boundary.is_some(),
            "low" => self.low.is_some(),
            "high" => self.high.is_some(),
            "node" => self.node.is_some(),
            "area" => self.area.is_some(),
            _ => false,
        }
    }

    /// The first key given that only a contig actor takes, if any.
    pub(super) fn contig_key(&self) -> Option<&'static str> {
        [
            ("size", self.size.is_some()),
            ("every", self.every.is_some()),
            ("via", self.via.is_some()),
            ("align", self.align.is_some()),
            ("boundary", self.boundary.is_some()),
            ("low", self.low.is_some()),
            ("high", self.high.is_some()),
            ("node", self.node.is_some()),
            ("zone", self.zone.is_some()),
            ("area", self.area.is_some()),
        ]
        .into_iter()
        .find_map(|(key, given)| given.then_some(key))
    }

    /// Replaces every field the patch gives.
    pub(super) fn apply(&mut self, patch: &ActorSpec) {
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
            enabled,
            size,
            every,
            via,
            align,
            boundary,
            low,
            high,
            node,
            zone,
            area
        );
    }
}

/// `[reclaim]` (all fields optional, so a variant can override one).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReclaimSpec {
    pub(super) enabled: Option<bool>,
    pub(super) types: Option<Vec<MigrateName>>,
}

/// `[machine]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MachineSpec {
    pub(super) memory: Option<Spanned<ByteSize>>,
    pub(super) ranges: Option<Spanned<Vec<Spanned<RangeSpec>>>>,
    pub(super) page_size: Option<Spanned<ByteSize>>,
    pub(super) orders: Option<Spanned<u8>>,
    pub(super) pageblock_order: Option<Spanned<u8>>,
    pub(super) zones: Option<ZoneLayoutName>,
    pub(super) min_free_kbytes: Option<Spanned<u64>>,
    pub(super) watermark_scale_factor: Option<Spanned<u32>>,
    pub(super) cma: Option<Spanned<Vec<Spanned<CmaSpec>>>>,
}

/// One CMA area, `{ name = "camera", size = "64M", node = 0, align = "4M",
/// order_per_bit = 0 }` (placed at the top of the node's memory, Linux
/// `cma_declare_contiguous_nid`) or `{ start = "1G", size = "64M" }` (a
/// fixed range). Integers are read wide and bounded in [`super::check`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CmaSpec {
    pub(super) name: Option<Spanned<String>>,
    pub(super) size: Spanned<ByteSize>,
    pub(super) start: Option<Spanned<ByteSize>>,
    pub(super) node: Option<Spanned<i64>>,
    pub(super) align: Option<Spanned<ByteSize>>,
    pub(super) order_per_bit: Option<Spanned<i64>>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum ZoneLayoutName {
    /// One Normal zone.
    Normal,
    /// DMA below 16 MiB, DMA32 below 4 GiB, Normal above.
    X86_64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RangeSpec {
    pub(super) start: ByteSize,
    pub(super) size: ByteSize,
    #[serde(default)]
    pub(super) node: u16,
}

/// `[[phase]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PhaseSpec {
    pub(super) name: String,
    pub(super) steps: Spanned<u64>,
    pub(super) snapshot: Option<Spanned<String>>,
}

/// `[[variant]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VariantSpec {
    pub(super) name: String,
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) actor: BTreeMap<String, Spanned<ActorSpec>>,
    pub(super) reclaim: Option<ReclaimSpec>,
    pub(super) packing: Option<PackingName>,
    pub(super) confinement: Option<ConfinementName>,
    pub(super) reporting: Option<Spanned<ReportingSpec>>,
    pub(super) cma: Option<Spanned<Vec<Spanned<CmaSpec>>>>,
    pub(super) compaction: Option<Spanned<CompactionSpec>>,
    /// Memory regions (seed 000) of this size, e.g. `regions = "64M"`.
    pub(super) regions: Option<Spanned<ByteSize>>,
}

/// A variant's `compaction = { enabled = true, direct = true,
/// proactiveness = 20, every = 10 }` (each optional; absent: on with these
/// defaults). Integers are read wide and bounded in [`super::check`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CompactionSpec {
    pub(super) enabled: Option<bool>,
    pub(super) direct: Option<bool>,
    pub(super) proactiveness: Option<Spanned<i64>>,
    pub(super) every: Option<Spanned<i64>>,
}

/// A variant's `reporting = { order = 9, capacity = 32, budget_fraction =
/// 16, every = 20 }`: free page reporting on, with these values (each
/// optional). Integers are read wide and bounded in [`super::check`], so an
/// out-of-range value is an error with its key rather than a type error.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportingSpec {
    pub(super) order: Option<Spanned<i64>>,
    pub(super) capacity: Option<Spanned<i64>>,
    pub(super) budget_fraction: Option<Spanned<i64>>,
    pub(super) every: Option<Spanned<i64>>,
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioFile {
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
    pub(super) seed: u64,
    pub(super) sample_every: Option<Spanned<u64>>,
    pub(super) probe_orders: Option<Spanned<Vec<u8>>>,
    pub(super) machine: Spanned<MachineSpec>,
    #[serde(default)]
    pub(super) reclaim: ReclaimSpec,
    pub(super) phase: Vec<Spanned<PhaseSpec>>,
    pub(super) actor: Vec<Spanned<ActorSpec>>,
    #[serde(default)]
    pub(super) variant: Vec<Spanned<VariantSpec>>,
}
