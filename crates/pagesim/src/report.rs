//! The results of a run, as data: what `--json` serialises, what the text
//! report ([`crate::text`]) renders and what the plots ([`crate::plot`])
//! draw. Snapshots of the engine (`/proc/buddyinfo`, `/proc/pagetypeinfo`)
//! are kept as the engine's own structs, whose `Display` is Linux's text,
//! and serialised through [`crate::json`].

use std::path::PathBuf;

use pagealloc::{BuddyInfo, PageTypeInfo, VmStats};
use serde::Serialize;

use crate::census::{MixedPageblocks, UnmovableSpread};
use crate::emit::EmittedTrace;
use crate::input::Format;
use crate::machine::MachineInfo;

/// One point of a time series.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct Sample {
    /// Scenario step, or events replayed so far.
    pub at: u64,
    /// Trace time in seconds (replay only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_s: Option<f64>,
    /// Free pages.
    pub free_pages: u64,
    /// Free blocks per order, all zones.
    pub free_blocks: Vec<u64>,
    /// Unusable free space index per order, in thousandths, all zones.
    pub unusable_index: Vec<i32>,
    /// Mixed pageblocks.
    pub mixed: MixedPageblocks,
    /// Pageblocks holding unmovable or reclaimable pages.
    pub unmovable_spread: UnmovableSpread,
}

/// The sample where unmovable and reclaimable pages were spread over the
/// most pageblocks (the first if tied).
#[derive(Clone, Copy, PartialEq, Debug, Default, Serialize)]
pub struct SpreadPeak {
    /// The spread then.
    pub spread: UnmovableSpread,
    /// Scenario step, or events replayed, when it was sampled.
    pub at: u64,
    /// Trace time then, in seconds (replay only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_s: Option<f64>,
}

impl SpreadPeak {
    /// The peak over `samples`: the most pageblocks, the first if tied.
    pub fn of(samples: &[Sample]) -> SpreadPeak {
        let mut peak: Option<&Sample> = None;
        for s in samples {
            if peak.is_none_or(|p| s.unmovable_spread.pageblocks > p.unmovable_spread.pageblocks) {
                peak = Some(s);
            }
        }
        peak.map_or_else(SpreadPeak::default, |s| SpreadPeak {
            spread: s.unmovable_spread,
            at: s.at,
            time_s: s.time_s,
        })
    }
}

/// Counters of the engine, as `/proc/vmstat` would show them.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct EngineStats {
    /// Successful allocations per order.
    pub alloc_calls: Vec<u64>,
    /// Failed allocations per order.
    pub alloc_fail: Vec<u64>,
    /// Frees per order.
    pub free_calls: Vec<u64>,
    /// Pages allocated.
    pub pgalloc: u64,
    /// Pages freed.
    pub pgfree: u64,
    /// Fallbacks to another migratetype (Linux's `mm_page_alloc_extfrag`).
    pub extfrag_events: u64,
    /// Fallbacks that split a block smaller than a pageblock.
    pub extfrag_fragmenting: u64,
    /// Fallbacks that claimed the pageblock.
    pub pageblock_claims: u64,
    /// Pageblocks reserved for high-order atomic allocations.
    pub highatomic_reserved: u64,
    /// `split_page` calls.
    pub split_pages: u64,
    /// Pages migrated out of ranges taken contiguously
    /// (`pgmigrate_success`).
    pub pgmigrate_success: u64,
    /// Pages whose migration the owner refused (`pgmigrate_fail`).
    pub pgmigrate_fail: u64,
    /// Contiguous ranges taken, CMA's included (`contig_alloc_success`).
    pub contig_alloc_success: u64,
    /// Ranges given up after isolation (`contig_alloc_fail`).
    pub contig_alloc_fail: u64,
    /// `cma_alloc` calls served (`cma_alloc_success`).
    pub cma_alloc_success: u64,
    /// `cma_alloc` calls that failed (`cma_alloc_fail`).
    pub cma_alloc_fail: u64,
    /// Requests that compacted (`compact_stall`).
    pub compact_stall: u64,
    /// Of those, served after compaction (`compact_success`).
    pub compact_success: u64,
    /// Of those, still unserved after compacting (`compact_fail`).
    pub compact_fail: u64,
    /// Proactive compaction rounds that ran (`compact_daemon_wake`).
    pub compact_daemon_wake: u64,
    /// Pages the migrate scanners looked at (`compact_migrate_scanned`).
    pub compact_migrate_scanned: u64,
    /// Pages the free scanners looked at (`compact_free_scanned`).
    pub compact_free_scanned: u64,
    /// Pages compaction isolated for migration (`compact_isolated`).
    pub compact_isolated: u64,
    /// Confinement: free pageblocks claimed at the low end of a zone.
    pub confined_claims: u64,
    /// Confinement: pageblocks given back to movable as they emptied.
    pub confined_releases: u64,
    /// Confinement: requests served by Linux's fallback, the last resort.
    pub confined_fallbacks: u64,
    /// Pageblocks emptied by migration for unmovable or reclaimable memory:
    /// confinement's area growing, or small-order packing's new pageblock.
    pub confined_evacuations: u64,
    /// Pages those evacuations migrated.
    pub confined_evacuated_pages: u64,
    /// Evacuations given up.
    pub confined_evacuation_fail: u64,
}

impl EngineStats {
    /// The engine's counters for orders `0..nr_orders`.
    pub fn new(s: &VmStats, nr_orders: usize) -> EngineStats {
        EngineStats {
            alloc_calls: s.alloc_calls[..nr_orders].to_vec(),
            alloc_fail: s.alloc_fail[..nr_orders].to_vec(),
            free_calls: s.free_calls[..nr_orders].to_vec(),
            pgalloc: s.pgalloc,
            pgfree: s.pgfree,
            extfrag_events: s.extfrag_events,
            extfrag_fragmenting: s.extfrag_fragmenting,
            pageblock_claims: s.pageblock_claims,
            highatomic_reserved: s.highatomic_reserved,
            split_pages: s.split_pages,
            pgmigrate_success: s.pgmigrate_success,
            pgmigrate_fail: s.pgmigrate_fail,
            contig_alloc_success: s.contig_alloc_success,
            contig_alloc_fail: s.contig_alloc_fail,
            cma_alloc_success: s.cma_alloc_success,
            cma_alloc_fail: s.cma_alloc_fail,
            compact_stall: s.compact_stall,
            compact_success: s.compact_success,
            compact_fail: s.compact_fail,
            compact_daemon_wake: s.compact_daemon_wake,
            compact_migrate_scanned: s.compact_migrate_scanned,
            compact_free_scanned: s.compact_free_scanned,
            compact_isolated: s.compact_isolated,
            confined_claims: s.confined_claims,
            confined_releases: s.confined_releases,
            confined_fallbacks: s.confined_fallbacks,
            confined_evacuations: s.confined_evacuations,
            confined_evacuated_pages: s.confined_evacuated_pages,
            confined_evacuation_fail: s.confined_evacuation_fail,
        }
    }

    /// What the engine counted from `base` to `now` (a replay started
    /// where Linux was leaves out the calls that made its start state).
    pub fn since(base: &VmStats, now: &VmStats, nr_orders: usize) -> EngineStats {
        let diff = |a: &[u64], b: &[u64]| -> Vec<u64> {
            a[..nr_orders]
                .iter()
                .zip(&b[..nr_orders])
                .map(|(n, b)| n.saturating_sub(*b))
                .collect()
        };
        EngineStats {
            alloc_calls: diff(&now.alloc_calls, &base.alloc_calls),
            alloc_fail: diff(&now.alloc_fail, &base.alloc_fail),
            free_calls: diff(&now.free_calls, &base.free_calls),
            pgalloc: now.pgalloc.saturating_sub(base.pgalloc),
            pgfree: now.pgfree.saturating_sub(base.pgfree),
            extfrag_events: now.extfrag_events.saturating_sub(base.extfrag_events),
            extfrag_fragmenting: now
                .extfrag_fragmenting
                .saturating_sub(base.extfrag_fragmenting),
            pageblock_claims: now.pageblock_claims.saturating_sub(base.pageblock_claims),
            highatomic_reserved: now
                .highatomic_reserved
                .saturating_sub(base.highatomic_reserved),
            split_pages: now.split_pages.saturating_sub(base.split_pages),
            pgmigrate_success: now.pgmigrate_success.saturating_sub(base.pgmigrate_success),
            pgmigrate_fail: now.pgmigrate_fail.saturating_sub(base.pgmigrate_fail),
            contig_alloc_success: now
                .contig_alloc_success
                .saturating_sub(base.contig_alloc_success),
            contig_alloc_fail: now.contig_alloc_fail.saturating_sub(base.contig_alloc_fail),
            cma_alloc_success: now.cma_alloc_success.saturating_sub(base.cma_alloc_success),
            cma_alloc_fail: now.cma_alloc_fail.saturating_sub(base.cma_alloc_fail),
            compact_stall: now.compact_stall.saturating_sub(base.compact_stall),
            compact_success: now.compact_success.saturating_sub(base.compact_success),
            compact_fail: now.compact_fail.saturating_sub(base.compact_fail),
            compact_daemon_wake: now
                .compact_daemon_wake
                .saturating_sub(base.compact_daemon_wake),
            compact_migrate_scanned: now
                .compact_migrate_scanned
                .saturating_sub(base.compact_migrate_scanned),
            compact_free_scanned: now
                .compact_free_scanned
                .saturating_sub(base.compact_free_scanned),
            compact_isolated: now.compact_isolated.saturating_sub(base.compact_isolated),
            confined_claims: now.confined_claims.saturating_sub(base.confined_claims),
            confined_releases: now.confined_releases.saturating_sub(base.confined_releases),
            confined_fallbacks: now
                .confined_fallbacks
                .saturating_sub(base.confined_fallbacks),
            confined_evacuations: now
                .confined_evacuations
                .saturating_sub(base.confined_evacuations),
            confined_evacuated_pages: now
                .confined_evacuated_pages
                .saturating_sub(base.confined_evacuated_pages),
            confined_evacuation_fail: now
                .confined_evacuation_fail
                .saturating_sub(base.confined_evacuation_fail),
        }
    }
}

/// A trace file that was replayed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct InputInfo {
    /// The path as given.
    pub path: PathBuf,
    /// Compression.
    pub format: Format,
    /// Size on disk.
    pub file_bytes: u64,
    /// Lines read.
    pub lines: u64,
}

/// What the trace held, whatever the policy.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
pub struct EventCounts {
    /// Lines read, all files.
    pub lines: u64,
    /// Empty and `#` comment lines.
    pub comments: u64,
    /// `mm_page_alloc` events.
    pub mm_page_alloc: u64,
    /// Of those, Linux's own failed allocations (NULL page); not replayed.
    pub linux_alloc_failures: u64,
    /// `mm_page_alloc` per order.
    pub alloc_by_order: Vec<u64>,
    /// `mm_page_alloc` per migratetype: unmovable, movable, reclaimable.
    pub alloc_by_migratetype: [u64; 3],
    /// `mm_page_free` events (each replayed as one free).
    pub mm_page_free: u64,
    /// `mm_page_free_batched` events (the same frees again: counted, not
    /// replayed).
    pub mm_page_free_batched: u64,
    /// `mm_page_pcpu_drain` events (per-CPU lists to buddy; not frees).
    pub mm_page_pcpu_drain: u64,
    /// `mm_page_alloc_extfrag` events: Linux's fallbacks.
    pub mm_page_alloc_extfrag: u64,
    /// Of those, `fragmenting=1`.
    pub extfrag_fragmenting: u64,
    /// Of those, `change_ownership=1`.
    pub extfrag_change_ownership: u64,
    /// Events of other tracepoints.
    pub other_events: u64,
    /// Events the ring buffer lost (`[LOST N EVENTS]`).
    pub lost_events: u64,
    /// Events on a CPU the machine does not have, run on CPU
    /// `n % nr_cpus`.
    pub cpu_folded: u64,
    /// Malformed lines skipped (`--lenient`).
    pub malformed_skipped: u64,
    /// The first malformed lines skipped, as `file:line: error`.
    pub malformed_examples: Vec<String>,
}

impl EventCounts {
    /// Page-allocator events of every kind.
    pub fn page_events(&self) -> u64 {
        self.mm_page_alloc
            + self.mm_page_free
            + self.mm_page_free_batched
            + self.mm_page_pcpu_drain
            + self.mm_page_alloc_extfrag
    }

    /// All events, page-allocator or not.
    pub fn events(&self) -> u64 {
        self.page_events() + self.other_events
    }
}

/// How one policy's replay went, request by request.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
pub struct ReplayCounts {
    /// Allocations served, per order.
    pub allocs: Vec<u64>,
    /// Allocations our allocator failed, per order.
    pub alloc_failures: Vec<u64>,
    /// Frees of whole blocks allocated during the trace.
    pub frees: u64,
    /// Frees of pfns allocated before the trace started.
    pub unknown_pfn_frees: u64,
    /// Frees (or pieces) of allocations our allocator had failed: ignored.
    pub failed_alloc_frees_ignored: u64,
    /// Frees of a piece of a higher-order allocation (split pages).
    pub split_piece_frees: u64,
    /// Our blocks split into order-0 pages for those (`split_page`).
    pub split_pages: u64,
    /// Frees of a larger order than the allocation they start at.
    pub oversized_frees: u64,
    /// Allocations of a pfn the trace never freed: we free our old block.
    pub implicit_frees: u64,
    /// Pieces of a split allocation freed twice in the trace.
    pub repeated_piece_frees: u64,
    /// Frees our allocator refused as double frees (must be 0).
    pub double_frees: u64,
    /// Frees our allocator refused for another reason (must be 0).
    pub other_free_errors: u64,
    /// Pages still allocated at the end.
    pub live_pages_end: u64,
    /// Of the unknown-pfn frees, those that released untraced memory (a
    /// replay started from Linux's state; 0 otherwise).
    pub untraced_frees: u64,
    /// Pages they released.
    pub untraced_pages_released: u64,
    /// Releases another type gave, the suggested one having too little.
    pub untraced_other_type: u64,
    /// Releases made of several smaller blocks.
    pub untraced_composed: u64,
    /// Releases short of the free's pages (the zone had too little left).
    pub untraced_short: u64,
    /// Unknown-pfn frees that released nothing: the zone had no untraced
    /// memory left, or the pfn lies in no zone of the snapshot.
    pub untraced_unmatched: u64,
    /// Untraced pages still held at the end.
    pub untraced_pages_end: u64,
}

/// Pageblocks of one migratetype in a zone: Linux's snapshot and ours.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct TypeCount {
    /// The migratetype, as `/proc/pagetypeinfo` names it.
    pub migratetype: &'static str,
    /// Linux's count.
    pub linux: u64,
    /// Ours after seeding.
    pub ours: u64,
}

/// One zone of the recreated start state beside Linux's snapshot.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ZoneStart {
    /// NUMA node.
    pub node: u16,
    /// Zone name.
    pub zone: &'static str,
    /// Pageblocks per migratetype (types with none on either side left
    /// out).
    pub pageblocks: Vec<TypeCount>,
    /// Free pages in Linux's free-count table.
    pub free_pages_linux: u64,
    /// Free pages of ours after seeding.
    pub free_pages_ours: u64,
    /// Free blocks per migratetype (Linux's order: Unmovable, Movable,
    /// Reclaimable, HighAtomic, CMA, Isolate) and order, Linux's.
    pub free_blocks_linux: Vec<Vec<u64>>,
    /// The same, ours.
    pub free_blocks_ours: Vec<Vec<u64>>,
    /// The sum over migratetypes and orders of the difference in free
    /// blocks (0: the free-count tables are the same).
    pub free_blocks_off: u64,
    /// A list of Linux's was longer than it counts (`>100000`).
    pub capped: bool,
}

/// The start state of a replay begun where Linux was (`--procfs` with a
/// pagetypeinfo section), beside the snapshot.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct StartReport {
    /// The snapshot file.
    pub origin: String,
    /// Per zone.
    pub zones: Vec<ZoneStart>,
    /// Pages allocated as untraced memory.
    pub untraced_pages: u64,
    /// Free pages that found no place where they could not merge and were
    /// freed one by one (docs/pagesim.md, "Starting where Linux was").
    pub loose_pages: u64,
}

/// Free pages of one zone at the end of a replay against Linux's after the
/// trace.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ZoneFree {
    /// NUMA node.
    pub node: u16,
    /// Zone name.
    pub zone: &'static str,
    /// Linux's `pages free` after the trace.
    pub linux: u64,
    /// Our free pages (buddy lists, as Linux counts them: not the per-CPU
    /// lists).
    pub ours: u64,
    /// Pages on Linux's per-CPU lists then (`count:`), if the file shows
    /// them.
    pub linux_pcp: Option<u64>,
    /// Pages on our per-CPU lists besides.
    pub ours_pcp: u64,
}

/// How far the replay's free memory ended from Linux's (`--procfs-after`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct FreeDistance {
    /// The after snapshot.
    pub origin: String,
    /// Per zone present in both.
    pub zones: Vec<ZoneFree>,
    /// Sum over zones of `|ours - linux|`.
    pub l1_pages: u64,
    /// Linux's free pages in those zones.
    pub linux_pages: u64,
    /// The same sum with each side's per-CPU pages counted as free (`None`
    /// if the file does not show Linux's).
    pub l1_pages_with_pcp: Option<u64>,
}

/// The peak of mixed pageblocks over the samples.
#[derive(Clone, Copy, PartialEq, Debug, Default, Serialize)]
pub struct MixedPeak {
    /// The mixed pageblocks at the peak.
    pub mixed: MixedPageblocks,
    /// Events replayed when it was sampled.
    pub at: u64,
    /// Trace time then, in seconds.
    pub time_s: Option<f64>,
}

/// Fully free regions over a replay (seed 000).
#[derive(Clone, Debug, Serialize)]
pub struct RegionOutcome {
    /// Pages per region.
    pub region_pages: u64,
    /// Whether the allocator had regions on (`--regions`) or they were
    /// only counted (`--count-regions`).
    pub enabled: bool,
    /// Regions with any present page.
    pub regions: u64,
    /// Of them, fully free at the end (every present page free on the
    /// buddy lists or held; per-CPU pages count as in use).
    pub fully_free_end: u64,
    /// The ideal at the end: regions not needed by the live pages.
    pub ideal_end: u64,
    /// The fewest fully free regions in any sample.
    pub fully_free_min: u64,
    /// Regions the region allocator holds at the end.
    pub held_end: u64,
    /// Times a region went to the region allocator.
    pub returns: u64,
    /// Times one was drawn back into service (its power-up).
    pub draws: u64,
    /// Wholly free pageblocks retyped for a lower region.
    pub free_pageblock_claims: u64,
    /// Fully free regions at every census sample.
    pub samples: Vec<RegionSample>,
}

impl RegionOutcome {
    /// Measures `allocator` at the end of a run: regions of `region_pages`
    /// pages, `live_pages` still allocated by the run (the ideal leaves
    /// every region they do not need free), `samples` taken along the way.
    pub fn measure(
        allocator: &pagealloc::Allocator,
        region_pages: u64,
        live_pages: u64,
        samples: Vec<RegionSample>,
    ) -> RegionOutcome {
        let (fully_free_end, regions) = crate::census::fully_free_regions(allocator, region_pages);
        let needed = live_pages.div_ceil(region_pages);
        let report = allocator.region_report();
        let sum = |f: fn(&pagealloc::RegionInfo) -> u64| {
            report.as_ref().map_or(0, |r| r.regions().map(f).sum())
        };
        RegionOutcome {
            region_pages,
            enabled: report.is_some(),
            regions,
            fully_free_end,
            ideal_end: regions.saturating_sub(needed),
            fully_free_min: samples
                .iter()
                .map(|s| s.fully_free)
                .min()
                .unwrap_or(fully_free_end),
            held_end: report.as_ref().map_or(0, |r| r.held()),
            returns: sum(|x| x.returns),
            draws: sum(|x| x.draws),
            free_pageblock_claims: report.as_ref().map_or(0, |r| r.free_pageblock_claims()),
            samples,
        }
    }
}

/// Fully free regions at one census sample.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RegionSample {
    /// Trace bytes read.
    pub at: u64,
    /// Trace time, if the trace has timestamps.
    pub time_s: Option<f64>,
    /// Fully free regions.
    pub fully_free: u64,
}

/// One policy's replay.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyReport {
    /// Policy name.
    pub name: String,
    /// What it does.
    pub summary: String,
    /// Requests and their outcomes.
    pub counts: ReplayCounts,
    /// The engine's counters (our fallbacks are `extfrag_events`).
    pub engine: EngineStats,
    /// Linux's own `mm_page_alloc_extfrag` count on the same stream.
    pub linux_extfrag_events: u64,
    /// Mixed pageblocks at the end.
    pub mixed_end: MixedPageblocks,
    /// Mixed pageblocks at the sampled peak.
    pub mixed_peak: MixedPeak,
    /// The trace written with `--emit-trace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emitted_trace: Option<EmittedTrace>,
    /// The state the replay started from, when it started where Linux was
    /// (`null`: empty memory).
    pub start: Option<StartReport>,
    /// Free pages at the end against Linux's after the trace (`null`
    /// without an after snapshot).
    pub free_vs_linux_after: Option<FreeDistance>,
    /// Unmovable and reclaimable pages over pageblocks at the end.
    pub unmovable_spread_end: UnmovableSpread,
    /// The same at the sample where they covered the most pageblocks.
    pub unmovable_spread_peak: SpreadPeak,
    /// Free blocks of pageblock order or more at the end.
    pub free_pageblocks_end: u64,
    /// The fewest free blocks of pageblock order or more in any sample.
    pub free_pageblocks_min: u64,
    /// The time series.
    pub samples: Vec<Sample>,
    /// Fully free regions (seed 000), with `--regions` or
    /// `--count-regions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<RegionOutcome>,
    /// `/proc/buddyinfo` at the end.
    #[serde(serialize_with = "crate::json::buddyinfo")]
    pub buddyinfo: BuddyInfo,
    /// `/proc/pagetypeinfo` at the end.
    #[serde(serialize_with = "crate::json::pagetypeinfo")]
    pub pagetypeinfo: PageTypeInfo,
}

/// A whole replay.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// Always `"replay"`.
    pub kind: &'static str,
    /// The files, in replay order.
    pub inputs: Vec<InputInfo>,
    /// The simulated machine.
    pub machine: MachineInfo,
    /// What the trace held.
    pub events: EventCounts,
    /// Wall-clock seconds for the whole replay.
    pub elapsed_s: f64,
    /// Events (lines that are events) per wall-clock second.
    pub events_per_s: f64,
    /// One entry per `--policy`, in command-line order.
    pub policies: Vec<PolicyReport>,
}

/// A phase of a scenario, for reports.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct PhaseInfo {
    /// Name.
    pub name: String,
    /// First step.
    pub start: u64,
    /// Steps.
    pub steps: u64,
    /// Snapshot title, if one is taken at the phase's end.
    pub snapshot: Option<String>,
}

/// Pages an actor holds and the pageblocks they occupy.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct HeldPages {
    /// The actor.
    pub actor: String,
    /// Pages it holds.
    pub pages: u64,
    /// Pageblocks holding at least one of them.
    pub pageblocks: u64,
    /// The fewest pageblocks that could hold them (pages / pageblock size,
    /// rounded up).
    pub min_pageblocks: u64,
}

/// Whether an allocation would succeed now, tried on a copy of the
/// allocator.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Probe {
    /// Order.
    pub order: u8,
    /// Flags, GFP-style.
    pub flags: String,
    /// The allocation would succeed.
    pub would_succeed: bool,
    /// Unusable free space index at this order, in thousandths.
    pub unusable_index: i32,
}

/// The summary figures of a snapshot.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct SnapshotSummary {
    /// Pages of each hold actor and the pageblocks they touch.
    pub held: Vec<HeldPages>,
    /// Mixed pageblocks.
    pub mixed: MixedPageblocks,
    /// Pageblocks holding unmovable or reclaimable pages.
    pub unmovable_spread: UnmovableSpread,
    /// Free pages.
    pub free_pages: u64,
    /// Free blocks per order.
    pub free_blocks: Vec<u64>,
    /// Allocation probes.
    pub probes: Vec<Probe>,
    /// Free page reporting then (variants with `reporting` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporting: Option<ReportingPoint>,
    /// Costly requests since the previous snapshot (or the start).
    pub requests: RequestPoint,
}

/// Free page reporting at one moment, all zones (the engine's
/// `reporting_info()`).
#[derive(Clone, Copy, PartialEq, Debug, Serialize)]
pub struct ReportingPoint {
    /// Scenario step.
    pub at: u64,
    /// Free pages in blocks at or above the reporting order (what could be
    /// reported).
    pub free_reportable: u64,
    /// Of those, the pages of reported blocks.
    pub reported: u64,
    /// `reported / free_reportable`; 1 when nothing is reportable (the
    /// engine's `reported_fraction()`).
    pub fraction: f64,
}

/// What free page reporting did in a variant that has it on.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct ReportingReport {
    /// The smallest order reported.
    pub order: u8,
    /// Blocks per batch.
    pub capacity: u16,
    /// A pass handles about `1/budget_fraction` of each free list.
    pub budget_fraction: u16,
    /// Steps between the reporting worker's looks.
    pub every: u64,
    /// Passes run (`report_passes`).
    pub passes: u64,
    /// Of those, passes run to continue one that left reportable pages
    /// unreported, without a new request from the engine (Linux re-requests
    /// itself when a pass runs out of budget; docs/pagesim.md).
    pub continued_passes: u64,
    /// Batches handed to the sink (`report_batches`).
    pub batches: u64,
    /// Batches the sink refused (`report_failures`; the simulator's sink
    /// accepts every batch, so 0).
    pub failed_batches: u64,
    /// Pages reported, cumulative (`reported_pages`; a page reported, then
    /// allocated, freed and reported again counts twice).
    pub reported_pages: u64,
    /// Pages of reported blocks that were allocated again
    /// (`reported_reallocated`: the host must fault them back in).
    pub reported_reallocated: u64,
    /// The figures at the end of the run.
    pub end: ReportingPoint,
    /// The figures at every census sample.
    pub samples: Vec<ReportingPoint>,
}

/// The state at the end of a phase with a `snapshot`.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// Title.
    pub title: String,
    /// The phase that just ended.
    pub phase: String,
    /// Steps done.
    pub step: u64,
    /// `/proc/buddyinfo`.
    #[serde(serialize_with = "crate::json::buddyinfo")]
    pub buddyinfo: BuddyInfo,
    /// `/proc/pagetypeinfo`.
    #[serde(serialize_with = "crate::json::pagetypeinfo")]
    pub pagetypeinfo: PageTypeInfo,
    /// Summary figures.
    pub summary: SnapshotSummary,
}

/// What one actor did.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ActorStats {
    /// Name.
    pub name: String,
    /// `churn`, `hold` or `contig`.
    pub kind: &'static str,
    /// Flags, GFP-style (`-` for a contig actor, whose calls take none).
    pub flags: String,
    /// Successful allocations per order.
    pub allocs: Vec<u64>,
    /// Failed allocations per order.
    pub alloc_failures: Vec<u64>,
    /// Blocks freed at the end of their lifetime.
    pub expired_blocks: u64,
    /// Blocks taken by reclaim.
    pub reclaimed_blocks: u64,
    /// Pages taken by reclaim.
    pub reclaimed_pages: u64,
    /// Pages freed by a hold actor's release.
    pub released_pages: u64,
    /// Pages held at the end.
    pub pages_end: u64,
    /// The most pages held at once.
    pub pages_peak: u64,
    /// A contig actor's requests (absent for other kinds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contig: Option<ContigStats>,
}

/// What a contig actor's requests came to (seed 003).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
pub struct ContigStats {
    /// The call: `range` (`alloc_contig_range`), `pages`
    /// (`alloc_contig_pages`) or `cma` (`cma_alloc`).
    pub via: &'static str,
    /// The CMA area (`via = "cma"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    /// Pages per request.
    pub request_pages: u64,
    /// Requests made.
    pub requests: u64,
    /// Requests served.
    pub served: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Why they failed.
    pub failures: ContigFailures,
    /// Requests not made because the actor held `max` already.
    pub skipped_at_max: u64,
    /// Reclaim runs during its requests' migrations: free memory fell to
    /// the low watermark while targets were taken (Linux's direct reclaim
    /// for migration targets).
    pub reclaim_runs: u64,
    /// Blocks the simulator's migrator moved for this actor's requests
    /// (served or not: blocks moved before a request failed stay moved).
    pub migrated_blocks: u64,
    /// Their pages.
    pub migrated_pages: u64,
    /// Blocks the migrator refused because no actor held them any more:
    /// reclaim, run during the same request, freed them after the engine
    /// listed them.
    pub refused_blocks: u64,
    /// Migration passes of served requests (the engine's `tries`: 0 when
    /// the range was free already).
    pub tries: u64,
    /// The most passes one served request needed.
    pub max_tries: u32,
    /// Served requests whose range was free (no migration).
    pub served_without_migration: u64,
    /// Candidate ranges isolated and given up before one was taken
    /// (`failed_candidates` of served requests, `tried` of failed ones).
    pub failed_candidates: u64,
    /// Runs given back at the end of their lifetime.
    pub released_runs: u64,
}

/// Why a contig actor's requests failed, by the engine's error.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
pub struct ContigFailures {
    /// Pages stayed allocated after every migration pass (`Busy`).
    pub busy: u64,
    /// A page nothing can migrate, or a CMA pageblock (`Unmovable`).
    pub unmovable: u64,
    /// A pageblock isolated by another caller (`Isolated`).
    pub isolated: u64,
    /// No memory for migration destinations (`NoMemory`).
    pub no_memory: u64,
    /// No candidate range could be taken (`NotFound`).
    pub not_found: u64,
    /// The range is not one usable range of one zone (`Range`: a random
    /// range across a zone boundary or a hole).
    pub bad_range: u64,
    /// Anything else (never expected).
    pub other: u64,
}

/// A CMA area of a variant, at the end of the run.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CmaAreaReport {
    /// Name in the scenario.
    pub name: String,
    /// First frame.
    pub start_pfn: u64,
    /// Pages.
    pub nr_pages: u64,
    /// Each bitmap bit stands for `2^order_per_bit` pages.
    pub order_per_bit: u8,
    /// Pages handed out by `cma_alloc` at the end (`cma_used_pages`).
    pub used_pages_end: u64,
    /// The most handed out at once (after each `cma_alloc`).
    pub used_pages_peak: u64,
    /// Pages of movable allocations inside the area at the end: memory
    /// the area lends while `cma_alloc` does not need it.
    pub movable_pages_end: u64,
    /// Free pages inside the area at the end.
    pub free_pages_end: u64,
    /// The area at every census sample.
    pub samples: Vec<CmaAreaPoint>,
}

impl CmaAreaReport {
    /// The mean over the samples of `what` (0 without samples).
    pub fn mean(&self, what: impl Fn(&CmaAreaPoint) -> u64) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().map(|p| what(p) as f64).sum::<f64>() / self.samples.len() as f64
    }
}

/// A CMA area's pages at one census sample.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct CmaAreaPoint {
    /// Scenario step.
    pub at: u64,
    /// Pages handed out by `cma_alloc`.
    pub used: u64,
    /// Pages of movable allocations (what the area lends).
    pub movable: u64,
    /// Free pages.
    pub free: u64,
}

/// What reclaim did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
pub struct ReclaimStats {
    /// Times free memory fell to the low watermark (or an allocation failed
    /// below the high one) and reclaim ran.
    pub runs: u64,
    /// Blocks freed.
    pub blocks: u64,
    /// Pages freed.
    pub pages: u64,
    /// Pageblocks emptied by reclaiming every page in them, for packed
    /// calls that had no free pageblock left to claim (the model's stand-in
    /// for the compaction Linux runs for pageblock-order requests).
    pub pageblocks_emptied: u64,
    /// Pages reclaimed to empty them (included in `pages`).
    pub emptying_pages: u64,
}

/// One variant's run.
#[derive(Clone, Debug, Serialize)]
pub struct VariantReport {
    /// Name.
    pub name: String,
    /// What it changes.
    pub description: Option<String>,
    /// Snapshots, in phase order.
    pub snapshots: Vec<Snapshot>,
    /// Per actor.
    pub actors: Vec<ActorStats>,
    /// Reclaim.
    pub reclaim: ReclaimStats,
    /// The engine's counters.
    pub engine: EngineStats,
    /// The trace written with `--emit-trace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emitted_trace: Option<EmittedTrace>,
    /// Unmovable and reclaimable pages over pageblocks at the end.
    pub unmovable_spread_end: UnmovableSpread,
    /// The same at the sample where they covered the most pageblocks.
    pub unmovable_spread_peak: SpreadPeak,
    /// The time series.
    pub samples: Vec<Sample>,
    /// Free page reporting, when the variant has it on (`null` otherwise).
    pub reporting: Option<ReportingReport>,
    /// The variant's CMA areas (empty without CMA).
    pub cma_areas: Vec<CmaAreaReport>,
    /// Compaction, and the success of costly requests.
    pub compaction: CompactionReport,
    /// Fully free regions over the run, for a variant with memory regions
    /// (seed 000; `null` without).
    pub regions: Option<RegionOutcome>,
}

/// Requests of one kind and how many the engine served.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
pub struct RequestRate {
    /// Requests made.
    pub requests: u64,
    /// Of those, served (after reclaim and compaction, if any).
    pub served: u64,
}

impl RequestRate {
    /// Counts one request.
    pub fn add(&mut self, served: bool) {
        self.requests += 1;
        self.served += u64::from(served);
    }

    /// The requests made since `earlier` (a tally of the same run).
    pub fn since(self, earlier: RequestRate) -> RequestRate {
        RequestRate {
            requests: self.requests - earlier.requests,
            served: self.served - earlier.served,
        }
    }

    /// The fraction served, or `None` with no request.
    pub fn rate(self) -> Option<f64> {
        (self.requests > 0).then(|| self.served as f64 / self.requests as f64)
    }
}

/// Costly requests over one interval (since the previous sample or
/// snapshot).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
pub struct RequestPoint {
    /// Scenario step at the end of the interval.
    pub at: u64,
    /// Requests of order 3 or more (Linux's costly orders).
    pub costly: RequestRate,
    /// Requests of the pageblock order (order 9: transparent huge pages).
    pub pageblock: RequestRate,
}

/// A variant's compaction: its settings, the engine's counters, what the
/// simulator's migrator moved for it, and how costly requests fared.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct CompactionReport {
    /// Compaction on at all.
    pub enabled: bool,
    /// Direct compaction of failed requests.
    pub direct: bool,
    /// `vm.compaction_proactiveness` (0 when off).
    pub proactiveness: u8,
    /// Steps between kcompactd's looks (0 when off).
    pub every: u64,
    /// Requests that compacted (`compact_stall`).
    pub compact_stall: u64,
    /// Of those, served after compacting (`compact_success`).
    pub compact_success: u64,
    /// And failed still (`compact_fail`).
    pub compact_fail: u64,
    /// Pages the migrate scanner looked at.
    pub compact_migrate_scanned: u64,
    /// Pages the free scanner looked at.
    pub compact_free_scanned: u64,
    /// Pages taken for migration, moved or not.
    pub compact_isolated: u64,
    /// kcompactd's proactive runs (`compact_daemon_wake`).
    pub compact_daemon_wake: u64,
    /// kcompactd's looks at the fragmentation score.
    pub proactive_looks: u64,
    /// Of those, looks that compacted.
    pub proactive_runs: u64,
    /// Runs that did not lower the score, after which kcompactd skipped
    /// 63 looks (Linux's timeout `<< COMPACT_MAX_DEFER_SHIFT`).
    pub proactive_defers: u64,
    /// Blocks compaction moved (direct and proactive).
    pub migrated_blocks: u64,
    /// Their pages.
    pub migrated_pages: u64,
    /// Blocks the simulator's migrator refused (not its own).
    pub refused_blocks: u64,
    /// The order `pageblock` counts.
    pub pageblock_order: u8,
    /// Requests of order 3 or more over the run.
    pub costly: RequestRate,
    /// Requests of the pageblock order over the run.
    pub pageblock: RequestRate,
    /// The same per sample interval.
    pub samples: Vec<RequestPoint>,
}

/// A whole scenario run.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// Always `"scenario"`.
    pub kind: &'static str,
    /// Name.
    pub name: String,
    /// What it models.
    pub description: Option<String>,
    /// Seed.
    pub seed: u64,
    /// Steps in all phases.
    pub total_steps: u64,
    /// Steps between samples.
    pub sample_every: u64,
    /// The machine.
    pub machine: MachineInfo,
    /// Phases.
    pub phases: Vec<PhaseInfo>,
    /// One entry per variant, in file order.
    pub variants: Vec<VariantReport>,
}
