//! Is io_uring available to a process? For `setup_failed` events (annotated here, when
//! the session drains them, with what explains the failure) and for `doctor` (the same
//! facts about uringtrace itself, plus a trial io_uring_setup).
//!
//! The facts: `kernel.io_uring_disabled` and `kernel.io_uring_group` (6.6+), and the
//! process's `/proc/PID/status`: `Seccomp:` (0 none, 1 strict, 2 filter), `Gid:`,
//! `Groups:` and `CapEff:` (CAP_SYS_ADMIN is bit 21).

use std::path::Path;

use serde::Serialize;
use uringtrace_common::view::SetupFailed;
use uringtrace_common::{EventKind, EventView, RawEvent};

use crate::analyzer::rules::io_uring_unavailable::{cause, describe};

const CAP_SYS_ADMIN_BIT: u64 = 1 << 21;

/// What `/proc/PID/status` says about a process's right to use io_uring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcStatus {
    pub seccomp: Option<u32>,
    /// Real, effective, saved and filesystem gids, then the supplementary groups.
    pub groups: Vec<u32>,
    pub cap_eff: u64,
}

/// Parses the lines of a `/proc/PID/status` that matter here (pure).
pub fn parse_status(text: &str) -> ProcStatus {
    let mut s = ProcStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Seccomp" => s.seccomp = value.parse().ok(),
            "Gid" | "Groups" => {
                s.groups.extend(
                    value
                        .split_whitespace()
                        .filter_map(|g| g.parse::<u32>().ok()),
                );
            }
            "CapEff" => s.cap_eff = u64::from_str_radix(value, 16).unwrap_or(0),
            _ => {}
        }
    }
    s
}

fn read_sysctl(root: &Path, name: &str) -> Option<i64> {
    std::fs::read_to_string(root.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The facts about process `tgid` (None: its status could not be read), packed as a
/// `setup_failed` event carries them, for a failure with `entries`.
pub fn facts(tgid: Option<u32>, entries: u32) -> SetupFailed {
    let sysctl = Path::new("/proc/sys/kernel");
    let status = tgid
        .map(|t| format!("/proc/{t}/status"))
        .unwrap_or_else(|| "/proc/self/status".into());
    let status = std::fs::read_to_string(status)
        .ok()
        .map(|t| parse_status(&t));
    combine(
        read_sysctl(sysctl, "io_uring_disabled"),
        read_sysctl(sysctl, "io_uring_group"),
        status.as_ref(),
        entries,
    )
}

/// Packs the facts (pure).
pub fn combine(
    disabled: Option<i64>,
    group: Option<i64>,
    status: Option<&ProcStatus>,
    entries: u32,
) -> SetupFailed {
    let mut flags = SetupFailed::ANNOTATED;
    if let Some(st) = status {
        if let Some(g) = group.filter(|g| *g >= 0) {
            if st.groups.iter().any(|x| i64::from(*x) == g) {
                flags |= SetupFailed::IN_GROUP;
            }
        }
        if st.cap_eff & CAP_SYS_ADMIN_BIT != 0 {
            flags |= SetupFailed::CAP_SYS_ADMIN;
        }
    }
    SetupFailed {
        entries,
        disabled: disabled.and_then(|d| u32::try_from(d).ok()),
        group,
        seccomp: status.and_then(|s| s.seccomp),
        flags,
    }
}

/// Adds the facts to the `setup_failed` events of a drained batch (the kernel fills
/// only the errno). Read now, while the process most likely still runs.
pub fn annotate(batch: &mut [RawEvent]) {
    let kind = EventKind::SetupFailed as u16;
    for ev in batch.iter_mut().filter(|e| e.kind == kind) {
        let v = SetupFailed::read(ev);
        if v.has(SetupFailed::ANNOTATED) {
            continue;
        }
        let mut f = facts(Some(ev.tgid), v.entries);
        if !Path::new(&format!("/proc/{}", ev.tgid)).exists() {
            f.seccomp = None;
        }
        f.write(ev);
    }
}

/// `doctor`'s check of io_uring for itself.
#[derive(Clone, Debug, Serialize)]
pub struct SelfCheck {
    pub io_uring_group: Option<i64>,
    pub seccomp: Option<u32>,
    pub in_io_uring_group: bool,
    pub cap_sys_admin: bool,
    /// The trial io_uring_setup: Ok, or the errno's name.
    pub trial_setup: Result<(), String>,
    /// One line: available, or why not and how to allow it.
    pub verdict: String,
}

impl SelfCheck {
    pub fn run() -> SelfCheck {
        let f = facts(None, 2);
        // On a thread of its own, like every ring of ours: see `scratch_ring`.
        let trial = super::scratch_ring::with_scratch_ring(2, |ring| match ring {
            Ok(_) => Ok(()),
            Err(e) => Err(e.raw_os_error().unwrap_or(0)),
        })
        .unwrap_or(Err(0));
        let verdict = match trial {
            Ok(()) => "io_uring is available to uringtrace (a trial io_uring_setup worked)".into(),
            Err(errno) => match cause(errno, &f) {
                Some(c) => format!(
                    "io_uring_setup fails for uringtrace with {}: {}",
                    crate::names::result_name(-errno),
                    describe(c, &f)
                ),
                None => format!(
                    "io_uring_setup fails for uringtrace with {}",
                    crate::names::result_name(-errno)
                ),
            },
        };
        SelfCheck {
            io_uring_group: f.group,
            seccomp: f.seccomp,
            in_io_uring_group: f.has(SetupFailed::IN_GROUP),
            cap_sys_admin: f.has(SetupFailed::CAP_SYS_ADMIN),
            trial_setup: trial.map_err(|e| crate::names::result_name(-e)),
            verdict,
        }
    }

    /// The doctor line: `[ok] ...` or `[!!] ...` with the facts behind it.
    pub fn line(&self, mark: fn(bool) -> &'static str) -> String {
        let opt = |o: Option<String>| o.unwrap_or_else(|| "absent".into());
        format!(
            "[{}] {}\n       kernel.io_uring_group {}, seccomp mode {}, in the group: {}, CAP_SYS_ADMIN: {}",
            mark(self.trial_setup.is_ok()),
            self.verdict,
            opt(self.io_uring_group.map(|g| g.to_string())),
            opt(self.seccomp.map(|s| s.to_string())),
            if self.in_io_uring_group { "yes" } else { "no" },
            if self.cap_sys_admin { "yes" } else { "no" },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tworker\nUmask:\t0022\nGid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 1001 \nSeccomp:\t2\nSeccomp_filters:\t1\nCapEff:\t0000000000200000\n";

    #[test]
    fn status_lines() {
        let s = parse_status(STATUS);
        assert_eq!(s.seccomp, Some(2));
        assert_eq!(s.groups, [1000, 1000, 1000, 1000, 4, 24, 27, 1001]);
        assert_eq!(s.cap_eff, CAP_SYS_ADMIN_BIT);
        assert_eq!(
            parse_status("garbage\n:\nSeccomp: x"),
            ProcStatus::default()
        );
    }

    #[test]
    fn group_membership_and_capability() {
        let s = parse_status(STATUS);
        let f = combine(Some(1), Some(1001), Some(&s), 8);
        assert!(f.has(SetupFailed::IN_GROUP) && f.has(SetupFailed::CAP_SYS_ADMIN));
        assert_eq!(
            (f.disabled, f.group, f.seccomp, f.entries),
            (Some(1), Some(1001), Some(2), 8)
        );
        let f = combine(Some(1), Some(-1), Some(&ProcStatus::default()), 8);
        assert!(!f.has(SetupFailed::IN_GROUP) && !f.has(SetupFailed::CAP_SYS_ADMIN));
        // Before 6.6: no sysctls; a process gone: no status.
        let f = combine(None, None, None, 0);
        assert_eq!((f.disabled, f.group, f.seccomp), (None, None, None));
        assert!(f.has(SetupFailed::ANNOTATED));
    }

    #[test]
    fn annotation_survives_the_event_round_trip() {
        let f = combine(Some(2), Some(-1), Some(&parse_status(STATUS)), 4);
        let ev = f.into_raw(RawEvent::default());
        assert_eq!(SetupFailed::read(&ev), f);
    }
}
