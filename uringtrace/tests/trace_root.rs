//! End-to-end tests as root: real eBPF programs, real io_uring work from the
//! workspace's workload generator, exact event counts.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use uringtrace::display::{from_json, text_line};
use uringtrace_common::{EventKind, RawEvent};

#[test]
fn nop_storm_gives_exactly_n_submits_and_completions() {
    let Some(_g) = require_root("nop_storm_gives_exactly_n_submits_and_completions") else {
        return;
    };
    const N: u64 = 5000;
    let r = record_workload(&[], &["nop-storm", "--count", &N.to_string()]);
    let pid = r.pid();
    let submits = r.of_kind_pid(EventKind::Submit, pid);
    let completes = r.of_kind_pid(EventKind::Complete, pid);
    assert_eq!(submits.len() as u64, N);
    assert_eq!(completes.len() as u64, N);
    // Each user_data 1..=N exactly once at submit and once at completion.
    let mut sub: Vec<u64> = submits.iter().map(|e| e.user_data).collect();
    let mut com: Vec<u64> = completes.iter().map(|e| e.user_data).collect();
    sub.sort_unstable();
    com.sort_unstable();
    let expect: Vec<u64> = (1..=N).collect();
    assert_eq!(sub, expect);
    assert_eq!(com, expect);
    assert!(submits
        .iter()
        .all(|e| e.opcode == 0 && e.ctx != 0 && e.req != 0));
    assert!(completes.iter().all(|e| e.res == 0));
    // Filtered to the command: nothing from any other process.
    let others: Vec<_> = r.events.iter().filter(|e| e.tgid != pid).collect();
    assert!(
        others.is_empty(),
        "events from other processes: {:?}",
        &others[..others.len().min(3)]
    );
    assert_eq!(r.header.drops.total, 0);
    assert_eq!(r.header.drops.recorded, r.events.len() as u64);
    assert_eq!(r.header.filter.pids, vec![pid]);
}

/// Submits and completions cross the ring buffer without the comm (compact wire
/// events): every one must still carry its task's comm, and a rename must show from
/// the task's next event on.
#[test]
fn compact_events_carry_the_comm_and_a_rename() {
    let Some(_g) = require_root("compact_events_carry_the_comm_and_a_rename") else {
        return;
    };
    const N: u64 = 4096;
    let r = record_workload(
        &[],
        &[
            "nop-storm",
            "--count",
            &N.to_string(),
            "--rename",
            "renamed-nops",
        ],
    );
    let pid = r.pid();
    let comm = |e: &RawEvent| {
        let len = e.comm.iter().position(|&b| b == 0).unwrap_or(e.comm.len());
        String::from_utf8_lossy(&e.comm[..len]).into_owned()
    };
    let mut seen = BTreeMap::new();
    for e in r
        .of_kind_pid(EventKind::Submit, pid)
        .into_iter()
        .chain(r.of_kind_pid(EventKind::Complete, pid))
    {
        // The rename comes after the batch that reaches N/2 (batches of 64).
        let want = if e.user_data <= N / 2 {
            "uringtrace-work"
        } else {
            "renamed-nops"
        };
        assert_eq!(comm(e), want, "{e:?}");
        *seen.entry(want).or_insert(0u64) += 1;
    }
    assert_eq!(
        seen,
        BTreeMap::from([("renamed-nops", N), ("uringtrace-work", N)])
    );
    let stderr = String::from_utf8_lossy(&r.output.stderr);
    assert!(
        stderr.contains("; 0 task names read from /proc"),
        "every comm came from the kernel: {stderr}"
    );
}

#[test]
fn filter_excludes_a_concurrent_untraced_process() {
    let Some(_g) = require_root("filter_excludes_a_concurrent_untraced_process") else {
        return;
    };
    // An untraced NOP storm runs the whole time the traced one does.
    let mut noise = Command::new(WORKLOAD)
        .args(["nop-storm", "--count", "3000000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let r = record_workload(&[], &["nop-storm", "--count", "2000"]);
    let noise_pid = noise.id();
    noise.wait().unwrap();
    let pid = r.pid();
    assert_eq!(r.of_kind_pid(EventKind::Submit, pid).len(), 2000);
    assert_eq!(r.events.iter().filter(|e| e.tgid == noise_pid).count(), 0);
    assert!(r.events.iter().all(|e| e.tgid == pid));
}

#[test]
fn children_of_the_traced_command_are_followed() {
    let Some(_g) = require_root("children_of_the_traced_command_are_followed") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.utr");
    let script = format!("{WORKLOAD} nop-storm --count 100; {WORKLOAD} nop-storm --count 50");
    let out = Command::new(UT)
        .args(["record", "-q", "-o"])
        .arg(&path)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, events, _) = read_all(&path);
    let mut per_pid: BTreeMap<u32, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == EventKind::Submit as u16) {
        *per_pid.entry(e.tgid).or_default() += 1;
    }
    let mut counts: Vec<usize> = per_pid.values().copied().collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        vec![50, 100],
        "grandchildren's submits per pid: {per_pid:?}"
    );
    assert!(events
        .iter()
        .any(|e| e.kind == EventKind::ProcessFork as u16));
}

#[test]
fn failed_chain_shows_the_kernels_real_sequence() {
    let Some(_g) = require_root("failed_chain_shows_the_kernels_real_sequence") else {
        return;
    };
    check_failed_chain(&record_workload(&[], &["chain-broken-error"]));
}

/// Classic tracepoints and tp_btf programs must see the same thing.
#[test]
fn classic_tracepoints_see_the_same_chain() {
    let Some(_g) = require_root("classic_tracepoints_see_the_same_chain") else {
        return;
    };
    let r = record_workload(&["--attach", "tracepoint"], &["chain-broken-error"]);
    assert!(r
        .header
        .tracepoints
        .iter()
        .all(|t| t.attach_type == "tracepoint"));
    check_failed_chain(&r);
}

fn check_failed_chain(r: &Recorded) {
    let pid = r.pid();
    let submits = r.of_kind_pid(EventKind::Submit, pid);
    assert_eq!(
        submits.iter().map(|e| e.user_data).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        submits.iter().map(|e| e.opcode).collect::<Vec<_>>(),
        [0, 22, 0, 0]
    ); // NOP READ NOP NOP
    let req: Vec<u64> = submits.iter().map(|e| e.req).collect();

    // Completion results, in submit order.
    let result_of = |ud: u64| {
        let c: Vec<_> = r
            .of_kind_pid(EventKind::Complete, pid)
            .into_iter()
            .filter(|e| e.user_data == ud)
            .collect();
        assert_eq!(c.len(), 1, "one completion for user_data {ud}");
        c[0].res
    };
    assert_eq!([1, 2, 3, 4].map(result_of), [0, -9, -125, -125]);

    // One link event per non-head member, tying it to its predecessor (6.12+) or to
    // the chain head (before 6.12); whichever, consistently.
    let links = r.of_kind_pid(EventKind::Link, pid);
    assert_eq!(links.iter().map(|e| e.req).collect::<Vec<_>>(), &req[1..]);
    let targets: Vec<u64> = links.iter().map(|e| e.aux).collect();
    assert!(
        targets == req[..3] || targets == [req[0]; 3],
        "link targets {targets:x?} are neither predecessors nor the head of {req:x?}"
    );

    // fail_link: fired for the failed READ, once per cancelled follower.
    let fails = r.of_kind_pid(EventKind::FailLink, pid);
    assert_eq!(fails.len(), 2);
    assert!(fails
        .iter()
        .all(|e| e.req == req[1] && e.user_data == 2 && e.opcode == 22));
    assert_eq!(fails.iter().map(|e| e.aux).collect::<Vec<_>>(), &req[2..]);
}

#[test]
fn cq_overflow_reports_overflow_not_completion() {
    let Some(_g) = require_root("cq_overflow_reports_overflow_not_completion") else {
        return;
    };
    let r = record_workload(&[], &["cq-overflow"]);
    let pid = r.pid();
    let before = r.report()["seen_before_flush"].as_u64().unwrap() as usize;
    assert_eq!(before, 4);
    assert_eq!(r.of_kind_pid(EventKind::Submit, pid).len(), 17);
    let completes = r.of_kind_pid(EventKind::Complete, pid);
    let overflows = r.of_kind_pid(EventKind::CqeOverflow, pid);
    // 6.1+: complete fires only for CQEs written into the ring; the other 13 go to
    // the overflow list and are flushed later without a complete event.
    assert_eq!(completes.len(), 4);
    assert_eq!(overflows.len(), 13);
    let c: Vec<u64> = completes.iter().map(|e| e.user_data).collect();
    let mut o: Vec<u64> = overflows.iter().map(|e| e.user_data).collect();
    o.sort_unstable();
    assert_eq!(c, [1, 2, 3, 4]);
    assert_eq!(o, (5..=17).collect::<Vec<_>>());
    // Every overflow entry was allocated: nothing was really dropped.
    assert!(overflows.iter().all(|e| e.aux != 0));
}

#[test]
fn record_then_dump_round_trips_every_field() {
    let Some(_g) = require_root("record_then_dump_round_trips_every_field") else {
        return;
    };
    let r = record_workload(&[], &["all"]);
    assert_eq!(r.reports.len(), 16);
    let out = Command::new(UT)
        .args(["dump", "--format", "jsonl"])
        .arg(&r.path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let dumped: Vec<RawEvent> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| from_json(&serde_json::from_str(l).unwrap()).expect("dump line parses back"))
        .collect();
    assert_eq!(dumped.len(), r.events.len());
    assert_eq!(dumped, r.events);
    // Every kind the workload exercises on this kernel shows up.
    for kind in [
        EventKind::Create,
        EventKind::Register,
        EventKind::Submit,
        EventKind::Complete,
        EventKind::Link,
        EventKind::FailLink,
        EventKind::ReqFailed,
        EventKind::CqeOverflow,
        EventKind::PollArm,
        EventKind::QueueAsyncWork,
        EventKind::FileGet,
        EventKind::EnterEnter,
        EventKind::EnterExit,
        EventKind::CqringWait,
        EventKind::TaskNewtask,
        EventKind::SchedWaking,
        EventKind::SchedSwitch,
    ] {
        assert!(
            r.events.iter().any(|e| e.kind == kind as u16),
            "no {kind:?} event"
        );
    }
    // Text dump: names, not numbers.
    let text = Command::new(UT).arg("dump").arg(&r.path).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    for needle in [
        "res=-ECANCELED",
        "res=-EBADF",
        "op=READ",
        "flags=IO_LINK",
        "res=-ENOBUFS",
        "[sqpoll]",
        "[io-wq]",
    ] {
        assert!(text.contains(needle), "text dump lacks {needle}");
    }
    assert_eq!(text.lines().count(), r.events.len());
    assert_eq!(
        text.lines().next().unwrap(),
        text_line(&r.events[0], r.header.clock.start_monotonic_ns)
    );
}

#[test]
fn sigterm_stops_cleanly_and_detaches() {
    let Some(_g) = require_root("sigterm_stops_cleanly_and_detaches") else {
        return;
    };
    // Programs of another uringtrace running on this host (a soak, a developer's
    // `top`) are not ours: only programs loaded after this point count.
    let before = our_programs();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.utr");
    let child = Command::new(UT)
        .args(["record", "-q", "-o"])
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the header is on disk: the programs are attached by then.
    for _ in 0..200 {
        if std::fs::metadata(&path)
            .map(|m| m.len() > 16)
            .unwrap_or(false)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let w = Command::new(WORKLOAD)
        .args(["nop-storm", "--count", "100"])
        .output()
        .unwrap();
    assert!(w.status.success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (header, events, status) = read_all(&path);
    assert_eq!(status, uringtrace::recording::ReadStatus::Complete);
    assert!(header.finished);
    assert!(header.filter.pids.is_empty(), "host-wide recording");
    assert!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::Submit as u16)
            .count()
            >= 100
    );
    // Nothing of ours stays loaded in the kernel. The kernel frees a detached
    // program after an RCU grace period (6.18 defers tracing-link release), so a
    // program can still be listed for a moment after the process is gone: give
    // it up to 10 s, which only a real leak outlives.
    let mut left = Vec::new();
    for _ in 0..100 {
        left = our_programs()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(left.is_empty(), "programs left loaded: {left:?}");
}

#[test]
fn doctor_reports_this_kernel() {
    let Some(_g) = require_root("doctor_reports_this_kernel") else {
        return;
    };
    let out = Command::new(UT)
        .args(["doctor", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["ebpf_load"]["Ok"].is_string(), "{}", v["ebpf_load"]);
    let n = v["io_uring_tracepoints"].as_u64().unwrap();
    assert!(n >= 14, "{n} io_uring tracepoints");
    assert!(v["tracefs"]["Ok"].is_string());
}

/// A tiny socket filter (`r0 = 0; exit`) loaded with the raw bpf syscall: 0, or the
/// errno.
fn load_trivial_program() -> i32 {
    // The first bytes of `union bpf_attr` for BPF_PROG_LOAD, the rest zero.
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        rest: [u64; 16],
    }
    let insns: [u64; 2] = [0xb7, 0x95]; // BPF_MOV64_IMM(r0, 0), BPF_EXIT
    let license = c"GPL";
    let attr = ProgLoad {
        prog_type: 1, // BPF_PROG_TYPE_SOCKET_FILTER
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        rest: [0; 16],
    };
    const BPF_PROG_LOAD: libc::c_long = 5;
    // SAFETY: attr is a valid, fully initialised BPF_PROG_LOAD attribute that
    // outlives the call, and its size is passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
    }
    // SAFETY: fd is the program fd the kernel just returned to us.
    unsafe { libc::close(fd as i32) };
    0
}

/// Rounds of "make a ring, close it, then load BPF programs for 60 ms": how many
/// loads failed with EAGAIN.
fn eagain_loads_after_ring_close(mut make_ring: impl FnMut()) -> usize {
    let mut eagain = 0;
    for _ in 0..40 {
        make_ring();
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(60) {
            match load_trivial_program() {
                0 => {}
                libc::EAGAIN => eagain += 1,
                e => panic!("loading a trivial BPF program failed: errno {e}"),
            }
        }
    }
    eagain
}

/// Regression (CI, 6.18): closing a ring sends its task a TWA_SIGNAL task_work up to
/// ~50 ms later, and a BPF load in that moment fails with EAGAIN. Once that was aya's
/// feature probe, and loading failed with "section not found ... CONFIG". Our own
/// rings live on threads of their own, so the loading thread never sees it.
#[test]
fn our_own_rings_never_fail_a_bpf_load_on_the_loading_thread() {
    let Some(_g) = require_root("our_own_rings_never_fail_a_bpf_load_on_the_loading_thread") else {
        return;
    };
    // The kernel fact first: a ring closed by this thread does fail loads here (about
    // one round in two; 40 rounds all passing by chance is out of reach).
    let on_this_thread = eagain_loads_after_ring_close(|| {
        drop(io_uring::IoUring::new(2).unwrap());
    });
    assert!(
        on_this_thread > 0,
        "no BPF load failed with EAGAIN after closing a ring on the loading thread: \
         the kernel fact behind scratch_ring may have changed"
    );
    // What uringtrace does before loading.
    let ours = eagain_loads_after_ring_close(|| {
        assert!(uringtrace::trace::fdinfo::has_sq_times().is_some());
        uringtrace::trace::availability::SelfCheck::run();
    });
    assert_eq!(ours, 0);
}
