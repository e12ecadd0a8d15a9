//! `uringtrace top` end to end: the real binary in a real terminal (tmux), driven by
//! keys, read back from the screen. Checks that the terminal is restored on q,
//! Ctrl-C and SIGTERM, that resizing works, and that NO_COLOR means no colour.
//!
//! Needs tmux: skipped with a message when it is missing, failed when CI is set.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const UT: &str = env!("CARGO_BIN_EXE_uringtrace");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recordings")
        .join(format!("{name}.utr"))
}

fn require_tmux(test: &str) -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{test}: needs tmux, and CI must run it (CI is set; scripts/setup.sh installs it)"
            );
        }
        eprintln!("SKIPPED {test}: tmux is not installed (set CI=1 to make this a failure)");
    }
    ok
}

/// A tmux server of our own (its own socket, no user config), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let socket = format!("uringtrace-test-{}-{name}", std::process::id());
        let t = Tmux { socket };
        let out = t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// One key (tmux key name: q, Enter, Escape, Tab, C-c). Keys go one at a time: an
    /// Escape followed at once by another key reads as Alt+key.
    fn key(&self, key: &str) {
        let out = self.tmux(&["send-keys", "-t", "t", key]);
        assert!(
            out.status.success(),
            "send-keys {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(150));
    }

    fn text(&self, text: &str) {
        let out = self.tmux(&["send-keys", "-t", "t", "-l", text]);
        assert!(out.status.success());
        std::thread::sleep(Duration::from_millis(150));
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// The screen with its SGR escape sequences (colours, bold, ...).
    fn screen_styled(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-e", "-t", "t"]).stdout)
            .into_owned()
    }

    fn alternate_screen(&self) -> bool {
        let out = self.tmux(&["display-message", "-p", "-t", "t", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Waits until the screen shows `needle`; returns the screen.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// A shell line that runs `top_args` and then shows how it left the terminal.
fn shell(name: &str, env: &str, top_args: &str) -> String {
    // The inner sh records its pid, then becomes uringtrace (exec keeps the pid).
    format!(
        "sh -c 'echo $$ > {pidfile}; exec env {env} {UT} top {top_args}'; echo EXIT=$?; stty -a; sleep 60",
        pidfile = pidfile(name).display()
    )
}

fn pidfile(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "uringtrace-tui-test-{}-{name}.pid",
        std::process::id()
    ))
}

/// `stty -a` after the program exits shows a cooked terminal: icanon and echo on.
fn assert_restored(t: &Tmux) {
    let s = t.wait_for("EXIT=0");
    assert!(!t.alternate_screen(), "still on the alternate screen:\n{s}");
    let words: Vec<&str> = s.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig"] {
        assert!(words.contains(&flag), "{flag} is off after exit:\n{s}");
    }
}

#[test]
fn replay_browse_and_quit_restores_the_terminal() {
    if !require_tmux("replay_browse_and_quit_restores_the_terminal") {
        return;
    }
    let f = fixture("sqpoll-shared-split");
    let t = Tmux::start(
        "browse",
        120,
        40,
        &shell(
            "browse",
            "",
            &format!("--replay {} --speed max", f.display()),
        ),
    );
    let s = t.wait_for("replay finished");
    assert!(t.alternate_screen());
    assert!(s.contains("Rings (2)") && s.contains("Findings (2)"), "{s}");
    assert!(
        s.contains("sqpoll-chain-split") && s.contains("link-chain-broken"),
        "{s}"
    );

    // Sort by the next column.
    t.key("s");
    t.wait_for("CMP/s▼");

    // Filter by ring address.
    t.key("/");
    t.wait_for("filter:");
    t.text("7800");
    t.key("Enter");
    let s = t.wait_for("Rings (1)");
    assert!(s.contains("filter \"7800\""), "{s}");
    assert!(!s.contains("0xffff88810b7d1000"), "{s}");

    // Drill into the ring: latency, then its chains with the breaker.
    t.key("Enter");
    let s = t.wait_for("Latency per opcode");
    assert!(s.contains("ring 0xffff88810b7d7800"), "{s}");
    t.key("Tab");
    let s = t.wait_for("Recent link chains");
    assert!(s.contains("breaker") && s.contains("cancelled"), "{s}");
    t.key("Escape");
    t.wait_for("Rings (1)");

    // Open a finding: its evidence and the rule's explanation.
    t.key("Tab");
    t.key("Enter");
    let s = t.wait_for("Explanation");
    assert!(
        s.contains("Evidence") && s.contains("uringtrace explain"),
        "{s}"
    );
    t.key("Escape");
    t.wait_for("Findings (2)");

    // Help, then a smaller terminal.
    t.key("?");
    t.wait_for("Keys");
    t.key("Escape");
    let out = t.tmux(&["resize-window", "-t", "t", "-x", "80", "-y", "24"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(400));
    let s = t.wait_for("Findings (2)");
    assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");
    assert!(s.contains("Rings (1)"), "{s}");

    t.key("q");
    assert_restored(&t);
}

#[test]
fn ctrl_c_restores_the_terminal() {
    if !require_tmux("ctrl_c_restores_the_terminal") {
        return;
    }
    let f = fixture("chain-broken-error");
    let t = Tmux::start(
        "ctrlc",
        100,
        30,
        &shell("ctrlc", "", &format!("--replay {} --speed 1", f.display())),
    );
    t.wait_for("Rings (1)");
    // In raw mode Ctrl-C is a key, not SIGINT: it must still quit.
    t.key("C-c");
    assert_restored(&t);
}

#[test]
fn sigterm_restores_the_terminal_and_no_color_has_no_colour() {
    if !require_tmux("sigterm_restores_the_terminal_and_no_color_has_no_colour") {
        return;
    }
    let f = fixture("cq-overflow");
    let t = Tmux::start(
        "term",
        100,
        30,
        &shell(
            "term",
            "NO_COLOR=1",
            &format!("--replay {} --speed max", f.display()),
        ),
    );
    t.wait_for("cq-overflow");
    let styled = t.screen_styled();
    assert!(
        styled.contains('\x1b'),
        "expected bold/reverse attributes at least"
    );
    for sgr in styled.split("\x1b[").skip(1) {
        let Some(end) = sgr.find('m') else { continue };
        for p in sgr[..end].split(';').filter_map(|p| p.parse::<u32>().ok()) {
            let colour = matches!(p, 30..=38 | 40..=48 | 90..=97 | 100..=107);
            assert!(
                !colour,
                "colour SGR {p} with NO_COLOR set: {:?}",
                &sgr[..end]
            );
        }
    }
    let pid = std::fs::read_to_string(pidfile("term")).expect("pid file");
    let pid: i32 = pid.trim().parse().expect("pid");
    // SAFETY: signalling the uringtrace we started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_restored(&t);
    let _ = std::fs::remove_file(pidfile("term"));
}
