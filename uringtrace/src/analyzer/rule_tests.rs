//! The rules on hand-built event sequences: what healthy programs do stays quiet,
//! the pathology next to it fires. Each case says which real behaviour it stands for.
//! One file because it is one idea: every rule against its look-alikes, side by side.

use uringtrace_common::{aggregate as agg, EventKind, FdType, RawEvent};

use super::finding::Severity;
use super::opcodes::{
    FUTEX_WAIT, FUTEX_WAKE, LINK_TIMEOUT, MSG_RING, NOP, POLL_ADD, READ, SEND_ZC, SPLICE, TIMEOUT,
    WRITE,
};
use super::report::{Environment, Report};
use super::{Analyzer, AnalyzerConfig};
use crate::names::{
    CQE_F_MORE, CQE_F_NOTIF, ENTER_EXT_ARG, ENTER_GETEVENTS, IOSQE_CQE_SKIP_SUCCESS, IOSQE_IO_LINK,
};

const A: u64 = 0xffff_8880_0000_1000;
const B: u64 = 0xffff_8880_0000_2000;
const PID: u32 = 100;
const MS: u64 = 1_000_000;

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

fn create(ts: u64, ctx: u64, fd: u32) -> RawEvent {
    RawEvent {
        args: [fd, 8, 16, 0],
        ..ev(EventKind::Create, ts, ctx)
    }
}

fn submit(ts: u64, ctx: u64, req: u64, op: u8, flags: u64, fd: u32) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        opcode: op,
        aux: flags,
        args: [0, 0, fd, 0],
        ..ev(EventKind::Submit, ts, ctx)
    }
}

fn link(ts: u64, ctx: u64, req: u64, target: u64) -> RawEvent {
    RawEvent {
        req,
        aux: target,
        ..ev(EventKind::Link, ts, ctx)
    }
}

fn complete(ts: u64, ctx: u64, req: u64, res: i32, cflags: u32) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        res,
        cflags,
        ..ev(EventKind::Complete, ts, ctx)
    }
}

fn poll_arm(ts: u64, ctx: u64, req: u64) -> RawEvent {
    RawEvent {
        req,
        ..ev(EventKind::PollArm, ts, ctx)
    }
}

fn fd_object(ts: u64, fd: u32, kind: FdType, ino: u64) -> RawEvent {
    RawEvent {
        args: [fd, kind as u32, 0, 0],
        aux: ino,
        ..ev(EventKind::FdObject, ts, 0)
    }
}

fn enter(ts: u64, fd: u32, min: u32, flags: u32) -> RawEvent {
    RawEvent {
        args: [fd, 0, min, 0],
        cflags: flags,
        ..ev(EventKind::EnterEnter, ts, 0)
    }
}

fn run(events: &[RawEvent]) -> Report {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for e in events {
        a.push(*e);
    }
    a.finish()
}

fn serious(r: &Report) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| format!("{}: {}", f.rule, f.message))
        .collect()
}

fn rules(r: &Report) -> Vec<(&'static str, Severity, u64)> {
    r.findings
        .iter()
        .map(|f| (f.rule.slug(), f.severity, f.occurrences))
        .collect()
}

/// A server's and a timer's requests sit in flight for seconds: by design.
#[test]
fn requests_that_wait_by_design_are_not_stalled() {
    let mut v = vec![create(1, A, 3)];
    for (i, op) in [
        POLL_ADD,
        TIMEOUT,
        LINK_TIMEOUT,
        FUTEX_WAIT,
        13, /* ACCEPT */
    ]
    .into_iter()
    .enumerate()
    {
        v.push(submit(10 + i as u64, A, 0x100 + i as u64, op, 0, 7));
    }
    // Completed after 1.5 s (the TIMEOUT expires with -ETIME), and two still waiting at
    // the end of a 3 s trace.
    v.push(complete(1_500 * MS, A, 0x101, -libc::ETIME, 0));
    v.push(complete(1_500 * MS, A, 0x100, 1, 0));
    v.push(complete(1_600 * MS, A, 0x102, -libc::ECANCELED, 0));
    v.push(ev(EventKind::Register, 3_000 * MS, A));
    let r = run(&v);
    assert_eq!(serious(&r), Vec::<String>::new());
}

/// The same wait on an operation that should finish on its own is a stall.
#[test]
fn a_blocking_splice_is_stalled_and_counted_per_opcode() {
    let r = run(&[
        create(1, A, 3),
        submit(10, A, 0x100, SPLICE, 0, 7),
        submit(11, A, 0x101, SPLICE, 0, 8),
        ev(EventKind::Register, 2_000 * MS, A),
    ]);
    assert_eq!(rules(&r), [("request-stalled", Severity::Warning, 2)]);
    assert!(
        r.findings[0]
            .message
            .starts_with("2 SPLICE requests, the first (user_data 0x100)"),
        "{}",
        r.findings[0].message
    );
}

/// READ(pipe) linked before the WRITE feeding the same pipe: a cycle, matched by inode.
fn read_before_write(read_ino: u64, write_ino: u64) -> Vec<RawEvent> {
    vec![
        create(1, A, 3),
        fd_object(9, 5, FdType::Pipe, read_ino),
        fd_object(9, 6, FdType::Pipe, write_ino),
        submit(10, A, 0x100, READ, IOSQE_IO_LINK, 5),
        submit(11, A, 0x101, WRITE, 0, 6),
        link(12, A, 0x101, 0x100),
        poll_arm(13, A, 0x100),
        ev(EventKind::Register, 500 * MS, A),
    ]
}

#[test]
fn a_read_linked_before_the_write_to_its_own_pipe_is_a_cycle() {
    let r = run(&read_before_write(42, 42));
    assert_eq!(rules(&r), [("wait-cycle", Severity::Warning, 1)]);
    let f = &r.findings[0];
    assert!(
        f.message
            .starts_with("READ (user_data 0x100, fd 5) waits for data on pipe 42"),
        "{}",
        f.message
    );
    let roles: Vec<_> = f
        .evidence
        .requests
        .iter()
        .map(|q| q.role.as_str())
        .collect();
    assert_eq!(roles, ["waiting", "never issued"]);
}

/// A slow READ → WRITE copy between two different pipes, or objects not known: quiet.
#[test]
fn a_read_linked_before_a_write_elsewhere_is_no_cycle() {
    assert_eq!(
        serious(&run(&read_before_write(42, 43))),
        Vec::<String>::new()
    );
    let mut unknown = read_before_write(42, 42);
    unknown.retain(|e| e.kind != EventKind::FdObject as u16);
    assert_eq!(serious(&run(&unknown)), Vec::<String>::new());
}

/// FUTEX_WAIT(word) linked before FUTEX_WAKE(word): a cycle, by the word the tp_btf
/// submit read; another word, or no word known: no edge.
#[test]
fn futex_wait_before_wake_of_its_word_is_a_cycle() {
    let futex = |ts, req, op, flags, word| RawEvent {
        aux2: word,
        ..submit(ts, A, req, op, flags, 0)
    };
    let events = |wait_word, wake_word| {
        vec![
            create(1, A, 3),
            futex(10, 0x100, FUTEX_WAIT, IOSQE_IO_LINK, wait_word),
            futex(11, 0x101, FUTEX_WAKE, 0, wake_word),
            link(12, A, 0x101, 0x100),
            ev(EventKind::Register, 500 * MS, A),
        ]
    };
    let r = run(&events(0x7000, 0x7000));
    assert_eq!(rules(&r), [("wait-cycle", Severity::Warning, 1)]);
    assert!(
        r.findings[0].message.contains("waits on futex 0x7000"),
        "{}",
        r.findings[0].message
    );
    assert_eq!(serious(&run(&events(0x7000, 0x7008))), Vec::<String>::new());
}

/// FUTEX_WAIT linked before a FUTEX_WAKE, words unknown (classic tracepoints): no edge.
#[test]
fn futex_wait_before_wake_is_not_guessed_a_cycle() {
    let r = run(&[
        create(1, A, 3),
        submit(10, A, 0x100, FUTEX_WAIT, IOSQE_IO_LINK, 0),
        submit(11, A, 0x101, FUTEX_WAKE, 0, 0),
        link(12, A, 0x101, 0x100),
        complete(300 * MS, A, 0x100, 0, 0),
        complete(300 * MS + 1, A, 0x101, 1, 0),
    ]);
    assert_eq!(serious(&r), Vec::<String>::new());
}

/// Two rings, each POLL_ADD(the other's fd) linked before a MSG_RING to the other.
#[test]
fn two_rings_polling_each_other_are_one_cycle() {
    let r = run(&[
        create(1, A, 3),
        create(2, B, 4),
        submit(10, A, 0xa1, POLL_ADD, IOSQE_IO_LINK, 4),
        submit(11, A, 0xa2, MSG_RING, 0, 4),
        link(12, A, 0xa2, 0xa1),
        submit(13, B, 0xb1, POLL_ADD, IOSQE_IO_LINK, 3),
        submit(14, B, 0xb2, MSG_RING, 0, 3),
        link(15, B, 0xb2, 0xb1),
        ev(EventKind::Register, 1_200 * MS, A),
    ]);
    assert_eq!(rules(&r), [("wait-cycle", Severity::Warning, 1)]);
    assert_eq!(r.findings[0].evidence.requests.len(), 4);
}

/// An event loop sleeps with a timeout and nothing in flight: a sleep, not a bug. The
/// same wait with one CQE ready and min_complete 2 sleeps the whole timeout (-ETIME);
/// had it returned success, its CQEs came after all (clocks of two CPUs can disagree
/// about what was first), and it is no finding.
#[test]
fn timed_waits_are_judged_by_arithmetic() {
    let wait = |ts: u64, ready: u64, min: u32, ret: i32| {
        [
            enter(ts, 3, min, ENTER_GETEVENTS | ENTER_EXT_ARG),
            RawEvent {
                args: [min, 0, 0, agg::WAIT_WITH_READY],
                aux2: ready,
                ..ev(EventKind::CqringWait, ts + 1, A)
            },
            RawEvent {
                res: ret,
                ..ev(EventKind::EnterExit, ts + 250 * MS, 0)
            },
        ]
    };
    let mut idle = vec![create(1, A, 3)];
    for i in 0..4 {
        idle.extend(wait(10 + i * 300 * MS, 0, 1, -libc::ETIME));
    }
    assert_eq!(serious(&run(&idle)), Vec::<String>::new());

    // Returned 0 after a timeout that found one CQE ready: still unsatisfiable.
    let mut timed_out = vec![create(1, A, 3)];
    timed_out.extend(wait(10, 1, 2, 0));
    assert_eq!(
        rules(&run(&timed_out)),
        [("unsatisfiable-wait", Severity::Warning, 1)]
    );

    // A call that also submitted returns the number submitted even when its wait
    // timed out: success tells nothing there.
    let mut submit_and_wait = vec![create(1, A, 3)];
    let mut w = wait(10, 1, 2, 1);
    w[0].args[1] = 1;
    submit_and_wait.extend(w);
    assert_eq!(
        rules(&run(&submit_and_wait)),
        [("unsatisfiable-wait", Severity::Warning, 1)]
    );

    let mut stuck = vec![create(1, A, 3)];
    stuck.extend(wait(10, 1, 2, -libc::ETIME));
    let r = run(&stuck);
    assert_eq!(rules(&r), [("unsatisfiable-wait", Severity::Warning, 1)]);
    assert!(
        r.findings[0]
            .message
            .contains("delayed completions by 250.0 ms"),
        "{}",
        r.findings[0].message
    );
}

/// A zero-copy send posts its own CQE with F_MORE, then a notification: not multishot,
/// and nothing stays in flight.
#[test]
fn send_zc_is_two_cqes_not_a_multishot() {
    let r = run(&[
        create(1, A, 3),
        submit(10, A, 0x100, SEND_ZC, 0, 5),
        complete(20, A, 0x100, 4096, CQE_F_MORE),
        RawEvent {
            user_data: 0x100,
            cflags: CQE_F_NOTIF,
            req: 0x999,
            ..ev(EventKind::Complete, 30, A)
        },
        ev(EventKind::Register, 2_000 * MS, A),
    ]);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.rings[0].in_flight, 0);
}

/// CQE_SKIP_SUCCESS requests post nothing when they succeed: not in flight forever,
/// and never stalled; a linked follower's CQE shows they are done.
#[test]
fn skip_success_requests_are_not_stalled() {
    let r = run(&[
        create(1, A, 3),
        submit(10, A, 0x100, NOP, IOSQE_CQE_SKIP_SUCCESS, 0),
        submit(11, A, 0x101, NOP, IOSQE_CQE_SKIP_SUCCESS | IOSQE_IO_LINK, 0),
        submit(12, A, 0x102, NOP, 0, 0),
        link(13, A, 0x102, 0x101),
        complete(20, A, 0x102, 0, 0),
        ev(EventKind::Register, 2_000 * MS, A),
    ]);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.rings[0].in_flight, 0);
}

/// A process that exits: its rings retire (listed as they ended), its state goes.
#[test]
fn rings_and_processes_retire_when_the_process_exits() {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for e in [
        create(1, A, 3),
        submit(10, A, 0x100, NOP, 0, 0),
        complete(20, A, 0x100, 0, 0),
        ev(EventKind::ProcessExit, 100 * MS, 0),
        // Another process goes on.
        RawEvent {
            pid: 200,
            tgid: 200,
            ..ev(EventKind::Register, 200 * MS, B)
        },
    ] {
        a.push(e);
    }
    a.flush();
    assert!(!a.state().rings.contains_key(&A));
    assert!(a.state().procs.is_empty());
    assert!(!a.state().comms.contains_key(&PID));
    let r = a.report();
    let ring = r
        .rings
        .iter()
        .find(|x| x.ring == format!("{A:#x}"))
        .expect("retired ring listed");
    assert_eq!((ring.submitted, ring.completed), (1, 1));
}

fn worker(ts: u64, tid: u32) -> RawEvent {
    let mut ev = ev(EventKind::TaskRename, ts, 0);
    let mut comm = [0u8; 16];
    comm[..12].copy_from_slice(b"iou-wrk-1234");
    ev.aux = u64::from_ne_bytes(comm[..8].try_into().unwrap());
    ev.aux2 = u64::from_ne_bytes(comm[8..].try_into().unwrap());
    ev.args[0] = tid;
    ev
}

fn punt(ts: u64) -> RawEvent {
    RawEvent {
        opcode: SPLICE,
        ..ev(EventKind::QueueAsyncWork, ts, A)
    }
}

/// 20 io-wq workers alive at once: a storm, unless the process capped its workers.
#[test]
fn iowq_workers_alive_at_once_unless_capped() {
    let mut v = vec![create(1, A, 3)];
    v.extend((0..20).map(|i| worker(10 + i, 5000 + i as u32)));
    v.push(ev(EventKind::Register, 100 * MS, A));
    let r = run(&v);
    assert_eq!(rules(&r), [("iowq-punt-storm", Severity::Warning, 1)]);
    assert_eq!(r.rings[0].iowq_workers, 20);

    let mut capped = vec![
        create(1, A, 3),
        RawEvent {
            args: [19, 0, 0, 0], // IORING_REGISTER_IOWQ_MAX_WORKERS
            ..ev(EventKind::Register, 2, A)
        },
    ];
    capped.extend((0..20).map(|i| worker(10 + i, 5000 + i as u32)));
    assert_eq!(serious(&run(&capped)), Vec::<String>::new());
}

/// Workers that exit (their last sched_switch, EXIT_DEAD) and come back do not pile up.
#[test]
fn iowq_workers_that_exit_are_not_counted_alive() {
    let mut v = vec![create(1, A, 3)];
    for round in 0..4u64 {
        for i in 0..10u32 {
            let tid = 5000 + i + round as u32 * 100;
            v.push(worker(round * 10 * MS + u64::from(i), tid));
            v.push(RawEvent {
                args: [tid, 0, 0, 0],
                aux: 0x10, // EXIT_DEAD
                ..ev(
                    EventKind::SchedSwitch,
                    round * 10 * MS + 100 + u64::from(i),
                    0,
                )
            });
        }
    }
    let r = run(&v);
    assert_eq!(serious(&r), Vec::<String>::new());
}

/// Punts at 3 a second for ten minutes are no storm; 2000 in one second are.
#[test]
fn punts_are_judged_per_second_not_over_the_trace() {
    let mut slow = vec![create(1, A, 3)];
    slow.extend((0..1800).map(|i| punt(i * 333 * MS)));
    assert_eq!(serious(&run(&slow)), Vec::<String>::new());
    let mut burst = vec![create(1, A, 3)];
    burst.extend((0..2000).map(|i| punt(10 + i * 100_000)));
    let r = run(&burst);
    assert_eq!(rules(&r), [("iowq-punt-storm", Severity::Warning, 1)]);
}

fn overflow(ts: u64, ud: u64, res: i32) -> RawEvent {
    RawEvent {
        user_data: ud,
        res,
        aux: 0xffff_0000, // an overflow entry was allocated
        ..ev(EventKind::CqeOverflow, ts, A)
    }
}

fn overflow_list(ts: u64, len: i32) -> RawEvent {
    RawEvent {
        // The CQ ring full (16 of 16 ready): CQEs wait because it has no room (with
        // room, only a missing flush keeps them out: overflow-not-flushed).
        args: [3, 0, 0, 16],
        opcode: 1,
        res: len,
        ..ev(EventKind::RingState, ts, 0)
    }
}

/// An overflow the application flushes at once (libuv), and -ECANCELED CQEs that
/// overflow as a ring is torn down: info. The same overflow left 1.5 s: a warning.
#[test]
fn overflows_flushed_at_once_or_at_teardown_are_info() {
    let flushed = run(&[
        create(1, A, 3),
        overflow(10, 1, 0),
        overflow(11, 2, 0),
        enter(2 * MS, 3, 0, ENTER_GETEVENTS),
        ev(EventKind::EnterExit, 2 * MS + 10, 0),
        overflow_list(100 * MS, 0),
    ]);
    assert_eq!(rules(&flushed), [("cq-overflow", Severity::Info, 2)]);

    let teardown = run(&[
        create(1, A, 3),
        overflow(10, 1, -libc::ECANCELED),
        overflow(11, 2, -libc::ECANCELED),
        ev(EventKind::ProcessExit, 500 * MS, 0),
    ]);
    assert_eq!(rules(&teardown), [("cq-overflow", Severity::Info, 2)]);

    let late = run(&[
        create(1, A, 3),
        overflow(10, 1, 0),
        overflow(11, 2, 0),
        // A GETEVENTS enter that could not empty the list (the CQ was still full).
        enter(2 * MS, 3, 0, ENTER_GETEVENTS),
        ev(EventKind::EnterExit, 2 * MS + 10, 0),
        overflow_list(100 * MS, 2),
        overflow_list(1_200 * MS, 2),
        enter(1_500 * MS, 3, 0, ENTER_GETEVENTS),
        ev(EventKind::EnterExit, 1_500 * MS + 10, 0),
        overflow_list(1_600 * MS, 0),
    ]);
    assert_eq!(rules(&late), [("cq-overflow", Severity::Warning, 2)]);
    assert!(
        late.findings[0]
            .message
            .contains("waited up to 1498.0 ms there with no flush"),
        "{}",
        late.findings[0].message
    );
}

/// Programs that come and go all day with one problem: one finding per process up to
/// the bound, then one per program name; memory stays bounded.
#[test]
fn findings_stay_bounded_when_processes_come_and_go() {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    let n = super::MAX_FINDINGS as u32 + 500;
    for p in 0..n {
        let pid = 1000 + p;
        let ctx = 0xffff_8880_1000_0000 + u64::from(p) * 0x1000;
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"app");
        let at = |e: RawEvent| RawEvent {
            pid,
            tgid: pid,
            comm,
            ..e
        };
        let t = u64::from(p) * 1000;
        for e in [
            create(t + 1, ctx, 3),
            RawEvent {
                req: 0x100,
                user_data: 1,
                opcode: 250,
                res: -libc::EINVAL,
                ..ev(EventKind::ReqFailed, t + 2, ctx)
            },
        ] {
            a.push(at(e));
        }
    }
    let r = a.finish();
    let invalid: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "invalid-sqe")
        .collect();
    assert_eq!(invalid.len(), super::MAX_FINDINGS + 1);
    let folded = invalid
        .iter()
        .find(|f| f.pid == 0)
        .expect("the folded finding");
    assert_eq!((folded.comm.as_str(), folded.occurrences), ("app", 500));
    assert_eq!(
        invalid.iter().map(|f| f.occurrences).sum::<u64>(),
        u64::from(n)
    );
}

/// io_uring_enter read at its wait (not hooked): no exit event. The wait ends at the
/// thread's next submit (or wait, or its process's exit).
#[test]
fn a_wait_read_at_its_start_ends_at_the_threads_next_submit() {
    let at_wait = |ts: u64| RawEvent {
        args: [3, 0, 2, 0],
        cflags: ENTER_GETEVENTS | ENTER_EXT_ARG,
        aux2: uringtrace_common::ENTER_WITHOUT_EXIT,
        ..ev(EventKind::EnterEnter, ts, A)
    };
    let wait = |ts: u64| RawEvent {
        args: [2, 0, 0, agg::WAIT_WITH_READY],
        aux2: 1,
        ..ev(EventKind::CqringWait, ts, A)
    };
    let r = run(&[
        create(1, A, 3),
        at_wait(10),
        wait(11),
        submit(300 * MS + 10, A, 0x100, 0, 0, 0),
        complete(300 * MS + 20, A, 0x100, 0, 0),
    ]);
    assert_eq!(rules(&r), [("unsatisfiable-wait", Severity::Warning, 1)]);
    assert!(
        r.findings[0]
            .message
            .contains("delayed completions by 300.0 ms"),
        "{}",
        r.findings[0].message
    );
    // Its process exits while it waits.
    let r = run(&[
        create(1, A, 3),
        at_wait(10),
        wait(11),
        ev(EventKind::ProcessExit, 700 * MS + 10, 0),
    ]);
    assert!(
        r.findings[0]
            .message
            .contains("delayed completions by 700.0 ms"),
        "{}",
        r.findings[0].message
    );
}

/// Without enter hooks, a flush shows as a shorter overflow list in the next fdinfo
/// sample than the CQEs listed since allow; a list that only grows was not flushed.
#[test]
fn a_shorter_overflow_list_in_a_sample_is_a_flush() {
    let flushing = run(&[
        create(1, A, 3),
        overflow(10, 1, 0),
        overflow(11, 2, 0),
        overflow_list(100 * MS, 2),
        overflow(150 * MS, 3, 0),
        // 2 + 1 listed, 1 left: flushed in between.
        overflow_list(200 * MS, 1),
        overflow(900 * MS, 4, 0),
        overflow_list(1_000 * MS, 1),
        overflow_list(1_100 * MS, 0),
    ]);
    assert_eq!(rules(&flushing), [("cq-overflow", Severity::Info, 4)]);

    let growing = run(&[
        create(1, A, 3),
        overflow(10, 1, 0),
        overflow_list(100 * MS, 1),
        overflow(150 * MS, 2, 0),
        overflow_list(200 * MS, 2),
        overflow_list(1_300 * MS, 2),
    ]);
    assert_eq!(rules(&growing), [("cq-overflow", Severity::Warning, 2)]);
}

/// An fdinfo sample of ring fd 3 whose SQPOLL thread `SQ` has run `total_us` in all,
/// none of it with work.
fn sq_sample(ts: u64, total_us: u64) -> RawEvent {
    RawEvent {
        args: [3, 0, 0, 0],
        aux: u64::from(SQ),
        aux2: total_us,
        ..ev(EventKind::RingState, ts, 0)
    }
}

const SQ: u32 = 4242;

/// The SQPOLL thread leaving its CPU: preempted (0x100), or going to sleep (0x1).
fn sq_switch(ts: u64, prev_state: u64) -> RawEvent {
    RawEvent {
        args: [SQ, 1, 120, 120],
        aux: prev_state,
        role: uringtrace_common::Role::SqPoll as u8,
        ..ev(EventKind::SchedSwitch, ts, 0)
    }
}

/// A thread spinning with no work on a CPU it shares gets a fifth of it: still a spin
/// when the scheduler never sees it sleep; a thread that sleeps in between is the design,
/// and without scheduler events only the half-a-window share counts.
#[test]
fn an_idle_spin_on_a_loaded_cpu_is_still_a_spin() {
    let spin = |switch_state: Option<u64>| {
        let mut v = vec![create(1, A, 3)];
        for i in 0..=10u64 {
            let ts = 10 * MS + i * 100 * MS;
            if let Some(state) = switch_state {
                v.push(sq_switch(ts - 50 * MS, state));
            }
            // 20 ms of CPU per 100 ms: a fifth.
            v.push(sq_sample(ts, i * 20_000));
        }
        run(&v)
    };
    let preempted = spin(Some(0x100));
    assert_eq!(
        rules(&preempted),
        [("sqpoll-idle-spin", Severity::Warning, 1)]
    );
    assert_eq!(rules(&spin(Some(0x1))), []);
    assert_eq!(rules(&spin(None)), []);
}

/// A READ linked before a WRITE; the READ's CQE is stamped (io_uring_complete, on the
/// io-wq worker's CPU) before the owner's wait for 2, but the kernel saw 0 ready at
/// that wait: the worker's CPU stalled between filling the CQE and committing the CQ
/// tail (recorded in a 6.1 TCG guest). 1 in flight + 0 ready looks unsatisfiable; the
/// wait returned 0 with both CQEs, so it is no finding. With -ETIME it is one.
#[test]
fn a_wait_satisfied_by_a_cqe_stamped_before_it_is_not_unsatisfiable() {
    let run_with = |ret: i32| {
        let mut e = vec![
            create(1, A, 3),
            enter(5, 3, 0, 0),
            submit(10, A, 0x1, READ, IOSQE_IO_LINK, 5),
            submit(11, A, 0x2, WRITE, 0, 6),
            link(12, A, 0x2, 0x1),
            RawEvent {
                res: 2,
                ..ev(EventKind::EnterExit, 20, 0)
            },
            complete(50 * MS, A, 0x1, 64, 0),
        ];
        e[1].args[1] = 2;
        e.extend([
            enter(60 * MS, 3, 2, ENTER_GETEVENTS | ENTER_EXT_ARG),
            RawEvent {
                args: [2, 0, 0, agg::WAIT_WITH_READY],
                aux2: 0,
                ..ev(EventKind::CqringWait, 60 * MS + 1, A)
            },
            complete(61 * MS, A, 0x2, 8, 0),
            RawEvent {
                res: ret,
                ..ev(EventKind::EnterExit, 62 * MS, 0)
            },
        ]);
        run(&e)
    };
    assert_eq!(serious(&run_with(0)), Vec::<String>::new());
    assert_eq!(
        rules(&run_with(-libc::ETIME)),
        [("unsatisfiable-wait", Severity::Warning, 1)]
    );
}
