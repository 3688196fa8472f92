//! The locks the engine uses, through `lock_api`: a kernel plugs in its
//! own raw lock; everyone else gets a spinlock that works without `std`.
//!
//! Also the engine's only door to atomics and spin hints ([`atomic`],
//! [`spin_loop`]): re-exports of `core`'s in every normal build (so the
//! code compiles exactly as if it named `core::sync::atomic` itself), and
//! `shuttle`'s under the `model-check` feature, so a model check
//! (tests/model_check.rs) controls every interleaving of the engine's
//! atomics and spins.

/// The lock used when none is named: a spinlock that works without `std`.
/// A kernel names its own (anything implementing `lock_api::RawMutex`).
pub type DefaultLock = spin::Mutex<()>;

/// The atomics the engine uses: `core::sync::atomic`'s, or under the
/// `model-check` feature `shuttle`'s (each access a scheduling point of
/// the checker).
#[cfg(not(feature = "model-check"))]
pub(crate) mod atomic {
    pub(crate) use core::sync::atomic::{
        AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering,
    };
}

/// The atomics the engine uses: `core::sync::atomic`'s, or under the
/// `model-check` feature `shuttle`'s (each access a scheduling point of
/// the checker).
#[cfg(feature = "model-check")]
pub(crate) mod atomic {
    pub(crate) use shuttle::sync::atomic::{
        AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering,
    };
}

/// A hint that the caller is busy-waiting: `core::hint::spin_loop`, or
/// under the `model-check` feature a yield to the checker's scheduler (a
/// spin that never yields would run the same thread for ever).
#[inline(always)]
pub(crate) fn spin_loop() {
    #[cfg(not(feature = "model-check"))]
    core::hint::spin_loop();
    #[cfg(feature = "model-check")]
    shuttle::hint::spin_loop();
}
