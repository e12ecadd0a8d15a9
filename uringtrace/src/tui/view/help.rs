//! The help overlay (`?`).

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::app::App;

/// (keys, what they do), also the README's key list.
pub const KEYS: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit"),
    ("?", "this help (Esc closes)"),
    ("p", "pause / resume (live: freeze the view)"),
    ("n  .", "paused replay: step one batch / one event"),
    ("s  S", "sort by the next column / reverse the order"),
    (
        "/",
        "filter by pid, comm or ring (Enter applies, Esc clears)",
    ),
    ("Tab  h l ← →", "switch pane; on a ring: switch tab"),
    ("j k ↑ ↓", "move the selection, or scroll"),
    ("PgUp PgDn g G", "page, top, bottom"),
    ("Enter", "open the ring or finding"),
    ("Esc", "back, or clear the filter"),
];

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let mut lines = vec![Line::raw("")];
    for (k, what) in KEYS {
        lines.push(Line::from(vec![
            Span::styled(format!(" {k:>14}  "), t.key()),
            Span::raw(*what),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " Rows marked ! have findings. Rates are per second of trace time,",
        t.label(),
    ));
    lines.push(Line::styled(
        " averaged over the last second; latency is since the start.",
        t.label(),
    ));
    let h = lines.len() as u16 + 2;
    let rect = super::centered(area, 78, h);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border(true))
        .title(Span::styled(" Keys ", t.title()));
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
