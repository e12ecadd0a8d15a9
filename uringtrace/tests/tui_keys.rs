//! Key handling of `uringtrace top`, driven through `App::handle_key` directly.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use uringtrace::tui::app::{Action, Column, Pane, RingTab, Screen, Step};
use uringtrace::tui::replay;
use uringtrace::tui::theme::Theme;
use uringtrace::tui::App;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recordings")
        .join(format!("{name}.utr"))
}

fn load(name: &str) -> App {
    replay::load(&fixture(name), Theme { color: true }).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

fn key(app: &mut App, code: KeyCode) -> Action {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        assert_eq!(key(app, KeyCode::Char(c)), Action::None);
    }
}

/// The visible rings, as their short addresses, in display order.
fn order(app: &App) -> Vec<String> {
    app.visible
        .iter()
        .map(|&i| app.snapshot.rings[i].ring.clone())
        .collect()
}

const RING_A: &str = "0xffff88810b7d1000";
const RING_B: &str = "0xffff88810b7d7800";

#[test]
fn s_cycles_every_column_and_capital_s_reverses() {
    let mut app = load("sqpoll-shared-split");
    assert_eq!(app.ui.sort, Column::Submits);
    let mut seen = vec![app.ui.sort];
    for _ in 0..Column::ALL.len() - 1 {
        key(&mut app, KeyCode::Char('s'));
        seen.push(app.ui.sort);
    }
    seen.sort_by_key(|c| Column::ALL.iter().position(|x| x == c));
    assert_eq!(seen, Column::ALL);
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(
        app.ui.sort,
        Column::Submits,
        "back to the first sorted column"
    );

    // P99: ring B (57µs) is slower than ring A (6µs).
    while app.ui.sort != Column::P99 {
        key(&mut app, KeyCode::Char('s'));
    }
    assert!(app.ui.sort_desc);
    assert_eq!(order(&app), [RING_B, RING_A]);
    key(&mut app, KeyCode::Char('S'));
    assert!(!app.ui.sort_desc);
    assert_eq!(order(&app), [RING_A, RING_B]);
    // Names sort A to Z by default.
    while app.ui.sort != Column::Ring {
        key(&mut app, KeyCode::Char('s'));
    }
    assert!(!app.ui.sort_desc);
    assert_eq!(order(&app), [RING_A, RING_B]);
}

#[test]
fn selection_follows_the_ring_when_the_order_changes() {
    let mut app = load("sqpoll-shared-split");
    while app.ui.sort != Column::P99 {
        key(&mut app, KeyCode::Char('s'));
    }
    let first = app.ui.selected_ring;
    key(&mut app, KeyCode::Char('j'));
    let second = app.ui.selected_ring;
    assert_ne!(first, second);
    key(&mut app, KeyCode::Down); // stays on the last row
    assert_eq!(app.ui.selected_ring, second);
    key(&mut app, KeyCode::Char('S'));
    assert_eq!(
        app.ui.selected_ring, second,
        "selection is the ring, not the row number"
    );
    assert_eq!(app.selected_index(), Some(0));
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.selected_index(), Some(0));
}

#[test]
fn filter_by_pid_comm_or_ring() {
    let mut app = load("sqpoll-shared-split");
    assert_eq!(key(&mut app, KeyCode::Char('/')), Action::None);
    assert!(app.ui.filter_input.is_some());
    // While typing, q is text, not quit.
    typed(&mut app, "qq");
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    typed(&mut app, "7800");
    assert_eq!(app.visible.len(), 2, "applied only on Enter");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.ui.filter, "7800");
    assert_eq!(order(&app), [RING_B]);
    assert_eq!(app.selected_row().map(|r| r.ring.as_str()), Some(RING_B));

    key(&mut app, KeyCode::Char('/'));
    assert_eq!(
        app.ui.filter_input.as_deref(),
        Some("7800"),
        "editing starts from the current filter"
    );
    for _ in 0..4 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "25852");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.visible.len(), 2, "pid matches both rings");

    key(&mut app, KeyCode::Char('/'));
    for _ in 0..5 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "URINGTRACE-W");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.visible.len(), 2, "comm matches ignoring case");

    key(&mut app, KeyCode::Char('/'));
    for _ in 0..12 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "nginx");
    key(&mut app, KeyCode::Enter);
    assert!(app.visible.is_empty());
    assert_eq!(app.ui.selected_ring, None);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Action::None,
        "nothing to open"
    );
    assert_eq!(app.ui.screen, Screen::Main);

    // Esc on the main screen clears an applied filter; Esc while typing clears too.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.ui.filter, "");
    assert_eq!(app.visible.len(), 2);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "7800");
    key(&mut app, KeyCode::Esc);
    assert!(app.ui.filter_input.is_none());
    assert_eq!(app.visible.len(), 2);
}

#[test]
fn enter_opens_and_esc_goes_back() {
    let mut app = load("chain-broken-error");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.ui.screen, Screen::Ring);
    assert_eq!(app.ui.open_ring, app.ui.selected_ring);
    let d = app.detail.as_ref().expect("ring detail");
    assert_eq!(d.chains.len(), 1);
    assert_eq!(
        d.ops.iter().map(|o| o.opcode.as_str()).collect::<Vec<_>>(),
        ["NOP", "READ"]
    );
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.ui.screen, Screen::Main);
    assert!(app.detail.is_none());

    key(&mut app, KeyCode::Tab);
    assert_eq!(app.ui.pane, Pane::Findings);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.ui.screen, Screen::Finding);
    assert_eq!(
        app.ui.open_finding.as_ref().map(|f| f.rule.as_str()),
        Some("link-chain-broken")
    );
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.ui.scroll, 2);
    key(&mut app, KeyCode::Char('k'));
    assert_eq!(app.ui.scroll, 1);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.ui.screen, Screen::Main);
    assert_eq!(app.ui.pane, Pane::Findings, "back where we came from");
    assert_eq!(app.ui.scroll, 0);
}

#[test]
fn tab_and_vim_keys_switch_panes_and_tabs() {
    let mut app = load("chain-broken-error");
    assert_eq!(app.ui.pane, Pane::Rings);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.ui.pane, Pane::Findings);
    key(&mut app, KeyCode::Char('h'));
    assert_eq!(app.ui.pane, Pane::Rings);
    key(&mut app, KeyCode::Char('l'));
    assert_eq!(app.ui.pane, Pane::Findings);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.ui.pane, Pane::Rings);

    key(&mut app, KeyCode::Enter);
    assert_eq!(app.ui.ring_tab, RingTab::Overview);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.ui.ring_tab, RingTab::Chains);
    key(&mut app, KeyCode::Char('l'));
    assert_eq!(app.ui.ring_tab, RingTab::InFlight);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.ui.ring_tab, RingTab::Overview, "wraps around");
    key(&mut app, KeyCode::Char('h'));
    assert_eq!(app.ui.ring_tab, RingTab::InFlight);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.ui.ring_tab, RingTab::Chains);
}

#[test]
fn quit_keys() {
    let mut app = load("chain-ok");
    assert_eq!(key(&mut app, KeyCode::Char('q')), Action::Quit);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.handle_key(ctrl_c), Action::Quit);
    // Ctrl-C quits even while typing a filter (raw mode: it is the only way out).
    key(&mut app, KeyCode::Char('/'));
    assert_eq!(app.handle_key(ctrl_c), Action::Quit);
    key(&mut app, KeyCode::Esc);
    // From help and from a ring, q still quits.
    key(&mut app, KeyCode::Char('?'));
    assert!(app.ui.help);
    assert_eq!(key(&mut app, KeyCode::Char('q')), Action::Quit);
    key(&mut app, KeyCode::Esc);
    assert!(!app.ui.help);
    key(&mut app, KeyCode::Enter);
    assert_eq!(key(&mut app, KeyCode::Char('q')), Action::Quit);
    // Key releases (kitty protocol terminals) do nothing.
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(app.handle_key(release), Action::None);
}

#[test]
fn help_swallows_other_keys() {
    let mut app = load("chain-ok");
    key(&mut app, KeyCode::Char('?'));
    key(&mut app, KeyCode::Char('s'));
    key(&mut app, KeyCode::Enter); // closes help, opens nothing
    assert_eq!(app.ui.sort, Column::Submits);
    assert!(!app.ui.help);
    assert_eq!(app.ui.screen, Screen::Main);
}

#[test]
fn pause_and_step() {
    let mut app = load("chain-ok");
    assert_eq!(
        key(&mut app, KeyCode::Char('n')),
        Action::None,
        "steps only when paused"
    );
    assert_eq!(key(&mut app, KeyCode::Char('p')), Action::Pause(true));
    assert!(app.paused);
    assert_eq!(key(&mut app, KeyCode::Char('n')), Action::Step(Step::Batch));
    assert_eq!(key(&mut app, KeyCode::Char('.')), Action::Step(Step::Event));
    assert_eq!(key(&mut app, KeyCode::Char('p')), Action::Pause(false));
    assert!(!app.paused);
}
