//! The main screen: the rings table above, the findings panel below.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::analyzer::finding::{Finding, Severity};
use crate::tui::app::{App, Column, Pane};
use crate::tui::format::{self, fit, latency, rate, short_ring, who};
use crate::tui::snapshot::RingRow;
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    // Findings get what they need (up to 40%), rings the rest.
    let want = app.snapshot.findings.len().max(1) as u16 + 3;
    let findings_h = want.min(area.height * 2 / 5).max(4.min(area.height));
    let [rings, findings] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(findings_h)]).areas(area);
    draw_rings(frame, rings, app);
    draw_findings(frame, findings, app);
}

fn pane_block(title: Line<'static>, focused: bool, t: Theme) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(t.border(focused))
        .title(title)
}

/// Columns shown at this width, each with its width. Narrow terminals drop the
/// least useful columns first; the ring address shrinks to its low 32 bits.
pub fn ring_columns(width: u16) -> (Vec<(Column, u16)>, bool) {
    use Column::*;
    let layouts: [(&[Column], u16, bool); 6] = [
        (&Column::ALL, 22, true),
        (&Column::ALL, 20, false),
        (
            &[
                Process,
                Ring,
                Submits,
                Completions,
                InFlight,
                P50,
                P99,
                Errors,
                Overflows,
                Punts,
            ],
            18,
            false,
        ),
        (
            &[
                Process,
                Ring,
                Submits,
                Completions,
                InFlight,
                P50,
                P99,
                Errors,
                Overflows,
            ],
            16,
            false,
        ),
        (
            &[
                Process,
                Ring,
                Submits,
                Completions,
                InFlight,
                P99,
                Errors,
                Overflows,
            ],
            16,
            false,
        ),
        (
            &[Process, Submits, Completions, InFlight, P99, Errors],
            12,
            false,
        ),
    ];
    let width_of = |c: Column, process: u16, full_ring: bool| match c {
        Process => process,
        Ring if full_ring => 18,
        Ring => 8,
        Flags => 12,
        Submits | Completions | Errors | Punts => 6,
        InFlight | Overflows => 5,
        P50 | P99 => 7,
    };
    for (i, (cols, process, full)) in layouts.iter().enumerate() {
        let v: Vec<(Column, u16)> = cols
            .iter()
            .map(|&c| (c, width_of(c, *process, *full)))
            .collect();
        // 1 for the finding mark, 1 space between columns.
        let total: u16 = 1 + v.iter().map(|(_, w)| w + 1).sum::<u16>();
        if total <= width || i == layouts.len() - 1 {
            return (v, *full);
        }
    }
    unreachable!("the last layout is always returned")
}

fn ring_cell(r: &RingRow, c: Column, full_ring: bool) -> String {
    match c {
        Column::Process => who(r.pid, &r.comm),
        Column::Ring if full_ring => r.ring.clone(),
        Column::Ring => short_ring(&r.ring).to_string(),
        Column::Flags => {
            if r.flags.is_empty() {
                "-".into()
            } else {
                r.flags.clone()
            }
        }
        Column::Submits => rate(r.submits_per_s),
        Column::Completions => rate(r.completions_per_s),
        Column::InFlight => format::count(r.in_flight),
        Column::P50 => latency(r.p50_ns),
        Column::P99 => latency(r.p99_ns),
        Column::Errors => rate(r.errors_per_s),
        Column::Overflows => format::count(r.overflows),
        Column::Punts => rate(r.punts_per_s),
    }
}

fn numeric(c: Column) -> bool {
    !matches!(c, Column::Process | Column::Ring | Column::Flags)
}

fn aligned(text: String, c: Column, width: u16, style: Style) -> Cell<'static> {
    let text = fit(&text, width as usize);
    let line = Line::from(text).style(style);
    Cell::from(if numeric(c) {
        line.alignment(Alignment::Right)
    } else {
        line
    })
}

fn draw_rings(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let focused = app.ui.pane == Pane::Rings;
    let mut title = vec![
        Span::styled(format!(" Rings ({}) ", app.visible.len()), t.title()),
        Span::styled(format!(" sort {} ", app.sort_label()), t.label()),
    ];
    if !app.ui.filter.is_empty() {
        title.push(Span::styled(
            format!(" filter \"{}\" ", app.ui.filter),
            t.paused(),
        ));
    }
    let block = pane_block(Line::from(title), focused, t);
    let inner_w = area.width.saturating_sub(2);
    let (cols, full_ring) = ring_columns(inner_w);
    let mut header = vec![Cell::from(" ")];
    // The process column takes what the others leave (its constraint is a minimum).
    let others: u16 = cols
        .iter()
        .filter(|(c, _)| *c != Column::Process)
        .map(|(_, w)| w + 1)
        .sum();
    let cols: Vec<(Column, u16)> = cols
        .into_iter()
        .map(|(c, w)| {
            if c == Column::Process {
                (c, w.max(inner_w.saturating_sub(others + 2)))
            } else {
                (c, w)
            }
        })
        .collect();
    for &(c, w) in &cols {
        let mut h = c.header().to_string();
        if c == app.ui.sort {
            h.push(if app.ui.sort_desc { '▼' } else { '▲' });
        }
        header.push(aligned(h, c, w, t.header_row()));
    }
    let rows: Vec<Row> = app
        .visible
        .iter()
        .map(|&i| {
            let r = &app.snapshot.rings[i];
            let flagged = r.finding.map(|s| t.severity(s));
            let mut cells = vec![Cell::from(Span::styled(
                if r.finding.is_some() { "!" } else { " " },
                flagged.unwrap_or_default(),
            ))];
            for &(c, w) in &cols {
                let style = match c {
                    Column::Process => flagged.unwrap_or_default(),
                    Column::Errors if r.errors_per_s.is_some_and(|e| e > 0.0) => t.error(),
                    Column::Overflows if r.overflows > 0 => t.severity(Severity::Warning),
                    _ => Style::new(),
                };
                cells.push(aligned(ring_cell(r, c, full_ring), c, w, style));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(1)];
    widths.extend(cols.iter().map(|&(c, w)| {
        if c == Column::Process {
            Constraint::Min(w)
        } else {
            Constraint::Length(w)
        }
    }));
    if rows.is_empty() {
        let msg = if app.snapshot.rings.is_empty() {
            "no io_uring activity yet"
        } else {
            "no ring matches the filter (Esc clears it)"
        };
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(Line::styled(format!(" {msg}"), t.label())),
            inner,
        );
        return;
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header))
        .block(block)
        .column_spacing(1)
        .row_highlight_style(if focused {
            t.selected()
        } else {
            t.selected_unfocused()
        });
    let mut state = TableState::default().with_selected(app.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
}

/// How often a finding was seen (the analyzer collapses repeats into "occurrences").
pub fn occurrences(f: &Finding) -> u64 {
    f.occurrences
}

pub fn severity_tag(s: Severity) -> &'static str {
    match s {
        Severity::Error => "ERROR",
        Severity::Warning => "WARN",
        Severity::Info => "INFO",
    }
}

fn draw_findings(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let focused = app.ui.pane == Pane::Findings;
    let findings = &app.snapshot.findings;
    let title = Line::from(vec![Span::styled(
        format!(" Findings ({}) ", findings.len()),
        t.title(),
    )]);
    let block = pane_block(title, focused, t);
    if findings.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(Line::styled(" none so far", t.label())),
            inner,
        );
        return;
    }
    let now = app.snapshot.now_ns;
    let header = Row::new(
        ["SEV", "RULE", "N", "LAST SEEN", "RING", "MESSAGE"]
            .map(|h| Cell::from(h).style(t.header_row())),
    );
    let rows: Vec<Row> = findings
        .iter()
        .map(|f| {
            let ago = format!(
                "{} ago",
                format::elapsed(now.saturating_sub(f.evidence.last_ns))
            );
            Row::new(vec![
                Cell::from(Span::styled(
                    severity_tag(f.severity),
                    t.severity(f.severity),
                )),
                Cell::from(f.rule.slug()),
                Cell::from(Line::from(format::count(occurrences(f))).alignment(Alignment::Right)),
                Cell::from(ago),
                Cell::from(if f.ring == 0 {
                    "-".to_string()
                } else {
                    short_ring(&f.ring_hex()).to_string()
                }),
                Cell::from(f.message.clone()),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(5),
        Constraint::Length(20),
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(if focused {
            t.selected()
        } else {
            t.selected_unfocused()
        });
    let mut state = TableState::default().with_selected(Some(app.ui.selected_finding));
    frame.render_stateful_widget(table, area, &mut state);
}
