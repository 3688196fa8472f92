//! Decoding the trace once for every policy: lines become compact
//! requests ([`Op`]) in batches, and the trace's own figures
//! ([`EventCounts`]) are counted here, whatever the policies do.

use pagealloc::{AllocFlags, MigrateType};
use rustc_hash::FxHashMap;

use crate::gfp::{parse_gfp, Strictness};
use crate::report::EventCounts;
use crate::trace::{timestamp_micros, Event, Line};

/// Requests per batch: large enough that handing a batch to a thread costs
/// nothing per request, small enough that the policies start at once.
pub(crate) const BATCH_OPS: usize = 8192;

/// One thing every policy does, in trace order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    /// `mm_page_alloc` of Linux's frame `pfn` (a NULL page is not an op).
    Alloc {
        /// Linux's frame.
        pfn: u64,
        /// The flags, with the traced migratetype.
        flags: AllocFlags,
        /// Order as traced (may exceed the machine's).
        order: u8,
        /// The CPU it runs on (the traced CPU modulo the machine's).
        cpu: u16,
    },
    /// `mm_page_free` of Linux's frame `pfn`.
    Free {
        /// Linux's frame.
        pfn: u64,
        /// Order as traced.
        order: u8,
        /// The CPU it runs on.
        cpu: u16,
        /// The type the trace suggests for the pfn's pageblock: what a
        /// free of untraced memory releases.
        hint: MigrateType,
    },
    /// A census sample point.
    Sample {
        /// Events decoded so far.
        at: u64,
        /// Trace time, seconds.
        time_s: Option<f64>,
    },
}

/// Where `--emit-trace` takes an op's task and time from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context {
    /// The task column: `tasks[start..start + len]` of the batch.
    pub task: (u32, u32),
    /// The timestamp in microseconds.
    pub micros: u64,
}

/// Ops in trace order, and their emit contexts when asked for.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The ops.
    pub ops: Vec<Op>,
    /// One per op when emitting (samples included), else empty.
    pub contexts: Vec<Context>,
    /// The task names the contexts point into.
    pub tasks: Vec<u8>,
}

impl Batch {
    fn with_capacity(emit: bool) -> Batch {
        Batch {
            ops: Vec::with_capacity(BATCH_OPS),
            contexts: Vec::with_capacity(if emit { BATCH_OPS } else { 0 }),
            tasks: Vec::new(),
        }
    }

    /// The task of op `i`'s context.
    pub fn task(&self, c: &Context) -> &[u8] {
        let (s, n) = (c.task.0 as usize, c.task.1 as usize);
        &self.tasks[s..s + n]
    }
}

/// Caches the flags of the few distinct `gfp_flags=` strings a trace holds.
#[derive(Default)]
struct GfpCache {
    map: FxHashMap<Vec<u8>, AllocFlags>,
    /// The last string looked up and its flags: consecutive allocations
    /// mostly share their flags, and comparing is cheaper than hashing.
    last: Option<(Vec<u8>, AllocFlags)>,
}

impl GfpCache {
    fn flags(&mut self, gfp: &[u8], migratetype: u8) -> AllocFlags {
        let base = match &self.last {
            Some((text, f)) if text.as_slice() == gfp => *f,
            _ => {
                let f = match self.map.get(gfp) {
                    Some(&f) => f,
                    None => {
                        let f = parse_gfp(gfp, Strictness::Lenient).unwrap_or(AllocFlags::KERNEL);
                        self.map.insert(gfp.to_vec(), f);
                        f
                    }
                };
                let mut text = self.last.take().map(|l| l.0).unwrap_or_default();
                text.clear();
                text.extend_from_slice(gfp);
                self.last = Some((text, f));
                f
            }
        };
        // The traced migratetype is authoritative (it is what Linux used);
        // flags that already ask for it are kept as they are, so that flags
        // pagesim wrote (`--emit-trace`) read back bit for bit.
        let mt = MigrateType::from_index(migratetype as usize).unwrap_or(MigrateType::Unmovable);
        if base.migratetype() == mt {
            base
        } else {
            (base - AllocFlags::MOVABLE - AllocFlags::RECLAIMABLE) | AllocFlags::for_migratetype(mt)
        }
    }
}

/// The migratetype the trace suggests for each of Linux's pageblocks: the
/// type most of the trace's allocations in it had so far (Movable, the
/// usual type, without any).
struct PageblockHints {
    shift: u8,
    /// Counts per pageblock below [`DENSE_PAGEBLOCKS`], grown as needed.
    dense: Vec<[u32; 3]>,
    /// Counts for pageblocks above (pfns no real machine has).
    sparse: FxHashMap<u64, [u32; 3]>,
}

/// Pageblocks whose hints live in a plain table: 2^20 (512 GiB of 4 KiB
/// pages with 2 MiB pageblocks), 12 MiB at most, grown only as far as the
/// trace's pfns reach.
const DENSE_PAGEBLOCKS: u64 = 1 << 20;

impl PageblockHints {
    fn note(&mut self, pfn: u64, migratetype: u8) {
        let pb = pfn >> self.shift;
        let c = if pb < DENSE_PAGEBLOCKS {
            let i = pb as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, [0; 3]);
            }
            &mut self.dense[i]
        } else {
            self.sparse.entry(pb).or_default()
        };
        let i = usize::from(migratetype.min(2));
        c[i] = c[i].saturating_add(1);
    }

    fn hint(&self, pfn: u64) -> MigrateType {
        let pb = pfn >> self.shift;
        let counts = if pb < DENSE_PAGEBLOCKS {
            self.dense.get(pb as usize)
        } else {
            self.sparse.get(&pb)
        };
        let Some(c) = counts else {
            return MigrateType::Movable;
        };
        // Ties go to Movable, then Unmovable.
        let mut best = (c[1], MigrateType::Movable);
        for (n, mt) in [
            (c[0], MigrateType::Unmovable),
            (c[2], MigrateType::Reclaimable),
        ] {
            if n > best.0 {
                best = (n, mt);
            }
        }
        best.1
    }
}

/// Turns parsed lines into batches of ops and counts the trace's events.
pub(crate) struct Decoder {
    /// The trace's figures so far.
    pub events: EventCounts,
    gfp: GfpCache,
    hints: Option<PageblockHints>,
    nr_cpus: u16,
    emit: bool,
    batch: Batch,
    /// An emptied batch to fill next instead of allocating one.
    spare: Option<Batch>,
}

impl Decoder {
    /// A decoder for a machine of `nr_cpus` CPUs and `nr_orders` orders;
    /// `hints_shift` (the pageblock order) when frees need type hints,
    /// `emit` when ops need their contexts.
    pub fn new(nr_cpus: u16, nr_orders: usize, hints_shift: Option<u8>, emit: bool) -> Decoder {
        Decoder {
            events: EventCounts {
                alloc_by_order: vec![0; nr_orders],
                ..EventCounts::default()
            },
            gfp: GfpCache::default(),
            hints: hints_shift.map(|shift| PageblockHints {
                shift,
                dense: Vec::new(),
                sparse: FxHashMap::default(),
            }),
            nr_cpus: nr_cpus.max(1),
            emit,
            batch: Batch::with_capacity(emit),
            spare: None,
        }
    }

    /// Whether the current batch is full.
    pub fn batch_full(&self) -> bool {
        self.batch.ops.len() >= BATCH_OPS
    }

    /// The current batch, replaced by an empty one (the spare, if a
    /// replayed batch was given back).
    pub fn take_batch(&mut self) -> Batch {
        let next = self
            .spare
            .take()
            .unwrap_or_else(|| Batch::with_capacity(self.emit));
        std::mem::replace(&mut self.batch, next)
    }

    /// Takes back a batch every policy has replayed, to fill again: a
    /// fresh batch is 256 KiB of memory the kernel must zero on first
    /// touch.
    pub fn give_back(&mut self, mut batch: Batch) {
        batch.ops.clear();
        batch.contexts.clear();
        batch.tasks.clear();
        self.spare = Some(batch);
    }

    /// Adds a census sample point now.
    pub fn sample(&mut self, time_s: Option<f64>) {
        let at = self.events.events();
        self.push(Op::Sample { at, time_s }, None);
    }

    #[inline(always)]
    fn push(&mut self, op: Op, ctx: Option<(&[u8], &[u8])>) {
        self.batch.ops.push(op);
        if !self.emit {
            return;
        }
        let (task, timestamp) = ctx.unwrap_or((b"", b""));
        let b = &mut self.batch;
        // Consecutive events of one task share its bytes.
        let task_range = match b.contexts.last() {
            Some(c) if b.task(c) == task => c.task,
            _ => {
                let start = b.tasks.len() as u32;
                b.tasks.extend_from_slice(task);
                (start, task.len() as u32)
            }
        };
        b.contexts.push(Context {
            task: task_range,
            micros: timestamp_micros(timestamp).unwrap_or(0),
        });
    }

    /// Counts one parsed line and queues what the policies must do; returns
    /// its timestamp if it is an event.
    #[inline(always)]
    pub fn line<'a>(&mut self, line: Line<'a>) -> Option<&'a [u8]> {
        let events = &mut self.events;
        let (task, cpu, timestamp, event) = match line {
            Line::Comment => {
                events.comments += 1;
                return None;
            }
            Line::Lost { nr } => {
                // `nr` is any number the file says: saturate, never overflow.
                events.lost_events = events.lost_events.saturating_add(nr);
                return None;
            }
            Line::Event {
                task,
                cpu,
                timestamp,
                event,
            } => (task, cpu.unwrap_or(0), timestamp, event),
        };
        if cpu >= self.nr_cpus {
            events.cpu_folded += 1;
        }
        let cpu = cpu % self.nr_cpus;
        match event {
            Event::Alloc {
                pfn,
                order,
                migratetype,
                gfp: text,
            } => {
                events.mm_page_alloc += 1;
                bump(&mut events.alloc_by_order, order);
                events.alloc_by_migratetype[migratetype as usize] += 1;
                match pfn {
                    Some(pfn) => {
                        let flags = self.gfp.flags(text, migratetype);
                        if let Some(h) = &mut self.hints {
                            h.note(pfn, migratetype);
                        }
                        let op = Op::Alloc {
                            pfn,
                            flags,
                            order,
                            cpu,
                        };
                        self.push(op, Some((task, timestamp)));
                    }
                    None => events.linux_alloc_failures += 1,
                }
            }
            Event::Free { pfn, order } => {
                events.mm_page_free += 1;
                let hint = self
                    .hints
                    .as_ref()
                    .map_or(MigrateType::Movable, |h| h.hint(pfn));
                let op = Op::Free {
                    pfn,
                    order,
                    cpu,
                    hint,
                };
                self.push(op, Some((task, timestamp)));
            }
            Event::FreeBatched { .. } => events.mm_page_free_batched += 1,
            Event::PcpuDrain => events.mm_page_pcpu_drain += 1,
            Event::Extfrag {
                fragmenting,
                change_ownership,
            } => {
                events.mm_page_alloc_extfrag += 1;
                events.extfrag_fragmenting += u64::from(fragmenting);
                events.extfrag_change_ownership += u64::from(change_ownership);
            }
            Event::Other => events.other_events += 1,
        }
        Some(timestamp)
    }
}

/// Adds one at `order`, growing the per-order counts for an order beyond
/// the machine's (a trace from a kernel with more orders).
pub(crate) fn bump(counts: &mut Vec<u64>, order: u8) {
    let i = order as usize;
    if counts.len() <= i {
        counts.resize(i + 1, 0);
    }
    counts[i] += 1;
}
