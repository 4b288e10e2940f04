//! attnx: re-run and compare the attention models of four Keras articles, on burn.
//!
//! The binary (`src/main.rs`) is a thin shell over [`commands`] (one file per subcommand).
//! Dependencies point one way: commands -> [`runner`] (plan: what is missing; execute:
//! workers) -> [`train`] -> [`models`] -> [`kernels`] (the CPU ops with their own backward
//! passes); [`data`] and [`config`] (the JSON schema) sit below them, [`record`] (the on-disk
//! schema, which names a config) above [`config`], and [`machine`] (the CPU and SIMD level
//! records name) below everything. [`store`] reads and writes records and knows nothing of
//! training; [`report`] turns records into tables and plots with [`stats`] (summaries, tests,
//! and `stats::sequential`, the design of `--until-decided`). Shared plumbing: [`fsutil`]
//! (atomic writes, sha256), [`rng`] (per-repeat generators), [`error`] (bad input, exit 2,
//! one-line panics), [`backend`] (config backend -> burn `Device`), [`experiment`]
//! (experiments/*.json), [`progress`] (indicatif bars).

// `unsafe` only where it must be (the kernels' gemm call and SIMD dispatch allow it for their
// modules), each block with the invariant it relies on.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod backend;
pub mod builtin;
pub mod commands;
pub mod config;
pub mod data;
pub mod error;
pub mod experiment;
pub mod fsutil;
pub mod kernels;
pub mod machine;
pub mod models;
pub mod progress;
pub mod record;
pub mod report;
pub mod rng;
pub mod runner;
pub mod stats;
pub mod store;
pub mod train;
