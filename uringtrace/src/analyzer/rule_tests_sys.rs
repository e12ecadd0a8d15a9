//! enter-error, io-uring-unavailable and overflow-not-flushed on hand-built event
//! sequences: each next to the healthy behaviour that looks like it.

use uringtrace_common::view::SetupFailed;
use uringtrace_common::{EventKind, EventView, RawEvent};

use super::finding::Severity;
use super::report::{Environment, Report};
use super::{Analyzer, AnalyzerConfig};
use crate::names::{ENTER_EXT_ARG, ENTER_GETEVENTS};

const A: u64 = 0xffff_8880_0000_1000;
const PID: u32 = 100;
const MS: u64 = 1_000_000;
/// IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN.
const DEFER_TASKRUN: u32 = (1 << 12) | (1 << 13);

fn ev(kind: EventKind, ts: u64, ctx: u64) -> RawEvent {
    RawEvent {
        kind: kind as u16,
        ts_ns: ts,
        pid: PID,
        tgid: PID,
        ctx,
        ..RawEvent::default()
    }
}

fn create(ts: u64, fd: u32, cq: u32, flags: u32) -> RawEvent {
    RawEvent {
        args: [fd, 8, cq, 0],
        cflags: flags,
        ..ev(EventKind::Create, ts, A)
    }
}

fn on_thread(mut e: RawEvent, tid: u32) -> RawEvent {
    e.pid = tid;
    e
}

fn enter(ts: u64, fd: u32, to_submit: u32, min: u32, flags: u32) -> RawEvent {
    RawEvent {
        args: [fd, to_submit, min, 0],
        cflags: flags,
        ..ev(EventKind::EnterEnter, ts, 0)
    }
}

fn exit(ts: u64, res: i32) -> RawEvent {
    RawEvent {
        res,
        ..ev(EventKind::EnterExit, ts, 0)
    }
}

fn run(events: &[RawEvent]) -> Report {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for e in events {
        a.push(*e);
    }
    a.finish()
}

fn rules(r: &Report) -> Vec<(&'static str, Severity, u64)> {
    r.findings
        .iter()
        .map(|f| (f.rule.slug(), f.severity, f.occurrences))
        .collect()
}

/// A thread that is not a DEFER_TASKRUN ring's owner submits to it (-EEXIST, three
/// times), and the owner passes a flag the kernel does not know (-EINVAL, twice): one
/// finding per ring and errno, with the count and the first and last time.
#[test]
fn enter_errors_are_grouped_by_ring_and_errno() {
    let mut v = vec![create(1, 3, 16, DEFER_TASKRUN)];
    for i in 0..3 {
        let t = (10 + i * 10) * MS;
        v.push(on_thread(enter(t, 3, 1, 0, 0), 101));
        v.push(on_thread(exit(t + 1000, -libc::EEXIST), 101));
    }
    for i in 0..2 {
        let t = (100 + i * 10) * MS;
        v.push(enter(t, 3, 0, 0, 1 << 31));
        v.push(exit(t + 1000, -libc::EINVAL));
    }
    let r = run(&v);
    assert_eq!(
        rules(&r),
        [
            ("enter-error", Severity::Error, 3),
            ("enter-error", Severity::Error, 2)
        ]
    );
    let eexist = &r.findings[0];
    assert_eq!(
        eexist.message,
        "io_uring_enter on ring fd 3 failed with -EEXIST: thread 101 is not the submitter task of a DEFER_TASKRUN ring"
    );
    assert_eq!(eexist.ring, A);
    assert_eq!(
        (eexist.evidence.first_ns, eexist.evidence.last_ns),
        (10 * MS, 30 * MS + 1000)
    );
    assert_eq!(
        r.findings[1].message,
        "io_uring_enter on ring fd 3 failed with -EINVAL: flags 0x80000000 include bits no kernel up to 6.18 knows (0x80000000)"
    );
}

/// Event loops wait with a timeout (-ETIME), are interrupted by signals (-EINTR) or
/// find nothing (-EAGAIN); the owner of a DEFER_TASKRUN ring submits and waits from
/// its own thread. None of it is an error.
#[test]
fn wait_ends_and_owner_enters_are_not_enter_errors() {
    let mut v = vec![create(1, 3, 16, DEFER_TASKRUN)];
    for (i, res) in [-libc::ETIME, -libc::EINTR, -libc::EAGAIN, 0, 4]
        .into_iter()
        .enumerate()
    {
        let t = (10 + i as u64 * 100) * MS;
        v.push(enter(t, 3, 4, 1, ENTER_GETEVENTS | ENTER_EXT_ARG));
        v.push(exit(t + 50 * MS, res));
    }
    // A failure that is not the ring's (a closed fd): not this rule's.
    v.push(enter(900 * MS, 9, 1, 0, 0));
    v.push(exit(900 * MS + 10, -libc::EBADF));
    assert_eq!(rules(&run(&v)), []);
}

fn setup_failed(ts: u64, res: i32, ctx: SetupFailed) -> RawEvent {
    RawEvent {
        res,
        ..ctx.into_raw(ev(EventKind::SetupFailed, ts, 0))
    }
}

fn facts(
    disabled: Option<u32>,
    group: Option<i64>,
    seccomp: Option<u32>,
    flags: u32,
) -> SetupFailed {
    SetupFailed {
        entries: 8,
        disabled,
        group,
        seccomp,
        flags: SetupFailed::ANNOTATED | flags,
    }
}

fn unavailable_message(res: i32, f: SetupFailed) -> (Vec<(&'static str, Severity, u64)>, String) {
    let r = run(&[setup_failed(MS, res, f), setup_failed(2 * MS, res, f)]);
    let msg = r
        .findings
        .first()
        .map(|f| f.message.clone())
        .unwrap_or_default();
    (rules(&r), msg)
}

/// Each cause from the errno and what was read with it, as the hosts that make them
/// look (the sysctls are never changed on the test host: the facts are hand-built).
#[test]
fn io_uring_unavailable_names_its_cause() {
    let want = [("io-uring-unavailable", Severity::Warning, 2)];
    let (r, m) = unavailable_message(-libc::EPERM, facts(Some(2), Some(-1), Some(0), 0));
    assert_eq!(r, want);
    assert!(
        m.contains("kernel.io_uring_disabled = 2 disables io_uring for every process"),
        "{m}"
    );
    assert!(m.contains("it has run without io_uring since"), "{m}");

    let (r, m) = unavailable_message(-libc::EPERM, facts(Some(1), Some(1001), Some(0), 0));
    assert_eq!(r, want);
    assert!(
        m.contains("nor privileged; add its user to that group"),
        "{m}"
    );
    assert!(m.contains("(group 1001)"), "{m}");

    // In the group: allowed by the sysctl, so the filter is the cause.
    let (r, m) = unavailable_message(
        -libc::EPERM,
        facts(Some(1), Some(1001), Some(2), SetupFailed::IN_GROUP),
    );
    assert_eq!(r, want);
    assert!(m.contains("a seccomp filter (Seccomp: 2"), "{m}");

    let (r, m) = unavailable_message(-libc::ENOSYS, facts(None, None, Some(2), 0));
    assert_eq!(r, want);
    assert!(
        m.starts_with("io_uring_setup failed with -ENOSYS for"),
        "{m}"
    );
    assert!(m.contains("a seccomp filter"), "{m}");

    let (_, m) = unavailable_message(-libc::ENOSYS, facts(None, None, Some(0), 0));
    assert!(m.contains("the kernel has no io_uring"), "{m}");
    let (_, m) = unavailable_message(-libc::EPERM, facts(Some(0), Some(-1), None, 0));
    assert!(m.contains("gone before its status could be read"), "{m}");
    let (_, m) = unavailable_message(-libc::EPERM, facts(Some(0), Some(-1), Some(0), 0));
    assert!(m.contains("a security module"), "{m}");
}

/// Applications probe setup flags (-EINVAL, then retry without them), and one that
/// is refused SQPOLL (-EPERM before 5.11) sets up a plain ring instead: io_uring
/// works for both. The first is quiet, the second info.
#[test]
fn probing_setup_flags_is_not_io_uring_unavailable() {
    let f = facts(Some(0), Some(-1), Some(0), 0);
    let probe = run(&[setup_failed(MS, -libc::EINVAL, f), create(2 * MS, 3, 16, 0)]);
    assert_eq!(rules(&probe), []);
    let refused_flag = run(&[setup_failed(MS, -libc::EPERM, f), create(2 * MS, 3, 16, 0)]);
    assert_eq!(
        rules(&refused_flag),
        [("io-uring-unavailable", Severity::Info, 1)]
    );
    assert!(refused_flag.findings[0]
        .message
        .contains("the process set up a ring afterwards"));
}

fn overflow(ts: u64, ud: u64) -> RawEvent {
    RawEvent {
        user_data: ud,
        aux: 0xffff_0000, // an overflow entry was allocated
        ..ev(EventKind::CqeOverflow, ts, A)
    }
}

/// An fdinfo sample: `listed` CQEs in the overflow list, `ready` in the CQ ring.
fn sample(ts: u64, listed: i32, ready: u32) -> RawEvent {
    RawEvent {
        args: [3, 0, 0, ready],
        opcode: 1,
        res: listed,
        ..ev(EventKind::RingState, ts, 0)
    }
}

fn overflowed(n: u64) -> Vec<RawEvent> {
    let mut v = vec![create(1, 3, 4, 1 << 1)];
    v.extend((1..=n).map(|u| overflow(u * 10, u)));
    v
}

/// An SQPOLL program reaps the CQ ring empty and never enters: the CQEs wait in the
/// overflow list with room for them in the ring.
#[test]
fn overflow_left_with_room_in_the_cq_is_not_flushed() {
    let mut v = overflowed(3);
    v.extend((1..=15).map(|i| sample(i * 100 * MS, 3, 0)));
    let r = run(&v);
    assert_eq!(rules(&r), [("overflow-not-flushed", Severity::Warning, 3)]);
    assert_eq!(
        r.findings[0].message,
        "3 CQEs have waited 1500.0 ms in the overflow list while the CQ ring had room for them (an SQPOLL ring): the owner reaps from the ring but has not entered with IORING_ENTER_GETEVENTS, which alone flushes the list"
    );
}

/// The application is busy elsewhere and reaps nothing (the CQ ring stays full), then
/// flushes: cq-overflow's late flush, not this rule. An application that flushes every
/// 200 ms (libuv): cq-overflow's info.
#[test]
fn full_cq_or_prompt_flushes_are_cq_overflow_cases() {
    let mut busy = overflowed(3);
    busy.extend((1..=14).map(|i| sample(i * 100 * MS, 3, 4)));
    busy.push(enter(1_450 * MS, 3, 0, 1, ENTER_GETEVENTS));
    busy.push(exit(1_450 * MS + 10, 4));
    busy.push(sample(1_500 * MS, 0, 3));
    assert_eq!(rules(&run(&busy)), [("cq-overflow", Severity::Warning, 3)]);

    let mut flushing = overflowed(3);
    for i in 1..=15u64 {
        flushing.push(sample(i * 100 * MS, 3, 0));
        if i % 2 == 0 {
            flushing.push(enter(i * 100 * MS + 10, 3, 0, 0, ENTER_GETEVENTS));
            flushing.push(exit(i * 100 * MS + 20, 0));
        }
    }
    flushing.push(sample(1_600 * MS, 0, 0));
    let r = run(&flushing);
    assert_eq!(rules(&r), [("cq-overflow", Severity::Info, 3)]);
}
