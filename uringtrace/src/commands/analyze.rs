//! Feeding the analyzer: from a recording or live. Both go through
//! `Analyzer::push`, so `diagnose`, `check` and `top` agree by construction.

use std::path::Path;

use anyhow::Context as _;

use crate::analyzer::report::{Environment, LostEvents, Report};
use crate::analyzer::{Analyzer, AnalyzerConfig};
use crate::recording::{ReadStatus, Reader};
use crate::system::{self, IoUringDisabled};
use crate::trace::session::{Flow, Session, SessionOptions, StopReason};

/// Replays a recording through the analyzer.
pub fn analyze_file(path: &Path, cfg: AnalyzerConfig) -> anyhow::Result<Report> {
    let mut reader = Reader::open(path).with_context(|| format!("reading {}", path.display()))?;
    let env = Environment::from_header(reader.header(), &path.display().to_string());
    let mut an = Analyzer::new(cfg, env);
    while let Some(ev) = reader
        .next_event()
        .with_context(|| format!("reading {}", path.display()))?
    {
        an.push(ev);
    }
    let complete = *reader.status() == ReadStatus::Complete;
    let drops = reader.drops().clone();
    an.set_lost(LostEvents {
        total: drops.total,
        per_cpu: drops.per_cpu.clone(),
        known: complete,
    });
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

pub fn live_environment() -> Environment {
    Environment {
        kernel_release: system::kernel_release(),
        host: system::hostname(),
        source: "live".into(),
        io_uring_disabled: IoUringDisabled::read().explain(),
        degraded: Vec::new(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Traces live (host, pids, or a command) until a stop condition, then reports.
pub fn analyze_live(
    opts: &SessionOptions,
    cfg: AnalyzerConfig,
    quiet: bool,
) -> anyhow::Result<(Report, StopReason)> {
    let mut session = Session::start(opts).context("starting the trace")?;
    let mut env = live_environment();
    env.degraded = session
        .tracer
        .events
        .degraded()
        .into_iter()
        .map(|d| (d.rule.to_string(), d.reason))
        .collect();
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
            an.push(*ev);
        }
        Ok(Flow::Continue)
    })?;
    let c = session.counters().context("reading the drop counters")?;
    an.set_lost(LostEvents {
        total: c.total_dropped(),
        per_cpu: c.dropped.clone(),
        known: true,
    });
    an.set_end(system::monotonic_ns());
    drop(session);
    Ok((an.finish(), stop))
}
