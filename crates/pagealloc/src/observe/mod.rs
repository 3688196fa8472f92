//! Observation: snapshots rendered as Linux's `/proc` files ([`report`]),
//! the invariant walk ([`invariants`]) and a digest of the whole state
//! ([`digest`]).

pub(crate) mod digest;
pub(crate) mod invariants;
pub mod report;
mod services;
pub(crate) mod walk;
