//! The one path from a source to the analyzer: a recording, or a live trace. Both go
//! through `Analyzer::push`, so `diagnose`, `check`, `top` (through
//! [`crate::tui::live`] and [`crate::tui::replay`]) and the tests agree by
//! construction. Commands build on this module; it imports no command.

use std::io::Read;
use std::path::Path;

use anyhow::Context as _;

use crate::analyzer::report::{Environment, LostEvents, Report};
use crate::analyzer::{Analyzer, AnalyzerConfig};
use crate::recording::{ReadStatus, Reader};
use crate::system::{self, IoUringDisabled};
use crate::trace::loader::Tracer;
use crate::trace::probe::KernelEvents;
use crate::trace::session::{Flow, Session, SessionOptions, StopReason};
use uringtrace_common::RawEvent;

/// Replays a recording through the analyzer.
pub fn analyze_file(path: &Path, cfg: AnalyzerConfig) -> anyhow::Result<Report> {
    replay_file(path, cfg, |_| Ok(()))
}

/// Replays a recording through the analyzer, handing each event to `each` too (in the
/// recording's order, before the analyzer reorders it): the one event iterator replay
/// and export share.
pub fn replay_file(
    path: &Path,
    cfg: AnalyzerConfig,
    mut each: impl FnMut(&RawEvent) -> std::io::Result<()>,
) -> anyhow::Result<Report> {
    let mut reader = Reader::open(path).with_context(|| format!("reading {}", path.display()))?;
    let env = recording_environment(&reader, path);
    let mut an = Analyzer::new(cfg, env);
    while let Some(ev) = reader
        .next_event()
        .with_context(|| format!("reading {}", path.display()))?
    {
        each(&ev).context("writing the export")?;
        an.push(ev);
    }
    let drops = reader.drops();
    an.set_lost(LostEvents::recorded(drops, reader.status()));
    if drops.end_monotonic_ns > 0 {
        an.set_end(drops.end_monotonic_ns);
    }
    if let ReadStatus::Truncated { offset } = reader.status() {
        eprintln!(
            "uringtrace: warning: {} is cut short at offset {offset}; analysed the events before it",
            path.display()
        );
    }
    Ok(an.finish())
}

/// The environment a recording was made in.
pub fn recording_environment(reader: &Reader<impl Read>, path: &Path) -> Environment {
    Environment::from_header(reader.header(), &path.display().to_string())
}

/// Detectors that cannot fully work with what this kernel offers, as (rule, reason):
/// what reports show and recordings store.
pub fn degraded_detectors(events: &KernelEvents) -> Vec<(String, String)> {
    events
        .degraded()
        .into_iter()
        .map(|d| (d.rule.to_string(), d.reason))
        .collect()
}

/// The environment of a live trace by this tracer.
pub fn live_environment(tracer: &Tracer) -> Environment {
    Environment {
        kernel_release: system::kernel_release(),
        host: system::hostname(),
        source: "live".into(),
        io_uring_disabled: IoUringDisabled::read().explain(),
        degraded: degraded_detectors(&tracer.events),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        cpus: system::ncpus(),
    }
}

/// Traces live (host, pids, or a command) until a stop condition, then reports.
pub fn analyze_live(
    opts: &SessionOptions,
    cfg: AnalyzerConfig,
    quiet: bool,
) -> anyhow::Result<(Report, StopReason)> {
    analyze_live_with(opts, cfg, quiet, |_| Ok(()))
}

/// [`analyze_live`], handing each event to `each` too (as it arrives).
pub fn analyze_live_with(
    opts: &SessionOptions,
    cfg: AnalyzerConfig,
    quiet: bool,
    mut each: impl FnMut(&RawEvent) -> std::io::Result<()>,
) -> anyhow::Result<(Report, StopReason)> {
    let mut session = Session::start(opts).context("starting the trace")?;
    let env = live_environment(&session.tracer);
    if !quiet {
        eprintln!(
            "uringtrace: tracing {}; Ctrl-C to stop and report",
            match session.child_pid() {
                Some(p) => format!("pid {p} ({})", opts.command.join(" ")),
                None if opts.trace.pids.is_empty() => "the whole host".into(),
                None => format!("pids {:?}", opts.trace.pids),
            }
        );
    }
    let mut an = Analyzer::new(cfg, env);
    let stop = session.run(|batch, _| {
        for ev in batch {
            each(ev)?;
            an.push(*ev);
        }
        Ok(Flow::Continue)
    })?;
    let c = session.counters().context("reading the drop counters")?;
    an.set_lost(c.lost());
    an.set_end(system::monotonic_ns());
    drop(session);
    Ok((an.finish(), stop))
}
