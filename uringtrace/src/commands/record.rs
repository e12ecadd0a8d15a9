use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::cli::{RecordArgs, TraceArgs};
use crate::commands::export;
use crate::pipeline::degraded_detectors;
use crate::recording::{ClockBase, Drops, Filter, Header, TracepointInfo, Writer};
use crate::stats::{ConsumerRun, RunStats};
use crate::system;
use crate::trace::loader::{KernelCounters, Tracer};
use crate::trace::session::{Flow, Session, StopReason};
use crate::units::human_bytes;

/// The recording header for a session that just started.
pub fn header_for(tracer: &Tracer, t: &TraceArgs, child: Option<u32>) -> Header {
    let mut pids = t.pids.clone();
    pids.extend(child);
    Header {
        format: Header::FORMAT.into(),
        format_version: crate::recording::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        kernel_release: system::kernel_release(),
        host: system::hostname(),
        clock: ClockBase {
            source: "CLOCK_MONOTONIC".into(),
            start_monotonic_ns: system::monotonic_ns(),
            start_realtime_ns: system::realtime_ns(),
        },
        tracepoints: tracer
            .attachments
            .iter()
            .map(|a| TracepointInfo {
                kind: a.kind.name().into(),
                tracepoint: a.tracepoint.clone(),
                attach_type: a.attach_type.into(),
            })
            .collect(),
        missing: tracer
            .events
            .resolved
            .iter()
            // A failed program's tracepoint exists: its detectors say why (`degraded`).
            .filter(|r| r.name.is_none() && !tracer.events.has_failed(r.spec.kind))
            .map(|r| format!("{}:{}", r.spec.category, r.spec.names.join("|")))
            .collect(),
        degraded: degraded_detectors(&tracer.events),
        filter: Filter {
            pids,
            command: t.command.clone(),
            follow_children: true,
        },
        ring_bytes: tracer.ring_bytes,
        ncpus: system::ncpus(),
        drops: Drops::default(),
        finished: false,
    }
}

pub fn drops_from(c: &KernelCounters) -> Drops {
    Drops {
        per_cpu: c.dropped.clone(),
        total: c.total_dropped(),
        emitted: c.total_emitted(),
        recorded: 0,
        end_monotonic_ns: system::monotonic_ns(),
    }
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let mut session =
        Session::start(&args.trace.session_options()).context("starting the trace")?;
    let header = header_for(&session.tracer, &args.trace, session.child_pid());
    let mut writer = Writer::create(&args.output, header)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let attached = session.tracer.attachments.len();
    if !args.quiet {
        eprintln!(
            "uringtrace: recording to {} ({attached} tracepoints attached{}); Ctrl-C to stop",
            args.output.display(),
            match session.child_pid() {
                Some(p) => format!(", tracing pid {p}"),
                None if args.trace.pids.is_empty() => ", whole host".into(),
                None => format!(", pids {:?}", args.trace.pids),
            }
        );
    }
    let mut last_progress = Instant::now();
    let mut last_flush = Instant::now();
    let path = args.output.display().to_string();
    // A write error (the disk is full) ends the trace: the file keeps the records
    // written before it and no end record, so readers see it as incomplete.
    let write_error = |e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!("writing {path}: {e}; the events written before this are kept, and the file is marked incomplete"),
        )
    };
    let stop = session.run(|batch, tracer| {
        for ev in batch {
            writer.write_event(ev).map_err(write_error)?;
        }
        if last_flush.elapsed() >= Duration::from_millis(200) {
            writer.flush().map_err(write_error)?;
            last_flush = Instant::now();
        }
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            let dropped = tracer.counters().map(|c| c.total_dropped()).unwrap_or(0);
            eprint!(
                "\r  {} events, {} dropped, {}   ",
                writer.events(),
                dropped,
                human_bytes(writer.bytes())
            );
            let _ = std::io::stderr().flush();
            last_progress = Instant::now();
        }
        Ok(Flow::Continue)
    })?;
    if progress {
        eprintln!();
    }
    let counters = session.counters().context("reading the drop counters")?;
    let elapsed = session.elapsed();
    let consumer = session.consumer;
    let looked_up = session.tracer.comms_looked_up();
    drop(session); // detach before the summary: nothing is left attached after this point
    let drops = drops_from(&counters);
    let events = writer.events();
    let bytes = writer.bytes();
    writer
        .finish(drops.clone())
        .with_context(|| format!("finishing the recording {path} (it is marked incomplete)"))?;
    let secs = elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "uringtrace: {events} events in {:.2}s ({:.0}/s), {} lost in the ring buffer; {} on disk ({:.1} bytes/event)",
        secs,
        events as f64 / secs,
        drops.total,
        human_bytes(bytes),
        if events > 0 { bytes as f64 / events as f64 } else { 0.0 }
    );
    // What the consumer alone can sustain (the bench's "record consumer" row).
    eprintln!(
        "uringtrace: consumer: {} events decoded and encoded in {:.3}s of CPU ({:.0} events/s); {looked_up} task names read from /proc",
        consumer.events,
        consumer.busy_ns as f64 / 1e9,
        consumer.events_per_sec(),
    );
    args.stats.write(&RunStats {
        events,
        lost: drops.total,
        lost_known: true,
        seconds: Some(elapsed.as_secs_f64()),
        bytes_on_disk: Some(bytes),
        consumer: Some(ConsumerRun::new(&consumer, looked_up)),
    })?;
    if drops.total > 0 {
        eprintln!(
            "uringtrace: warning: {} events lost (per CPU: {:?}); raise --ring-size",
            drops.total, drops.per_cpu
        );
    }
    if let Some(out) = &args.perfetto.perfetto {
        // Converting the file just written: the same events, with nothing added to
        // the consumer's hot loop.
        let (_, written) = export::export_file(
            &args.output,
            out,
            crate::analyzer::AnalyzerConfig::default(),
        )?;
        if !args.quiet {
            eprintln!(
                "uringtrace: Perfetto trace: {} ({} packets, {})",
                out.display(),
                written.packets,
                human_bytes(written.bytes)
            );
        }
    }
    Ok(match stop {
        StopReason::CommandExited(Some(code)) if code != 0 => {
            eprintln!("uringtrace: traced command exited with status {code}");
            ExitCode::from(code.clamp(1, 255) as u8)
        }
        _ => ExitCode::SUCCESS,
    })
}
