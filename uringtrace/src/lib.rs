//! uringtrace: see what io_uring is really doing on a Linux host.
//!
//! - [`trace`]: kernel side (tracefs, catalog, eBPF loading, live sessions);
//! - [`recording`]: the on-disk format;
//! - [`analyzer`]: events in, state and findings out (pure);
//! - [`pipeline`]: a recording or a live trace through the analyzer;
//! - [`tui`]: `top`'s screens, fed by the same analyzer;
//! - [`display`], [`names`]: readable renderings;
//! - [`output`]: report formats (text, markdown, JSON, JUnit);
//! - [`stats`]: a run's counts as JSON for tools (`--stats-json`);
//! - [`manual`]: exit statuses and examples for `--help`, and the man pages;
//! - [`cli`] and [`commands`]: arguments, and one module per subcommand (commands
//!   import the layers above, never each other).

pub mod analyzer;
pub mod aside;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod display;
#[doc(hidden)]
pub mod fuzzing;
pub mod manual;
pub mod names;
pub mod output;
pub mod pipeline;
pub mod recording;
pub mod stats;
pub mod system;
pub mod trace;
pub mod tui;
pub mod units;
