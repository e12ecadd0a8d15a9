//! `uringtrace top` live, as root: the whole host is traced in a tmux terminal while
//! the workload overflows a CQ; the finding must show up on screen within seconds,
//! with the tracer's own BPF cost in the header.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{require_root, UT, WORKLOAD};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let t = Tmux {
            socket: format!("uringtrace-live-test-{}", std::process::id()),
        };
        let out = t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "120",
            "-y",
            "40",
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

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn wait_for(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not appear within {within:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Quit first, so that uringtrace detaches its programs itself.
        let _ = self.tmux(&["send-keys", "-t", "t", "q"]);
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.tmux(&["kill-server"]);
    }
}

#[test]
fn live_top_shows_cq_overflow() {
    let Some(_root) = require_root("live_top_shows_cq_overflow") else {
        return;
    };
    let tmux_ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tmux_ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "live_top_shows_cq_overflow: needs tmux (CI is set)"
        );
        eprintln!("SKIPPED live_top_shows_cq_overflow: tmux is not installed");
        return;
    }
    let t = Tmux::start(&format!("{UT} top; echo EXIT=$?; sleep 60"));
    t.wait_for("LIVE", Duration::from_secs(20));

    let out = Command::new(WORKLOAD)
        .arg("cq-overflow")
        .output()
        .expect("run the workload");
    assert!(
        out.status.success(),
        "workload: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let s = t.wait_for("cq-overflow", Duration::from_secs(5));
    assert!(
        s.contains("uringtrace-work"),
        "the workload's ring is listed:\n{s}"
    );
    // Root can turn BPF statistics on: the header shows what tracing costs.
    t.wait_for("% CPU", Duration::from_secs(5));

    let _ = t.tmux(&["send-keys", "-t", "t", "q"]);
    let s = t.wait_for("EXIT=0", Duration::from_secs(10));
    assert!(
        s.contains("events, 0 lost") || s.contains(" lost,"),
        "summary after quit:\n{s}"
    );
}
