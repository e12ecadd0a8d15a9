//! Headless `top` (`--format`): the same [`App`] and snapshots as the screen, printed
//! on stdout as documents instead of drawn.
//!
//! When a document is printed:
//! - `--once`: one, of the state when the input ends (the end of a replay, the traced
//!   command's exit, `--duration`, a signal). Live with nothing that ends the input
//!   (host-wide or `--pid`, no `--duration`), the input is ended after one interval.
//! - otherwise: one every interval (default 1 s) of trace time, up to `--count`; when
//!   the input ends first, one last document of the final state.
//!
//! A replay reads as fast as the file reads; its documents fall at the recording's
//! own timestamps, `start + k × interval`, so a replay prints the same documents
//! every time.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::analyzer::AnalyzerConfig;
use crate::cli::{use_color, TopArgs, TopFormat};
use crate::output::{top_json, top_text};
use crate::system::monotonic_ns;
use crate::tui::app::{Speed, Taken};
use crate::tui::event::{Event, TICK};
use crate::tui::live::Live;
use crate::tui::replay;
use crate::tui::theme::Theme;
use crate::tui::{App, Source};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// How many documents, when.
#[derive(Clone, Copy, Debug)]
struct Plan {
    once: bool,
    interval: Duration,
    count: Option<u64>,
}

/// Where documents go: stdout, flushed per document. A closed pipe (`| head -1`)
/// ends the run quietly.
struct Printer {
    format: TopFormat,
    color: bool,
    printed: u64,
    /// The snapshot time of the last document, so the end does not repeat it.
    last_ns: Option<u64>,
    closed: bool,
}

impl Printer {
    fn print(&mut self, app: &App) -> anyhow::Result<()> {
        let doc = app.snapshot.document();
        let mut text = match self.format {
            TopFormat::Json => top_json(&doc) + "\n",
            TopFormat::Text => top_text(&doc, self.color),
        };
        if self.format == TopFormat::Text && self.printed > 0 {
            text.insert(0, '\n');
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.closed = true,
            Err(e) => return Err(e).context("writing to stdout"),
        }
        self.printed += 1;
        self.last_ns = Some(doc.time_ns);
        Ok(())
    }

    fn done(&self, plan: &Plan) -> bool {
        self.closed || plan.count.is_some_and(|n| self.printed >= n)
    }

    /// The input ended: the final state, unless just printed or no more is wanted.
    fn print_end(&mut self, app: &App, plan: &Plan) -> anyhow::Result<()> {
        if self.done(plan) || (!plan.once && self.last_ns == Some(app.snapshot.now_ns)) {
            return Ok(());
        }
        self.print(app)
    }
}

fn plan(args: &TopArgs) -> anyhow::Result<Plan> {
    if args.replay.is_some() && args.once && args.interval.is_some() {
        anyhow::bail!(
            "--once with --replay prints the state at the end of the recording: \
             drop --interval, or drop --once for a document every interval"
        );
    }
    Ok(Plan {
        once: args.once,
        interval: args.interval.unwrap_or(DEFAULT_INTERVAL),
        count: args.count,
    })
}

fn printer(format: TopFormat) -> Printer {
    Printer {
        format,
        color: use_color(false),
        printed: 0,
        last_ns: None,
        closed: false,
    }
}

/// Replays the whole file (or up to --count documents) with no thread and no clock.
pub fn replay(args: &TopArgs, format: TopFormat, cfg: AnalyzerConfig) -> anyhow::Result<()> {
    let plan = plan(args)?;
    let Some(path) = &args.replay else {
        anyhow::bail!("no recording to replay");
    };
    let (mut app, mut s) = replay::open(path, Speed::Max, cfg, Theme::from_env())?;
    let mut out = printer(format);
    let tick = TICK.as_nanos() as u64;
    let step = (plan.interval.as_nanos() as u64).max(1);
    let mut next_doc = app.start_ns.saturating_add(step);
    // Ticks as the screen takes them (the rate history depends on them), and one
    // exactly at every document's time. Returns true when no more is wanted.
    let advance = |app: &mut App, clock: u64, next_doc: &mut u64, out: &mut Printer| {
        app.tick();
        if !plan.once && clock >= *next_doc {
            out.print(app)?;
            if out.done(&plan) {
                return anyhow::Ok(true);
            }
            *next_doc = next_doc.saturating_add(step);
        }
        anyhow::Ok(false)
    };
    while !s.is_done() {
        let until = s.clock_ns.saturating_add(tick);
        let until = if plan.once {
            until
        } else {
            until.min(next_doc)
        };
        let events = s
            .take_until(until, usize::MAX)
            .with_context(|| format!("reading {}", path.display()))?;
        app.ingest(&events, s.clock_ns);
        if advance(&mut app, s.clock_ns, &mut next_doc, &mut out)? {
            return Ok(());
        }
    }
    let (lost, end, reason) = s.finish();
    // A quiet stretch after the last event still has its documents, up to the end.
    if let Some(end) = end.filter(|_| !plan.once) {
        let mut clock = s.clock_ns;
        while clock < end {
            clock = clock.saturating_add(tick).min(next_doc).min(end);
            app.ingest(&[], clock);
            if advance(&mut app, clock, &mut next_doc, &mut out)? {
                return Ok(());
            }
        }
    }
    app.set_lost(lost);
    app.end(reason, end);
    out.print_end(&app, &plan)
}

/// Traces live (host-wide, --pid or -- CMD) and prints documents on wall time.
pub fn live(
    args: &TopArgs,
    format: TopFormat,
    cfg: AnalyzerConfig,
    live: &mut Live,
    tx: SyncSender<Event>,
    rx: Receiver<Event>,
    quit: &AtomicBool,
) -> anyhow::Result<()> {
    let plan = plan(args)?;
    // Only the tracing thread sends: when it ends, the channel says so.
    drop(tx);
    let mut app = App::new(
        Source::Live,
        live.env.clone(),
        cfg,
        monotonic_ns(),
        Theme::from_env(),
    );
    let mut out = printer(format);
    // Nothing else ends a host-wide --once: one interval does.
    let bounded = !args.trace.command.is_empty() || args.trace.duration.is_some();
    let started = Instant::now();
    let mut next_doc = started + plan.interval;
    let mut last_tick = Instant::now();
    let ended = loop {
        if quit.load(Ordering::Relaxed) {
            break false;
        }
        match receive(&mut app, &rx, TICK)? {
            Input::Ended => break true,
            Input::Closed => break false,
            Input::More => {}
        }
        if last_tick.elapsed() >= TICK {
            app.tick();
            last_tick = Instant::now();
        }
        if Instant::now() >= next_doc {
            if plan.once {
                if !bounded {
                    break false;
                }
            } else {
                app.tick();
                out.print(&app)?;
                if out.done(&plan) {
                    return Ok(());
                }
            }
            next_doc += plan.interval;
        }
    };
    if !ended {
        // Take in what the tracing thread still holds, then the end it reports.
        live.request_stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match receive(&mut app, &rx, TICK)? {
                Input::More => {}
                Input::Ended | Input::Closed => break,
            }
        }
        if app.status == crate::tui::app::Status::Running {
            app.end("stopped".into(), Some(monotonic_ns()));
        }
    }
    out.print_end(&app, &plan)
}

enum Input {
    More,
    /// The producer reported the end (and the app has taken it).
    Ended,
    /// Every sender is gone.
    Closed,
}

fn receive(app: &mut App, rx: &Receiver<Event>, wait: Duration) -> anyhow::Result<Input> {
    match rx.recv_timeout(wait) {
        Ok(ev) => match app.take(ev) {
            Taken::Ended => return Ok(Input::Ended),
            Taken::Failed(msg) => anyhow::bail!(msg),
            Taken::Applied | Taken::Ui(_) => {}
        },
        Err(RecvTimeoutError::Timeout) => {}
        Err(RecvTimeoutError::Disconnected) => return Ok(Input::Closed),
    }
    Ok(Input::More)
}
