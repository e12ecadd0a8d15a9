//! `uringtrace top` screens rendered from fixture recordings with ratatui's
//! TestBackend: text snapshots (tests/snapshots/*.txt; UPDATE_SNAPSHOTS=1 rewrites
//! them), plus explicit style checks, because text snapshots carry no colour.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;
use uringtrace::analyzer::report::LostEvents;
use uringtrace::tui::app::{Pane, RingTab, Screen};
use uringtrace::tui::replay;
use uringtrace::tui::theme::Theme;
use uringtrace::tui::{view, App};

const COLOR: Theme = Theme { color: true };

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recordings")
        .join(format!("{name}.utr"))
}

fn load(name: &str) -> App {
    replay::load(&fixture(name), COLOR).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(app: &mut App, keys: &[KeyCode]) {
    for k in keys {
        app.handle_key(key(*k));
    }
}

fn render(app: &mut App, w: u16, h: u16) -> Buffer {
    app.set_viewport(w, h);
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| view::draw(f, app)).expect("draw");
    t.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Compares with tests/snapshots/NAME.txt. A missing snapshot is written (and the test
/// fails in CI, where it must already exist); UPDATE_SNAPSHOTS=1 rewrites them all.
fn snapshot(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    match std::fs::read_to_string(&path) {
        Ok(want) if !update => assert!(
            want == got,
            "snapshot {name} differs (UPDATE_SNAPSHOTS=1 to accept)\n--- want\n{want}\n--- got\n{got}"
        ),
        _ => {
            assert!(std::env::var_os("CI").is_none() || update, "snapshot {} missing", path.display());
            std::fs::write(&path, got).expect("write snapshot");
            eprintln!("wrote {}", path.display());
        }
    }
}

/// Where `needle` starts in the rendered text: (x, y) in cells.
fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let area = buf.area;
    for y in 0..area.height {
        let cells: Vec<&str> = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
        for x in 0..cells.len() {
            let mut s = String::new();
            for c in &cells[x..] {
                s.push_str(c);
                if s.len() >= needle.len() {
                    break;
                }
            }
            if s.starts_with(needle) {
                return Some((x as u16, y));
            }
        }
    }
    None
}

fn assert_fg(buf: &Buffer, needle: &str, color: Color) {
    let (x, y) =
        find(buf, needle).unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", text(buf)));
    for i in 0..needle.chars().count() as u16 {
        let cell = &buf[(x + i, y)];
        assert_eq!(
            cell.fg,
            color,
            "{needle:?}: cell {} ({:?}) is {:?}",
            x + i,
            cell.symbol(),
            cell.fg
        );
    }
}

#[test]
fn main_screen_80x24() {
    let mut app = load("sqpoll-shared-split");
    snapshot(
        "main-80x24-sqpoll-shared-split",
        &text(&render(&mut app, 80, 24)),
    );
}

#[test]
fn main_screen_120x40() {
    let mut app = load("sqpoll-shared-split");
    snapshot(
        "main-120x40-sqpoll-shared-split",
        &text(&render(&mut app, 120, 40)),
    );
}

#[test]
fn main_screen_cq_overflow_marks_the_ring() {
    let mut app = load("cq-overflow");
    let buf = render(&mut app, 120, 40);
    snapshot("main-120x40-cq-overflow", &text(&buf));
    // The ring with a finding is marked `!` in the finding's colour (warning: yellow).
    let (x, y) = find(&buf, "!").expect("a marked row");
    assert_eq!(buf[(x, y)].fg, Color::Yellow);
}

#[test]
fn ring_detail_screens() {
    let mut app = load("chain-broken-error");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.ui.screen, Screen::Ring);
    snapshot(
        "ring-overview-80x24-chain-broken-error",
        &text(&render(&mut app, 80, 24)),
    );
    snapshot(
        "ring-overview-120x40-chain-broken-error",
        &text(&render(&mut app, 120, 40)),
    );
    press(&mut app, &[KeyCode::Tab, KeyCode::Tab]);
    assert_eq!(app.ui.ring_tab, RingTab::InFlight);
    snapshot(
        "ring-inflight-80x24-chain-broken-error",
        &text(&render(&mut app, 80, 24)),
    );
}

#[test]
fn chain_tree_shows_breaker_red_and_cancelled_yellow() {
    let mut app = load("chain-broken-error");
    press(&mut app, &[KeyCode::Enter, KeyCode::Tab]);
    assert_eq!(app.ui.ring_tab, RingTab::Chains);
    let buf = render(&mut app, 80, 24);
    snapshot("ring-chains-80x24-chain-broken-error", &text(&buf));
    assert_fg(&buf, "-EBADF      breaker", Color::Red);
    let (_, y) = find(&buf, "-EBADF      breaker").expect("breaker row");
    assert!(buf[(10, y)].modifier.contains(Modifier::BOLD));
    assert_fg(&buf, "-ECANCELED  cancelled", Color::Yellow);
    snapshot(
        "ring-chains-120x40-chain-broken-error",
        &text(&render(&mut app, 120, 40)),
    );
}

#[test]
fn findings_panel_and_finding_detail() {
    let mut app = load("chain-broken-error");
    press(&mut app, &[KeyCode::Tab]);
    assert_eq!(app.ui.pane, Pane::Findings);
    let buf = render(&mut app, 80, 24);
    snapshot("findings-pane-80x24-chain-broken-error", &text(&buf));
    assert_fg(&buf, "WARN", Color::Yellow);
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.ui.screen, Screen::Finding);
    let buf = render(&mut app, 80, 24);
    snapshot("finding-80x24-chain-broken-error", &text(&buf));
    assert_fg(&buf, "0x2        READ    -EBADF      breaker", Color::Red);
    // The rule's explanation is there to scroll to.
    let buf = render(&mut app, 120, 40);
    snapshot("finding-120x40-chain-broken-error", &text(&buf));
    assert!(text(&buf).contains("Explanation"), "{}", text(&buf));
    press(&mut app, &[KeyCode::End]);
    let end = text(&render(&mut app, 120, 40));
    assert!(
        end.contains("What to change") || end.contains("IOSQE_IO_HARDLINK"),
        "{end}"
    );
}

#[test]
fn help_screen() {
    let mut app = load("nop-storm");
    press(&mut app, &[KeyCode::Char('?')]);
    snapshot("help-80x24", &text(&render(&mut app, 80, 24)));
}

#[test]
fn lost_events_are_red_and_none_are_green() {
    let mut app = load("chain-ok");
    let buf = render(&mut app, 80, 24);
    assert_fg(&buf, "lost", Color::DarkGray);
    let (x, y) = find(&buf, "lost 0").expect("lost count");
    assert_eq!(buf[(x + 5, y)].fg, Color::Green);

    app.set_lost(LostEvents {
        total: 1234,
        per_cpu: vec![1000, 234],
        known: true,
    });
    app.refresh();
    let buf = render(&mut app, 80, 24);
    let (x, y) = find(&buf, "lost 1234").unwrap_or_else(|| panic!("{}", text(&buf)));
    for i in 5..9 {
        assert_eq!(buf[(x + i, y)].fg, Color::Red);
        assert!(buf[(x + i, y)].modifier.contains(Modifier::REVERSED));
    }
}

#[test]
fn no_color_means_no_colour_anywhere() {
    let mut app =
        replay::load(&fixture("chain-broken-error"), Theme { color: false }).expect("load");
    app.set_lost(LostEvents {
        total: 3,
        per_cpu: vec![3],
        known: true,
    });
    app.refresh();
    let mut screens = vec![render(&mut app, 80, 24)];
    press(&mut app, &[KeyCode::Enter, KeyCode::Tab]);
    screens.push(render(&mut app, 80, 24));
    press(&mut app, &[KeyCode::Esc, KeyCode::Tab, KeyCode::Enter]);
    screens.push(render(&mut app, 80, 24));
    press(&mut app, &[KeyCode::Char('?')]);
    screens.push(render(&mut app, 80, 24));
    for buf in &screens {
        for cell in buf.content() {
            assert!(
                cell.fg == Color::Reset && cell.bg == Color::Reset,
                "{:?} has colour {:?}/{:?}",
                cell.symbol(),
                cell.fg,
                cell.bg
            );
        }
    }
    // Emphasis survives as modifiers: the lost count is still reversed.
    let (x, y) = find(&screens[0], "lost 3").expect("lost");
    assert!(screens[0][(x + 5, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn every_fixture_renders_at_small_and_large_sizes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings");
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "utr") {
            continue;
        }
        let mut app = replay::load(&path, COLOR).expect("load");
        assert!(
            !app.snapshot.rings.is_empty(),
            "{}: no rings",
            path.display()
        );
        for (w, h) in [(80, 24), (120, 40), (40, 10), (200, 60)] {
            render(&mut app, w, h);
            press(&mut app, &[KeyCode::Enter]);
            for _ in 0..3 {
                render(&mut app, w, h);
                press(&mut app, &[KeyCode::Tab, KeyCode::End]);
            }
            press(&mut app, &[KeyCode::Esc, KeyCode::Tab, KeyCode::Enter]);
            render(&mut app, w, h);
            press(&mut app, &[KeyCode::Esc, KeyCode::Tab]);
        }
        press(&mut app, &[KeyCode::Char('?')]);
        for (w, h) in [(80, 24), (20, 5), (1, 1)] {
            render(&mut app, w, h);
        }
        press(&mut app, &[KeyCode::Esc]);
    }
}
