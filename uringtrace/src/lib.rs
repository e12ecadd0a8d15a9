//! uringtrace: see what io_uring is really doing on a Linux host.
//!
//! - [`trace`]: kernel side (tracefs, catalog, eBPF loading, live sessions);
//! - [`recording`]: the on-disk format;
//! - [`display`], [`names`]: readable renderings;
//! - [`output`]: report formats (text, markdown, JSON, JUnit).

pub mod analyzer;
pub mod cli;
pub mod commands;
pub mod display;
pub mod names;
pub mod output;
pub mod recording;
pub mod system;
pub mod trace;
pub mod tui;
pub mod units;
