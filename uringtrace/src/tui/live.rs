//! Live input: the tracing [`Session`] runs on its own thread and sends event
//! batches, loss counters and the tracer's cost down the channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use uringtrace_common::RawEvent;

use crate::analyzer::report::Environment;
use crate::pipeline::live_environment;
use crate::system::monotonic_ns;
use crate::trace::session::{Flow, Session, SessionOptions, StopReason};

use super::cost::BpfStats;
use super::event::{BatchSender, Event, PanicNotice, MAX_BATCH};

/// Batches are cut at least this often while events flow (fewer, larger messages).
const BATCH_EVERY: Duration = Duration::from_millis(20);
/// ... and at least this often when nothing happens, so the clock moves on.
const IDLE_EVERY: Duration = Duration::from_millis(100);
/// How often loss counters and the BPF cost are read.
const COUNTERS_EVERY: Duration = Duration::from_millis(500);

pub struct Live {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub env: Environment,
    pub child_pid: Option<u32>,
}

impl Live {
    /// Starts tracing on a new thread; load errors (privileges, kernel) come back
    /// here, before the screen is taken over.
    pub fn start(opts: SessionOptions, tx: SyncSender<Event>) -> anyhow::Result<Live> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("top-trace".into())
            .spawn(move || {
                let _notice = PanicNotice::new(tx.clone(), "tracing");
                let mut session = match Session::start(&opts) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ =
                            ready_tx.send(Err(anyhow::Error::new(e).context("starting the trace")));
                        return;
                    }
                };
                let env = live_environment(&session.tracer);
                let _ = ready_tx.send(Ok((session.stop_handle(), session.child_pid(), env)));
                trace(&mut session, &tx);
                // Dropping the session here detaches every program.
            })
            .context("starting the tracing thread")?;
        let (stop, child_pid, env) = match ready_rx.recv() {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("the tracing thread ended before the trace started"),
        };
        Ok(Live {
            stop,
            thread: Some(thread),
            env,
            child_pid,
        })
    }

    /// Asks the tracing thread to stop, without waiting: it still sends what it has,
    /// then ends (and its sender with it), so a reader can drain the channel first.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops tracing and waits until the programs are detached.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
    }
}

fn trace(session: &mut Session, tx: &SyncSender<Event>) {
    let batches = BatchSender::new(tx.clone());
    let stats = BpfStats::enable();
    if let Err(why) = &stats {
        let _ = tx.send(Event::CostUnavailable(why.clone()));
    }
    let mut pending: Vec<RawEvent> = Vec::new();
    let mut last_send = Instant::now();
    let mut last_counters: Option<Instant> = None;
    let result = session.run(|batch, tracer| {
        pending.extend_from_slice(batch);
        let due = if pending.is_empty() {
            IDLE_EVERY
        } else {
            BATCH_EVERY
        };
        if pending.len() >= MAX_BATCH || last_send.elapsed() >= due {
            let events = std::mem::take(&mut pending);
            // The receiver is gone: the UI quit.
            if !batches.send(events, monotonic_ns()) {
                return Ok(Flow::Stop);
            }
            last_send = Instant::now();
        }
        if last_counters.is_none_or(|t| t.elapsed() >= COUNTERS_EVERY) {
            last_counters = Some(Instant::now());
            if let Ok(c) = tracer.counters() {
                if tx.send(Event::Lost(c.lost())).is_err() {
                    return Ok(Flow::Stop);
                }
            }
            if let Ok(s) = &stats {
                let _ = tx.send(Event::Cost(s.sample(tracer, monotonic_ns())));
            }
        }
        Ok(Flow::Continue)
    });
    let _ = batches.send(pending, monotonic_ns());
    if let Ok(c) = session.counters() {
        let _ = tx.send(Event::Lost(c.lost()));
    }
    let ended = match result {
        Ok(StopReason::CommandExited(Some(code))) => {
            format!("command exited with status {code}; trace stopped")
        }
        Ok(StopReason::CommandExited(None)) => "command exited; trace stopped".into(),
        Ok(StopReason::Duration) => "--duration reached; trace stopped".into(),
        Ok(StopReason::Signal) => "stopped by a signal".into(),
        Ok(StopReason::Sink) => return,
        Err(e) => {
            let _ = tx.send(Event::Failed(format!("tracing failed: {e}")));
            return;
        }
    };
    let _ = tx.send(Event::Ended {
        reason: ended,
        end_ns: Some(monotonic_ns()),
    });
}
