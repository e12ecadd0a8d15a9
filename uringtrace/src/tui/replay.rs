//! Replaying a recording into the UI: the same analyzer and screens as live, paced by
//! the recorded timestamps (or as fast as it reads), pausable and steppable.
//!
//! [`Slicer`] cuts a recording into slices of trace time; the replay thread paces the
//! slices, and tests use [`load`] to replay a whole file into an [`App`] with no
//! thread and no clock, deterministically.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use uringtrace_common::RawEvent;

use crate::analyzer::report::LostEvents;
use crate::analyzer::AnalyzerConfig;
use crate::pipeline::recording_environment;
use crate::recording::{ReadStatus, Reader, RecordingError};

use super::app::{App, Source, Speed, Step};
use super::event::{BatchSender, Event, PanicNotice, MAX_BATCH, TICK};
use super::theme::Theme;

/// A recording read in slices of trace time.
pub struct Slicer<R: Read> {
    reader: Reader<R>,
    next: Option<RawEvent>,
    /// The replay position (monotonic ns of the recording).
    pub clock_ns: u64,
}

impl<R: Read> Slicer<R> {
    pub fn new(mut reader: Reader<R>) -> Result<Slicer<R>, RecordingError> {
        let next = reader.next_event()?;
        // Start at the first event: a recording may begin with a long quiet stretch.
        let clock_ns = next.map_or(reader.header().clock.start_monotonic_ns, |e| e.ts_ns);
        Ok(Slicer {
            reader,
            next,
            clock_ns,
        })
    }

    pub fn reader(&self) -> &Reader<R> {
        &self.reader
    }

    pub fn is_done(&self) -> bool {
        self.next.is_none()
    }

    /// Events stamped up to `until` (at most `max`); the clock moves to `until`, or to
    /// the last event taken when `max` stopped the slice.
    pub fn take_until(&mut self, until: u64, max: usize) -> Result<Vec<RawEvent>, RecordingError> {
        let mut out = Vec::new();
        while let Some(ev) = self.next {
            if ev.ts_ns > until {
                break;
            }
            if out.len() == max {
                self.clock_ns = self
                    .clock_ns
                    .max(out.last().map_or(0, |e: &RawEvent| e.ts_ns));
                return Ok(out);
            }
            out.push(ev);
            self.next = self.reader.next_event()?;
        }
        self.clock_ns = self.clock_ns.max(until);
        Ok(out)
    }

    /// The next `n` events, whatever their time; the clock moves to the last one.
    pub fn take_events(&mut self, n: usize) -> Result<Vec<RawEvent>, RecordingError> {
        let mut out = Vec::new();
        while let Some(ev) = self.next {
            if out.len() == n {
                break;
            }
            self.clock_ns = self.clock_ns.max(ev.ts_ns);
            out.push(ev);
            self.next = self.reader.next_event()?;
        }
        Ok(out)
    }

    /// Once done: the losses recorded, where the trace ended, and how reading ended.
    pub fn finish(&self) -> (LostEvents, Option<u64>, String) {
        let d = self.reader.drops();
        let lost = LostEvents::recorded(d, self.reader.status());
        let end = (d.end_monotonic_ns > 0).then_some(d.end_monotonic_ns);
        let reason = match self.reader.status() {
            ReadStatus::Complete => "replay finished".to_string(),
            ReadStatus::Truncated { offset } => {
                format!("replay finished: file cut short at offset {offset}")
            }
            _ => "replay finished: the recording did not end cleanly".to_string(),
        };
        (lost, end, reason)
    }
}

/// Opens a recording: the App that will show it, and the slicer that feeds it.
pub fn open(
    path: &Path,
    speed: Speed,
    cfg: AnalyzerConfig,
    theme: Theme,
) -> anyhow::Result<(App, Slicer<std::io::BufReader<std::fs::File>>)> {
    let reader = Reader::open(path).with_context(|| format!("reading {}", path.display()))?;
    let env = recording_environment(&reader, path);
    let start = reader.header().clock.start_monotonic_ns;
    let slicer = Slicer::new(reader).with_context(|| format!("reading {}", path.display()))?;
    let source = Source::Replay {
        path: path.display().to_string(),
        speed,
    };
    let app = App::new(source, env, cfg, start.min(slicer.clock_ns), theme);
    Ok((app, slicer))
}

/// Replays a whole recording into a new App, one tick per `TICK` of trace time, with
/// no thread and no wall clock: what tests render.
pub fn load(path: &Path, theme: Theme) -> anyhow::Result<App> {
    let (mut app, mut s) = open(path, Speed::Max, AnalyzerConfig::default(), theme)?;
    let slice = TICK.as_nanos() as u64;
    while !s.is_done() {
        let until = s.clock_ns + slice;
        let events = s
            .take_until(until, usize::MAX)
            .with_context(|| format!("reading {}", path.display()))?;
        app.ingest(&events, s.clock_ns);
        app.tick();
    }
    let (lost, end, reason) = s.finish();
    app.set_lost(lost);
    app.end(reason, end);
    Ok(app)
}

/// What the UI asks of the replay thread: pause, steps while paused, stop.
#[derive(Default)]
pub struct Control {
    paused: AtomicBool,
    stop: AtomicBool,
    steps: Mutex<VecDeque<Step>>,
}

impl Control {
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    pub fn step(&self, step: Step) {
        let mut q = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        // Keys held down queue steps; more than a screenful of them is a mistake.
        if q.len() < 64 {
            q.push_back(step);
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn take_step(&self) -> Option<Step> {
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

/// Starts the replay thread.
pub fn spawn<R: Read + Send + 'static>(
    slicer: Slicer<R>,
    speed: Speed,
    ctl: Arc<Control>,
    tx: SyncSender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("top-replay".into())
        .spawn(move || {
            let _notice = PanicNotice::new(tx.clone(), "replay");
            let batches = BatchSender::new(tx.clone());
            if let Err(e) = pace(slicer, speed, &ctl, &batches) {
                let _ = tx.send(Event::Failed(format!("replay: {e}")));
            }
        })
}

fn pace<R: Read>(
    mut s: Slicer<R>,
    speed: Speed,
    ctl: &Control,
    batches: &BatchSender,
) -> Result<(), RecordingError> {
    let tx = batches.events();
    // Wall time and trace time pacing counts from; reset by every pause.
    let mut base: Option<(Instant, u64)> = None;
    let send = |events: Vec<RawEvent>, clock_ns: u64| batches.send(events, clock_ns);
    while !ctl.stop.load(Ordering::Relaxed) {
        if s.is_done() {
            let (lost, end_ns, reason) = s.finish();
            let _ = tx.send(Event::Lost(lost));
            let _ = tx.send(Event::Ended { reason, end_ns });
            return Ok(());
        }
        if ctl.paused.load(Ordering::Relaxed) {
            base = None;
            let events = match ctl.take_step() {
                Some(Step::Event) => s.take_events(1)?,
                Some(Step::Batch) => {
                    s.take_until(s.clock_ns + TICK.as_nanos() as u64, MAX_BATCH)?
                }
                None => {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if !send(events, s.clock_ns) {
                return Ok(());
            }
            continue;
        }
        let events = match speed {
            Speed::Max => s.take_events(MAX_BATCH)?,
            Speed::Factor(f) => {
                let (wall, trace) = *base.get_or_insert((Instant::now(), s.clock_ns));
                let target = trace + (wall.elapsed().as_nanos() as f64 * f) as u64;
                s.take_until(target, MAX_BATCH)?
            }
        };
        let full = events.len() == MAX_BATCH;
        if !send(events, s.clock_ns) {
            return Ok(());
        }
        if matches!(speed, Speed::Factor(_)) && !full {
            thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}
