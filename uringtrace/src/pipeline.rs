//! The one path from a source to the analyzer: a recording, or a live trace. Both go
//! through `Analyzer::push`, so `diagnose`, `check`, `top` (through
//! [`crate::tui::live`] and [`crate::tui::replay`]) and the tests agree by
//! construction. Commands build on this module; it imports no command.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::sync_channel;

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
    Ok(finish_replay(an, &reader, path))
}

/// Events per batch from [`replay_file_beside`]'s reading thread to the analyzer: about
/// 200 KiB, which stays in cache between the two threads.
const BATCH: usize = 2048;
/// Batches queued for the analyzer (~3.4 MiB): enough that the two threads rarely wait
/// for each other when other processes share the CPUs.
const QUEUED: usize = 16;

/// [`replay_file`] on two threads, for work beside the analyzer that costs about as much
/// as the analyzer itself (an export's encoder): a thread of its own decodes the
/// recording, hands each event to `each(&mut state, event)` in the recording's order,
/// and passes the events on in batches to the analyzer on the calling thread. Returns
/// the report and `state`. The analyzer sees the same events in the same order as in
/// [`replay_file`], so the report is the same.
pub fn replay_file_beside<S: Send + 'static>(
    path: &Path,
    cfg: AnalyzerConfig,
    mut state: S,
    each: impl Fn(&mut S, &RawEvent) -> std::io::Result<()> + Send + 'static,
) -> anyhow::Result<(Report, S)> {
    let mut reader = Reader::open(path).with_context(|| format!("reading {}", path.display()))?;
    let env = recording_environment(&reader, path);
    let (tx, rx) = sync_channel::<Vec<RawEvent>>(QUEUED);
    let (free_tx, free) = sync_channel::<Vec<RawEvent>>(QUEUED + 2);
    let shown = path.display().to_string();
    let side = std::thread::Builder::new()
        .name("replay-read".into())
        .spawn(move || {
            let mut read = || -> anyhow::Result<()> {
                loop {
                    let mut batch = free
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                    let mut end = false;
                    while batch.len() < BATCH {
                        // Borrowed where the reader returned it: a copy right after the
                        // reader wrote it field by field stalls on store forwarding;
                        // `each` reads it field by field, and the batch copies it later.
                        let next = reader.next_event();
                        let ev = match &next {
                            Ok(Some(ev)) => ev,
                            Ok(None) => {
                                end = true;
                                break;
                            }
                            Err(_) => {
                                return next.map(|_| ()).with_context(|| format!("reading {shown}"))
                            }
                        };
                        each(&mut state, ev).context("writing the export")?;
                        batch.push(*ev);
                    }
                    // The analyzer gone means it failed: its error is reported.
                    if tx.send(batch).is_err() || end {
                        return Ok(());
                    }
                }
            };
            let r = read();
            (r, reader, state)
        })
        .context("starting the reading thread")?;
    let mut an = Analyzer::new(cfg, env);
    for mut batch in rx {
        for ev in batch.drain(..) {
            an.push(ev);
        }
        // The reader may have enough buffers: then this one is dropped.
        let _ = free_tx.try_send(batch);
    }
    let (read, reader, state) = side
        .join()
        .map_err(|_| anyhow::anyhow!("the reading thread panicked"))?;
    read?;
    Ok((finish_replay(an, &reader, path), state))
}

/// Ends a replay: the recording's drop counts and end time, then the report.
fn finish_replay(mut an: Analyzer, reader: &Reader<impl Read>, path: &Path) -> Report {
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
    an.finish()
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
