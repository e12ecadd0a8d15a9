//! Keys: [`App::handle_key`] changes the UI state and tells the loop what else to do.
//! It is an ordinary method so tests drive it directly, key by key.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, App, Column, Pane, RingTab, Screen, Step};

/// Rows moved by PageUp/PageDown.
const PAGE: usize = 10;

impl App {
    pub fn handle_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        // Raw mode turns Ctrl-C into a key instead of SIGINT: it must still quit.
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c' | 'C'))
        {
            return Action::Quit;
        }
        if self.ui.filter_input.is_some() {
            self.filter_key(key);
            return Action::None;
        }
        if self.ui.help {
            match key.code {
                KeyCode::Char('q') => return Action::Quit,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Enter => self.ui.help = false,
                _ => {}
            }
            return Action::None;
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') => self.ui.help = true,
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                return Action::Pause(self.paused);
            }
            KeyCode::Char('n') if self.paused => return self.step(Step::Batch),
            KeyCode::Char('.') if self.paused => return self.step(Step::Event),
            _ => match self.ui.screen {
                Screen::Main => self.main_key(key),
                Screen::Ring => self.ring_key(key),
                Screen::Finding => self.finding_key(key),
            },
        }
        Action::None
    }

    fn step(&mut self, step: Step) -> Action {
        // Live input cannot be stepped at its source: a step shows what arrived.
        if !self.is_replay() {
            self.refresh();
        }
        Action::Step(step)
    }

    fn filter_key(&mut self, key: KeyEvent) {
        let Some(input) = self.ui.filter_input.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Enter => {
                self.ui.filter = std::mem::take(input).trim().to_string();
                self.ui.filter_input = None;
                self.after_view_change();
            }
            KeyCode::Esc => {
                self.ui.filter.clear();
                self.ui.filter_input = None;
                self.after_view_change();
            }
            KeyCode::Backspace => {
                input.pop();
            }
            // A filter is a pid or a name: nothing longer makes sense.
            KeyCode::Char(c)
                if !key.modifiers.contains(KeyModifiers::CONTROL) && input.chars().count() < 64 =>
            {
                input.push(c);
            }
            _ => {}
        }
    }

    fn main_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Tab
            | KeyCode::BackTab
            | KeyCode::Char('h' | 'l')
            | KeyCode::Left
            | KeyCode::Right => {
                self.ui.pane = match self.ui.pane {
                    Pane::Rings => Pane::Findings,
                    Pane::Findings => Pane::Rings,
                };
            }
            KeyCode::Char('j') | KeyCode::Down => self.move_selection(1),
            KeyCode::Char('k') | KeyCode::Up => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(PAGE as isize),
            KeyCode::PageUp => self.move_selection(-(PAGE as isize)),
            KeyCode::Char('g') | KeyCode::Home => self.move_selection(isize::MIN / 2),
            KeyCode::Char('G') | KeyCode::End => self.move_selection(isize::MAX / 2),
            KeyCode::Char('s') => {
                self.ui.sort = self.ui.sort.next();
                self.ui.sort_desc = self.ui.sort.descending_by_default();
                self.after_view_change();
            }
            KeyCode::Char('S') => {
                self.ui.sort_desc = !self.ui.sort_desc;
                self.after_view_change();
            }
            KeyCode::Char('/') => self.ui.filter_input = Some(self.ui.filter.clone()),
            KeyCode::Esc if !self.ui.filter.is_empty() => {
                self.ui.filter.clear();
                self.after_view_change();
            }
            KeyCode::Enter => self.open_selected(),
            _ => {}
        }
    }

    fn open_selected(&mut self) {
        match self.ui.pane {
            Pane::Rings => {
                if let Some(ctx) = self.selected_row().map(|r| r.ctx) {
                    self.ui.open_ring = Some(ctx);
                    self.ui.screen = Screen::Ring;
                    self.ui.ring_tab = RingTab::Overview;
                    self.ui.scroll = 0;
                    self.refresh_detail();
                }
            }
            Pane::Findings => {
                if let Some(f) = self.snapshot.findings.get(self.ui.selected_finding) {
                    self.ui.open_finding = Some(f.clone());
                    self.ui.screen = Screen::Finding;
                    self.ui.scroll = 0;
                }
            }
        }
    }

    fn ring_key(&mut self, key: KeyEvent) {
        let tabs = RingTab::ALL;
        let i = tabs
            .iter()
            .position(|t| *t == self.ui.ring_tab)
            .unwrap_or(0);
        match key.code {
            KeyCode::Esc | KeyCode::Backspace => self.back_to_main(),
            KeyCode::Tab | KeyCode::Char('l') | KeyCode::Right => {
                self.ui.ring_tab = tabs[(i + 1) % tabs.len()];
                self.ui.scroll = 0;
            }
            KeyCode::BackTab | KeyCode::Char('h') | KeyCode::Left => {
                self.ui.ring_tab = tabs[(i + tabs.len() - 1) % tabs.len()];
                self.ui.scroll = 0;
            }
            _ => self.scroll_key(key),
        }
    }

    fn finding_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Char('h') | KeyCode::Left => {
                self.back_to_main()
            }
            _ => self.scroll_key(key),
        }
    }

    fn scroll_key(&mut self, key: KeyEvent) {
        let limit = self.scroll_limit();
        let s = self.ui.scroll as usize;
        let s = match key.code {
            KeyCode::Char('j') | KeyCode::Down => s + 1,
            KeyCode::Char('k') | KeyCode::Up => s.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => s + PAGE,
            KeyCode::PageUp => s.saturating_sub(PAGE),
            KeyCode::Char('g') | KeyCode::Home => 0,
            KeyCode::Char('G') | KeyCode::End => limit,
            _ => return,
        };
        self.ui.scroll = s.min(limit).min(u16::MAX as usize) as u16;
    }

    /// Lines the current screen can scroll by: its content less what fits (the
    /// screen's chrome: header, footer, borders, and on the ring screen its summary).
    fn scroll_limit(&self) -> usize {
        let (columns, rows) = self.viewport;
        let content = match self.ui.screen {
            Screen::Main => 0,
            Screen::Finding => {
                let width = columns.saturating_sub(2) as usize;
                self.ui.open_finding.as_ref().map_or(0, |f| {
                    super::view::finding::text_lines(f, self.theme, width).len()
                })
            }
            Screen::Ring => self.detail.as_ref().map_or(0, |d| match self.ui.ring_tab {
                RingTab::Overview => 0,
                RingTab::Chains => super::view::ring::chain_lines(d, self.theme).len(),
                RingTab::InFlight => d.oldest.len() + 1,
            }),
        };
        let chrome = if self.ui.screen == Screen::Ring { 8 } else { 5 };
        content.saturating_sub((rows as usize).saturating_sub(chrome))
    }

    fn back_to_main(&mut self) {
        if self.ui.screen == Screen::Finding {
            self.ui.pane = Pane::Findings;
        }
        self.ui.screen = Screen::Main;
        self.ui.open_ring = None;
        self.ui.open_finding = None;
        self.ui.scroll = 0;
        self.detail = None;
    }

    fn move_selection(&mut self, delta: isize) {
        let step = |cur: usize, len: usize| {
            (cur as isize)
                .saturating_add(delta)
                .clamp(0, len as isize - 1) as usize
        };
        match self.ui.pane {
            Pane::Rings => {
                if self.visible.is_empty() {
                    return;
                }
                let cur = self.selected_index().unwrap_or(0);
                let i = self.visible[step(cur, self.visible.len())];
                self.ui.selected_ring = Some(self.snapshot.rings[i].ctx);
            }
            Pane::Findings => {
                let n = self.snapshot.findings.len();
                if n > 0 {
                    self.ui.selected_finding = step(self.ui.selected_finding, n);
                }
            }
        }
    }

    /// Sort or filter changed: recompute the visible rows, keep the selection if shown.
    fn after_view_change(&mut self) {
        self.after_snapshot_change();
    }

    /// The sort column as the header shows it, e.g. "P99 ▼".
    pub fn sort_label(&self) -> String {
        format!(
            "{} {}",
            self.ui.sort.header(),
            if self.ui.sort_desc { "▼" } else { "▲" }
        )
    }

    pub fn sort_column(&self) -> Column {
        self.ui.sort
    }
}
