//! Allocation policies a replay can compare side by side.
//!
//! A policy decides how a request from the trace is served by the engine;
//! the engine itself stays policy-free. Each policy gets its own allocator
//! and sees the same request stream, so the reports differ only by policy.
//! To add one: implement [`AllocPolicy`] and append a [`PolicyInfo`] to
//! [`REGISTRY`].

use pagealloc::{
    AllocError, AllocFlags, Allocator, BlockError, Config, Confinement, CpuId, Order, Packing, Pfn,
};

/// How requests are served.
pub trait AllocPolicy {
    /// Serves one allocation.
    fn alloc(
        &mut self,
        allocator: &mut Allocator,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError>;

    /// Frees one block (a policy with deferred frees may override this).
    fn free(
        &mut self,
        allocator: &mut Allocator,
        pfn: Pfn,
        order: Order,
    ) -> Result<(), BlockError> {
        allocator.free(pfn, order)
    }

    /// Serves one allocation through `cpu`'s per-CPU lists (replays run
    /// each event on its traced CPU). The default ignores `cpu` and calls
    /// [`AllocPolicy::alloc`]; a policy that can honour it overrides this.
    fn alloc_on_cpu(
        &mut self,
        allocator: &mut Allocator,
        cpu: CpuId,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError> {
        let _ = cpu;
        self.alloc(allocator, order, flags)
    }

    /// Frees one block through `cpu`'s per-CPU lists. The default ignores
    /// `cpu` and calls [`AllocPolicy::free`].
    fn free_on_cpu(
        &mut self,
        allocator: &mut Allocator,
        cpu: CpuId,
        pfn: Pfn,
        order: Order,
    ) -> Result<(), BlockError> {
        let _ = cpu;
        self.free(allocator, pfn, order)
    }
}

/// Linux 6.x: every request goes straight to the buddy allocator with its
/// own order and flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinuxPolicy;

impl AllocPolicy for LinuxPolicy {
    fn alloc(
        &mut self,
        allocator: &mut Allocator,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError> {
        allocator.alloc(order, flags)
    }

    fn alloc_on_cpu(
        &mut self,
        allocator: &mut Allocator,
        cpu: CpuId,
        order: Order,
        flags: AllocFlags,
    ) -> Result<Pfn, AllocError> {
        allocator.alloc_on_cpu(cpu, order, flags)
    }

    fn free_on_cpu(
        &mut self,
        allocator: &mut Allocator,
        cpu: CpuId,
        pfn: Pfn,
        order: Order,
    ) -> Result<(), BlockError> {
        allocator.free_on_cpu(cpu, pfn, order)
    }
}

/// A registered policy.
#[derive(Clone, Copy)]
pub struct PolicyInfo {
    /// The name `--policy` takes.
    pub name: &'static str,
    /// One line for `--help` and reports.
    pub summary: &'static str,
    /// Builds a fresh instance.
    pub build: fn() -> Box<dyn AllocPolicy>,
    /// Adjusts the engine's configuration before the policy's allocator is
    /// built (engine-side policies, such as packing).
    pub configure: fn(&mut Config),
}

/// Every policy this build knows.
pub const REGISTRY: &[PolicyInfo] = &[
    PolicyInfo {
        name: "linux",
        summary: "Linux 6.x buddy allocation: each request as traced, no extra policy",
        build: || Box::new(LinuxPolicy),
        configure: |_| {},
    },
    PolicyInfo {
        name: "packed",
        summary: "every unmovable and reclaimable allocation of order 0-3 packed into \
                  pageblocks its type already owns, fullest first, before a free pageblock \
                  is claimed, or one emptied by migration when none is free \
                  (Packing::SmallOrders)",
        build: || Box::new(LinuxPolicy),
        configure: |c| c.packing = Packing::SmallOrders,
    },
    PolicyInfo {
        name: "confined",
        summary: "unmovable and reclaimable memory confined to the low end of each zone, \
                  growing by the lowest free pageblock and shrinking as it empties; movable \
                  memory breaks free pageblocks from the top (Confinement::LowEnd, after \
                  Contiguitas)",
        build: || Box::new(LinuxPolicy),
        configure: |c| c.confinement = Confinement::LowEnd,
    },
];

/// The policy named `name`.
pub fn lookup(name: &str) -> Option<&'static PolicyInfo> {
    REGISTRY.iter().find(|p| p.name == name)
}

/// The known names, for error messages.
pub fn known_names() -> String {
    REGISTRY
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}
