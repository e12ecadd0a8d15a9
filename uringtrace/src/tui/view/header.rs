//! Two header lines: where and how long we trace; throughput, losses, our own cost.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::analyzer::finding::Severity;
use crate::tui::app::{App, Cost, Source, Status};
use crate::tui::format::{count, elapsed, rate, trim_float};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let s = &app.snapshot;
    let unknown = |v: &str| {
        if v.is_empty() {
            "?".to_string()
        } else {
            v.to_string()
        }
    };
    let mut first = vec![
        Span::styled(" uringtrace top ", t.title()),
        Span::styled(" host ", t.label()),
        Span::styled(unknown(&app.env.host), t.value()),
        Span::styled("  kernel ", t.label()),
        Span::styled(unknown(&app.env.kernel_release), t.value()),
        Span::raw("  "),
    ];
    let mode = match &app.source {
        Source::Live => Span::styled("LIVE", t.ok()),
        Source::Replay { speed, .. } => {
            Span::styled(format!("REPLAY {}", speed.label()), t.title())
        }
    };
    first.push(mode);
    first.push(Span::styled(
        format!(" {}", elapsed(s.running_ns)),
        t.value(),
    ));
    if let Status::Ended(_) = &app.status {
        // The reason is in the footer; here one word, so it fits 80 columns.
        let word = if app.is_replay() {
            "  finished"
        } else {
            "  stopped"
        };
        first.push(Span::styled(word, t.paused()));
    }
    if app.paused {
        first.push(Span::raw("  "));
        first.push(Span::styled(" PAUSED ", t.paused()));
    }

    let lost = &s.lost;
    let lost_text = if lost.known {
        count(lost.total)
    } else {
        "unknown".into()
    };
    let mut second = vec![
        Span::styled(" events/s ", t.label()),
        Span::styled(rate(s.events_per_s), t.value()),
        Span::styled("  events ", t.label()),
        Span::styled(count(s.events), t.value()),
        Span::styled("  lost ", t.label()),
        Span::styled(lost_text, t.lost(lost.total, lost.known)),
        Span::styled("  BPF ", t.label()),
        Span::styled(cost_text(&app.cost), t.value()),
    ];
    let errors = s
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    second.push(Span::styled("  findings ", t.label()));
    let style = if errors > 0 {
        t.severity(Severity::Error)
    } else {
        t.value()
    };
    second.push(Span::styled(findings_text(s.findings.len(), errors), style));
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

fn cost_text(c: &Cost) -> String {
    match c {
        Cost::Unavailable(why) => why.clone(),
        Cost::Pending => "…".into(),
        Cost::Rate {
            cpu_percent,
            ns_per_run,
        } => {
            let pct = if *cpu_percent < 10.0 {
                format!("{cpu_percent:.2}")
            } else {
                trim_float(*cpu_percent)
            };
            match ns_per_run {
                Some(ns) => format!("{pct}% CPU, {ns}ns/run"),
                None => format!("{pct}% CPU"),
            }
        }
    }
}

fn findings_text(n: usize, errors: usize) -> String {
    match errors {
        0 => n.to_string(),
        e => format!("{n} ({e} error{})", if e == 1 { "" } else { "s" }),
    }
}
