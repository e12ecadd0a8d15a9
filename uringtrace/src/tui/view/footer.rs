//! The last line: the filter being typed, or the keys that work here.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::tui::app::{App, Screen, Status};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    if let Some(input) = &app.ui.filter_input {
        let line = Line::from(vec![
            Span::styled(" filter: ", t.key()),
            Span::raw(format!("{input}█")),
            Span::styled("   Enter apply  Esc clear", t.label()),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let keys: &[(&str, &str)] = match app.ui.screen {
        Screen::Main => &[
            ("q", "quit"),
            ("?", "help"),
            ("p", "pause"),
            ("s", "sort"),
            ("/", "filter"),
            ("Tab", "pane"),
            ("Enter", "open"),
        ],
        Screen::Ring => &[
            ("Esc", "back"),
            ("Tab", "next tab"),
            ("j/k", "scroll"),
            ("p", "pause"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Finding => &[
            ("Esc", "back"),
            ("j/k", "scroll"),
            ("p", "pause"),
            ("?", "help"),
            ("q", "quit"),
        ],
    };
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::styled(format!(" {k}"), t.key()));
        spans.push(Span::styled(format!(" {what} "), t.label()));
    }
    if app.paused && app.is_replay() {
        spans.push(Span::styled(" n", t.key()));
        spans.push(Span::styled(" step ", t.label()));
        spans.push(Span::styled(".", t.key()));
        spans.push(Span::styled(" one event", t.label()));
    }
    if let Status::Ended(why) = &app.status {
        spans.push(Span::styled(format!("  {why}"), t.label()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
