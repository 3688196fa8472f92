//! Checking the contiguous-allocation parts of a scenario (seed 003): CMA
//! areas (`cma` in `[machine]` or in a variant) and contig actors. Every
//! bad value is reported at its line with its key: `cma.size`,
//! `cma.order_per_bit`, `size`, `align`, `boundary`...

use pagealloc::{
    AllocFlags, CmaArea, CmaAreaProblem, CmaReservation, CmaSupport, Config, ConfigError,
    ContigConstraints, NodeId, Order, PageCount, Pfn,
};
use toml::Spanned;

use super::super::spec::{ActorSpec, AllocMode, CmaSpec, ContigVia};
use super::super::{
    Actor, Behaviour, CmaDecl, CmaPlacement, ContigBehaviour, ContigCall, Phase, ScenarioError,
    ScenarioErrorKind,
};
use super::{check_lifetime, within_memory, ActorProblem, Ctx, MachineSize};
use super::{MAX_NODES, MAX_TOTAL_STEPS};
use crate::error::Error;
use crate::machine::Machine;
use crate::size::ByteSize;

/// The most CMA areas a machine or variant may declare: Linux's
/// `CONFIG_CMA_AREAS` default with NUMA (each area is a bitmap the engine
/// keeps, and a scenario names each).
const MAX_CMA_AREAS: usize = 20;

impl Ctx<'_> {
    /// An `Invalid` error about `key`, at the line of `offset`.
    fn invalid(&self, offset: usize, key: &str, message: String) -> ScenarioError {
        ScenarioError {
            kind: ScenarioErrorKind::Invalid,
            ..self.bound(offset, key, message)
        }
    }

    /// Checks a `cma = [...]` list (`scope` is `[machine]` or the variant)
    /// and has the engine place the areas on `machine`; the first area it
    /// refuses is reported at its line.
    pub(super) fn cma_areas(
        &self,
        scope: &str,
        list: &Spanned<Vec<Spanned<CmaSpec>>>,
        machine: &Machine,
        size: &MachineSize,
    ) -> Result<Vec<CmaDecl>, ScenarioError> {
        let config = &machine.config;
        let page = config.page_size_bytes;
        let pb_order = config.pageblock_order;
        let pb_pages = 1u64 << pb_order;
        let pb_bytes = ByteSize(page << pb_order);
        if let Some(extra) = list.get_ref().get(MAX_CMA_AREAS) {
            return Err(self.bound(
                extra.span().start,
                "cma",
                format!("{scope}: `cma`: more than {MAX_CMA_AREAS} areas (Linux's CONFIG_CMA_AREAS with NUMA)"),
            ));
        }
        let mut out: Vec<CmaDecl> = Vec::new();
        for (i, item) in list.get_ref().iter().enumerate() {
            let c = item.get_ref();
            let name = c
                .name
                .as_ref()
                .map_or_else(|| format!("cma{i}"), |n| n.get_ref().clone());
            let name_at = c
                .name
                .as_ref()
                .map_or(item.span().start, |n| n.span().start);
            if name.is_empty() {
                return Err(self.invalid(
                    name_at,
                    "cma.name",
                    format!("{scope}: `cma.name` is empty"),
                ));
            }
            if out.iter().any(|d| d.name == name) {
                return Err(self.invalid(
                    name_at,
                    "cma.name",
                    format!("{scope}: two CMA areas are named `{name}`"),
                ));
            }
            let what = format!("{scope}: CMA area `{name}`");
            let bytes = *c.size.get_ref();
            let at = c.size.span().start;
            if bytes.0 == 0 || bytes.0 % pb_bytes.0 != 0 {
                return Err(self.invalid(
                    at,
                    "cma.size",
                    format!("{what}: `cma.size` = {bytes} is not a whole number of pageblocks ({pb_bytes} each)"),
                ));
            }
            if bytes > size.memory {
                return Err(self.bound(
                    at,
                    "cma.size",
                    format!(
                        "{what}: `cma.size` = {bytes} is more than the machine's memory ({})",
                        size.memory
                    ),
                ));
            }
            let nr_pages = PageCount(bytes.0 / page);
            let order_per_bit = match &c.order_per_bit {
                Some(o) if !(0..=i64::from(pb_order)).contains(o.get_ref()) => {
                    return Err(self.bound(
                        o.span().start,
                        "cma.order_per_bit",
                        format!(
                            "{what}: `cma.order_per_bit` = {} must be from 0 to {pb_order} (the pageblock order)",
                            o.get_ref()
                        ),
                    ))
                }
                Some(o) => *o.get_ref() as u8,
                None => 0,
            };
            let placement = match &c.start {
                Some(start) => {
                    let placed_by_size = [
                        ("cma.node", c.node.as_ref().map(|n| n.span().start)),
                        ("cma.align", c.align.as_ref().map(|a| a.span().start)),
                    ];
                    if let Some((key, Some(at))) =
                        placed_by_size.iter().find(|(_, at)| at.is_some())
                    {
                        return Err(self.invalid(
                            *at,
                            key,
                            format!("{what}: `{key}` places an area by size; this one has a fixed `start`"),
                        ));
                    }
                    let at = start.span().start;
                    let start = start.get_ref().0;
                    if start % pb_bytes.0 != 0 {
                        return Err(self.invalid(
                            at,
                            "cma.start",
                            format!(
                                "{what}: `cma.start` = {} is not pageblock-aligned ({pb_bytes})",
                                ByteSize(start)
                            ),
                        ));
                    }
                    let start_pfn = start / page;
                    if start_pfn.saturating_add(nr_pages.0) > size.end_pfn {
                        return Err(self.bound(
                            at,
                            "cma.start",
                            format!(
                                "{what}: `cma.start` = {}: the area runs past the end of memory ({})",
                                ByteSize(start),
                                ByteSize(size.end_pfn * page)
                            ),
                        ));
                    }
                    CmaPlacement::Fixed(CmaArea {
                        start: Pfn(start_pfn),
                        nr_pages,
                        order_per_bit,
                    })
                }
                None => {
                    let node = match &c.node {
                        Some(n) => self.node(size, n).map_err(|detail| {
                            self.bound(
                                n.span().start,
                                "cma.node",
                                format!("{what}: `cma.node` {detail}"),
                            )
                        })?,
                        None => NodeId(0),
                    };
                    let align = match &c.align {
                        Some(a) => {
                            let b = a.get_ref().0;
                            if b < page || !b.is_power_of_two() {
                                return Err(self.invalid(
                                    a.span().start,
                                    "cma.align",
                                    format!(
                                        "{what}: `cma.align` = {} must be a power of two of at least a page ({})",
                                        a.get_ref(),
                                        ByteSize(page)
                                    ),
                                ));
                            }
                            if *a.get_ref() > size.memory {
                                return Err(self.bound(
                                    a.span().start,
                                    "cma.align",
                                    format!(
                                        "{what}: `cma.align` = {} is more than the machine's memory ({})",
                                        a.get_ref(),
                                        size.memory
                                    ),
                                ));
                            }
                            b / page
                        }
                        None => pb_pages,
                    };
                    CmaPlacement::Reserved(CmaReservation {
                        nr_pages,
                        align: PageCount(align),
                        node,
                        order_per_bit,
                    })
                }
            };
            out.push(CmaDecl { name, placement });
        }
        // The engine places the areas (zones, holes, overlaps, room on the
        // node): the first it refuses, at its line.
        let build = |areas: &[CmaDecl]| {
            machine.allocator_with(|c| CmaDecl::configure(areas, c, CmaSupport::Enabled))
        };
        if build(&out).is_err() {
            for n in 1..=out.len() {
                let Err(e) = build(&out[..n]) else {
                    continue;
                };
                let kind = match e {
                    Error::Machine(ConfigError::CmaArea {
                        problem: CmaAreaProblem::NoRoom,
                        ..
                    }) => ScenarioErrorKind::OutOfBounds,
                    _ => ScenarioErrorKind::Invalid,
                };
                return Err(ScenarioError {
                    kind,
                    ..self.bound(
                        list.get_ref()[n - 1].span().start,
                        "cma",
                        format!("{scope}: CMA area `{}`: {e}", out[n - 1].name),
                    )
                });
            }
        }
        Ok(out)
    }

    /// A node id given in the file, if the machine has memory there.
    fn node(&self, size: &MachineSize, n: &Spanned<i64>) -> Result<NodeId, String> {
        let v = *n.get_ref();
        if !(0..i64::from(MAX_NODES)).contains(&v) {
            return Err(format!(
                "= {v} is not below {MAX_NODES} (Linux's MAX_NUMNODES on x86-64)"
            ));
        }
        let node = NodeId(v as u16);
        if !size.zones.iter().any(|(nd, _)| *nd == node) {
            return Err(format!("= {v}: the machine has no memory on node {v}"));
        }
        Ok(node)
    }

    /// Checks a contig actor (`kind = "contig"`): its request, its timing
    /// and the engine call it makes (`via`), against the machine and the
    /// variant's CMA areas `cma`.
    pub(super) fn contig_actor(
        &self,
        name: &str,
        a: &ActorSpec,
        phases: &[Phase],
        config: &Config,
        size: &MachineSize,
        cma: &[CmaDecl],
    ) -> Result<Actor, ActorProblem> {
        let not_contig = [
            ("migratetype", a.migratetype.is_some()),
            ("gfp", a.gfp.is_some()),
            ("rate", a.rate.is_some()),
            ("orders", a.orders.is_some()),
            ("hold", a.hold.is_some()),
            ("chunk", a.chunk.is_some()),
            ("release", a.release.is_some()),
            ("alloc_mode", a.alloc_mode.is_some()),
            ("reclaimable", a.reclaimable.is_some()),
        ];
        if let Some((key, _)) = not_contig.iter().find(|(_, given)| *given) {
            return Err(format!("`{key}` does not apply to a contig actor").into());
        }
        let (start, stop) = self.active_steps(a, phases)?;
        let page = config.page_size_bytes;
        let via = a.via.unwrap_or_default();
        let not_for_via = match via {
            ContigVia::Range => vec![
                ("boundary", a.boundary.is_some()),
                ("node", a.node.is_some()),
                ("zone", a.zone.is_some()),
                ("area", a.area.is_some()),
            ],
            ContigVia::Pages => vec![("area", a.area.is_some())],
            ContigVia::Cma => vec![
                ("boundary", a.boundary.is_some()),
                ("low", a.low.is_some()),
                ("high", a.high.is_some()),
                ("node", a.node.is_some()),
                ("zone", a.zone.is_some()),
            ],
        };
        if let Some((key, _)) = not_for_via.iter().find(|(_, given)| *given) {
            return Err(format!(
                "`{key}` does not apply to via = \"{}\" (see docs/pagesim.md, contig actors)",
                via.name()
            )
            .into());
        }
        let bytes = within_memory(size, "size", &a.size)?
            .ok_or("a contig actor needs `size` (bytes per request)")?;
        let size_at = a.size.as_ref().map_or(0, |s| s.span().start);
        if bytes.0 < page {
            return Err(ActorProblem::bound(
                size_at,
                "size",
                format!("= {bytes} is less than a page ({})", ByteSize(page)),
            ));
        }
        let nr_pages = bytes.0.div_ceil(page);
        let every = a
            .every
            .as_ref()
            .ok_or("a contig actor needs `every` (steps between requests)")?;
        if !(1..=MAX_TOTAL_STEPS as i64).contains(every.get_ref()) {
            return Err(ActorProblem::bound(
                every.span().start,
                "every",
                format!(
                    "= {} must be from 1 to {MAX_TOTAL_STEPS} (steps between requests)",
                    every.get_ref()
                ),
            ));
        }
        let lifetime = a
            .lifetime
            .ok_or("a contig actor needs `lifetime` (how long it holds each run)")?;
        check_lifetime(&lifetime)?;
        let max_pages = within_memory(size, "max", &a.max)?.map(|b| b.0.div_ceil(page));
        let align_pages = match &a.align {
            Some(al) => {
                let b = al.get_ref().0;
                if b < page || !b.is_power_of_two() {
                    return Err(ActorProblem::invalid(
                        al.span().start,
                        "align",
                        format!(
                            "= {} must be a power of two of at least a page ({})",
                            al.get_ref(),
                            ByteSize(page)
                        ),
                    ));
                }
                within_memory(size, "align", &a.align)?;
                b / page
            }
            // Isolation takes whole pageblocks, and each candidate an
            // unaligned search tries costs the engine a walk of the run.
            None => 1 << config.pageblock_order,
        };
        let (low, high) = self.window(a, page, nr_pages, size)?;
        let call = match via {
            ContigVia::Range => {
                let first = low.div_ceil(align_pages) * align_pages;
                if first + nr_pages > high {
                    let at = a.align.as_ref().map_or(size_at, |s| s.span().start);
                    let key = if a.align.is_some() { "align" } else { "size" };
                    return Err(ActorProblem::invalid(
                        at,
                        key,
                        format!(
                            "= {}: no start aligned to {} leaves the run of {nr_pages} pages inside low..high",
                            ByteSize(if a.align.is_some() { align_pages * page } else { bytes.0 }),
                            ByteSize(align_pages * page)
                        ),
                    ));
                }
                ContigCall::Range {
                    align_pages,
                    low: Pfn(low),
                    high: Pfn(high),
                }
            }
            ContigVia::Pages => {
                let boundary = match &a.boundary {
                    Some(bd) => {
                        let b = bd.get_ref().0;
                        if b < page || !b.is_power_of_two() || b / page < nr_pages {
                            return Err(ActorProblem::invalid(
                                bd.span().start,
                                "boundary",
                                format!(
                                    "= {} must be a power of two no smaller than `size` ({bytes}): a run may not cross it",
                                    bd.get_ref()
                                ),
                            ));
                        }
                        Some(PageCount(b / page))
                    }
                    None => None,
                };
                let node =
                    match &a.node {
                        Some(n) => Some(self.node(size, n).map_err(|detail| {
                            ActorProblem::bound(n.span().start, "node", detail)
                        })?),
                        None => None,
                    };
                if let Some(z) = a.zone {
                    let t = z.zone_type();
                    if !size
                        .zones
                        .iter()
                        .any(|&(nd, zt)| zt == t && node.is_none_or(|n| n == nd))
                    {
                        return Err(format!(
                            "`zone`: the machine has no {} zone{}",
                            t.linux_name(),
                            node.map_or(String::new(), |n| format!(" on node {}", n.0))
                        )
                        .into());
                    }
                }
                ContigCall::Pages(ContigConstraints {
                    node,
                    zone: a.zone.map(|z| z.zone_type()),
                    low: Pfn(low),
                    high: Pfn(high),
                    align: PageCount(align_pages),
                    boundary,
                })
            }
            ContigVia::Cma => {
                if cma.is_empty() {
                    return Err(
                        "via = \"cma\" needs a CMA area: give `cma` in [machine] or in the variant"
                            .into(),
                    );
                }
                let index = match &a.area {
                    Some(n) => {
                        cma.iter()
                            .position(|d| d.name == *n.get_ref())
                            .ok_or_else(|| {
                                let known: Vec<&str> =
                                    cma.iter().map(|d| d.name.as_str()).collect();
                                ActorProblem::invalid(
                                    n.span().start,
                                    "area",
                                    format!(
                                        "= \"{}\" names no CMA area (areas: {})",
                                        n.get_ref(),
                                        known.join(", ")
                                    ),
                                )
                            })?
                    }
                    None => 0,
                };
                let decl = &cma[index];
                let area_pages = decl.nr_pages().0;
                if nr_pages > area_pages {
                    return Err(ActorProblem::bound(
                        size_at,
                        "size",
                        format!(
                            "= {bytes} is more than CMA area `{}` ({})",
                            decl.name,
                            ByteSize(area_pages * page)
                        ),
                    ));
                }
                let align = Order::new(align_pages.trailing_zeros() as u8)
                    .filter(|_| align_pages <= area_pages)
                    .ok_or_else(|| {
                        ActorProblem::bound(
                            a.align.as_ref().map_or(size_at, |s| s.span().start),
                            "align",
                            format!(
                                "= {} is more than CMA area `{}` ({}) or above 2^{} pages",
                                ByteSize(align_pages * page),
                                decl.name,
                                ByteSize(area_pages * page),
                                Order::LIMIT.get()
                            ),
                        )
                    })?;
                ContigCall::Cma {
                    area: CmaDecl::engine_indices(cma)[index],
                    name: decl.name.clone(),
                    align,
                }
            }
        };
        Ok(Actor {
            name: name.to_owned(),
            flags: AllocFlags::empty(),
            behaviour: Behaviour::Contig(ContigBehaviour {
                nr_pages,
                every: *every.get_ref() as u64,
                lifetime,
                max_pages,
                call,
            }),
            orders: vec![(Order::ZERO, 1.0)],
            alloc_mode: AllocMode::Plain,
            reclaimable: false,
            start,
            stop,
        })
    }

    /// A contig actor's `low..high` window, in frames: `low` rounded up to
    /// a page, `high` down, the defaults the whole machine.
    fn window(
        &self,
        a: &ActorSpec,
        page: u64,
        nr_pages: u64,
        size: &MachineSize,
    ) -> Result<(u64, u64), ActorProblem> {
        let end = size.end_pfn;
        let low = a.low.as_ref().map_or(0, |l| l.get_ref().0.div_ceil(page));
        let high = a.high.as_ref().map_or(end, |h| h.get_ref().0 / page);
        if let Some(h) = &a.high {
            if high > end {
                return Err(ActorProblem::bound(
                    h.span().start,
                    "high",
                    format!(
                        "= {} is beyond the end of memory ({})",
                        h.get_ref(),
                        ByteSize(end * page)
                    ),
                ));
            }
        }
        if high.saturating_sub(low) < nr_pages {
            let (key, at) = match (&a.low, &a.high) {
                (Some(l), _) => ("low", l.span().start),
                (None, Some(h)) => ("high", h.span().start),
                (None, None) => ("size", a.size.as_ref().map_or(0, |s| s.span().start)),
            };
            return Err(ActorProblem::invalid(
                at,
                key,
                format!(
                    "leaves a window low..high of {} pages, fewer than the {nr_pages} pages of `size`",
                    high.saturating_sub(low)
                ),
            ));
        }
        Ok((low, high))
    }
}
