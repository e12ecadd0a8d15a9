//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use uringtrace::recording::{Header, ReadStatus, Reader};
use uringtrace_common::{EventKind, RawEvent};

pub const UT: &str = env!("CARGO_BIN_EXE_uringtrace");
pub const WORKLOAD: &str = env!("CARGO_BIN_EXE_uringtrace-workload");

/// Root tests attach eBPF programs host-wide; running them one at a time keeps
/// each test's counts its own.
static ROOT_LOCK: Mutex<()> = Mutex::new(());

/// Returns a guard when the test can run as root. Outside CI a non-root run skips
/// with a message; in CI (CI set) it fails: a skipped root test would hide breakage.
pub fn require_root(test: &str) -> Option<MutexGuard<'static, ()>> {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: needs root to load eBPF, and CI must run it (CI is set)");
        }
        eprintln!("SKIPPED {test}: needs root to load eBPF (set CI=1 to make this a failure)");
        return None;
    }
    Some(ROOT_LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

pub struct Recorded {
    pub path: PathBuf,
    pub header: Header,
    pub events: Vec<RawEvent>,
    /// The workload's JSON report(s), one per scenario.
    pub reports: Vec<Value>,
    pub output: Output,
    _dir: tempfile::TempDir,
}

impl Recorded {
    pub fn report(&self) -> &Value {
        &self.reports[0]
    }

    pub fn pid(&self) -> u32 {
        self.report()["pid"].as_u64().expect("pid in report") as u32
    }

    pub fn of_kind(&self, kind: EventKind) -> Vec<&RawEvent> {
        self.events
            .iter()
            .filter(|e| e.kind == kind as u16)
            .collect()
    }

    pub fn of_kind_pid(&self, kind: EventKind, tgid: u32) -> Vec<&RawEvent> {
        self.events
            .iter()
            .filter(|e| e.kind == kind as u16 && e.tgid == tgid)
            .collect()
    }
}

pub fn read_all(path: &Path) -> (Header, Vec<RawEvent>, ReadStatus) {
    let mut r = Reader::open(path).expect("open recording");
    let mut events = Vec::new();
    while let Some(e) = r.next_event().expect("read event") {
        events.push(e);
    }
    (r.header().clone(), events, r.status().clone())
}

/// `uringtrace record -o tmp <extra> -- uringtrace-workload <args>`
/// `uringtrace diagnose -q --format json <extra> -- workload <args>`, its JSON report.
/// The traced command shares stdout, so the report goes to a file.
pub fn diagnose_workload(extra: &[&str], workload_args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(UT)
        .args(["diagnose", "-q", "--format", "json"])
        .args(extra)
        .arg("-o")
        .arg(&report)
        .arg("--")
        .arg(WORKLOAD)
        .args(workload_args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "diagnose failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

pub fn record_workload(extra: &[&str], workload_args: &[&str]) -> Recorded {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.utr");
    let mut cmd = Command::new(UT);
    cmd.args(["record", "-q", "-o"])
        .arg(&path)
        .args(extra)
        .arg("--")
        .arg(WORKLOAD)
        .args(workload_args);
    let output = cmd.output().expect("run uringtrace record");
    assert!(
        output.status.success(),
        "record failed: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let reports = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("workload JSON"))
        .collect();
    let (header, events, status) = read_all(&path);
    assert_eq!(
        status,
        ReadStatus::Complete,
        "recording not finished cleanly"
    );
    Recorded {
        path,
        header,
        events,
        reports,
        output,
        _dir: dir,
    }
}

/// (id, name) of loaded programs named like uringtrace's.
pub fn our_programs() -> Vec<(u32, String)> {
    aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .filter_map(|p| Some((p.id(), p.name_as_str()?.to_string())))
        .filter(|(_, n)| n.starts_with("tp_") || n.starts_with("btf_"))
        .collect()
}
