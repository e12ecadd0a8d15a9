//! Styles, in one place so that NO_COLOR can take every colour out: without colour,
//! emphasis falls back to bold, dim and reverse video.

use ratatui::style::{Color, Modifier, Style};

use crate::analyzer::finding::Severity;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless NO_COLOR is set (to anything, as no-color.org says).
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn label(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    pub fn value(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// Lost events: red when any were lost, so nobody misses that data is missing.
    pub fn lost(self, lost: u64, known: bool) -> Style {
        if lost > 0 || !known {
            self.fg(Color::Red)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            self.fg(Color::Green)
        }
    }

    pub fn severity(self, s: Severity) -> Style {
        match s {
            Severity::Error => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Severity::Warning => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Severity::Info => self.fg(Color::Blue),
        }
    }

    pub fn header_row(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// A pane without focus keeps its selection visible, but quieter.
    pub fn selected_unfocused(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn border(self, focused: bool) -> Style {
        match (focused, self.color) {
            (true, true) => Style::new().fg(Color::Cyan),
            (true, false) => Style::new().add_modifier(Modifier::BOLD),
            (false, _) => self.label(),
        }
    }

    /// The member whose failure broke a link chain.
    pub fn breaker(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Followers cancelled by a broken chain.
    pub fn cancelled(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::DIM)
    }

    pub fn error(self) -> Style {
        self.fg(Color::Red)
    }

    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn paused(self) -> Style {
        self.fg(Color::Yellow)
            .add_modifier(Modifier::BOLD | Modifier::REVERSED)
    }

    pub fn bar(self) -> Style {
        self.fg(Color::Magenta)
    }

    pub fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
}
