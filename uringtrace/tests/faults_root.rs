//! Faults survived, as root: a full disk under `record`, processes that fork, exec
//! and exit mid-trace, two instances at once, an optional program that fails, and
//! SIGKILL at several points. Real eBPF programs, real io_uring work from the
//! workspace's workload generator, exact outcomes.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use uringtrace::recording::{ReadStatus, Reader};
use uringtrace_common::{EventKind, RawEvent};

/// A BPF object: ('p' program | 'm' map | 'l' link, id).
type BpfId = (char, u32);

/// The BPF programs, maps and links a process holds, from its fds' fdinfo.
fn bpf_ids_of(pid: u32) -> BTreeSet<BpfId> {
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(link) = std::fs::read_link(e.path()) else {
            continue;
        };
        let (kind, key) = match link.to_string_lossy().as_ref() {
            "anon_inode:bpf-prog" => ('p', "prog_id:"),
            "anon_inode:bpf-map" => ('m', "map_id:"),
            "anon_inode:bpf_link" => ('l', "link_id:"),
            _ => continue,
        };
        let info = format!("/proc/{pid}/fdinfo/{}", e.file_name().to_string_lossy());
        let text = std::fs::read_to_string(info).unwrap_or_default();
        if let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
        {
            out.insert((kind, id));
        }
    }
    out
}

/// Every BPF program, map and link loaded on the host (the BPF syscall's
/// BPF_*_GET_NEXT_ID enumeration).
fn host_bpf_ids() -> BTreeSet<BpfId> {
    let progs = aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .map(|p| ('p', p.id()));
    let maps = aya::maps::loaded_maps()
        .filter_map(|m| m.ok())
        .map(|m| ('m', m.id()));
    let links = aya::programs::loaded_links()
        .filter_map(|l| l.ok())
        .map(|l| ('l', l.id()));
    progs.chain(maps).chain(links).collect()
}

/// Waits until none of `ids` is loaded, and no program named like ours that was not
/// loaded `before` is. The kernel frees a detached program after an RCU grace period
/// (see trace_root's sigterm test): 10 s, which only a real leak outlives.
fn assert_all_released(ids: &BTreeSet<BpfId>, before: &[(u32, String)], when: &str) {
    let mut left = (BTreeSet::new(), Vec::new());
    for _ in 0..100 {
        let host = host_bpf_ids();
        left = (
            ids.intersection(&host).copied().collect::<BTreeSet<_>>(),
            our_programs()
                .into_iter()
                .filter(|p| !before.contains(p))
                .collect::<Vec<_>>(),
        );
        if left.0.is_empty() && left.1.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{when}: BPF objects left (kind, id): {:?}; programs named like ours: {:?}",
        left.0, left.1
    );
}

/// Stderr lines of a child, as they come.
fn lines_of(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (up to 30 s) for a line containing `needle`; returns the lines seen.
fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {needle:?}; saw {seen:?}");
}

/// SIGKILL; true when it was the signal that ended the child (not its own exit
/// just before).
fn sigkill(child: &mut Child) -> bool {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let st = child.wait().unwrap();
    std::os::unix::process::ExitStatusExt::signal(&st) == Some(libc::SIGKILL)
}

/// Reads a recording as `dump` and `check` would: every event, and how it ended.
fn read_recording(path: &Path) -> (bool, Vec<RawEvent>, ReadStatus) {
    let mut r = Reader::open(path).expect("open recording");
    let mut events = Vec::new();
    while let Some(e) = r.next_event().expect("read event") {
        events.push(e);
    }
    (r.header().finished, events, r.status().clone())
}

/// `dump` succeeds on the file and says it is incomplete; returns its line count.
fn dump_says_incomplete(path: &Path) -> usize {
    let out = Command::new(UT).arg("dump").arg(path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dump: {stderr}");
    let p = path.display();
    assert!(
        stderr.starts_with(&format!(
            "uringtrace: warning: {p} is cut short: the record at offset "
        )) || stderr.starts_with(&format!("uringtrace: warning: {p} has no end record")),
        "dump: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn user_data_of(events: &[RawEvent], kind: EventKind, tgid: u32) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.kind == kind as u16 && e.tgid == tgid)
        .map(|e| e.user_data)
        .collect()
}

/// A tmpfs of `size` mounted on a new temporary directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let target = CString::new(dir.path().as_os_str().as_bytes()).unwrap();
        let opts = CString::new(format!("size={size}")).unwrap();
        // SAFETY: NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        SmallDisk { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let target = CString::new(self.dir.path().as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; MNT_DETACH also works while a file is open.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// `record` on a 256 KiB tmpfs: it fails naming the file and the cause, exits 2,
/// and leaves the file full of whole records, readable and marked incomplete.
#[test]
fn disk_full_during_record_keeps_whole_events_and_says_so() {
    let Some(_g) = require_root("disk_full_during_record_keeps_whole_events_and_says_so") else {
        return;
    };
    let disk = SmallDisk::mount("256k");
    let path = disk.path("t.utr");
    let out = Command::new(UT)
        .args(["record", "-q", "-o"])
        .arg(&path)
        .args(["--", WORKLOAD, "nop-storm", "--count", "200000"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let want = format!(
        "uringtrace: error: writing {}: No space left on device (os error 28); the events written before this are kept, and the file is marked incomplete",
        path.display()
    );
    assert!(stderr.lines().any(|l| l == want), "{stderr}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 256 << 10);

    let (finished, events, status) = read_recording(&path);
    assert!(!finished, "the header says incomplete");
    assert!(
        matches!(
            status,
            ReadStatus::Truncated { .. } | ReadStatus::Unfinished
        ),
        "{status:?}"
    );
    // Whole events only, in order: the NOPs' user_data 1, 2, 3, ... without a gap
    // or a stray value at the cut.
    let pid = *events
        .iter()
        .find(|e| e.kind == EventKind::Submit as u16)
        .map(|e| &e.tgid)
        .unwrap();
    let submits = user_data_of(&events, EventKind::Submit, pid);
    let completes = user_data_of(&events, EventKind::Complete, pid);
    assert!(submits.len() > 1000, "{} submits", submits.len());
    assert_eq!(submits, (1..=submits.len() as u64).collect::<Vec<_>>());
    assert_eq!(completes, (1..=completes.len() as u64).collect::<Vec<_>>());
    assert_eq!(dump_says_incomplete(&path), events.len());
    // check: inconclusive (exit 2), the recording did not end cleanly.
    let check = Command::new(UT).arg("check").arg(&path).output().unwrap();
    assert_eq!(check.status.code(), Some(2));
}

/// A child forked mid-trace with its own rings, exec'd, exiting: every ring and
/// finding belongs to the process (and comm) that had it, live in both kernel modes.
#[test]
fn fork_exec_and_exit_mid_trace_are_attributed_to_the_right_process() {
    let Some(_g) = require_root("fork_exec_and_exit_mid_trace_are_attributed_to_the_right_process")
    else {
        return;
    };
    for mode in ["aggregate", "stream"] {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        let out = Command::new(UT)
            .args([
                "diagnose",
                "-q",
                "--format",
                "json",
                "--kernel-mode",
                mode,
                "-o",
            ])
            .arg(&report)
            .args(["--", WORKLOAD, "fork-exec"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let names: Vec<&str> = lines
            .iter()
            .map(|l| l["scenario"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["chain-broken-error", "nop-storm", "fork-exec"]);
        let child = lines[0]["pid"].as_u64().unwrap();
        assert_eq!(lines[1]["pid"].as_u64(), Some(child), "exec keeps the pid");
        let parent = lines[2]["pid"].as_u64().unwrap();
        assert_ne!(parent, child);

        let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let mut rings: Vec<(u64, String, u64, u64)> = r["rings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["pid"].as_u64().unwrap(),
                    g["comm"].as_str().unwrap().to_string(),
                    g["submitted"].as_u64().unwrap(),
                    g["completed"].as_u64().unwrap(),
                )
            })
            .collect();
        rings.sort();
        let w = "uringtrace-work".to_string();
        let mut want = vec![
            (parent, w.clone(), 8, 8),
            (child, w.clone(), 2, 2),
            (child, w.clone(), 4, 4),
            (child, "exe".to_string(), 40, 40),
        ];
        want.sort();
        assert_eq!(rings, want, "{mode}: {}", r["rings"]);
        // The broken chain is the child's, on the ring it ran on before the exec.
        let chain_ring = r["rings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["submitted"] == 4)
            .unwrap()["ring"]
            .clone();
        let findings: Vec<(String, u64, String, Value)> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_string(),
                    f["pid"].as_u64().unwrap(),
                    f["comm"].as_str().unwrap().to_string(),
                    f["ring"].clone(),
                )
            })
            .collect();
        assert_eq!(
            findings,
            [(
                "link-chain-broken".to_string(),
                child,
                w.clone(),
                chain_ring
            )],
            "{mode}"
        );
    }
}

/// `diagnose` spawned with stderr piped: the child, its stderr lines, and where
/// its report and the traced command's output go.
struct Instance {
    child: Child,
    lines: mpsc::Receiver<String>,
    report: PathBuf,
}

fn start_diagnose(dir: &Path, name: &str, extra: &[&str], workload: &[&str]) -> Instance {
    let report = dir.join(format!("{name}.json"));
    let stdout = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
    let mut child = Command::new(UT)
        .args(["diagnose", "--format", "json", "-o"])
        .arg(&report)
        .args(extra)
        .arg("--")
        .args(workload)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stderr.take().unwrap());
    Instance {
        child,
        lines,
        report,
    }
}

/// (pid, submitted, completed) per ring, and (rule, pid) per finding.
type Seen = (Vec<(u64, u64, u64)>, Vec<(String, u64)>);

fn seen(report: &Path) -> (Seen, Value) {
    let r: Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    let rings = r["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["pid"].as_u64().unwrap(),
                g["submitted"].as_u64().unwrap(),
                g["completed"].as_u64().unwrap(),
            )
        })
        .collect();
    let findings = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["pid"].as_u64().unwrap(),
            )
        })
        .collect();
    ((rings, findings), r)
}

fn workload_pid(dir: &Path, name: &str) -> u64 {
    let out = std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap();
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    line["pid"].as_u64().unwrap()
}

/// Two instances at once, one with classic tracepoints: each counts exactly its own
/// command, and both leave nothing loaded.
#[test]
fn two_instances_at_once_see_only_their_own_and_both_detach() {
    let Some(_g) = require_root("two_instances_at_once_see_only_their_own_and_both_detach") else {
        return;
    };
    let before = our_programs();
    let dir = tempfile::tempdir().unwrap();
    // A: 2000 NOPs, then its command waits for B to be done (a flag file), so B runs
    // while A traces.
    let flag = dir.path().join("b-done");
    let script = format!(
        "{WORKLOAD} nop-storm --count 2000; while [ ! -e {} ]; do sleep 0.05; done",
        flag.display()
    );
    let mut a = start_diagnose(dir.path(), "a", &[], &["sh", "-c", &script]);
    wait_for_line(&a.lines, "uringtrace: tracing");
    let mut ids = bpf_ids_of(a.child.id());
    let mut b = start_diagnose(
        dir.path(),
        "b",
        &["--attach", "tracepoint"],
        &[WORKLOAD, "chain-broken-error"],
    );
    wait_for_line(&b.lines, "uringtrace: tracing");
    ids.extend(bpf_ids_of(b.child.id()));
    assert!(ids.iter().any(|i| i.0 == 'p') && ids.iter().any(|i| i.0 == 'm'));
    assert!(b.child.wait().unwrap().success());
    std::fs::write(&flag, b"").unwrap();
    assert!(a.child.wait().unwrap().success());

    let (pa, pb) = (workload_pid(dir.path(), "a"), workload_pid(dir.path(), "b"));
    let ((rings, findings), ra) = seen(&a.report);
    assert_eq!(rings, [(pa, 2000, 2000)], "A: {}", ra["rings"]);
    assert!(findings.is_empty(), "A: {findings:?}");
    assert_eq!(ra["lost_events"]["total"], 0);
    let ((rings, findings), rb) = seen(&b.report);
    assert_eq!(rings, [(pb, 4, 4)], "B: {}", rb["rings"]);
    assert_eq!(findings, [("link-chain-broken".to_string(), pb)]);
    assert_eq!(rb["lost_events"]["total"], 0);
    assert_all_released(&ids, &before, "after two concurrent instances");
}

const FAIL_ENV: &str = "URINGTRACE_TEST_FAIL_PROGRAM";

/// An optional program that cannot be loaded (simulated) degrades only its
/// detectors; `doctor` and the report say which and why, and the rest works.
#[test]
fn a_failed_optional_program_degrades_only_its_detectors() {
    let Some(_g) = require_root("a_failed_optional_program_degrades_only_its_detectors") else {
        return;
    };
    let reason = "program tp_queue_async_work (io_uring:io_uring_queue_async_work) failed to load or attach: `simulated by URINGTRACE_TEST_FAIL_PROGRAM` failed: Invalid argument (os error 22)";

    let doctor = Command::new(UT)
        .arg("doctor")
        .env(FAIL_ENV, "io_uring_queue_async_work")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.lines()
            .any(|l| l == format!("  {:<22} {reason}", "iowq-punt-storm")),
        "{text}"
    );
    let row = format!(
        "  {:<17} {:<45} failed to load or attach",
        "queue_async_work", "io_uring:io_uring_queue_async_work"
    );
    assert!(text.lines().any(|l| l == row), "{text}");
    assert!(
        text.lines().any(|l| l.contains("] eBPF: loaded and attached ")
            && l.ends_with(
                "then detached them; failed to load or attach: tp_queue_async_work (io_uring:io_uring_queue_async_work)"
            )),
        "{text}"
    );

    let diagnose = |env: bool, format: &str| {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r");
        let mut cmd = Command::new(UT);
        cmd.args(["diagnose", "-q", "--format", format, "-o"])
            .arg(&report)
            .args(["--", WORKLOAD, "chain-broken-error"])
            .stdout(Stdio::null());
        if env {
            cmd.env(FAIL_ENV, "tp_queue_async_work");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&report).unwrap()
    };
    let healthy: Value = serde_json::from_str(&diagnose(false, "json")).unwrap();
    let failed: Value = serde_json::from_str(&diagnose(true, "json")).unwrap();
    // Exactly one more degraded detector, with the failure as its reason.
    let mut want = healthy["environment"]["degraded"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!want.iter().any(|d| d[0] == "iowq-punt-storm"));
    want.push(serde_json::json!(["iowq-punt-storm", reason]));
    let mut got = failed["environment"]["degraded"]
        .as_array()
        .unwrap()
        .clone();
    let key = |v: &Value| v[0].as_str().unwrap().to_string();
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, want);
    // The other detectors work: the same findings on the same requests.
    let rules = |r: &Value| -> Vec<(Value, Value)> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["rule"].clone(), f["occurrences"].clone()))
            .collect()
    };
    assert_eq!(rules(&failed), rules(&healthy));
    assert_eq!(rules(&failed).len(), 1);
    let text = diagnose(true, "text");
    assert!(
        text.lines()
            .any(|l| l == format!("    iowq-punt-storm: {reason}")),
        "{text}"
    );
}

/// SIGKILL of `record`: before its programs are all attached, mid-trace, and as
/// the traced command exits (drain, final flush, detach). Nothing of ours stays
/// in the kernel, and the file reads back.
#[test]
fn sigkill_at_any_point_leaves_nothing_loaded_and_a_readable_recording() {
    let Some(_g) =
        require_root("sigkill_at_any_point_leaves_nothing_loaded_and_a_readable_recording")
    else {
        return;
    };
    let before = our_programs();
    let dir = tempfile::tempdir().unwrap();
    let record = |path: &Path, workload: &[&str]| {
        Command::new(UT)
            .args(["record", "-o"])
            .arg(path)
            .arg("--")
            .arg(WORKLOAD)
            .args(workload)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // 1. Before attaching is done: as soon as its first BPF map exists (maps are
    //    created before any program is loaded).
    let path = dir.path().join("early.utr");
    let mut child = record(&path, &["nop-storm", "--count", "100"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ids = BTreeSet::new();
    while ids.is_empty() && Instant::now() < deadline {
        ids = bpf_ids_of(child.id());
    }
    assert!(!ids.is_empty(), "record never created a BPF object");
    assert!(sigkill(&mut child));
    assert_all_released(&ids, &before, "SIGKILL before attach");
    // The header is written once everything is attached: most likely no file yet.
    if path.exists() {
        let out = Command::new(UT).arg("dump").arg(&path).output().unwrap();
        assert!(out.status.success());
    }

    // 2. Mid-trace: the command did its 1000 NOPs and lingers; every event of it is
    //    on disk (flushed every 200 ms) when the recorder dies.
    let path = dir.path().join("mid.utr");
    let mut child = record(&path, &["nop-storm", "--count", "1000", "--linger", "5"]);
    let lines = lines_of(child.stderr.take().unwrap());
    wait_for_line(&lines, "1000 submitted, 1000 completed");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pid = 0;
    while Instant::now() < deadline {
        // `record` opens the gate for the command before it creates the file: a quick
        // command can be done before the file exists (seen on a loaded CI machine).
        let Ok(r) = Reader::open(&path) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        pid = r.header().filter.pids[0];
        let events: Vec<RawEvent> = r.filter_map(|e| e.ok()).collect();
        if user_data_of(&events, EventKind::Complete, pid).len() == 1000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ids = bpf_ids_of(child.id());
    assert!(sigkill(&mut child));
    assert_all_released(&ids, &before, "SIGKILL mid-trace");
    let (finished, events, status) = read_recording(&path);
    assert!(!finished);
    assert!(
        matches!(
            status,
            ReadStatus::Unfinished | ReadStatus::Truncated { .. }
        ),
        "{status:?}"
    );
    let all: Vec<u64> = (1..=1000).collect();
    assert_eq!(user_data_of(&events, EventKind::Submit, pid), all);
    assert_eq!(user_data_of(&events, EventKind::Complete, pid), all);
    assert_eq!(dump_says_incomplete(&path), events.len());

    // 3. As the command exits: the recorder is draining, flushing and detaching.
    let path = dir.path().join("end.utr");
    let mut child = record(&path, &["nop-storm", "--count", "1000"]);
    let lines = lines_of(child.stderr.take().unwrap());
    // The command runs only once everything is attached (it is held before exec).
    wait_for_line(&lines, "1000 submitted, 1000 completed");
    let ids = bpf_ids_of(child.id());
    // Usually killed while finishing; a recorder that was quicker exited cleanly.
    let _ = sigkill(&mut child);
    assert_all_released(&ids, &before, "SIGKILL at the command's exit");
    // Readable whatever the moment: complete, or cut at a record.
    let (finished, events, status) = read_recording(&path);
    assert_eq!(finished, status == ReadStatus::Complete, "{status:?}");
    let out = Command::new(UT).arg("dump").arg(&path).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        events.len()
    );
}
