//! The human-readable reports: a short header, side-by-side tables (one
//! column per policy or variant) and the Linux `/proc` files verbatim, as
//! the engine's `Display` renders them.

use std::fmt::{self, Write as _};

use crate::census::{MixedPageblocks, UnmovableSpread};
use crate::report::{
    ActorStats, CmaAreaReport, CompactionReport, ContigStats, EngineStats, HeldPages, PolicyReport,
    ReplayReport, ReportingPoint, RequestRate, ScenarioReport, Snapshot, VariantReport,
};

/// The first order whose free blocks a snapshot summary lists (seed 001
/// asks whether order-3 allocations can still succeed).
const SUMMARY_FIRST_ORDER: usize = 3;

/// Rows with one value per column, rendered aligned.
pub struct Table {
    columns: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
}

/// Width of the label column.
const LABEL_WIDTH: usize = 46;
/// Narrowest value column.
const MIN_COLUMN_WIDTH: usize = 12;

impl Table {
    /// A table with these column headings.
    pub fn new(columns: impl IntoIterator<Item = String>) -> Table {
        Table {
            columns: columns.into_iter().collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, label: impl Into<String>, values: impl IntoIterator<Item = String>) {
        self.rows.push((label.into(), values.into_iter().collect()));
    }

    /// Adds a heading row without values.
    pub fn heading(&mut self, label: impl Into<String>) {
        self.rows.push((label.into(), Vec::new()));
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                let values = self
                    .rows
                    .iter()
                    .filter_map(|(_, v)| v.get(i))
                    .map(String::len);
                values
                    .chain([self.columns[i].len(), MIN_COLUMN_WIDTH])
                    .max()
                    .unwrap_or(MIN_COLUMN_WIDTH)
            })
            .collect();
        // Labels line up at LABEL_WIDTH, or past the longest label.
        let label_width = self
            .rows
            .iter()
            .map(|(label, _)| label.chars().count())
            .chain([LABEL_WIDTH])
            .max()
            .unwrap_or(LABEL_WIDTH);
        write!(f, "{:label_width$}", "")?;
        for (c, w) in self.columns.iter().zip(&widths) {
            write!(f, " {c:>w$}")?;
        }
        writeln!(f)?;
        for (label, values) in &self.rows {
            let mut line = format!("{label:label_width$}");
            for (v, w) in values.iter().zip(&widths) {
                let _ = write!(line, " {v:>w$}");
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Per-order counts as `o0:n o1:n ...`, leaving out zeros.
pub fn per_order(counts: &[u64]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(o, n)| format!("o{o}:{n}"))
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    }
}

/// One row per order at which any column has a non-zero count, labelled
/// `{indent}order N`.
pub fn per_order_rows(t: &mut Table, indent: &str, columns: &[Option<&[u64]>]) {
    let nr = columns.iter().flatten().map(|c| c.len()).max().unwrap_or(0);
    for o in 0..nr {
        let at = |c: &Option<&[u64]>| c.and_then(|c| c.get(o).copied());
        if columns.iter().all(|c| at(c).unwrap_or(0) == 0) {
            continue;
        }
        t.row(
            format!("{indent}order {o}"),
            columns
                .iter()
                .map(|c| at(c).map_or("-".to_owned(), |n| n.to_string())),
        );
    }
}

/// An index in thousandths as Linux prints it (`0.123`).
pub fn thousandths(v: i32) -> String {
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", v.abs() / 1000, v.abs() % 1000)
}

/// Adds the mixed-pageblock rows.
pub fn mixed_rows(t: &mut Table, label: &str, values: &[MixedPageblocks]) {
    t.row(label, values.iter().map(|m| m.total.to_string()));
    t.row(
        "  unmovable/reclaimable in movable",
        values.iter().map(|m| m.unmovable_in_movable.to_string()),
    );
    t.row(
        "  movable in unmovable/reclaimable",
        values.iter().map(|m| m.movable_in_unmovable.to_string()),
    );
    t.row(
        "  unmovable with reclaimable",
        values.iter().map(|m| m.unmovable_reclaimable.to_string()),
    );
}

/// Adds the unmovable-spread rows: pageblocks holding unmovable or
/// reclaimable pages, the fewest that could, their ratio.
pub fn spread_rows(t: &mut Table, when: &str, values: &[UnmovableSpread], pages_per_block: u64) {
    t.row(
        format!("pageblocks with unmovable/reclaimable{when}"),
        values.iter().map(|s| s.pageblocks.to_string()),
    );
    t.row(
        format!("  minimum possible (their pages / {pages_per_block})"),
        values.iter().map(|s| s.min_pageblocks.to_string()),
    );
    t.row(
        "  spread ratio",
        values.iter().map(UnmovableSpread::ratio_text),
    );
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pagesim replay")?;
        for i in &self.inputs {
            writeln!(
                f,
                "  input    {} ({}, {} bytes, {} lines)",
                i.path.display(),
                i.format.name(),
                i.file_bytes,
                i.lines
            )?;
        }
        writeln!(f, "  machine  {}", self.machine.describe())?;
        match self.policies.first().and_then(|p| p.start.as_ref()) {
            Some(s) => writeln!(
                f,
                "  start    Linux's state before the trace, from {} ({} pages allocated before it: untraced memory)",
                s.origin, s.untraced_pages
            )?,
            None => writeln!(f, "  start    empty memory (every page free)")?,
        }
        if let Some(a) = self
            .policies
            .first()
            .and_then(|p| p.free_vs_linux_after.as_ref())
        {
            writeln!(
                f,
                "  after    Linux's free pages after the trace, from {}",
                a.origin
            )?;
        }
        writeln!(
            f,
            "  replayed {} events in {:.2} s ({:.2} M events/s)",
            self.events.events(),
            self.elapsed_s,
            self.events_per_s / 1e6
        )?;
        for p in &self.policies {
            if let Some(t) = &p.emitted_trace {
                writeln!(
                    f,
                    "  emitted  policy {}: {} ({} lines)",
                    p.name,
                    t.path.display(),
                    t.lines
                )?;
            }
        }
        let e = &self.events;
        writeln!(f, "\nevents in the trace")?;
        writeln!(
            f,
            "  mm_page_alloc          {:>10}  {}",
            e.mm_page_alloc,
            per_order(&e.alloc_by_order)
        )?;
        writeln!(
            f,
            "    by migratetype                   unmovable {} movable {} reclaimable {}",
            e.alloc_by_migratetype[0], e.alloc_by_migratetype[1], e.alloc_by_migratetype[2]
        )?;
        writeln!(
            f,
            "    failed in Linux      {:>10}  (NULL page: not replayed)",
            e.linux_alloc_failures
        )?;
        writeln!(
            f,
            "  mm_page_free           {:>10}  replayed as frees",
            e.mm_page_free
        )?;
        writeln!(
            f,
            "  mm_page_free_batched   {:>10}  the same frees again: counted once",
            e.mm_page_free_batched
        )?;
        writeln!(
            f,
            "  mm_page_pcpu_drain     {:>10}  per-CPU lists to buddy: not frees",
            e.mm_page_pcpu_drain
        )?;
        writeln!(
            f,
            "  mm_page_alloc_extfrag  {:>10}  Linux fallbacks (fragmenting {}, ownership changes {})",
            e.mm_page_alloc_extfrag, e.extfrag_fragmenting, e.extfrag_change_ownership
        )?;
        writeln!(f, "  other events           {:>10}", e.other_events)?;
        writeln!(f, "  lost events            {:>10}", e.lost_events)?;
        if e.cpu_folded > 0 {
            writeln!(
                f,
                "  on CPUs beyond {:<7} {:>10}  run on CPU n % {} (--cpus)",
                self.machine.nr_cpus, e.cpu_folded, self.machine.nr_cpus
            )?;
        }
        writeln!(f, "  comment lines          {:>10}", e.comments)?;
        if e.malformed_skipped > 0 {
            writeln!(f, "  malformed (skipped)    {:>10}", e.malformed_skipped)?;
            for ex in &e.malformed_examples {
                writeln!(f, "    {ex}")?;
            }
        }
        writeln!(f)?;
        let pages_per_block = 1u64 << self.machine.pageblock_order;
        write!(f, "{}", policy_table(&self.policies, pages_per_block))?;
        for p in &self.policies {
            writeln!(f, "\n== policy {}: /proc/buddyinfo at the end ==", p.name)?;
            write!(f, "{}", p.buddyinfo)?;
            writeln!(
                f,
                "\n== policy {}: /proc/pagetypeinfo at the end ==",
                p.name
            )?;
            write!(f, "{}", p.pagetypeinfo)?;
        }
        Ok(())
    }
}

fn policy_table(policies: &[PolicyReport], pages_per_block: u64) -> Table {
    let mut t = Table::new(policies.iter().map(|p| format!("policy {}", p.name)));
    let col = |g: &dyn Fn(&PolicyReport) -> String| policies.iter().map(g).collect::<Vec<_>>();
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    t.row(
        "allocations served",
        col(&|p| sum(&p.counts.allocs).to_string()),
    );
    t.row(
        "allocation failures",
        col(&|p| sum(&p.counts.alloc_failures).to_string()),
    );
    let failures: Vec<Option<&[u64]>> = policies
        .iter()
        .map(|p| Some(p.counts.alloc_failures.as_slice()))
        .collect();
    per_order_rows(&mut t, "  ", &failures);
    t.row(
        "frees of traced allocations",
        col(&|p| p.counts.frees.to_string()),
    );
    t.row(
        "unknown-pfn frees (allocated before trace)",
        col(&|p| p.counts.unknown_pfn_frees.to_string()),
    );
    if policies.iter().any(|p| p.start.is_some()) {
        t.row(
            "  released untraced memory",
            col(&|p| p.counts.untraced_frees.to_string()),
        );
        t.row(
            "    pages released",
            col(&|p| p.counts.untraced_pages_released.to_string()),
        );
        t.row(
            "    of another type than the trace suggests",
            col(&|p| p.counts.untraced_other_type.to_string()),
        );
        t.row(
            "    made of smaller blocks",
            col(&|p| p.counts.untraced_composed.to_string()),
        );
        t.row(
            "    fewer pages than freed (zone ran out)",
            col(&|p| p.counts.untraced_short.to_string()),
        );
        t.row(
            "  nothing left to release",
            col(&|p| p.counts.untraced_unmatched.to_string()),
        );
    }
    t.row(
        "frees of failed allocations (ignored)",
        col(&|p| p.counts.failed_alloc_frees_ignored.to_string()),
    );
    t.row(
        "split-page piece frees",
        col(&|p| p.counts.split_piece_frees.to_string()),
    );
    t.row("  blocks split", col(&|p| p.counts.split_pages.to_string()));
    t.row(
        "frees larger than the allocation",
        col(&|p| p.counts.oversized_frees.to_string()),
    );
    t.row(
        "implicit frees (pfn reallocated unfreed)",
        col(&|p| p.counts.implicit_frees.to_string()),
    );
    t.row(
        "pieces freed twice in the trace",
        col(&|p| p.counts.repeated_piece_frees.to_string()),
    );
    t.row("double frees", col(&|p| p.counts.double_frees.to_string()));
    t.row(
        "other free errors",
        col(&|p| p.counts.other_free_errors.to_string()),
    );
    t.row(
        "fallback events (ours)",
        col(&|p| p.engine.extfrag_events.to_string()),
    );
    t.row(
        "  fragmenting",
        col(&|p| p.engine.extfrag_fragmenting.to_string()),
    );
    t.row(
        "  pageblock claims",
        col(&|p| p.engine.pageblock_claims.to_string()),
    );
    let confines = policies.iter().any(|p| p.engine.confined_claims > 0);
    confinement_rows(&mut t, confines, &|field| {
        col(&|p| field(&p.engine).to_string())
    });
    t.row(
        "fallback events (Linux, mm_page_alloc_extfrag)",
        col(&|p| p.linux_extfrag_events.to_string()),
    );
    t.row(
        "requests that compacted (compact_stall)",
        col(&|p| p.engine.compact_stall.to_string()),
    );
    t.row(
        "  served after compaction (compact_success)",
        col(&|p| p.engine.compact_success.to_string()),
    );
    t.row(
        "  still unserved (compact_fail)",
        col(&|p| p.engine.compact_fail.to_string()),
    );
    t.row(
        "proactive compaction rounds (compact_daemon_wake)",
        col(&|p| p.engine.compact_daemon_wake.to_string()),
    );
    t.row(
        "pages scanned to migrate (compact_migrate_scanned)",
        col(&|p| p.engine.compact_migrate_scanned.to_string()),
    );
    t.row(
        "pages scanned for targets (compact_free_scanned)",
        col(&|p| p.engine.compact_free_scanned.to_string()),
    );
    t.row(
        "pages isolated to migrate (compact_isolated)",
        col(&|p| p.engine.compact_isolated.to_string()),
    );
    t.row(
        "pages migrated (pgmigrate_success)",
        col(&|p| p.engine.pgmigrate_success.to_string()),
    );
    let ends: Vec<MixedPageblocks> = policies.iter().map(|p| p.mixed_end).collect();
    mixed_rows(&mut t, "mixed pageblocks at the end", &ends);
    t.row(
        "mixed pageblocks at the peak",
        col(&|p| p.mixed_peak.mixed.total.to_string()),
    );
    t.row(
        "  peak at trace time (s)",
        col(&|p| {
            p.mixed_peak
                .time_s
                .map_or_else(|| "-".to_owned(), |t| format!("{t:.3}"))
        }),
    );
    let ends: Vec<UnmovableSpread> = policies.iter().map(|p| p.unmovable_spread_end).collect();
    spread_rows(&mut t, ": end", &ends, pages_per_block);
    let peaks: Vec<UnmovableSpread> = policies
        .iter()
        .map(|p| p.unmovable_spread_peak.spread)
        .collect();
    spread_rows(&mut t, ": peak", &peaks, pages_per_block);
    t.row(
        "  peak at trace time (s)",
        col(&|p| {
            p.unmovable_spread_peak
                .time_s
                .map_or_else(|| "-".to_owned(), |t| format!("{t:.3}"))
        }),
    );
    t.row(
        "free blocks >= pageblock order: end",
        col(&|p| p.free_pageblocks_end.to_string()),
    );
    t.row(
        "free blocks >= pageblock order: minimum",
        col(&|p| p.free_pageblocks_min.to_string()),
    );
    t.row(
        "pages still allocated at the end",
        col(&|p| p.counts.live_pages_end.to_string()),
    );
    let regions: Vec<Option<&crate::report::RegionOutcome>> =
        policies.iter().map(|p| p.regions.as_ref()).collect();
    region_rows(&mut t, &regions);
    if policies.iter().any(|p| p.start.is_some()) {
        t.row(
            "  of them untraced (allocated before)",
            col(&|p| p.counts.untraced_pages_end.to_string()),
        );
        start_rows(&mut t, policies);
    }
    distance_rows(&mut t, policies);
    t
}

/// The start state beside Linux's snapshot, zone by zone.
fn start_rows(t: &mut Table, policies: &[PolicyReport]) {
    let Some(first) = policies.iter().find_map(|p| p.start.as_ref()) else {
        return;
    };
    t.heading("start state (Linux's before the trace / ours)");
    for (i, z) in first.zones.iter().enumerate() {
        let zone = |p| zone_start(p, i);
        let names: Vec<&str> = z.pageblocks.iter().map(|c| c.migratetype).collect();
        let linux: Vec<String> = z.pageblocks.iter().map(|c| c.linux.to_string()).collect();
        t.row(
            format!("  {} pageblocks {}", z.zone, names.join("/")),
            policies.iter().map(|p| {
                zone(p).map_or("-".to_owned(), |zs| {
                    let ours: Vec<String> =
                        zs.pageblocks.iter().map(|c| c.ours.to_string()).collect();
                    format!("{} / {}", linux.join("/"), ours.join("/"))
                })
            }),
        );
        t.row(
            format!("  {} free pages", z.zone),
            policies.iter().map(|p| {
                zone(p).map_or("-".to_owned(), |zs| {
                    format!("{} / {}", zs.free_pages_linux, zs.free_pages_ours)
                })
            }),
        );
        let linux_blocks: u64 = z.free_blocks_linux.iter().flatten().sum();
        t.row(
            format!("  {} free blocks off Linux's (of {linux_blocks})", z.zone),
            policies
                .iter()
                .map(|p| zone(p).map_or("-".to_owned(), |zs| zs.free_blocks_off.to_string())),
        );
    }
    t.row(
        "  pages freed singly (no place for a block)",
        policies.iter().map(|p| {
            p.start
                .as_ref()
                .map_or("-".to_owned(), |s| s.loose_pages.to_string())
        }),
    );
}

fn zone_start(p: &PolicyReport, i: usize) -> Option<&crate::report::ZoneStart> {
    p.start.as_ref().and_then(|s| s.zones.get(i))
}

/// Free pages at the end against Linux's after the trace, zone by zone.
fn distance_rows(t: &mut Table, policies: &[PolicyReport]) {
    let Some(first) = policies.iter().find_map(|p| p.free_vs_linux_after.as_ref()) else {
        return;
    };
    t.heading("free pages at the end: ours - Linux's after the trace");
    for (i, z) in first.zones.iter().enumerate() {
        t.row(
            format!("  {} (Linux {})", z.zone, z.linux),
            policies.iter().map(|p| {
                p.free_vs_linux_after
                    .as_ref()
                    .and_then(|d| d.zones.get(i))
                    .map_or("-".to_owned(), |zf| {
                        let diff = zf.ours as i128 - zf.linux as i128;
                        format!(
                            "{diff:+} ({})",
                            percent(diff.unsigned_abs() as u64, zf.linux)
                        )
                    })
            }),
        );
    }
    t.row(
        format!("  sum of |ours - Linux| (Linux {})", first.linux_pages),
        policies.iter().map(|p| {
            p.free_vs_linux_after.as_ref().map_or("-".to_owned(), |d| {
                format!("{} ({})", d.l1_pages, percent(d.l1_pages, d.linux_pages))
            })
        }),
    );
    let Some(linux_pcp) = first.zones.iter().map(|z| z.linux_pcp).sum::<Option<u64>>() else {
        return;
    };
    t.row(
        format!("  per-CPU lists besides (Linux {linux_pcp})"),
        policies.iter().map(|p| {
            p.free_vs_linux_after.as_ref().map_or("-".to_owned(), |d| {
                d.zones.iter().map(|z| z.ours_pcp).sum::<u64>().to_string()
            })
        }),
    );
    t.row(
        "  the sum, per-CPU pages counted as free",
        policies.iter().map(|p| {
            p.free_vs_linux_after.as_ref().map_or("-".to_owned(), |d| {
                d.l1_pages_with_pcp.map_or("-".to_owned(), |n| {
                    format!("{n} ({})", percent(n, d.linux_pages + linux_pcp))
                })
            })
        }),
    );
}

/// `part` as a percentage of `whole`, one decimal.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pagesim run: {}", self.name)?;
        if let Some(d) = &self.description {
            write!(f, " — {d}")?;
        }
        writeln!(f)?;
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|p| format!("{} {}..{}", p.name, p.start, p.start + p.steps))
            .collect();
        writeln!(f, "  seed     {}", self.seed)?;
        writeln!(
            f,
            "  steps    {} (phases: {}); a sample every {} steps",
            self.total_steps,
            phases.join(", "),
            self.sample_every
        )?;
        writeln!(f, "  machine  {}", self.machine.describe())?;

        let names: Vec<&str> = self.variants.iter().map(|v| v.name.as_str()).collect();
        writeln!(f, "  variants {}", names.join(", "))?;
        for v in &self.variants {
            if let Some(t) = &v.emitted_trace {
                writeln!(
                    f,
                    "  emitted  variant {}: {} ({} lines)",
                    v.name,
                    t.path.display(),
                    t.lines
                )?;
            }
        }
        for v in self.variants.iter().filter(|v| v.description.is_some()) {
            writeln!(
                f,
                "    {}: {}",
                v.name,
                v.description.as_deref().unwrap_or("")
            )?;
        }
        let nr_snapshots = self.variants.first().map_or(0, |v| v.snapshots.len());
        for k in 0..nr_snapshots {
            let Some(first) = self.variants[0].snapshots.get(k) else {
                continue;
            };
            writeln!(
                f,
                "\n== {} (end of phase {}, step {}) ==",
                first.title, first.phase, first.step
            )?;
            for v in &self.variants {
                let Some(s) = v.snapshots.get(k) else {
                    continue;
                };
                writeln!(
                    f,
                    "\n--- variant {}: cat /proc/pagetypeinfo; cat /proc/buddyinfo ---",
                    v.name
                )?;
                write!(f, "{}", s.pagetypeinfo)?;
                write!(f, "{}", s.buddyinfo)?;
            }
            let snaps: Vec<&Snapshot> = self
                .variants
                .iter()
                .filter_map(|v| v.snapshots.get(k))
                .collect();
            writeln!(f, "\nsummary: {}", first.title)?;
            write!(f, "{}", self.snapshot_table(&snaps))?;
        }
        writeln!(f, "\n== run statistics ==")?;
        write!(f, "{}", self.stats_table())
    }
}

impl ScenarioReport {
    fn columns(&self) -> Vec<String> {
        self.variants
            .iter()
            .map(|v| format!("variant {}", v.name))
            .collect()
    }

    fn snapshot_table(&self, snaps: &[&Snapshot]) -> Table {
        let mut t = Table::new(self.columns());
        let pages_per_block = 1u64 << self.machine.pageblock_order;
        let held_names: Vec<String> = snaps
            .first()
            .map(|s| s.summary.held.iter().map(|h| h.actor.clone()).collect())
            .unwrap_or_default();
        for name in &held_names {
            let held = |s: &&Snapshot| s.summary.held.iter().find(|h| &h.actor == name).cloned();
            let col = |g: &dyn Fn(&HeldPages) -> u64| -> Vec<String> {
                snaps
                    .iter()
                    .map(|s| held(s).map_or("-".to_owned(), |h| g(&h).to_string()))
                    .collect()
            };
            t.row(
                format!("pageblocks holding {name} pages"),
                col(&|h| h.pageblocks),
            );
            t.row(
                format!("  minimum possible ({name} pages / {pages_per_block})"),
                col(&|h| h.min_pageblocks),
            );
            t.row(format!("  {name} pages"), col(&|h| h.pages));
        }
        let spread: Vec<UnmovableSpread> =
            snaps.iter().map(|s| s.summary.unmovable_spread).collect();
        spread_rows(&mut t, "", &spread, pages_per_block);
        let mixed: Vec<MixedPageblocks> = snaps.iter().map(|s| s.summary.mixed).collect();
        mixed_rows(&mut t, "mixed pageblocks", &mixed);
        t.row(
            "free pages",
            snaps.iter().map(|s| s.summary.free_pages.to_string()),
        );
        let nr_orders = self.machine.nr_orders as usize;
        // Seed 001's measure: free blocks of order 3 or more, each counted
        // once however large; beside it, how many order-3 blocks they hold
        // (a free order-9 block is one block but 64 order-3 blocks).
        t.row(
            format!("free blocks of order {SUMMARY_FIRST_ORDER} or more"),
            snaps.iter().map(|s| {
                let blocks = s.summary.free_blocks.iter().skip(SUMMARY_FIRST_ORDER);
                blocks.sum::<u64>().to_string()
            }),
        );
        t.row(
            format!("  order-{SUMMARY_FIRST_ORDER} blocks they hold"),
            snaps.iter().map(|s| {
                let blocks = s.summary.free_blocks.iter().enumerate();
                let held = blocks.skip(SUMMARY_FIRST_ORDER).map(|(o, &n)| {
                    n.checked_shl((o - SUMMARY_FIRST_ORDER) as u32)
                        .unwrap_or(u64::MAX)
                });
                held.fold(0u64, u64::saturating_add).to_string()
            }),
        );
        for o in SUMMARY_FIRST_ORDER..nr_orders {
            t.row(
                format!("free blocks of order {o}"),
                snaps.iter().map(|s| {
                    s.summary
                        .free_blocks
                        .get(o)
                        .copied()
                        .unwrap_or(0)
                        .to_string()
                }),
            );
        }
        let pb = self.machine.pageblock_order as usize;
        t.row(
            format!("free blocks of order {pb} or more"),
            snaps.iter().map(|s| {
                let blocks = s.summary.free_blocks.iter().skip(pb);
                blocks.sum::<u64>().to_string()
            }),
        );
        t.row(
            "order >= 3 requests served since the last snapshot",
            snaps.iter().map(|s| served(s.summary.requests.costly)),
        );
        t.row(
            format!("order-{pb} requests served since the last snapshot"),
            snaps.iter().map(|s| served(s.summary.requests.pageblock)),
        );
        let points: Vec<Option<ReportingPoint>> =
            snaps.iter().map(|s| s.summary.reporting).collect();
        reporting_rows(&mut t, "", &points);
        let nr_probes = snaps.first().map_or(0, |s| s.summary.probes.len());
        for p in 0..nr_probes {
            let probe = &snaps[0].summary.probes[p];
            t.row(
                format!("order-{} {} would succeed", probe.order, probe.flags),
                snaps.iter().map(|s| {
                    let ok = s.summary.probes.get(p).is_some_and(|x| x.would_succeed);
                    (if ok { "yes" } else { "no" }).to_owned()
                }),
            );
        }
        for p in 0..nr_probes {
            let order = snaps[0].summary.probes[p].order;
            t.row(
                format!("unusable free space index, order {order}"),
                snaps.iter().map(|s| {
                    s.summary
                        .probes
                        .get(p)
                        .map_or("-".to_owned(), |x| thousandths(x.unusable_index))
                }),
            );
        }
        t
    }

    fn stats_table(&self) -> Table {
        let mut t = Table::new(self.columns());
        let actor_names: Vec<(String, &'static str, String)> = self
            .variants
            .first()
            .map(|v| {
                v.actors
                    .iter()
                    .map(|a| (a.name.clone(), a.kind, a.flags.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (name, kind, flags) in &actor_names {
            let actors: Vec<Option<&ActorStats>> = self
                .variants
                .iter()
                .map(|v| v.actors.iter().find(|a| &a.name == name))
                .collect();
            let all_contig = actors.iter().flatten().all(|a| a.contig.is_some());
            if *kind == "contig" {
                t.heading(format!("actor {name} (contig)"));
            } else {
                t.heading(format!("actor {name} ({kind}, {flags})"));
            }
            contig_rows(&mut t, &actors);
            if all_contig {
                continue;
            }
            let stat = |g: &dyn Fn(&ActorStats) -> String| -> Vec<String> {
                self.variants
                    .iter()
                    .map(|v| {
                        v.actors
                            .iter()
                            .find(|a| &a.name == name)
                            .map_or("-".to_owned(), g)
                    })
                    .collect()
            };
            let sum = |v: &[u64]| v.iter().sum::<u64>();
            t.row("  allocations", stat(&|a| sum(&a.allocs).to_string()));
            t.row(
                "  failed allocations",
                stat(&|a| sum(&a.alloc_failures).to_string()),
            );
            let failures: Vec<Option<&[u64]>> = self
                .variants
                .iter()
                .map(|v| {
                    v.actors
                        .iter()
                        .find(|a| &a.name == name)
                        .map(|a| a.alloc_failures.as_slice())
                })
                .collect();
            per_order_rows(&mut t, "    ", &failures);
            t.row(
                "  blocks freed at end of life",
                stat(&|a| a.expired_blocks.to_string()),
            );
            t.row(
                "  pages reclaimed",
                stat(&|a| a.reclaimed_pages.to_string()),
            );
            t.row("  pages released", stat(&|a| a.released_pages.to_string()));
            t.row(
                "  pages held at the end",
                stat(&|a| a.pages_end.to_string()),
            );
            t.row("  pages held at most", stat(&|a| a.pages_peak.to_string()));
        }
        let col = |g: &dyn Fn(&VariantReport) -> String| -> Vec<String> {
            self.variants.iter().map(g).collect()
        };
        t.row("reclaim runs", col(&|v| v.reclaim.runs.to_string()));
        t.row("reclaimed pages", col(&|v| v.reclaim.pages.to_string()));
        t.row(
            "  pageblocks emptied for packed calls",
            col(&|v| v.reclaim.pageblocks_emptied.to_string()),
        );
        t.row(
            "  pages reclaimed to empty them",
            col(&|v| v.reclaim.emptying_pages.to_string()),
        );
        t.row(
            "fallback events (extfrag)",
            col(&|v| v.engine.extfrag_events.to_string()),
        );
        t.row(
            "  fragmenting",
            col(&|v| v.engine.extfrag_fragmenting.to_string()),
        );
        t.row(
            "  pageblock claims",
            col(&|v| v.engine.pageblock_claims.to_string()),
        );
        let confines = self.variants.iter().any(|v| v.engine.confined_claims > 0);
        confinement_rows(&mut t, confines, &|field| {
            col(&|v| field(&v.engine).to_string())
        });
        t.row(
            "high-atomic pageblocks reserved",
            col(&|v| v.engine.highatomic_reserved.to_string()),
        );
        self.contig_engine_rows(&mut t);
        self.compaction_rows(&mut t);
        region_rows(&mut t, &regions_of(&self.variants));
        let pages_per_block = 1u64 << self.machine.pageblock_order;
        let ends: Vec<UnmovableSpread> = self
            .variants
            .iter()
            .map(|v| v.unmovable_spread_end)
            .collect();
        spread_rows(&mut t, ": end", &ends, pages_per_block);
        let peaks: Vec<UnmovableSpread> = self
            .variants
            .iter()
            .map(|v| v.unmovable_spread_peak.spread)
            .collect();
        spread_rows(&mut t, ": peak", &peaks, pages_per_block);
        t.row(
            "  peak at step",
            col(&|v| v.unmovable_spread_peak.at.to_string()),
        );
        if self.variants.iter().any(|v| v.reporting.is_some()) {
            let rep = |g: &dyn Fn(&crate::report::ReportingReport) -> String| -> Vec<String> {
                self.variants
                    .iter()
                    .map(|v| v.reporting.as_ref().map_or("-".to_owned(), g))
                    .collect()
            };
            t.row(
                "free page reporting",
                col(&|v| {
                    v.reporting.as_ref().map_or("off".to_owned(), |r| {
                        format!("order {}, every {}", r.order, r.every)
                    })
                }),
            );
            t.row("  reporting passes", rep(&|r| r.passes.to_string()));
            t.row(
                "    continued without a request",
                rep(&|r| r.continued_passes.to_string()),
            );
            t.row("  report batches", rep(&|r| r.batches.to_string()));
            t.row(
                "  pages reported (cumulative)",
                rep(&|r| r.reported_pages.to_string()),
            );
            t.row(
                "  reported pages allocated again",
                rep(&|r| r.reported_reallocated.to_string()),
            );
            let ends: Vec<Option<ReportingPoint>> = self
                .variants
                .iter()
                .map(|v| v.reporting.as_ref().map(|r| r.end))
                .collect();
            reporting_rows(&mut t, ": end", &ends);
        }
        t
    }
}

impl ScenarioReport {
    /// Each variant's compaction: its settings, the engine's counters, the
    /// pages moved and the success of costly requests over the run.
    fn compaction_rows(&self, t: &mut Table) {
        let col = |g: &dyn Fn(&CompactionReport) -> String| -> Vec<String> {
            self.variants.iter().map(|v| g(&v.compaction)).collect()
        };
        t.row(
            "compaction",
            col(&|c| match (c.enabled, c.direct) {
                (false, _) => "off".to_owned(),
                (true, direct) => format!(
                    "{}proactiveness {} every {}",
                    if direct { "direct, " } else { "" },
                    c.proactiveness,
                    c.every
                ),
            }),
        );
        t.row(
            "  requests that compacted (compact_stall)",
            col(&|c| c.compact_stall.to_string()),
        );
        t.row(
            "    served after compacting (compact_success)",
            col(&|c| c.compact_success.to_string()),
        );
        t.row(
            "    failed still (compact_fail)",
            col(&|c| c.compact_fail.to_string()),
        );
        t.row(
            "  kcompactd runs (compact_daemon_wake)",
            col(&|c| c.compact_daemon_wake.to_string()),
        );
        t.row(
            "    without progress (kcompactd deferred)",
            col(&|c| c.proactive_defers.to_string()),
        );
        t.row(
            "  pages migrated by compaction",
            col(&|c| c.migrated_pages.to_string()),
        );
        t.row(
            "  migrations refused (not movable actors' blocks)",
            col(&|c| c.refused_blocks.to_string()),
        );
        t.row(
            "  pages scanned (migrate / free scanner)",
            col(&|c| format!("{} / {}", c.compact_migrate_scanned, c.compact_free_scanned)),
        );
        t.row("order >= 3 requests served", col(&|c| served(c.costly)));
        let pb = self.machine.pageblock_order;
        t.row(
            format!("order-{pb} requests served"),
            col(&|c| served(c.pageblock)),
        );
    }

    /// The engine's contiguous-allocation counters and each CMA area, if
    /// any variant has a contig actor or a CMA area.
    fn contig_engine_rows(&self, t: &mut Table) {
        let any_contig = self
            .variants
            .iter()
            .any(|v| v.actors.iter().any(|a| a.contig.is_some()) || !v.cma_areas.is_empty());
        if !any_contig {
            return;
        }
        let col = |g: &dyn Fn(&VariantReport) -> String| -> Vec<String> {
            self.variants.iter().map(g).collect()
        };
        t.row(
            "contiguous ranges taken (contig_alloc_success)",
            col(&|v| v.engine.contig_alloc_success.to_string()),
        );
        t.row(
            "  given up after isolation (contig_alloc_fail)",
            col(&|v| v.engine.contig_alloc_fail.to_string()),
        );
        t.row(
            "  cma_alloc served (cma_alloc_success)",
            col(&|v| v.engine.cma_alloc_success.to_string()),
        );
        t.row(
            "  cma_alloc failed (cma_alloc_fail)",
            col(&|v| v.engine.cma_alloc_fail.to_string()),
        );
        t.row(
            "pages migrated (pgmigrate_success)",
            col(&|v| v.engine.pgmigrate_success.to_string()),
        );
        t.row(
            "  migrations refused (pgmigrate_fail)",
            col(&|v| v.engine.pgmigrate_fail.to_string()),
        );
        let mut names: Vec<&str> = Vec::new();
        for v in &self.variants {
            for a in &v.cma_areas {
                if !names.contains(&a.name.as_str()) {
                    names.push(&a.name);
                }
            }
        }
        for name in names {
            let area = |g: &dyn Fn(&CmaAreaReport) -> String| -> Vec<String> {
                self.variants
                    .iter()
                    .map(|v| {
                        v.cma_areas
                            .iter()
                            .find(|a| a.name == name)
                            .map_or("-".to_owned(), g)
                    })
                    .collect()
            };
            t.row(
                format!("CMA area {name}: pages"),
                area(&|a| a.nr_pages.to_string()),
            );
            t.row("  first frame", area(&|a| format!("{:#x}", a.start_pfn)));
            t.row(
                "  used by cma_alloc at the end",
                area(&|a| a.used_pages_end.to_string()),
            );
            t.row(
                "  used by cma_alloc at most",
                area(&|a| a.used_pages_peak.to_string()),
            );
            t.row(
                "  movable pages in it at the end",
                area(&|a| a.movable_pages_end.to_string()),
            );
            t.row(
                "  free pages in it at the end",
                area(&|a| a.free_pages_end.to_string()),
            );
            t.row(
                "  mean over the samples: used by cma_alloc",
                area(&|a| format!("{:.0}", a.mean(|p| p.used))),
            );
            t.row(
                "    movable pages in it",
                area(&|a| format!("{:.0}", a.mean(|p| p.movable))),
            );
            t.row(
                "    free pages in it",
                area(&|a| format!("{:.0}", a.mean(|p| p.free))),
            );
        }
    }
}

/// Each variant's region outcome (seed 000), if it has regions on.
fn regions_of(variants: &[VariantReport]) -> Vec<Option<&crate::report::RegionOutcome>> {
    variants.iter().map(|v| v.regions.as_ref()).collect()
}

/// Memory-region rows (seed 000), none if no column has regions: fully
/// free regions at the end beside the ideal, the fewest in a sample, and
/// what the region allocator did.
fn region_rows(t: &mut Table, outcomes: &[Option<&crate::report::RegionOutcome>]) {
    if outcomes.iter().all(Option::is_none) {
        return;
    }
    let region = |f: &dyn Fn(&crate::report::RegionOutcome) -> String| -> Vec<String> {
        outcomes
            .iter()
            .map(|r| r.map_or_else(|| "-".to_owned(), f))
            .collect()
    };
    t.row(
        "regions (seed 000): pages per region",
        region(&|r| {
            format!(
                "{} ({})",
                r.region_pages,
                if r.enabled { "on" } else { "counted" }
            )
        }),
    );
    t.row(
        "  fully free at the end / ideal / regions",
        region(&|r| format!("{} / {} / {}", r.fully_free_end, r.ideal_end, r.regions)),
    );
    t.row(
        "  fully free: fewest in a sample",
        region(&|r| r.fully_free_min.to_string()),
    );
    t.row(
        "  held at the end; returns; draws",
        region(&|r| format!("{}; {}; {}", r.held_end, r.returns, r.draws)),
    );
    t.row(
        "  free pageblocks claimed for a lower region",
        region(&|r| r.free_pageblock_claims.to_string()),
    );
}

/// A contig actor's rows (none if no column's actor is a contig actor):
/// its call, requests served and failed (and why), what was migrated.
fn contig_rows(t: &mut Table, actors: &[Option<&ActorStats>]) {
    let stats: Vec<Option<&ContigStats>> = actors
        .iter()
        .map(|a| a.and_then(|a| a.contig.as_ref()))
        .collect();
    if stats.iter().all(Option::is_none) {
        return;
    }
    let col = |g: &dyn Fn(&ContigStats) -> String| -> Vec<String> {
        stats.iter().map(|c| c.map_or("-".to_owned(), g)).collect()
    };
    // Rows that are 0 in every column are left out (failure reasons).
    let nonzero = |t: &mut Table, label: &str, g: &dyn Fn(&ContigStats) -> u64| {
        if stats.iter().flatten().any(|c| g(c) > 0) {
            t.row(label, col(&|c| g(c).to_string()));
        }
    };
    t.row(
        "  call",
        col(&|c| match c.via {
            "range" => "alloc_contig_range".to_owned(),
            "cma" => format!("cma_alloc {}", c.area.as_deref().unwrap_or("")),
            _ => "alloc_contig_pages".to_owned(),
        }),
    );
    t.row("  pages per request", col(&|c| c.request_pages.to_string()));
    t.row("  contiguous requests", col(&|c| c.requests.to_string()));
    t.row("    served", col(&|c| c.served.to_string()));
    t.row("    failed", col(&|c| c.failed.to_string()));
    nonzero(t, "      busy after every migration pass", &|c| {
        c.failures.busy
    });
    nonzero(t, "      unmovable page or CMA pageblock", &|c| {
        c.failures.unmovable
    });
    nonzero(t, "      isolated by another caller", &|c| {
        c.failures.isolated
    });
    nonzero(t, "      no memory for migration targets", &|c| {
        c.failures.no_memory
    });
    nonzero(t, "      no candidate range could be taken", &|c| {
        c.failures.not_found
    });
    nonzero(t, "      range not in one zone's memory", &|c| {
        c.failures.bad_range
    });
    nonzero(t, "      other", &|c| c.failures.other);
    nonzero(t, "    not asked: held max already", &|c| c.skipped_at_max);
    nonzero(t, "  reclaim runs during its migrations", &|c| {
        c.reclaim_runs
    });
    t.row("  blocks migrated", col(&|c| c.migrated_blocks.to_string()));
    t.row("  pages migrated", col(&|c| c.migrated_pages.to_string()));
    nonzero(t, "  migrations refused (block reclaimed)", &|c| {
        c.refused_blocks
    });
    t.row(
        "  migration passes (served requests)",
        col(&|c| c.tries.to_string()),
    );
    t.row(
        "    most for one request",
        col(&|c| c.max_tries.to_string()),
    );
    t.row(
        "  served with no migration",
        col(&|c| c.served_without_migration.to_string()),
    );
    t.row(
        "  candidate ranges given up",
        col(&|c| c.failed_candidates.to_string()),
    );
    t.row("  runs given back", col(&|c| c.released_runs.to_string()));
    let held = |g: &dyn Fn(&ActorStats) -> u64| -> Vec<String> {
        actors
            .iter()
            .map(|a| {
                a.filter(|a| a.contig.is_some())
                    .map_or("-".to_owned(), |a| g(a).to_string())
            })
            .collect()
    };
    t.row("  pages held at the end", held(&|a| a.pages_end));
    t.row("  pages held at most", held(&|a| a.pages_peak));
}

/// Adds the free page reporting rows of one moment (none if no column has
/// reporting on): free pages at or above the reporting order, how many are
/// reported, and the fraction.
fn reporting_rows(t: &mut Table, when: &str, points: &[Option<ReportingPoint>]) {
    if points.iter().all(Option::is_none) {
        return;
    }
    let col = |g: &dyn Fn(&ReportingPoint) -> String| -> Vec<String> {
        points
            .iter()
            .map(|p| p.as_ref().map_or("-".to_owned(), g))
            .collect()
    };
    t.row(
        format!("free pages at or above the reporting order{when}"),
        col(&|p| p.free_reportable.to_string()),
    );
    t.row("  reported", col(&|p| p.reported.to_string()));
    t.row(
        "  reported fraction",
        col(&|p| format!("{:.3}", p.fraction)),
    );
}

/// `served/requests (rate%)`, or `-` with no request.
fn served(r: RequestRate) -> String {
    match r.rate() {
        Some(rate) => format!("{}/{} ({:.1}%)", r.served, r.requests, 100.0 * rate),
        None => "-".to_owned(),
    }
}

/// One engine counter, read from a column's counters.
type Counter<'a> = &'a dyn Fn(&EngineStats) -> u64;

/// Confinement's rows (claims, releases and fallbacks) when `confines`,
/// and the evacuations (confinement's or small-order packing's) when any
/// column tried one. `col` renders a counter for every column.
fn confinement_rows(t: &mut Table, confines: bool, col: &dyn Fn(Counter) -> Vec<String>) {
    let confined: [(&str, Counter); 3] = [
        ("    of them confined claims at the low end", &|e| {
            e.confined_claims
        }),
        ("  confined pageblocks given back (emptied)", &|e| {
            e.confined_releases
        }),
        ("  confined: Linux's fallback, the last resort", &|e| {
            e.confined_fallbacks
        }),
    ];
    let evacuated: [(&str, Counter); 3] = [
        (
            "  pageblocks emptied by migration for kernel memory",
            &|e| e.confined_evacuations,
        ),
        ("    pages they migrated", &|e| e.confined_evacuated_pages),
        ("    evacuations given up", &|e| e.confined_evacuation_fail),
    ];
    let tried = col(&|e| e.confined_evacuations + e.confined_evacuation_fail);
    let evacuates = tried.iter().any(|n| n != "0");
    let rows = confined
        .into_iter()
        .filter(|_| confines)
        .chain(evacuated.into_iter().filter(|_| evacuates));
    for (label, field) in rows {
        t.row(label, col(field));
    }
}
