//! Rendering: pure functions of `&App`. Nothing here changes state, reads a clock or
//! does I/O, so a frame is a function of the App alone (and snapshot tests can
//! render any state).

pub mod finding;
mod footer;
mod header;
mod help;
mod main_screen;
pub mod ring;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;

use super::app::{App, Screen};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::draw(frame, head, app);
    match app.ui.screen {
        Screen::Main => main_screen::draw(frame, body, app),
        Screen::Ring => ring::draw(frame, body, app),
        Screen::Finding => finding::draw(frame, body, app),
    }
    footer::draw(frame, foot, app);
    if app.ui.help {
        help::draw(frame, frame.area(), app);
    }
}

/// A rectangle of at most `w`×`h` centred in `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
