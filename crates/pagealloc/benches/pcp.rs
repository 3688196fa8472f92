//! `pagealloc` side by side with four peer Rust frame allocators, in one
//! criterion binary so every ratio comes from the same process and run.
//!
//! Peers (exact versions pinned in Cargo.toml):
//!
//! * `buddy_system_allocator` 0.13.0 `FrameAllocator<11>`: a buddy system
//!   whose free lists are `BTreeSet`s (unlocked, `&mut self`).
//! * `bitmap-allocator` 0.4.6 `BitAlloc1M`: a 16-ary bitmap segment tree
//!   (unlocked, `&mut self`).
//! * `free-list` 0.3.4 `FreeList<16>`: a sorted vector of free ranges,
//!   first fit (unlocked, `&mut self`).
//! * `frame-alloc` 0.1.0: a lock-free bitmap buddy (`SummaryBuddyAllocator`),
//!   measured bare (`frame-alloc-buddy`) and behind its per-CPU magazine
//!   cache (`frame-alloc`, `DepotAllocator`). It keeps its bitmap inside the
//!   managed memory, so it runs over a real (lazily committed) heap region.
//!
//! Every allocator manages the same 262,144 frames of 4 KiB (1 GiB), and
//! every steady state is reached by the same fixed-seed sequence of
//! requests. Groups:
//!
//! * `bulk/<N>/pagealloc-packed`: `alloc_packed` (seed 001) + `free_bulk`,
//!   beside `alloc_bulk` + `free_bulk` in the same group;
//!   `pagealloc-bulk-alloc` and `pagealloc-packed-alloc` time the
//!   allocating call alone (the free after it untimed).
//! * `single/<allocator>`: one order-0 allocation and its free, with the
//!   allocator 50% full of random-order (0..=3) blocks.
//! * `churn/<allocator>`: 50% full of order-0 frames; free a random held
//!   frame, allocate a new one.
//! * `bulk/<N>/<variant>`: N order-0 pages allocated then freed, per page:
//!   `pagealloc`'s `alloc_bulk`/`free_bulk`, and N single calls everywhere.
//! * `order9/<allocator>`: a 2 MiB-aligned order-9 block allocated and freed.
//! * `threads/<T>`: order-0 alloc+free pairs through per-CPU lists on T
//!   threads, each on its own CPU slot; throughput is pages per second.
//!
//! Run: `cargo bench -p pagealloc --bench pcp`.

// frame-alloc's API is unsafe by contract (its deallocation, its
// initialisation and its provenance hook); free-list's deallocation too.
#![allow(unsafe_code)]

use std::alloc::{alloc, dealloc, Layout};
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bitmap_allocator::{BitAlloc, BitAlloc1M};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use frame_alloc::{
    DepotAllocator, InitError, NoCpuId, PageSize, PhysRange, PhysicalAllocator, Provenance,
    RegionInit, SummaryBuddyAllocator,
};
use free_list::{FreeList, PageLayout, PageRange};
use pagealloc::{
    AllocFlags, Allocator, Config, CpuId, LocalLists, MemoryMap, Order, PackClaim, PageCount,
    PcpHigh, PcpMode, Pfn, ZoneBounds,
};

/// Frames every allocator manages: 1 GiB of 4 KiB frames.
const FRAMES: usize = 262_144;
/// Bytes per frame.
const FRAME_BYTES: usize = 4096;
/// The first frame number (1 GiB, so every order up to 10 is aligned).
const BASE_PFN: usize = 0x4_0000;
/// Orders `0..NR_ORDERS` (largest block 4 MiB), as Linux and pagealloc's
/// default.
const NR_ORDERS: usize = 11;
/// The order of a 2 MiB block.
const ORDER9: u32 = 9;
/// Seed of every random sequence.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// Order-0 alloc+free pairs each thread does per iteration in `threads/*`.
const THREAD_OPS: u64 = 4096;

/// Marsaglia's xorshift64: deterministic and cheap.
struct XorShift(u64);

impl XorShift {
    #[inline(always)]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What the benchmarks need of an allocator: blocks of `2^order` frames,
/// naturally aligned, named by an opaque `usize` handle.
trait FrameAlloc {
    /// Allocates a block of `order`.
    fn alloc(&mut self, order: u32) -> Option<usize>;
    /// Frees a block `alloc(order)` returned.
    fn free(&mut self, frame: usize, order: u32);
    /// The frame number a handle names, counted from a 4 MiB-aligned origin
    /// (for checking alignment).
    fn frame_number(&self, handle: usize) -> usize {
        handle
    }
}

// ---------------------------------------------------------------- pagealloc

/// `pagealloc` through one CPU slot.
struct PageAlloc {
    a: Allocator,
    cpu: CpuId,
}

/// A one-zone (Normal) allocator over the benchmark's frames.
fn pagealloc_allocator(pcp: PcpMode, nr_cpus: u16) -> Allocator {
    let map =
        MemoryMap::contiguous(Pfn(BASE_PFN as u64), PageCount(FRAMES as u64)).expect("memory map");
    let config = Config {
        nr_cpus,
        pcp,
        pcp_high: PcpHigh::AutoTune,
        zone_bounds: ZoneBounds::NORMAL_ONLY,
        ..Config::default()
    };
    Allocator::new(map, config).expect("allocator")
}

impl PageAlloc {
    fn new(pcp: PcpMode) -> PageAlloc {
        PageAlloc {
            a: pagealloc_allocator(pcp, 1),
            cpu: CpuId(0),
        }
    }
}

/// `order` as an [`Order`]; every order the benchmarks use is valid.
#[inline(always)]
fn order(order: u32) -> Order {
    Order::new(order as u8).expect("order")
}

impl FrameAlloc for PageAlloc {
    #[inline(always)]
    fn alloc(&mut self, o: u32) -> Option<usize> {
        self.a
            .alloc_on_cpu(self.cpu, order(o), AllocFlags::KERNEL)
            .ok()
            .map(|p| p.0 as usize)
    }

    #[inline(always)]
    fn free(&mut self, frame: usize, o: u32) {
        self.a
            .free_on_cpu(self.cpu, Pfn(frame as u64), order(o))
            .expect("pagealloc free");
    }
}

/// `pagealloc` through CPU 0's lists held as [`LocalLists`]: no lock per
/// call, as a kernel with interrupts off on its CPU would call it.
struct PageAllocLocal<'a>(LocalLists<'a>);

impl FrameAlloc for PageAllocLocal<'_> {
    #[inline(always)]
    fn alloc(&mut self, o: u32) -> Option<usize> {
        self.0
            .alloc(order(o), AllocFlags::KERNEL)
            .ok()
            .map(|p| p.0 as usize)
    }

    #[inline(always)]
    fn free(&mut self, frame: usize, o: u32) {
        self.0
            .free(Pfn(frame as u64), order(o))
            .expect("pagealloc free");
    }
}

/// A fresh one-CPU allocator for [`PageAllocLocal`] to hold.
fn local_allocator() -> Allocator {
    pagealloc_allocator(PcpMode::Enabled, 1)
}

/// CPU 0's lists of `a`, held.
fn hold(a: &Allocator) -> PageAllocLocal<'_> {
    PageAllocLocal(a.local(CpuId(0)).expect("CPU 0's lists are free"))
}

// --------------------------------------------------- buddy_system_allocator

/// `buddy_system_allocator::FrameAllocator`, max order 10 like the others.
struct Buddy(buddy_system_allocator::FrameAllocator<NR_ORDERS>);

impl Buddy {
    fn new() -> Buddy {
        let mut f = buddy_system_allocator::FrameAllocator::<NR_ORDERS>::new();
        f.add_frame(BASE_PFN, BASE_PFN + FRAMES);
        Buddy(f)
    }
}

impl FrameAlloc for Buddy {
    #[inline(always)]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        self.0.alloc(1 << order)
    }

    #[inline(always)]
    fn free(&mut self, frame: usize, order: u32) {
        self.0.dealloc(frame, 1 << order);
    }
}

// --------------------------------------------------------- bitmap-allocator

/// `bitmap_allocator::BitAlloc1M` (the smallest of its types that holds
/// 262,144 bits); bit `i` is frame `BASE_PFN + i`.
struct Bitmap(Box<BitAlloc1M>);

impl Bitmap {
    fn new() -> Bitmap {
        let mut b = Box::new(BitAlloc1M::DEFAULT);
        b.insert(0..FRAMES);
        Bitmap(b)
    }
}

impl FrameAlloc for Bitmap {
    #[inline(always)]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        if order == 0 {
            self.0.alloc()
        } else {
            self.0.alloc_contiguous(None, 1 << order, order as usize)
        }
    }

    #[inline(always)]
    fn free(&mut self, frame: usize, order: u32) {
        if order == 0 {
            self.0.dealloc(frame);
        } else {
            self.0.dealloc_contiguous(frame, 1 << order);
        }
    }
}

// ---------------------------------------------------------------- free-list

/// `free_list::FreeList<16>` over the frames' byte addresses.
struct FreeListAlloc(FreeList<16>);

impl FreeListAlloc {
    fn new() -> FreeListAlloc {
        let mut f = FreeList::<16>::new();
        let range =
            PageRange::from_start_len(BASE_PFN * FRAME_BYTES, FRAMES * FRAME_BYTES).expect("range");
        // SAFETY: `FreeList` only does arithmetic on the addresses it is
        // given; it never dereferences them, and this range is handed to it
        // once.
        unsafe { f.deallocate(range) }.expect("free-list init");
        FreeListAlloc(f)
    }
}

impl FrameAlloc for FreeListAlloc {
    #[inline(always)]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        let bytes = FRAME_BYTES << order;
        let layout = PageLayout::from_size_align(bytes, bytes).ok()?;
        self.0.allocate(layout).ok().map(|r| r.start())
    }

    #[inline(always)]
    fn free(&mut self, frame: usize, order: u32) {
        let range = PageRange::from_start_len(frame, FRAME_BYTES << order).expect("range");
        // SAFETY: `range` is exactly a block this list allocated and the
        // benchmark frees it once; the list never dereferences addresses.
        unsafe { self.0.deallocate(range) }.expect("free-list free");
    }

    fn frame_number(&self, handle: usize) -> usize {
        handle / FRAME_BYTES
    }
}

// -------------------------------------------------------------- frame-alloc

/// frame-alloc's base frame: 4 KiB.
const FA_PAGE: PageSize = PageSize::from_log2(12);
/// frame-alloc's largest block and the alignment of its region: 4 MiB.
const FA_MAX_BLOCK: usize = FRAME_BYTES << (NR_ORDERS - 1);

/// Provenance for a pool that is one live heap allocation whose provenance
/// [`Region::new`] exposed (frame-alloc's "recover exposed provenance"
/// story, as its own tests and example do).
struct HeapProv;

// SAFETY: `create` recovers the provenance `Region::new` exposed for the
// whole region, so the pointer covers every byte from `phys` to the region's
// end; `destroy` only reads the address back and ends nothing, which is the
// complete implementation for exposed provenance.
unsafe impl Provenance for HeapProv {
    unsafe fn create(phys: usize) -> NonNull<u8> {
        // SAFETY: frame-alloc only asks for addresses inside a live `Region`
        // (the bitmap host range), so `phys` is not null.
        unsafe { NonNull::new_unchecked(std::ptr::with_exposed_provenance_mut(phys)) }
    }

    unsafe fn destroy<T>(ptr: NonNull<T>) -> usize {
        ptr.addr().get()
    }
}

/// A heap allocation standing in for physical RAM. Only frame-alloc's bitmap
/// is ever written, so the rest stays uncommitted.
struct Region {
    ptr: *mut u8,
    layout: Layout,
}

impl Region {
    fn new(bytes: usize) -> Region {
        let layout = Layout::from_size_align(bytes, FA_MAX_BLOCK).expect("layout");
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { alloc(layout) };
        assert!(!ptr.is_null(), "region allocation failed");
        Region { ptr, layout }
    }

    /// The region's address, its provenance exposed for [`HeapProv`].
    fn addr(&self) -> usize {
        self.ptr.expose_provenance()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc` with this same layout, once.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// The bare lock-free buddy.
type FaBuddy = SummaryBuddyAllocator<NR_ORDERS, HeapProv>;
/// The buddy behind one per-CPU magazine (CAP 128) and the shared depot
/// (512), the crate's defaults.
type FaDepot = DepotAllocator<FaBuddy, NoCpuId, 1>;

/// frame-alloc over a heap region laid out as: the bitmap's frames at the
/// start, then a hole up to 4 MiB, then exactly [`FRAMES`] 4 MiB-aligned
/// usable frames, so it hands out as many frames as the others, with the
/// same alignment.
struct FrameAllocPeer<A> {
    a: Box<A>,
    /// Address of the first managed frame.
    origin: usize,
    /// Declared after `a`, so dropped after it.
    _region: Region,
}

impl<A: PhysicalAllocator + RegionInit> FrameAllocPeer<A> {
    fn new(a: A) -> FrameAllocPeer<A> {
        let gap = FA_MAX_BLOCK;
        let span = gap + FRAMES * FRAME_BYTES;
        let region = Region::new(span);
        let base = region.addr();
        let a = Box::new(a);
        // frame-alloc reports how many bytes of bitmap the span needs when
        // no usable range can hold it; a failed `try_init` changes nothing.
        // SAFETY: the region is ours, live, and reachable through
        // `HeapProv`; single-threaded.
        let bitmap_bytes = match unsafe { a.try_init(base, span, &[]) } {
            Err(InitError::MetadataWontFit { required_bytes }) => required_bytes,
            other => panic!("frame-alloc sizing probe: {other:?}"),
        };
        assert!(bitmap_bytes <= gap, "bitmap {bitmap_bytes} B > 4 MiB");
        let usable = [
            PhysRange {
                base,
                len: bitmap_bytes,
            },
            PhysRange {
                base: base + gap,
                len: FRAMES * FRAME_BYTES,
            },
        ];
        // SAFETY: both ranges lie in our live region, sorted, disjoint,
        // frame-aligned; the region is exclusively owned by this value and
        // outlives the allocator; single-threaded, before any use.
        unsafe { a.init(base, span, &usable) };
        FrameAllocPeer {
            a,
            origin: base + gap,
            _region: region,
        }
    }
}

impl<A: PhysicalAllocator> FrameAlloc for FrameAllocPeer<A> {
    #[inline(always)]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        let count = NonZeroUsize::new(1 << order).expect("count");
        self.a.allocate_physical(FA_PAGE, count).ok()
    }

    #[inline(always)]
    fn free(&mut self, frame: usize, order: u32) {
        let count = NonZeroUsize::new(1 << order).expect("count");
        // SAFETY: `frame` came from `allocate_physical` with this page size
        // and count, and the benchmark frees it once and never touches it.
        unsafe { self.a.deallocate_physical(FA_PAGE, count, frame) };
    }

    fn frame_number(&self, handle: usize) -> usize {
        (handle - self.origin) / FRAME_BYTES
    }
}

fn fa_buddy() -> FrameAllocPeer<FaBuddy> {
    FrameAllocPeer::new(FaBuddy::new(FA_PAGE))
}

fn fa_depot() -> FrameAllocPeer<FaDepot> {
    FrameAllocPeer::new(FaDepot::new(FA_PAGE, FaBuddy::new(FA_PAGE)))
}

// ------------------------------------------------------------ steady states

/// Fills half the frames with blocks of random orders 0..=3 (the same
/// sequence of requests for every allocator) and returns them.
fn prefill_random<A: FrameAlloc>(a: &mut A) -> Vec<(usize, u32)> {
    let mut rng = XorShift(SEED);
    let mut held = Vec::new();
    let mut used = 0;
    while used < FRAMES / 2 {
        let order = (rng.next() % 4) as u32;
        let frame = a.alloc(order).expect("prefill");
        held.push((frame, order));
        used += 1 << order;
    }
    held
}

/// Fills half the frames with order-0 frames and returns them.
fn prefill_order0<A: FrameAlloc>(a: &mut A) -> Vec<usize> {
    (0..FRAMES / 2)
        .map(|_| a.alloc(0).expect("prefill"))
        .collect()
}

// ------------------------------------------------------------------ groups

/// Applies the run lengths every group uses: the whole binary stays within
/// a few minutes.
fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.warm_up_time(Duration::from_millis(1000))
        .measurement_time(Duration::from_millis(2000))
        .sample_size(30);
}

fn single_one<A: FrameAlloc>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut a: A) {
    let held = prefill_random(&mut a);
    g.bench_function(name, |b| {
        b.iter(|| {
            let f = a.alloc(0).expect("alloc");
            a.free(black_box(f), 0);
        })
    });
    drop(held);
}

fn single(c: &mut Criterion) {
    let mut g = c.benchmark_group("single");
    configure(&mut g);
    single_one(&mut g, "pagealloc", PageAlloc::new(PcpMode::Enabled));
    let local = local_allocator();
    single_one(&mut g, "pagealloc-local", hold(&local));
    single_one(&mut g, "pagealloc-nopcp", PageAlloc::new(PcpMode::Disabled));
    single_one(&mut g, "buddy_system_allocator", Buddy::new());
    single_one(&mut g, "bitmap-allocator", Bitmap::new());
    single_one(&mut g, "free-list", FreeListAlloc::new());
    single_one(&mut g, "frame-alloc", fa_depot());
    single_one(&mut g, "frame-alloc-buddy", fa_buddy());
    g.finish();
}

fn churn_one<A: FrameAlloc>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut a: A) {
    let mut held = prefill_order0(&mut a);
    let mut rng = XorShift(SEED);
    g.bench_function(name, |b| {
        b.iter(|| {
            let i = (rng.next() % held.len() as u64) as usize;
            a.free(black_box(held[i]), 0);
            held[i] = a.alloc(0).expect("alloc");
        })
    });
}

fn churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("churn");
    configure(&mut g);
    churn_one(&mut g, "pagealloc", PageAlloc::new(PcpMode::Enabled));
    let local = local_allocator();
    churn_one(&mut g, "pagealloc-local", hold(&local));
    churn_one(&mut g, "pagealloc-nopcp", PageAlloc::new(PcpMode::Disabled));
    churn_one(&mut g, "buddy_system_allocator", Buddy::new());
    churn_one(&mut g, "bitmap-allocator", Bitmap::new());
    churn_one(&mut g, "free-list", FreeListAlloc::new());
    churn_one(&mut g, "frame-alloc", fa_depot());
    churn_one(&mut g, "frame-alloc-buddy", fa_buddy());
    g.finish();
}

/// `pagealloc`'s `alloc_bulk` + `free_bulk` of `n` pages.
fn bulk_pagealloc(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, pcp: PcpMode, n: usize) {
    let mut pa = PageAlloc::new(pcp);
    let held = prefill_random(&mut pa);
    let a = &pa.a;
    let cpu = CpuId(0);
    let mut buf = vec![Pfn(0); n];
    g.bench_function(name, |b| {
        b.iter(|| {
            let got = a
                .alloc_bulk(cpu, AllocFlags::KERNEL, black_box(&mut buf))
                .expect("alloc_bulk");
            assert_eq!(got, n, "short bulk allocation");
            a.free_bulk(cpu, black_box(&buf)).expect("free_bulk");
        })
    });
    drop(held);
}

/// `alloc_bulk` + `free_bulk` of `n` pages through CPU 0's lists held as
/// [`LocalLists`].
fn bulk_pagealloc_local(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize) {
    let a = local_allocator();
    let mut local = hold(&a);
    let held = prefill_random(&mut local);
    let mut buf = vec![Pfn(0); n];
    g.bench_function(name, |b| {
        b.iter(|| {
            let got = local
                .0
                .alloc_bulk(AllocFlags::KERNEL, black_box(&mut buf))
                .expect("alloc_bulk");
            assert_eq!(got, n, "short bulk allocation");
            local.0.free_bulk(black_box(&buf)).expect("free_bulk");
        })
    });
    drop(held);
}

/// `pagealloc`'s packed allocation (seed 001) of `n` order-0 pages and a
/// batched free, for comparison with `alloc_bulk` in the same group.
fn packed_pagealloc(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize) {
    let mut pa = PageAlloc::new(PcpMode::Enabled);
    let held = prefill_random(&mut pa);
    let a = &pa.a;
    let cpu = CpuId(0);
    let mut buf = vec![Pfn(0); n];
    g.bench_function(name, |b| {
        b.iter(|| {
            let got = a
                .alloc_packed(
                    cpu,
                    AllocFlags::KERNEL,
                    PackClaim::ClaimFreePageblocks,
                    black_box(&mut buf),
                )
                .expect("alloc_packed");
            assert_eq!(got, n, "short packed allocation");
            a.free_bulk(cpu, black_box(&buf)).expect("free_bulk");
        })
    });
    drop(held);
}

/// The allocation half alone of `bulk_pagealloc` (`Pages::Bulk`) or of
/// `packed_pagealloc` (`Pages::Packed`): only the allocating call is timed,
/// the `free_bulk` after it is not. Packed pages come from the buddy lists
/// and their frees end there; bulk pages recycle through the per-CPU list.
fn alloc_half(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, pages: Pages, n: usize) {
    let mut pa = PageAlloc::new(PcpMode::Enabled);
    let held = prefill_random(&mut pa);
    let a = &pa.a;
    let cpu = CpuId(0);
    let mut buf = vec![Pfn(0); n];
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let got = match pages {
                    Pages::Bulk => a.alloc_bulk(cpu, AllocFlags::KERNEL, black_box(&mut buf)),
                    Pages::Packed => a.alloc_packed(
                        cpu,
                        AllocFlags::KERNEL,
                        PackClaim::ClaimFreePageblocks,
                        black_box(&mut buf),
                    ),
                }
                .expect("allocation");
                timed += start.elapsed();
                assert_eq!(got, n, "short allocation");
                a.free_bulk(cpu, black_box(&buf)).expect("free_bulk");
            }
            timed
        })
    });
    drop(held);
}

/// Which allocation `alloc_half` times.
#[derive(Clone, Copy)]
enum Pages {
    /// `alloc_bulk`.
    Bulk,
    /// `alloc_packed`.
    Packed,
}

/// `n` single allocations, then their `n` frees.
fn bulk_singles<A: FrameAlloc>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut a: A,
    n: usize,
) {
    let held = prefill_random(&mut a);
    let mut buf = vec![0usize; n];
    g.bench_function(name, |b| {
        b.iter(|| {
            for slot in buf.iter_mut() {
                *slot = a.alloc(0).expect("alloc");
            }
            for &f in black_box(&buf).iter() {
                a.free(f, 0);
            }
        })
    });
    drop(held);
}

fn bulk(c: &mut Criterion) {
    for n in [8usize, 64, 256] {
        let mut g = c.benchmark_group(format!("bulk/{n}"));
        configure(&mut g);
        g.throughput(Throughput::Elements(n as u64));
        bulk_pagealloc(&mut g, "pagealloc-bulk", PcpMode::Enabled, n);
        bulk_pagealloc_local(&mut g, "pagealloc-local-bulk", n);
        packed_pagealloc(&mut g, "pagealloc-packed", n);
        alloc_half(&mut g, "pagealloc-bulk-alloc", Pages::Bulk, n);
        alloc_half(&mut g, "pagealloc-packed-alloc", Pages::Packed, n);
        bulk_pagealloc(&mut g, "pagealloc-nopcp-bulk", PcpMode::Disabled, n);
        bulk_singles(
            &mut g,
            "pagealloc-singles",
            PageAlloc::new(PcpMode::Enabled),
            n,
        );
        bulk_singles(&mut g, "buddy_system_allocator", Buddy::new(), n);
        bulk_singles(&mut g, "bitmap-allocator", Bitmap::new(), n);
        bulk_singles(&mut g, "free-list", FreeListAlloc::new(), n);
        bulk_singles(&mut g, "frame-alloc", fa_depot(), n);
        bulk_singles(&mut g, "frame-alloc-buddy", fa_buddy(), n);
        g.finish();
    }
}

fn order9_one<A: FrameAlloc>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut a: A) {
    let held = prefill_random(&mut a);
    let align = 1usize << ORDER9;
    g.bench_function(name, |b| {
        b.iter(|| {
            let f = a.alloc(ORDER9).expect("order-9 alloc");
            a.free(black_box(f), ORDER9);
        })
    });
    // Every allocator's order-9 blocks are 2 MiB aligned.
    let f = a.alloc(ORDER9).expect("order-9 alloc");
    assert_eq!(
        a.frame_number(f) % align,
        0,
        "{name}: misaligned order-9 block"
    );
    a.free(f, ORDER9);
    drop(held);
}

fn order9(c: &mut Criterion) {
    let mut g = c.benchmark_group("order9");
    configure(&mut g);
    order9_one(&mut g, "pagealloc", PageAlloc::new(PcpMode::Enabled));
    order9_one(&mut g, "pagealloc-nopcp", PageAlloc::new(PcpMode::Disabled));
    order9_one(&mut g, "buddy_system_allocator", Buddy::new());
    order9_one(&mut g, "bitmap-allocator", Bitmap::new());
    order9_one(&mut g, "free-list", FreeListAlloc::new());
    order9_one(&mut g, "frame-alloc", fa_depot());
    order9_one(&mut g, "frame-alloc-buddy", fa_buddy());
    g.finish();
}

fn threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("threads");
    configure(&mut g);
    // One allocator with two CPU slots for both runs, 50% full.
    let mut pa = PageAlloc {
        a: pagealloc_allocator(PcpMode::Enabled, 2),
        cpu: CpuId(0),
    };
    let held = prefill_random(&mut pa);
    let a = &pa.a;
    let o0 = Order::ZERO;
    for nr_threads in [1u16, 2] {
        g.throughput(Throughput::Elements(u64::from(nr_threads) * THREAD_OPS));
        g.bench_function(nr_threads.to_string(), |b| {
            b.iter_custom(|iters| {
                let ops = iters * THREAD_OPS;
                // The threads are started before the clock and released
                // together by the barrier: thread creation is the OS's
                // cost, not the allocator's, and with it in the timed
                // region two threads paid for two spawns.
                let go = Barrier::new(usize::from(nr_threads) + 1);
                std::thread::scope(|s| {
                    let go = &go;
                    for t in 0..nr_threads {
                        s.spawn(move || {
                            let cpu = CpuId(t);
                            go.wait();
                            for _ in 0..ops {
                                let p = a.alloc_on_cpu(cpu, o0, AllocFlags::KERNEL).expect("alloc");
                                a.free_on_cpu(cpu, black_box(p), o0).expect("free");
                            }
                        });
                    }
                    go.wait();
                    Instant::now()
                })
                .elapsed()
            })
        });
    }
    g.finish();
    drop(held);
}

/// Criterion's generated entry point, kept private.
mod entry {
    use super::{bulk, churn, criterion_group, order9, single, threads};
    criterion_group!(benches, single, churn, bulk, order9, threads);
}
criterion_main!(entry::benches);
