//! The replay thread of `uringtrace top`: pacing, pause and steps, through the real
//! channel, and the same final state as the deterministic `replay::load`.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uringtrace::analyzer::AnalyzerConfig;
use uringtrace::tui::app::{Speed, Status, Step};
use uringtrace::tui::event::{self, Event};
use uringtrace::tui::replay::{self, Control};
use uringtrace::tui::theme::Theme;
use uringtrace::tui::App;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recordings")
        .join(format!("{name}.utr"))
}

const THEME: Theme = Theme { color: true };

/// Feeds the channel into the app as the UI loop does, until the input ends.
fn drain(app: &mut App, rx: &std::sync::mpsc::Receiver<Event>) -> usize {
    let mut batches = 0;
    loop {
        match rx
            .recv_timeout(Duration::from_secs(10))
            .expect("replay stalled")
        {
            Event::Batch {
                events, clock_ns, ..
            } => {
                batches += 1;
                app.ingest(&events, clock_ns);
                app.tick();
            }
            Event::Lost(l) => app.set_lost(l),
            Event::Ended { reason, end_ns } => {
                app.end(reason, end_ns);
                return batches;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn threaded_replay_ends_in_the_same_state_as_load() {
    for name in ["cq-overflow", "sqpoll-shared-split", "iowq-splice"] {
        let want = replay::load(&fixture(name), THEME).expect("load");
        let (mut app, slicer) =
            replay::open(&fixture(name), Speed::Max, AnalyzerConfig::default(), THEME)
                .expect("open");
        let (tx, rx) = event::channel();
        let ctl = Arc::new(Control::default());
        replay::spawn(slicer, Speed::Max, ctl, tx).expect("spawn");
        drain(&mut app, &rx);
        assert_eq!(app.status, Status::Ended("replay finished".into()));
        assert_eq!(app.snapshot.events, want.snapshot.events, "{name}");
        assert_eq!(app.snapshot.findings, want.snapshot.findings, "{name}");
        let rings = |a: &App| {
            a.snapshot
                .rings
                .iter()
                .map(|r| (r.ctx, r.in_flight, r.overflows, r.p99_ns))
                .collect::<Vec<_>>()
        };
        let mut got = rings(&app);
        let mut exp = rings(&want);
        got.sort();
        exp.sort();
        assert_eq!(got, exp, "{name}");
    }
}

#[test]
fn paced_replay_follows_recorded_time() {
    // unsatisfiable-wait spans 0.5 s of trace time: ×5 takes about 0.1 s, not 0.
    let (mut app, slicer) = replay::open(
        &fixture("unsatisfiable-wait"),
        Speed::Factor(5.0),
        AnalyzerConfig::default(),
        THEME,
    )
    .expect("open");
    let (tx, rx) = event::channel();
    let t0 = Instant::now();
    replay::spawn(slicer, Speed::Factor(5.0), Arc::new(Control::default()), tx).expect("spawn");
    let batches = drain(&mut app, &rx);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(80), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(batches > 2, "paced replay sends slices, got {batches}");
    assert!(app
        .snapshot
        .findings
        .iter()
        .any(|f| f.rule == "unsatisfiable-wait"));
}

#[test]
fn paused_replay_moves_only_by_steps() {
    let (mut app, slicer) = replay::open(
        &fixture("chain-broken-error"),
        Speed::Max,
        AnalyzerConfig::default(),
        THEME,
    )
    .expect("open");
    let (tx, rx) = event::channel();
    let ctl = Arc::new(Control::default());
    ctl.set_paused(true);
    replay::spawn(slicer, Speed::Max, Arc::clone(&ctl), tx).expect("spawn");
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing while paused"
    );

    ctl.step(Step::Event);
    match rx.recv_timeout(Duration::from_secs(5)).expect("one step") {
        Event::Batch {
            events, clock_ns, ..
        } => {
            assert_eq!(events.len(), 1);
            app.ingest(&events, clock_ns);
        }
        other => panic!("unexpected {other:?}"),
    }
    ctl.step(Step::Event);
    match rx
        .recv_timeout(Duration::from_secs(5))
        .expect("second step")
    {
        Event::Batch { events, .. } => assert_eq!(events.len(), 1),
        other => panic!("unexpected {other:?}"),
    }
    // One batch step takes the next 100 ms of trace time: the rest of this recording.
    ctl.step(Step::Batch);
    match rx.recv_timeout(Duration::from_secs(5)).expect("batch step") {
        Event::Batch { events, .. } => assert_eq!(events.len(), 17),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(5)),
        Ok(Event::Lost(_))
    ));
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(5)),
        Ok(Event::Ended { .. })
    ));
}

#[test]
fn rates_are_per_second_of_trace_time() {
    // iowq-splice: 64 SPLICEs submitted within the first 100 ms of trace time.
    let (mut app, mut s) = replay::open(
        &fixture("iowq-splice"),
        Speed::Max,
        AnalyzerConfig::default(),
        THEME,
    )
    .expect("open");
    let start = s.clock_ns;
    let events = s.take_until(start + 100_000_000, usize::MAX).expect("read");
    app.ingest(&events, s.clock_ns);
    app.tick();
    let row = app.snapshot.rings.first().expect("a ring");
    let submitted = 64.0;
    let elapsed_s = (s.clock_ns - app.start_ns) as f64 / 1e9;
    let rate = row.submits_per_s.expect("a rate after the first tick");
    assert!(
        (rate - submitted / elapsed_s).abs() < 1.0,
        "{rate} vs {}",
        submitted / elapsed_s
    );
    assert_eq!(
        row.punts_per_s, row.submits_per_s,
        "every SPLICE is punted to io-wq"
    );
    assert!(app.snapshot.events_per_s.is_some_and(|r| r > 0.0));

    // Two seconds of trace time later, nothing new: the rates fall to 0.
    let rest = s
        .take_until(s.clock_ns + 2_000_000_000, usize::MAX)
        .expect("read");
    app.ingest(&rest, s.clock_ns);
    app.tick();
    let rest = s
        .take_until(s.clock_ns + 2_000_000_000, usize::MAX)
        .expect("read");
    app.ingest(&rest, s.clock_ns);
    app.tick();
    let row = app.snapshot.rings.first().expect("a ring");
    assert_eq!(row.submits_per_s, Some(0.0));
}
