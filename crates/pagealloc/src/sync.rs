//! The locks the engine uses, through `lock_api`: a kernel plugs in its
//! own raw lock; everyone else gets a spinlock that works without `std`.

/// The lock used when none is named: a spinlock that works without `std`.
/// A kernel names its own (anything implementing `lock_api::RawMutex`).
pub type DefaultLock = spin::Mutex<()>;
