//! Kernel compatibility from data: `format` files of older kernels (synthesized from
//! the per-kernel offset table, and real ones read from booted Debian kernels) must
//! give the right field offsets and the right set of degraded detectors.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use uringtrace::trace::format::{parse_format, Format};
use uringtrace::trace::probe::KernelEvents;
use uringtrace_common::{EventKind, FieldSpec, Slot};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Non-io_uring tracepoints (syscalls, sched, task) are stable; take them from 6.18.
fn other_format(name: &str) -> Option<Format> {
    let text = std::fs::read_to_string(
        fixtures()
            .join("other-formats")
            .join(format!("{name}.format")),
    )
    .ok()?;
    Some(parse_format(&text).unwrap())
}

/// tracepoint → [(field, offset, size)].
type Offsets = BTreeMap<String, Vec<(String, u16, u16)>>;

/// kernel → tracepoint → [(field, offset, size)] from tracepoint-offsets-by-kernel.txt.
fn offset_table() -> BTreeMap<String, Offsets> {
    let text =
        std::fs::read_to_string(fixtures().join("tracepoint-offsets-by-kernel.txt")).unwrap();
    let mut out: BTreeMap<String, Offsets> = BTreeMap::new();
    let mut kernel = String::new();
    for line in text.lines() {
        if let Some(k) = line.strip_prefix("===== ") {
            kernel = k.trim().to_string();
            continue;
        }
        let Some((tp, fields)) = line.split_once(": ") else {
            continue;
        };
        let fields = fields
            .split(", ")
            .map(|f| {
                let (name, rest) = f.split_once('@').unwrap();
                let (off, size) = rest.split_once('/').unwrap();
                (
                    name.to_string(),
                    off.parse().unwrap(),
                    size.parse().unwrap(),
                )
            })
            .collect();
        out.entry(kernel.clone())
            .or_default()
            .insert(tp.to_string(), fields);
    }
    out
}

/// Writes a tracefs-style format file for one tracepoint.
fn synthesize(name: &str, fields: &[(String, u16, u16)]) -> String {
    let mut s = format!("name: {name}\nID: 1\nformat:\n");
    s.push_str("\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n");
    s.push_str("\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n");
    for (f, off, size) in fields {
        let signed = matches!(f.as_str(), "res" | "error" | "fd" | "ret" | "got");
        let ctype = if f == "op_str" {
            "__data_loc char[]".to_string()
        } else {
            format!("u{}", size * 8)
        };
        s.push_str(&format!(
            "\tfield:{ctype} {f};\toffset:{off};\tsize:{size};\tsigned:{};\n",
            u8::from(signed)
        ));
    }
    s
}

fn synthesized_kernel(kernel: &str) -> KernelEvents {
    let table = offset_table();
    let tps = table
        .get(kernel)
        .unwrap_or_else(|| panic!("no kernel {kernel} in the offset table"));
    KernelEvents::resolve(|cat, name| {
        if cat == "io_uring" {
            tps.get(name)
                .map(|f| parse_format(&synthesize(name, f)).unwrap())
        } else {
            other_format(name)
        }
    })
}

fn real_kernel(dir: &str) -> KernelEvents {
    let root = fixtures().join("kernel-formats").join(dir);
    assert!(root.is_dir(), "{root:?}");
    KernelEvents::resolve(|cat, name| {
        if cat == "io_uring" {
            let text = std::fs::read_to_string(root.join(format!("{name}.format"))).ok()?;
            Some(parse_format(&text).unwrap())
        } else {
            other_format(name)
        }
    })
}

fn slot(k: &KernelEvents, kind: EventKind, slot: Slot) -> FieldSpec {
    k.get(kind)
        .unwrap_or_else(|| panic!("{kind:?} missing"))
        .layout
        .fields[slot as usize]
}

fn degraded(k: &KernelEvents) -> Vec<&'static str> {
    k.degraded().into_iter().map(|d| d.rule).collect()
}

/// What a ring's fdinfo of that kernel shows: SqTotalTime and SqWorkTime exist from 6.9
/// (format files cannot tell; the live tool looks at a ring of its own).
fn with_sq_times(mut k: KernelEvents, present: bool) -> KernelEvents {
    k.fdinfo_sq_times = Some(present);
    k
}

#[test]
fn idle_spin_degrades_only_by_what_fdinfo_shows() {
    let k = synthesized_kernel("6.12.0");
    assert_eq!(k.fdinfo_sq_times, None);
    assert_eq!(degraded(&k), Vec::<&str>::new(), "unknown: not degraded");
    let k = with_sq_times(k, false);
    assert_eq!(degraded(&k), ["sqpoll-idle-spin"]);
    let reason = &k.degraded()[0].reason;
    assert!(reason.contains("SqTotalTime"), "{reason}");
}

const fn fs(offset: u16, size: u8, signed: u8) -> FieldSpec {
    FieldSpec {
        offset,
        size,
        signed,
    }
}

/// Every detector that needs req pointers, fail_link's user_data, req_failed,
/// cqe_overflow or task_work_run's count is degraded before 5.19.
/// In the catalog's order (`uringtrace rules`).
const PRE_519_DEGRADED: &[&str] = &[
    "cq-overflow",
    "cqe-dropped",
    "sqpoll-idle-spin",
    "sqpoll-chain-split",
    "link-chain-broken",
    "invalid-sqe",
    "wait-cycle",
    "request-stalled",
    "multishot-terminated",
];

/// Degraded before 5.19 too, and last in the catalog's order: overflow-not-flushed
/// (cqe_overflow) and task-work-stalled (io_uring_local_work_run is 6.1, as
/// DEFER_TASKRUN).
const PRE_519_LATER: &[&str] = &["overflow-not-flushed", "task-work-stalled"];

/// The request-misuse detectors degraded before 5.17 (fixed-file-misuse and
/// fixed-buffer-misuse: the index is checked at init and there is no req_failed) and
/// 6.0 (short-write: no io_uring_short_write), after PRE_519_DEGRADED in the
/// catalog's order.
const PRE_517_REQ_MISUSE: &[&str] = &["fixed-file-misuse", "fixed-buffer-misuse", "short-write"];

#[test]
fn linux_5_10_uses_submit_sqe_without_req() {
    let k = with_sq_times(synthesized_kernel("5.10.7"), false);
    let submit = k.get(EventKind::Submit).unwrap();
    assert_eq!(submit.name, Some("io_uring_submit_sqe"));
    assert_eq!(slot(&k, EventKind::Submit, Slot::Req).size, 0);
    assert_eq!(slot(&k, EventKind::Submit, Slot::Opcode), fs(16, 1, 0));
    assert_eq!(slot(&k, EventKind::Submit, Slot::UserData), fs(24, 8, 0));
    // 5.10 complete: `long res` at 24, no req, no cflags.
    assert_eq!(slot(&k, EventKind::Complete, Slot::Res), fs(24, 8, 1));
    assert_eq!(slot(&k, EventKind::Complete, Slot::Req).size, 0);
    assert_eq!(slot(&k, EventKind::Complete, Slot::Cflags).size, 0);
    // 5.10's per-request io_uring_task_run stands in for task_work_run.
    assert_eq!(
        k.get(EventKind::TaskWorkRun).unwrap().name,
        Some("io_uring_task_run")
    );
    assert!(k.has(EventKind::PollWake));
    assert!(!k.has(EventKind::ReqFailed));
    assert!(!k.has(EventKind::CqeOverflow));
    assert_eq!(k.io_uring_count(), 14);
    // No flags in 5.10.0's submit_sqe: IOSQE_IO_DRAIN is not seen either.
    assert_eq!(
        degraded(&k),
        [
            PRE_519_DEGRADED,
            PRE_517_REQ_MISUSE,
            &["drain-blocked"],
            PRE_519_LATER
        ]
        .concat()
    );
}

#[test]
fn linux_5_15_has_req_at_submit_but_not_at_complete() {
    let k = with_sq_times(synthesized_kernel("5.15.100"), false);
    assert_eq!(slot(&k, EventKind::Submit, Slot::Req), fs(16, 8, 0));
    assert_eq!(slot(&k, EventKind::Submit, Slot::Opcode), fs(24, 1, 0));
    assert_eq!(slot(&k, EventKind::Submit, Slot::UserData), fs(32, 8, 0));
    assert_eq!(slot(&k, EventKind::Submit, Slot::Aux), fs(40, 4, 0));
    assert_eq!(slot(&k, EventKind::Complete, Slot::Res), fs(24, 4, 1));
    assert_eq!(slot(&k, EventKind::Complete, Slot::Cflags), fs(28, 4, 0));
    assert_eq!(slot(&k, EventKind::Complete, Slot::Req).size, 0);
    // fail_link is (req, link) only.
    assert_eq!(slot(&k, EventKind::FailLink, Slot::Req), fs(8, 8, 0));
    assert_eq!(slot(&k, EventKind::FailLink, Slot::Aux), fs(16, 8, 0));
    assert_eq!(
        degraded(&k),
        [PRE_519_DEGRADED, PRE_517_REQ_MISUSE, PRE_519_LATER].concat()
    );
}

#[test]
fn linux_6_1_supports_every_detector_but_idle_spin() {
    let k = with_sq_times(synthesized_kernel("6.1.119"), false);
    assert_eq!(
        k.get(EventKind::Submit).unwrap().name,
        Some("io_uring_submit_sqe")
    );
    assert_eq!(slot(&k, EventKind::Submit, Slot::Req), fs(16, 8, 0));
    assert_eq!(slot(&k, EventKind::Submit, Slot::Opcode), fs(32, 1, 0));
    assert_eq!(slot(&k, EventKind::Submit, Slot::Aux), fs(36, 4, 0));
    assert_eq!(slot(&k, EventKind::Complete, Slot::Req), fs(16, 8, 0));
    assert_eq!(slot(&k, EventKind::Complete, Slot::Res), fs(32, 4, 1));
    assert_eq!(slot(&k, EventKind::CqeOverflow, Slot::Aux), fs(32, 8, 0));
    assert_eq!(slot(&k, EventKind::ReqFailed, Slot::Res), fs(88, 4, 1));
    assert_eq!(slot(&k, EventKind::TaskWorkRun, Slot::Arg0), fs(16, 4, 0));
    assert_eq!(k.io_uring_count(), 17);
    assert_eq!(degraded(&k), ["sqpoll-idle-spin"]);
}

#[test]
fn linux_6_6_renamed_submit_req() {
    let k = with_sq_times(synthesized_kernel("6.6.87"), false);
    assert_eq!(
        k.get(EventKind::Submit).unwrap().name,
        Some("io_uring_submit_req")
    );
    assert_eq!(slot(&k, EventKind::Submit, Slot::Aux), fs(36, 4, 0));
    assert_eq!(degraded(&k), ["sqpoll-idle-spin"]);
}

#[test]
fn linux_6_12_widened_flags_to_u64() {
    let k = with_sq_times(synthesized_kernel("6.12.0"), true);
    assert_eq!(slot(&k, EventKind::Submit, Slot::Aux), fs(40, 8, 0));
    assert_eq!(slot(&k, EventKind::Submit, Slot::Arg1), fs(48, 1, 0));
    assert_eq!(slot(&k, EventKind::QueueAsyncWork, Slot::Aux), fs(40, 8, 0));
    assert_eq!(
        slot(&k, EventKind::QueueAsyncWork, Slot::Arg0),
        fs(56, 4, 0)
    );
    // task_work_run lost `loops` in 6.9.
    assert_eq!(slot(&k, EventKind::TaskWorkRun, Slot::Arg1).size, 0);
    assert_eq!(degraded(&k), Vec::<&str>::new());
}

#[test]
fn real_debian_5_10_has_the_backported_layout() {
    // Debian's 5.10.262 carries the 5.15-era io_uring tracepoints, not 5.10.0's.
    let k = with_sq_times(real_kernel("5.10.0-46-cloud-amd64"), false);
    assert_eq!(
        k.get(EventKind::Submit).unwrap().name,
        Some("io_uring_submit_sqe")
    );
    assert_eq!(slot(&k, EventKind::Submit, Slot::Req), fs(16, 8, 0));
    assert_eq!(slot(&k, EventKind::Complete, Slot::Req).size, 0);
    assert_eq!(slot(&k, EventKind::Complete, Slot::Res), fs(24, 4, 1));
    assert_eq!(k.io_uring_count(), 14);
    assert_eq!(
        degraded(&k),
        [PRE_519_DEGRADED, PRE_517_REQ_MISUSE, PRE_519_LATER].concat()
    );
}

#[test]
fn real_debian_6_1_and_6_12() {
    let k = with_sq_times(real_kernel("6.1.0-56-cloud-amd64"), false);
    assert_eq!(
        k.get(EventKind::Submit).unwrap().name,
        Some("io_uring_submit_sqe")
    );
    assert_eq!(k.io_uring_count(), 17);
    assert_eq!(degraded(&k), ["sqpoll-idle-spin"]);
    let k = with_sq_times(real_kernel("6.12.117+deb12-cloud-amd64"), true);
    assert_eq!(
        k.get(EventKind::Submit).unwrap().name,
        Some("io_uring_submit_req")
    );
    assert_eq!(slot(&k, EventKind::Submit, Slot::Aux), fs(40, 8, 0));
    assert_eq!(degraded(&k), Vec::<&str>::new());
}

#[test]
fn real_debian_7_3_hashed_replaces_rw() {
    let k = with_sq_times(real_kernel("7.3.4+deb13-cloud-amd64"), true);
    let qaw = k.get(EventKind::QueueAsyncWork).unwrap();
    let f = qaw.format.as_ref().unwrap();
    assert!(f.field("rw").is_none());
    let hashed = f.field("hashed").expect("7.3 has `bool hashed`");
    assert_eq!(
        qaw.layout.fields[Slot::Arg0 as usize],
        fs(hashed.offset, hashed.size as u8, 0)
    );
    assert_eq!(degraded(&k), Vec::<&str>::new());
}

#[test]
fn a_kernel_without_io_uring_degrades_everything() {
    let k = KernelEvents::resolve(|cat, name| {
        if cat == "io_uring" {
            None
        } else {
            other_format(name)
        }
    });
    assert_eq!(k.io_uring_count(), 0);
    let k = with_sq_times(k, false);
    // All but the budgets and the two rules that need only syscall tracepoints
    // (enter-error, io-uring-unavailable).
    assert_eq!(k.degraded().len(), 20);
}
