//! The integration tests where several processes share state, one test binary: a real one-node
//! SLURM cluster (fixed ports: nextest never runs two of its tests at once), processes that split
//! a feature cache through claim files, and the cache as several runs fill and clear it.

#[path = "../common/mod.rs"]
mod common;

mod cache;
mod claims;
mod slurm;
