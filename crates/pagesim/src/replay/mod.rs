//! Replaying a Linux ftrace page-allocator trace into our allocator.
//!
//! Our allocator picks its own frames, so each policy keeps a map from the
//! trace's pfn to the block it got for it. The rules follow the facts about
//! real traces (see `../shared/traces/README.md` and docs/pagesim.md):
//!
//! * `mm_page_free` is the free; the `mm_page_free_batched` that follows a
//!   batched free is the same free again and is only counted.
//! * A free of a pfn we never saw allocated was allocated before tracing
//!   started: counted as an *unknown-pfn free*, not an error.
//! * A free inside a live higher-order allocation frees a piece of it (Linux
//!   `split_page`, `free_pages_exact`): our block is split once into order-0
//!   pages and the matching pieces are freed.
//! * An allocation our allocator fails is counted per order; its later free
//!   is ignored and counted as such, never taken for a double free.
//! * An allocation of a pfn we still hold means the trace missed its free:
//!   our old block is freed first (an *implicit free*). Pieces of a split
//!   allocation that were freed are not held: a new allocation over them
//!   turns the split allocation's remaining pieces into order-0 allocations
//!   of their own.
//! * Each event runs on the CPU of its line (`[001]`), through that CPU's
//!   per-CPU lists; a CPU the machine does not have runs on CPU
//!   `n % nr_cpus` (counted).
//! * A replay started where Linux was ([`ReplayOptions::start`],
//!   [`crate::seed`]) holds what Linux had allocated before the trace as
//!   untraced memory; an unknown-pfn free then releases untraced memory of
//!   the same zone and order, of the type most of the trace's allocations in
//!   that pfn's pageblock had (Movable if none), counted
//!   ([`crate::seed::Untraced`]).
//!
//! The trace is decoded once (module `decode`): lines become compact requests in
//! batches, which every policy replays on a thread of its own (scoped
//! threads, a bounded channel each), so several policies cost about what
//! one does when there are cores for them. Each policy's replay is the same
//! sequence of calls whatever the threads do, so its report is the same as
//! a sequential run's ([`Execution`]).
//!
//! With `--emit-trace`, each policy's allocator gets a
//! [`TraceWriter`] as its event sink, and each
//! replayed event sets the task, CPU and time of the lines it causes.
//!
//! Order-0 allocations (99.5% of a real trace) live in a table indexed by
//! the trace pfn (module `table`), so the common free is one index;
//! higher-order ones live in a `BTreeMap`, where a free of any pfn inside
//! them is found by one range query.

mod decode;
mod run;
mod table;
mod usage;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use crate::emit::{emit_paths, TraceWriter};
use crate::error::{Error, Result};
use crate::input::LineReader;
use crate::machine::Machine;
use crate::policy::PolicyInfo;
use crate::procfs::ProcZone;
use crate::progress::Progress;
use crate::report::{EventCounts, InputInfo, PolicyReport, ReplayReport};
use crate::seed::StartState;
use crate::trace::{parse_common_line, parse_line_general, timestamp_secs};

use decode::{Batch, Decoder};
use run::PolicyRun;

/// How to replay.
pub struct ReplayOptions {
    /// Trace files, replayed one after the other as one stream.
    pub files: Vec<PathBuf>,
    /// The machine to replay into.
    pub machine: Machine,
    /// Policies to compare, each with its own allocator.
    pub policies: Vec<&'static PolicyInfo>,
    /// Skip and count malformed lines instead of failing.
    pub lenient: bool,
    /// Census samples per replay (spread over the input bytes).
    pub samples: u32,
    /// Write each policy's decisions as ftrace text to this file (one file
    /// per policy when there are several, see [`emit_paths`]).
    pub emit_trace: Option<PathBuf>,
    /// Linux's state before the trace, recreated in each policy's
    /// allocator before the first event (`None`: every page free).
    pub start: Option<StartState>,
    /// Linux's free pages per zone after the trace, to measure how close
    /// the replay ends.
    pub after: Option<AfterState>,
    /// Policies on threads of their own, or one after the other.
    pub execution: Execution,
    /// Compaction (on by default, as in Linux): an order > 0 request that
    /// may wait compacts when it fails (direct compaction), and a
    /// proactive round runs at every census sample (kcompactd); the
    /// replay's own allocations are the blocks that move.
    pub compaction: bool,
    /// Count fully free regions of this many pages at every sample (seed
    /// 000; `--regions`, `--count-regions`).
    pub region_census: Option<u64>,
}

impl ReplayOptions {
    /// Options for replaying `files` into `machine` with `policies`, from
    /// empty memory, with the default samples, in parallel.
    pub fn new(
        files: Vec<PathBuf>,
        machine: Machine,
        policies: Vec<&'static PolicyInfo>,
    ) -> ReplayOptions {
        ReplayOptions {
            files,
            machine,
            policies,
            lenient: false,
            samples: crate::DEFAULT_REPLAY_SAMPLES,
            emit_trace: None,
            start: None,
            after: None,
            execution: Execution::Parallel,
            compaction: true,
            region_census: None,
        }
    }
}

/// Linux's zones after the trace (their `pages free`).
#[derive(Clone, Debug)]
pub struct AfterState {
    /// The file.
    pub origin: String,
    /// Its zoneinfo.
    pub zones: Vec<ProcZone>,
}

/// Where the policies run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Execution {
    /// Each policy on a thread of its own, beside the decoding.
    Parallel,
    /// Every policy in the calling thread, batch by batch (the reference
    /// the parallel run must equal).
    Sequential,
}

/// Lines between two looks at the input position (sampling, progress).
const CHECK_EVERY_LINES: u32 = 256;
/// Malformed lines quoted in the report under `--lenient`.
const MALFORMED_EXAMPLES: usize = 5;
/// Batches a policy may lag behind the decoding: enough for the decoding
/// to run on while the policies build and seed their allocators (about a
/// tenth of a second for the traced machine, 16% of the cargo-build trace
/// here), at most 64 x 8192 requests (12 MiB) in flight.
const CHANNEL_BATCHES: usize = 64;

/// Replays the trace files into each policy's allocator.
pub fn replay(opts: &ReplayOptions, progress: &Progress) -> Result<ReplayReport> {
    let started = Instant::now();
    let names: Vec<&str> = opts.policies.iter().map(|p| p.name).collect();
    let emit_to: Vec<Option<PathBuf>> = match &opts.emit_trace {
        Some(base) => emit_paths(base, &names).into_iter().map(Some).collect(),
        None => vec![None; names.len()],
    };
    for path in emit_to.iter().flatten() {
        let same =
            |input: &PathBuf| match (std::fs::canonicalize(input), std::fs::canonicalize(path)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
        if opts.files.iter().any(same) {
            return Err(Error::Usage(format!(
                "--emit-trace {} would overwrite an input trace",
                path.display()
            )));
        }
    }
    let pageblock_order = opts.machine.config.pageblock_order;
    let writers = emit_to
        .into_iter()
        .map(|path| {
            path.map(|p| TraceWriter::create(&p, pageblock_order).map(Arc::new))
                .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    let mut decoder = Decoder::new(
        opts.machine.config.nr_cpus,
        opts.machine.config.nr_orders as usize,
        opts.start.as_ref().map(|_| pageblock_order),
        writers.iter().any(Option::is_some),
    );
    let setups: Vec<(&'static PolicyInfo, Option<Arc<TraceWriter>>)> =
        opts.policies.iter().copied().zip(writers).collect();
    let result = match opts.execution {
        Execution::Sequential => (|| {
            let mut runs = setups
                .into_iter()
                .map(|(info, w)| {
                    PolicyRun::new(info, &opts.machine, opts.start.as_ref(), w, opts.compaction)
                        .map(|r| r.with_region_census(opts.region_census))
                })
                .collect::<Result<Vec<_>>>()?;
            let inputs = decode_files(opts, progress, &mut decoder, &mut |batch: Batch| {
                for run in &mut runs {
                    run.apply(&batch);
                }
                Taken {
                    more: true,
                    spare: Some(batch),
                }
            })?;
            let outputs = runs
                .into_iter()
                .map(|r| r.finish(opts.after.as_ref(), &opts.machine))
                .collect::<Result<Vec<_>>>()?;
            Ok((inputs, outputs))
        })(),
        Execution::Parallel => std::thread::scope(|scope| {
            let mut senders: Vec<SyncSender<Arc<Batch>>> = Vec::new();
            let mut handles = Vec::new();
            for (info, writer) in setups {
                let (tx, rx) = sync_channel::<Arc<Batch>>(CHANNEL_BATCHES);
                senders.push(tx);
                let thread = std::thread::Builder::new()
                    .name(format!("policy {}", info.name))
                    .spawn_scoped(scope, move || policy_thread(opts, info, writer, rx))
                    .map_err(|e| Error::Internal(format!("cannot start a policy thread: {e}")))?;
                handles.push(thread);
            }
            // Batches sent, oldest first: one every policy has replayed
            // (and dropped) is filled again.
            let mut in_flight: VecDeque<Arc<Batch>> = VecDeque::new();
            let decoded = decode_files(opts, progress, &mut decoder, &mut |batch: Batch| {
                let batch = Arc::new(batch);
                // A policy that stopped has failed (its error is reported
                // below), and so has the replay: stop decoding.
                let more = senders.iter().all(|tx| tx.send(Arc::clone(&batch)).is_ok());
                in_flight.push_back(batch);
                let spare = match in_flight.front() {
                    Some(oldest) if Arc::strong_count(oldest) == 1 => {
                        in_flight.pop_front().and_then(|b| Arc::try_unwrap(b).ok())
                    }
                    _ => None,
                };
                Taken { more, spare }
            });
            drop(senders);
            // A policy's own error explains a decoding cut short: it comes
            // first.
            let outputs = handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Internal("a policy thread panicked".to_owned()))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            decoded.map(|inputs| (inputs, outputs))
        }),
    };
    progress.finish();
    let (inputs, outputs) = result?;
    let events = decoder.events;
    let mut policies: Vec<PolicyReport> = Vec::with_capacity(outputs.len());
    let mut machine = None;
    for (mut report, info) in outputs {
        report.linux_extfrag_events = events.mm_page_alloc_extfrag;
        machine.get_or_insert(info);
        policies.push(report);
    }
    let machine = machine.ok_or_else(|| Error::Usage("no policy to replay with".to_owned()))?;
    let elapsed_s = started.elapsed().as_secs_f64();
    Ok(ReplayReport {
        kind: "replay",
        inputs,
        machine,
        events_per_s: events.events() as f64 / elapsed_s.max(1e-9),
        events,
        elapsed_s,
        policies,
    })
}

/// One policy on its own thread: builds and seeds its allocator, replays
/// every batch it is sent, and reports.
fn policy_thread(
    opts: &ReplayOptions,
    info: &'static PolicyInfo,
    writer: Option<Arc<TraceWriter>>,
    batches: Receiver<Arc<Batch>>,
) -> Result<(PolicyReport, crate::machine::MachineInfo)> {
    let mut run = PolicyRun::new(
        info,
        &opts.machine,
        opts.start.as_ref(),
        writer,
        opts.compaction,
    )?
    .with_region_census(opts.region_census);
    for batch in batches {
        run.apply(&batch);
    }
    run.finish(opts.after.as_ref(), &opts.machine)
}

/// What a batch's receiver says.
struct Taken {
    /// Whether anyone still listens.
    more: bool,
    /// A batch replayed by everyone, to fill again.
    spare: Option<Batch>,
}

/// Reads and decodes every file, handing each full batch to `sink`;
/// returns the inputs read.
fn decode_files(
    opts: &ReplayOptions,
    progress: &Progress,
    decoder: &mut Decoder,
    sink: &mut dyn FnMut(Batch) -> Taken,
) -> Result<Vec<InputInfo>> {
    let total_bytes: u64 = opts
        .files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    progress.start(total_bytes, "replaying");
    let sample_every = (total_bytes / u64::from(opts.samples.max(1))).max(1);
    let mut next_sample = 0u64;
    let mut done_bytes = 0u64;
    let mut inputs = Vec::new();
    let mut last_timestamp: Vec<u8> = Vec::with_capacity(32);
    for path in &opts.files {
        let mut reader = LineReader::open(path)?;
        if reader.file_bytes() == 0 {
            return Err(Error::EmptyTrace {
                path: path.clone(),
                why: "empty file",
            });
        }
        let page_events_before = decoder.events.page_events();
        let mut until_check = CHECK_EVERY_LINES;
        let position = reader.position();
        while let Some((line_no, line)) = reader.next_line()? {
            decoder.events.lines += 1;
            // The common line first, without the `Result` of
            // `parse_line` (moving the line through it cost 5% here).
            let parsed = match parse_common_line(line) {
                Some(l) => l,
                None => match parse_line_general(line) {
                    Ok(l) => l,
                    Err(kind) if opts.lenient => {
                        let events: &mut EventCounts = &mut decoder.events;
                        events.malformed_skipped += 1;
                        if events.malformed_examples.len() < MALFORMED_EXAMPLES {
                            events.malformed_examples.push(format!(
                                "{}:{}: {kind}",
                                path.display(),
                                line_no
                            ));
                        }
                        continue;
                    }
                    Err(kind) => {
                        return Err(Error::TraceLine {
                            path: path.clone(),
                            line: line_no,
                            kind,
                        })
                    }
                },
            };
            if let Some(ts) = decoder.line(parsed) {
                last_timestamp.clear();
                last_timestamp.extend_from_slice(ts);
            }
            until_check -= 1;
            if until_check == 0 {
                until_check = CHECK_EVERY_LINES;
                let pos = done_bytes + position.get();
                progress.set(pos);
                if pos >= next_sample {
                    while next_sample <= pos {
                        next_sample += sample_every;
                    }
                    decoder.sample(timestamp_secs(&last_timestamp));
                }
            }
            if decoder.batch_full() {
                let taken = sink(decoder.take_batch());
                if !taken.more {
                    return Ok(inputs);
                }
                if let Some(spare) = taken.spare {
                    decoder.give_back(spare);
                }
            }
        }
        if decoder.events.page_events() == page_events_before {
            return Err(Error::EmptyTrace {
                path: path.clone(),
                why: "no mm_page_* event in the file",
            });
        }
        done_bytes += reader.file_bytes();
        inputs.push(InputInfo {
            path: path.clone(),
            format: reader.format(),
            file_bytes: reader.file_bytes(),
            lines: reader.line_no(),
        });
    }
    decoder.sample(timestamp_secs(&last_timestamp));
    sink(decoder.take_batch());
    Ok(inputs)
}
