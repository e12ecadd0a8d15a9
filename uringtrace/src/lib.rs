//! uringtrace: see what io_uring is really doing on a Linux host.
//!
//! - [`trace`]: kernel side (tracefs, catalog, eBPF loading, live sessions);
//! - [`recording`]: the on-disk format;
//! - [`display`], [`names`]: readable renderings.

pub mod analyzer;
pub mod cli;
pub mod commands;
pub mod display;
pub mod names;
pub mod recording;
pub mod stats;
pub mod system;
pub mod trace;
pub mod tui;
pub mod units;
