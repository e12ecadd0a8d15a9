//! The ring screen (Enter on a ring): a summary, then three tabs: per-opcode latency,
//! occupancy and the SQPOLL thread; recent link chains as trees; the oldest requests
//! still in flight.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Tabs};
use ratatui::Frame;

use crate::tui::app::{App, RingTab};
use crate::tui::detail::{chain_links, MemberRole, RingDetail};
use crate::tui::format::{bar, count, elapsed, fit, human_ns, sparkline, who};
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let Some(d) = &app.detail else { return };
    let [summary, tabs, body] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(summary_lines(d, t)), summary);
    let titles: Vec<&str> = RingTab::ALL.iter().map(|x| x.title()).collect();
    let selected = RingTab::ALL
        .iter()
        .position(|x| *x == app.ui.ring_tab)
        .unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .style(t.label())
            .highlight_style(t.selected())
            .divider("│"),
        tabs,
    );
    match app.ui.ring_tab {
        RingTab::Overview => draw_overview(frame, body, d, t),
        RingTab::Chains => draw_chains(frame, body, d, app.ui.scroll, t),
        RingTab::InFlight => draw_in_flight(frame, body, d, app.ui.scroll, t),
    }
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn summary_lines(d: &RingDetail, t: Theme) -> Vec<Line<'static>> {
    let kv = |k: &str, v: String, style: Style| {
        vec![
            Span::styled(format!("  {k} "), t.label()),
            Span::styled(v, style),
        ]
    };
    let mut first = vec![Span::styled(format!(" ring {}", d.ring), t.title())];
    first.extend(kv("pid", who(d.pid, &d.comm), t.value()));
    first.extend(kv("fd", or_dash(d.fd), t.value()));
    first.extend(kv(
        "sq/cq",
        format!("{}/{}", or_dash(d.sq_entries), or_dash(d.cq_entries)),
        t.value(),
    ));
    first.extend(kv(
        "flags",
        if d.flags.is_empty() {
            "-".into()
        } else {
            d.flags.clone()
        },
        t.value(),
    ));
    let warn = |bad: bool| if bad { t.error() } else { t.value() };
    let mut second = Vec::new();
    second.extend(kv("submitted", count(d.submitted), t.value()));
    second.extend(kv("completed", count(d.completed), t.value()));
    second.extend(kv("errors", count(d.errors), warn(d.errors > 0)));
    second.extend(kv(
        "overflowed",
        count(d.overflowed),
        warn(d.overflowed > 0),
    ));
    second.extend(kv(
        "in flight",
        format!("{} (max {})", d.in_flight, d.max_in_flight),
        t.value(),
    ));
    vec![Line::from(first), Line::from(second)]
}

fn block(title: &str, t: Theme) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(t.border(false))
        .title(Span::styled(format!(" {title} "), t.title()))
}

fn draw_overview(frame: &mut Frame, area: Rect, d: &RingDetail, t: Theme) {
    let ops_h = (d.ops.len().max(1) as u16 + 3).min(area.height.saturating_sub(8).max(4));
    let sq_h = if d.sqpoll.is_some() { 3 } else { 0 };
    let [ops, occ, sq, rest] = Layout::vertical([
        Constraint::Length(ops_h),
        Constraint::Length(5),
        Constraint::Length(sq_h),
        Constraint::Min(0),
    ])
    .areas(area);
    // A tall terminal has room for the chains too (the Link chains tab has them all).
    if rest.height >= 7 && !d.chains.is_empty() {
        draw_chains(frame, rest, d, 0, t);
    }
    draw_ops(frame, ops, d, t);
    draw_occupancy(frame, occ, d, t);
    if let Some(s) = &d.sqpoll {
        let mut line = vec![
            Span::styled(" thread ", t.label()),
            Span::styled(s.tid.to_string(), t.value()),
            Span::styled("  state ", t.label()),
            Span::styled(
                s.state.clone(),
                if s.state == "spinning" {
                    t.error()
                } else {
                    t.value()
                },
            ),
        ];
        if let Some(ns) = s.for_ns {
            line.push(Span::styled(format!(" for {}", elapsed(ns)), t.label()));
        }
        line.push(Span::styled("  cpu ", t.label()));
        line.push(Span::styled(
            s.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%")),
            t.value(),
        ));
        frame.render_widget(
            Paragraph::new(Line::from(line)).block(block("SQPOLL thread", t)),
            sq,
        );
    }
}

fn draw_ops(frame: &mut Frame, area: Rect, d: &RingDetail, t: Theme) {
    let b = block("Latency per opcode (submit to completion)", t);
    if d.ops.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(" no completions yet", t.label())).block(b),
            area,
        );
        return;
    }
    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let header = Row::new(
        [
            "OPCODE",
            "COUNT",
            "P50",
            "P99",
            "MAX",
            "P99 (bar: of the slowest)",
        ]
        .map(|h| {
            Cell::from(
                Line::from(h).alignment(if h == "OPCODE" || h.starts_with("P99 (") {
                    Alignment::Left
                } else {
                    Alignment::Right
                }),
            )
        }),
    )
    .style(t.header_row());
    let bar_w = area.width.saturating_sub(2 + 14 + 7 + 8 * 3 + 5) as usize;
    let slowest = d.ops.iter().map(|o| o.p99_ns).max().unwrap_or(0);
    let rows: Vec<Row> = d
        .ops
        .iter()
        .map(|o| {
            Row::new(vec![
                Cell::from(o.opcode.clone()),
                right(count(o.count)),
                right(human_ns(o.p50_ns)),
                right(human_ns(o.p99_ns)),
                right(human_ns(o.max_ns)),
                Cell::from(Span::styled(bar(o.p99_ns, slowest, bar_w), t.bar())),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(14),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Min(0),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(b)
            .column_spacing(1),
        area,
    );
}

fn draw_occupancy(frame: &mut Frame, area: Rect, d: &RingDetail, t: Theme) {
    let title = format!("Occupancy, last {} samples", d.occupancy.len());
    let inner_w = area.width.saturating_sub(2) as usize;
    let spark_w = inner_w.saturating_sub(12 + 20);
    let series: [(&str, Vec<Option<u64>>); 3] = [
        (
            "in flight",
            d.occupancy.iter().map(|o| Some(o.in_flight)).collect(),
        ),
        (
            "SQ pending",
            d.occupancy
                .iter()
                .map(|o| o.sq_pending.map(u64::from))
                .collect(),
        ),
        (
            "CQ pending",
            d.occupancy
                .iter()
                .map(|o| o.cq_pending.map(u64::from))
                .collect(),
        ),
    ];
    let lines: Vec<Line> = series
        .iter()
        .map(|(name, v)| {
            let label = Span::styled(format!(" {name:<11}"), t.label());
            if !v.iter().any(Option::is_some) {
                let why = if name.starts_with("in") {
                    "no samples yet"
                } else {
                    "no fdinfo samples for this ring"
                };
                return Line::from(vec![label, Span::styled(why, t.label())]);
            }
            let vals: Vec<u64> = v.iter().map(|x| x.unwrap_or(0)).collect();
            let now = vals.last().copied().unwrap_or(0);
            let max = vals.iter().copied().max().unwrap_or(0);
            Line::from(vec![
                label,
                Span::styled(format!("{:<spark_w$}", sparkline(&vals, spark_w)), t.bar()),
                Span::styled(fit(&format!(" now {now} max {max}"), 20), t.value()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block(&title, t)), area);
}

/// The chain trees, as lines (also counted for scrolling).
pub fn chain_lines(d: &RingDetail, t: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if d.chains.is_empty() {
        out.push(Line::styled(
            " no link chains on this ring yet (the last 16 finished are kept)",
            t.label(),
        ));
        return out;
    }
    for c in &d.chains {
        let mut head = vec![
            Span::styled(format!(" chain #{}", c.id), t.value()),
            Span::styled(
                format!("  {} members, {}", c.members.len(), chain_links(c)),
                t.label(),
            ),
        ];
        if c.open {
            head.push(Span::styled("  open", t.label()));
        }
        if c.cut_at_batch_end {
            head.push(Span::styled(
                "  cut at the end of a submit batch",
                t.severity(crate::analyzer::finding::Severity::Warning),
            ));
        }
        if let Some((i, m)) = c
            .members
            .iter()
            .enumerate()
            .find(|(_, m)| m.role == MemberRole::Breaker)
        {
            head.push(Span::styled(
                format!(
                    "  broken by member {} ({} {})",
                    i + 1,
                    m.opcode,
                    m.result.as_deref().unwrap_or("?")
                ),
                t.breaker(),
            ));
        }
        out.push(Line::from(head));
        let op_w = c
            .members
            .iter()
            .map(|m| m.opcode.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let n = c.members.len();
        let mixed = chain_links(c) == "soft and hard links";
        for (i, m) in c.members.iter().enumerate() {
            let branch = if i + 1 == n { "└─" } else { "├─" };
            let hard = if mixed && m.hard && i + 1 < n {
                "  (hard link)"
            } else {
                ""
            };
            let text = format!(
                "   {branch} {:>2} {:<op_w$} {:<10} {:<11} {}{hard}",
                i + 1,
                m.opcode,
                format!("{:#x}", m.user_data),
                m.result.as_deref().unwrap_or("…"),
                m.role.name(),
            );
            let style = match m.role {
                MemberRole::Breaker => t.breaker(),
                MemberRole::Cancelled => t.cancelled(),
                MemberRole::Failed => t.error(),
                MemberRole::Pending => t.label(),
                MemberRole::Ok => Style::new(),
            };
            out.push(Line::styled(text.trim_end().to_string(), style));
        }
        out.push(Line::raw(""));
    }
    out
}

fn draw_chains(frame: &mut Frame, area: Rect, d: &RingDetail, scroll: u16, t: Theme) {
    let lines = chain_lines(d, t);
    let max_scroll = lines
        .len()
        .saturating_sub(area.height.saturating_sub(2) as usize);
    let scroll = (scroll as usize).min(max_scroll) as u16;
    let title = "Recent link chains, newest first (breaker red, cancelled yellow)";
    frame.render_widget(
        Paragraph::new(lines)
            .block(block(title, t))
            .scroll((scroll, 0)),
        area,
    );
}

fn draw_in_flight(frame: &mut Frame, area: Rect, d: &RingDetail, scroll: u16, t: Theme) {
    let b = block("Oldest requests in flight", t);
    if d.oldest.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(" nothing in flight", t.label())).block(b),
            area,
        );
        return;
    }
    let visible = area.height.saturating_sub(3) as usize;
    let skip = (scroll as usize).min(d.oldest.len().saturating_sub(visible));
    let header = Row::new(["USER_DATA", "OPCODE", "AGE", "FD", "WAITING ON"]).style(t.header_row());
    let rows: Vec<Row> = d
        .oldest
        .iter()
        .skip(skip)
        .map(|r| {
            Row::new(vec![
                Cell::from(format!("{:#x}", r.user_data)),
                Cell::from(r.opcode.clone()),
                Cell::from(Line::from(elapsed(r.age_ns)).alignment(Alignment::Right)),
                Cell::from(or_dash(r.fd)),
                Cell::from(match &r.file {
                    Some(f) => format!("{} · {f}", r.state),
                    None => r.state.to_string(),
                }),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(18),
        Constraint::Length(14),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Min(0),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(b)
            .column_spacing(1),
        area,
    );
}
