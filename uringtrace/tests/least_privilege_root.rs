//! Least privilege, end to end: the binary with file capabilities (setcap, from
//! Debian's libcap2-bin), run by an ordinary user (uid 65534, no groups) through
//! util-linux's setpriv. With CAP_BPF + CAP_PERFMON only, tracing must work without
//! tracefs (root's, mode 0700): every event is resolved from BTF and attached as
//! raw_tp or tp_btf. Without them, a clear error that names what to grant.
//!
//! Root is needed to set the capabilities and switch users; the run itself is not
//! root's.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

const NOBODY: &str = "65534";

/// A directory the unprivileged user can read and write, with copies of the tool
/// (with `caps`, or none) and of the workload.
struct Sandbox {
    dir: tempfile::TempDir,
    tool: PathBuf,
    workload: PathBuf,
}

impl Sandbox {
    fn new(caps: Option<&str>) -> Sandbox {
        // Under /tmp (not the build tree, whose parents the user may not traverse);
        // file capabilities need a filesystem with xattrs, mounted without nosuid.
        let dir = tempfile::Builder::new()
            .prefix("uringtrace-lp")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let tool = dir.path().join("uringtrace");
        let workload = dir.path().join("uringtrace-workload");
        std::fs::copy(UT, &tool).unwrap();
        std::fs::copy(WORKLOAD, &workload).unwrap();
        if let Some(caps) = caps {
            let out = Command::new("setcap")
                .arg(caps)
                .arg(&tool)
                .output()
                .expect("setcap (Debian: apt-get install libcap2-bin)");
            assert!(
                out.status.success(),
                "setcap {caps}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Sandbox {
            dir,
            tool,
            workload,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the tool as uid/gid 65534 with no supplementary groups and no inheritable
    /// capabilities: its capabilities are exactly the file's.
    fn run(&self, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(&self.tool)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("setpriv (util-linux)")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn lines_of(out: &Output) -> Vec<String> {
    text(&out.stdout).lines().map(str::to_string).collect()
}

fn has_line(lines: &[String], want: &str) {
    assert!(
        lines.iter().any(|l| l == want),
        "no line {want:?} in:\n{}",
        lines.join("\n")
    );
}

const TRACEFS_UNREADABLE: &str = "tracefs is mounted at /sys/kernel/tracing but this user \
    cannot read it (tracefs is root's, mode 0700, unless mounted with gid= and mode=)";

const LACKS_BOTH: &str = "uringtrace needs root, or CAP_BPF and CAP_PERFMON; this process \
    lacks CAP_BPF and CAP_PERFMON (try: sudo uringtrace ..., or setcap cap_bpf,cap_perfmon+ep \
    $(which uringtrace))";

fn diagnose_report(sb: &Sandbox, extra: &[&str]) -> (Output, Option<Value>) {
    let report = sb.path("report.json");
    let _ = std::fs::remove_file(&report);
    let mut args = vec!["diagnose", "-q", "--format", "json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-o", "report.json", "--"]);
    let wl = sb.workload.to_str().unwrap().to_string();
    args.push(&wl);
    args.push("cq-overflow");
    let out = sb.run(&args);
    let json = std::fs::read(&report)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    (out, json)
}

#[test]
fn capabilities_only_diagnose_and_doctor() {
    let Some(_g) = require_root("capabilities_only_diagnose_and_doctor") else {
        return;
    };
    let sb = Sandbox::new(Some("cap_bpf,cap_perfmon+ep"));

    let (out, report) = diagnose_report(&sb, &[]);
    assert!(out.status.success(), "diagnose: {}", text(&out.stderr));
    let report = report.unwrap();
    assert_eq!(report["lost_events"]["total"], 0);
    let findings = report["findings"].as_array().unwrap();
    let rules: Vec<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["cq-overflow"], "{report:#}");
    let f = &findings[0];
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("13 CQEs did not fit in the CQ ring (4 entries)"),
        "{f:#}"
    );
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["occurrences"], 13);

    let out = sb.run(&["doctor"]);
    let lines = lines_of(&out);
    assert_eq!(out.status.code(), Some(0), "{}", lines.join("\n"));
    has_line(&lines, &format!("[ok  ] tracefs: {TRACEFS_UNREADABLE}"));
    has_line(
        &lines,
        "       not needed: every tracepoint attaches from BTF (raw_tp, tp_btf)",
    );
    has_line(
        &lines,
        "[ok  ] privileges: euid 65534, CAP_SYS_ADMIN no, CAP_BPF yes, CAP_PERFMON yes",
    );
    has_line(
        &lines,
        "[note] /proc/PID/fdinfo: readable only for processes of uid 65534: rings of other \
         users get no ring-state samples (overflow backlog, SQ/CQ occupancy); grant \
         CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH for them (setcap \
         cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search+ep)",
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[ok  ] eBPF: loaded and attached ")),
        "{}",
        lines.join("\n")
    );
    // Never a missing privilege reported as a kernel without events.
    assert!(
        !lines.iter().any(|l| l.contains(" 0 io_uring tracepoints")
            || l.ends_with(" needs tracefs")
            || l.ends_with(" tracepoint")),
        "{}",
        lines.join("\n")
    );
    has_line(
        &lines,
        "  cqe_overflow      io_uring:io_uring_cqe_overflow                raw_tp",
    );
    has_line(
        &lines,
        "  complete          io_uring:io_uring_complete                    tp_btf",
    );

    // --attach tracepoint cannot work without tracefs: the error says what to grant.
    let (out, report) = diagnose_report(&sb, &["--attach", "tracepoint"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(report.is_none());
    assert_eq!(
        text(&out.stderr).trim_end(),
        format!(
            "uringtrace: error: starting the trace: {TRACEFS_UNREADABLE}; without it uringtrace \
             needs raw or BTF tracepoints, which --attach tracepoint rules out (tracing with \
             only CAP_BPF and CAP_PERFMON works where the kernel has BTF). Run as root, or let \
             this user's group read tracefs: mount -o remount,gid=GROUP,mode=0750 \
             /sys/kernel/tracing"
        )
    );
}

#[test]
fn neither_root_nor_capabilities_names_what_to_grant() {
    let Some(_g) = require_root("neither_root_nor_capabilities_names_what_to_grant") else {
        return;
    };
    let sb = Sandbox::new(None);
    let (out, report) = diagnose_report(&sb, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(report.is_none());
    assert_eq!(
        text(&out.stderr).trim_end(),
        format!("uringtrace: error: starting the trace: {LACKS_BOTH}")
    );

    let out = sb.run(&["doctor"]);
    let lines = lines_of(&out);
    assert_eq!(out.status.code(), Some(1), "{}", lines.join("\n"));
    has_line(
        &lines,
        "[FAIL] privileges: euid 65534, CAP_SYS_ADMIN no, CAP_BPF no, CAP_PERFMON no",
    );
    has_line(&lines, &format!("       {LACKS_BOTH}"));
    has_line(&lines, &format!("[FAIL] eBPF: {LACKS_BOTH}"));
    // The kernel's tracepoints still come from BTF: no kernel-version reasons.
    assert!(
        !lines.iter().any(|l| l.contains(" 0 io_uring tracepoints")),
        "{}",
        lines.join("\n")
    );
    has_line(&lines, "Detectors: all fully supported on this kernel");

    // Reading a recording needs nothing.
    let rec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings/all.utr");
    std::fs::copy(rec, sb.path("all.utr")).unwrap();
    let out = sb.run(&["dump", "all.utr"]);
    assert!(out.status.success(), "dump: {}", text(&out.stderr));
    let out = sb.run(&["check", "all.utr"]);
    assert_eq!(out.status.code(), Some(1), "check: {}", text(&out.stderr));
}

/// The raw tracepoints (capabilities only: fields laid out from BTF) see exactly what
/// the classic ones (root: fields from tracefs `format` files) see: every value that
/// is no kernel pointer, pid or time, for every event kind the raw programs produce.
#[test]
fn raw_tracepoints_see_what_classic_ones_see() {
    use std::collections::BTreeMap;
    use uringtrace_common::{EventKind, RawEvent};
    let Some(_g) = require_root("raw_tracepoints_see_what_classic_ones_see") else {
        return;
    };
    let sb = Sandbox::new(Some("cap_bpf,cap_perfmon+ep"));
    // req_failed; link and fail_link; queue_async_work, task_newtask and task_rename
    // (io-wq workers); create and cqe_overflow; process_fork (sh). Not cqring_wait:
    // whether a wait sleeps depends on timing.
    let script = "for s in invalid-sqe chain-broken-error iowq-splice cq-overflow; do \
                  ./uringtrace-workload $s >/dev/null; done";
    let record = |as_root: bool, name: &str| {
        let args = ["record", "-q", "-o", name, "--", "sh", "-c", script];
        let out = if as_root {
            Command::new(&sb.tool)
                .args(args)
                .current_dir(sb.dir.path())
                .output()
                .unwrap()
        } else {
            sb.run(&args)
        };
        assert!(out.status.success(), "record: {}", text(&out.stderr));
        read_all(&sb.path(name)).1
    };
    // Pointers (ctx, req, link targets, work) and pids differ between runs.
    let key = |e: &RawEvent| {
        let k = EventKind::from_u16(e.kind).unwrap();
        let values = match k {
            EventKind::Create
            | EventKind::ReqFailed
            | EventKind::CqeOverflow
            | EventKind::QueueAsyncWork => (e.opcode, e.user_data, e.res, e.cflags, e.args),
            EventKind::FailLink => (e.opcode, e.user_data, 0, 0, e.args),
            _ => (0, 0, 0, 0, [0; 4]),
        };
        (k.name(), values)
    };
    let tally = |events: &[RawEvent]| {
        let mut m: BTreeMap<_, usize> = BTreeMap::new();
        for e in events {
            let k = EventKind::from_u16(e.kind).unwrap();
            if matches!(
                k,
                EventKind::Create
                    | EventKind::ReqFailed
                    | EventKind::Link
                    | EventKind::FailLink
                    | EventKind::QueueAsyncWork
                    | EventKind::CqeOverflow
                    | EventKind::TaskNewtask
                    | EventKind::TaskRename
                    | EventKind::ProcessFork
            ) {
                *m.entry(key(e)).or_default() += 1;
            }
        }
        m
    };
    let classic = tally(&record(true, "classic.utr"));
    let raw = tally(&record(false, "raw.utr"));
    assert_eq!(raw, classic);
    let count = |kind: &str| -> usize {
        classic
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    };
    let counts: Vec<usize> = [
        "create",
        "req_failed",
        "link",
        "fail_link",
        "queue_async_work",
        "cqe_overflow",
        "process_fork",
    ]
    .iter()
    .map(|k| count(k))
    .collect();
    assert_eq!(counts, [4, 1, 3, 2, 64, 13, 4]);
}
