//! The state of `uringtrace top`: everything the view draws, and nothing else.
//!
//! Events go into the analyzer as they arrive ([`App::ingest`]); what the screen shows
//! is recomputed once per tick ([`App::tick`]) into a [`Snapshot`], so rendering stays
//! cheap and does not depend on how many events came in.

use uringtrace_common::RawEvent;

use crate::analyzer::finding::Finding;
use crate::analyzer::report::{Environment, LostEvents};
use crate::analyzer::{Analyzer, AnalyzerConfig};

use super::detail::{self, RingDetail};
use super::event::Event;
use super::history::History;
use super::snapshot::{self, RingRow, Snapshot};
use super::sort::visible_rows;
pub use super::sort::Column;
use super::theme::Theme;

/// Replay pacing: a factor of the recorded time, or as fast as it reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    Factor(f64),
    Max,
}

impl Speed {
    /// Parses `--speed`: "2", "0.5", "max" (0 also means max).
    pub fn parse(s: &str) -> Result<Speed, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let f: f64 = s
            .trim_end_matches(['x', 'X'])
            .parse()
            .map_err(|_| format!("{s:?} is not a speed (e.g. 1, 0.5, 10, max)"))?;
        match f {
            0.0 => Ok(Speed::Max),
            f if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
            _ => Err(format!("{s:?}: the speed must be positive (or max)")),
        }
    }

    pub fn label(self) -> String {
        match self {
            Speed::Max => "max".into(),
            Speed::Factor(f) => format!("×{}", super::format::trim_float(f)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Live,
    Replay { path: String, speed: Speed },
}

/// What the loop must do after a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Pause (true) or resume the input.
    Pause(bool),
    Step(Step),
}

/// One step of a paused input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// One tick's worth of trace time.
    Batch,
    Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Main,
    Ring,
    Finding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Rings,
    Findings,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingTab {
    Overview,
    Chains,
    InFlight,
}

impl RingTab {
    pub const ALL: [RingTab; 3] = [RingTab::Overview, RingTab::Chains, RingTab::InFlight];

    pub fn title(self) -> &'static str {
        match self {
            RingTab::Overview => "Overview",
            RingTab::Chains => "Link chains",
            RingTab::InFlight => "Oldest in flight",
        }
    }
}

/// How the input is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    /// The input ended (replay finished, traced command exited, ...): the last state
    /// stays on screen until quit.
    Ended(String),
}

/// The tracer's own cost, from the kernel's BPF run-time statistics.
#[derive(Clone, Debug, PartialEq)]
pub enum Cost {
    /// Why there is no number ("replay", "BPF stats unavailable: ...").
    Unavailable(String),
    /// Waiting for a second sample.
    Pending,
    Rate {
        cpu_percent: f64,
        ns_per_run: Option<u64>,
    },
}

/// A cumulative BPF run-time sample of our programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostSample {
    pub at_ns: u64,
    pub run_time_ns: u64,
    pub run_count: u64,
}

/// Navigation and input state: what is selected, open, sorted, filtered.
#[derive(Clone, Debug)]
pub struct Ui {
    pub screen: Screen,
    pub pane: Pane,
    pub ring_tab: RingTab,
    pub help: bool,
    pub sort: Column,
    pub sort_desc: bool,
    /// The applied filter (pid, comm or ring substring), "" for none.
    pub filter: String,
    /// Text being typed after `/`, until Enter or Esc.
    pub filter_input: Option<String>,
    /// Selected ring (by ctx, so the selection follows the row when the order changes).
    pub selected_ring: Option<u64>,
    pub selected_finding: usize,
    /// The ring shown by the ring screen.
    pub open_ring: Option<u64>,
    /// The finding shown by the finding screen (refreshed each tick while reported).
    pub open_finding: Option<Finding>,
    /// Scroll offset (lines) of the scrollable screens.
    pub scroll: u16,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            screen: Screen::Main,
            pane: Pane::Rings,
            ring_tab: RingTab::Overview,
            help: false,
            sort: Column::Submits,
            sort_desc: true,
            filter: String::new(),
            filter_input: None,
            selected_ring: None,
            selected_finding: 0,
            open_ring: None,
            open_finding: None,
            scroll: 0,
        }
    }
}

pub struct App {
    pub(super) analyzer: Analyzer,
    pub source: Source,
    pub theme: Theme,
    pub env: Environment,
    pub paused: bool,
    pub status: Status,
    pub ui: Ui,
    /// What the screen shows, as of the last tick.
    pub snapshot: Snapshot,
    /// Indices into `snapshot.rings`: filtered and sorted, in display order.
    pub visible: Vec<usize>,
    /// The open ring's detail, as of the last tick (or the key that opened it).
    pub detail: Option<RingDetail>,
    pub(super) history: History,
    /// Where "time running" counts from (monotonic ns, the trace's clock).
    pub start_ns: u64,
    /// The input's clock: monotonic ns live, the replay position in a replay.
    pub clock_ns: u64,
    pub cost: Cost,
    cost_prev: Option<CostSample>,
    /// Terminal size (columns, rows), set by the loop: scrolling limits depend on it.
    pub viewport: (u16, u16),
}

/// What [`App::take`] did with an event.
#[derive(Debug)]
pub enum Taken {
    Applied,
    /// The input ended; the state is final.
    Ended,
    /// The producer failed (its message).
    Failed(String),
    /// Not a producer's event: a key, a tick or a resize, for the caller.
    Ui(Event),
}

impl App {
    /// `start_ns`: when the trace started, on the trace's (monotonic) clock.
    pub fn new(
        source: Source,
        env: Environment,
        cfg: AnalyzerConfig,
        start_ns: u64,
        theme: Theme,
    ) -> App {
        let cost = match source {
            Source::Live => Cost::Pending,
            Source::Replay { .. } => Cost::Unavailable("n/a (replay)".into()),
        };
        App {
            analyzer: Analyzer::new(cfg, env.clone()),
            source,
            theme,
            env,
            paused: false,
            status: Status::Running,
            ui: Ui::default(),
            snapshot: Snapshot::default(),
            visible: Vec::new(),
            detail: None,
            history: History::default(),
            start_ns,
            clock_ns: start_ns,
            cost,
            cost_prev: None,
            viewport: (80, 24),
        }
    }

    pub fn is_replay(&self) -> bool {
        matches!(self.source, Source::Replay { .. })
    }

    /// Feeds a batch of events; `clock_ns` is the input's clock when it was taken.
    pub fn ingest(&mut self, events: &[RawEvent], clock_ns: u64) {
        for ev in events {
            self.analyzer.push(*ev);
        }
        self.clock_ns = self.clock_ns.max(clock_ns);
    }

    pub fn set_viewport(&mut self, columns: u16, rows: u16) {
        self.viewport = (columns, rows);
    }

    /// The trace's losses so far (shown from the next snapshot on).
    pub fn set_lost(&mut self, lost: LostEvents) {
        self.analyzer.set_lost(lost);
    }

    pub fn set_cost(&mut self, cost: Cost) {
        self.cost = cost;
    }

    /// A new cumulative BPF run-time sample: the cost is its difference to the last.
    pub fn add_cost_sample(&mut self, s: CostSample) {
        if let Some(p) = self.cost_prev {
            let dt = s.at_ns.saturating_sub(p.at_ns);
            if dt > 0 {
                let run = s.run_time_ns.saturating_sub(p.run_time_ns);
                let n = s.run_count.saturating_sub(p.run_count);
                self.cost = Cost::Rate {
                    cpu_percent: run as f64 * 100.0 / dt as f64,
                    ns_per_run: (n > 0).then(|| run / n),
                };
            }
        }
        self.cost_prev = Some(s);
    }

    /// Applies what a producer sent (events, losses, cost samples, the end), the same
    /// for the interactive screen and headless `top`; keys, ticks and resizes are the
    /// caller's and come back as [`Taken::Ui`].
    pub fn take(&mut self, ev: Event) -> Taken {
        match ev {
            // The batch (and its slot) is dropped here: the producer may send another.
            Event::Batch {
                events, clock_ns, ..
            } => self.ingest(&events, clock_ns),
            Event::Lost(lost) => self.set_lost(lost),
            Event::Cost(sample) => self.add_cost_sample(sample),
            Event::CostUnavailable(why) => self.set_cost(Cost::Unavailable(why)),
            Event::Ended { reason, end_ns } => {
                self.end(reason, end_ns);
                return Taken::Ended;
            }
            Event::Failed(msg) => return Taken::Failed(msg),
            ui @ (Event::Key(_) | Event::Tick | Event::Resize(..)) => return Taken::Ui(ui),
        }
        Taken::Applied
    }

    /// The input ended: apply what is left in the reorder window, keep the final state.
    pub fn end(&mut self, reason: String, end_ns: Option<u64>) {
        self.analyzer.flush();
        if let Some(e) = end_ns {
            self.clock_ns = self.clock_ns.max(e);
        }
        self.status = Status::Ended(reason);
        if self.cost == Cost::Pending {
            // Too short a trace for two samples.
            self.cost = Cost::Unavailable("-".into());
        }
        self.refresh();
    }

    /// Once per frame: recompute what the screen shows as of `clock_ns`. A paused live
    /// view stays as it was (events still go into the analyzer); a paused replay
    /// gets no input, so refreshing only shows the steps taken.
    pub fn tick(&mut self) {
        if self.paused && !self.is_replay() {
            return;
        }
        self.refresh();
    }

    /// Recomputes the snapshot now, paused or not (a step does this).
    pub fn refresh(&mut self) {
        let now = self.clock_ns;
        if self.status == Status::Running {
            self.analyzer.advance(now);
        }
        self.analyzer.set_end(now);
        let report = self.analyzer.report();
        self.snapshot = snapshot::take(
            self.analyzer.state(),
            report,
            &mut self.history,
            now,
            self.start_ns,
        );
        self.after_snapshot_change();
    }

    /// Keeps the derived state (visible rows, selection, open views) consistent with
    /// the snapshot, the sort and the filter.
    pub(super) fn after_snapshot_change(&mut self) {
        self.visible = visible_rows(
            &self.snapshot.rings,
            &self.ui.filter,
            self.ui.sort,
            self.ui.sort_desc,
        );
        let selected_present = self.ui.selected_ring.is_some_and(|ctx| {
            self.visible
                .iter()
                .any(|&i| self.snapshot.rings[i].ctx == ctx)
        });
        if !selected_present {
            self.ui.selected_ring = self.visible.first().map(|&i| self.snapshot.rings[i].ctx);
        }
        let n = self.snapshot.findings.len();
        self.ui.selected_finding = self.ui.selected_finding.min(n.saturating_sub(1));
        if let Some(open) = &self.ui.open_finding {
            let same =
                |f: &&Finding| f.rule == open.rule && f.ring == open.ring && f.pid == open.pid;
            if let Some(f) = self.snapshot.findings.iter().find(same) {
                self.ui.open_finding = Some(f.clone());
            }
        }
        self.refresh_detail();
    }

    pub(super) fn refresh_detail(&mut self) {
        self.detail = self.ui.open_ring.map(|ctx| {
            detail::ring_detail(self.analyzer.state(), ctx, &self.history, self.clock_ns)
        });
    }

    /// The row of the selected ring, if shown.
    pub fn selected_row(&self) -> Option<&RingRow> {
        let ctx = self.ui.selected_ring?;
        self.snapshot.rings.iter().find(|r| r.ctx == ctx)
    }

    /// Position of the selected ring among the visible rows.
    pub fn selected_index(&self) -> Option<usize> {
        let ctx = self.ui.selected_ring?;
        self.visible
            .iter()
            .position(|&i| self.snapshot.rings[i].ctx == ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::Speed;

    #[test]
    fn speeds() {
        assert_eq!(Speed::parse("1"), Ok(Speed::Factor(1.0)));
        assert_eq!(Speed::parse("2.5x"), Ok(Speed::Factor(2.5)));
        assert_eq!(Speed::parse("max"), Ok(Speed::Max));
        assert_eq!(Speed::parse("0"), Ok(Speed::Max));
        assert!(Speed::parse("-1").is_err());
        assert!(Speed::parse("fast").is_err());
        assert!(Speed::parse("inf").is_err());
        assert_eq!(Speed::Factor(0.5).label(), "×0.5");
    }
}
