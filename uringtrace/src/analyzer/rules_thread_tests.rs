//! `sqpoll-proliferation` and `task-work-stalled` on hand-built event sequences: the
//! pathology fires, the healthy program next to it stays quiet (as `rule_tests.rs`
//! does for the older rules).

use uringtrace_common::view::{self, EventView};
use uringtrace_common::{EventKind, RawEvent, Role};

use super::finding::Severity;
use super::opcodes::{NOP, READ};
use super::report::{Environment, Report};
use super::{Analyzer, AnalyzerConfig};
use crate::names::ENTER_GETEVENTS;

const PID: u32 = 100;
const MS: u64 = 1_000_000;
const SQPOLL: u32 = 1 << 1;
const ATTACH_WQ: u32 = 1 << 5;
const COOP_TASKRUN: u32 = 1 << 8;
const SINGLE_ISSUER: u32 = 1 << 12;
const DEFER_TASKRUN: u32 = 1 << 13;

fn ev(kind: EventKind, ts: u64, ctx: u64, tid: u32, tgid: u32) -> RawEvent {
    RawEvent {
        kind: kind as u16,
        ts_ns: ts,
        pid: tid,
        tgid,
        ctx,
        ..RawEvent::default()
    }
}

fn create(ts: u64, tgid: u32, ctx: u64, fd: u32, flags: u32) -> RawEvent {
    view::Create {
        fd,
        sq_entries: 8,
        cq_entries: 16,
        flags,
        cgroup_id: 0,
    }
    .into_raw(ev(EventKind::Create, ts, ctx, tgid, tgid))
}

fn run_on(cpus: u32, events: &[RawEvent]) -> Report {
    let env = Environment {
        cpus,
        ..Environment::default()
    };
    let mut a = Analyzer::new(AnalyzerConfig::default(), env);
    for e in events {
        a.push(*e);
    }
    a.finish()
}

fn run(events: &[RawEvent]) -> Report {
    run_on(0, events)
}

fn rules(r: &Report) -> Vec<(&'static str, Severity, u64)> {
    r.findings
        .iter()
        .map(|f| (f.rule.slug(), f.severity, f.occurrences))
        .collect()
}

// --- sqpoll-proliferation ---

/// The SQPOLL thread `tid` of `tgid` names itself `iou-sqp-<tgid>` as it starts.
fn sqp_start(ts: u64, tgid: u32, tid: u32) -> RawEvent {
    let mut comm = [0u8; 16];
    let name = format!("iou-sqp-{tgid}");
    comm[..name.len()].copy_from_slice(name.as_bytes());
    view::TaskRename { tid, newcomm: comm }.into_raw(ev(EventKind::TaskRename, ts, 0, tid, tgid))
}

/// `tid` of `tgid` leaves its CPU (`prev_state` 0x1 asleep, 0x10 exiting).
fn sqp_switch(ts: u64, tgid: u32, tid: u32, prev_state: u64) -> RawEvent {
    RawEvent {
        role: Role::SqPoll as u8,
        ..view::SchedSwitch {
            prev: tid,
            next: 1,
            prev_prio: 120,
            next_prio: 120,
            prev_state,
        }
        .into_raw(ev(EventKind::SchedSwitch, ts, 0, tid, tgid))
    }
}

/// Some other task switches to `tid`.
fn switch_to(ts: u64, tid: u32) -> RawEvent {
    view::SchedSwitch {
        prev: 1,
        next: tid,
        prev_prio: 120,
        next_prio: 120,
        prev_state: 0x1,
    }
    .into_raw(ev(EventKind::SchedSwitch, ts, 0, 1, 1))
}

/// `rings` SQPOLL rings of `tgid`; the first `threads` get their own thread, the rest
/// attach to the first with ATTACH_WQ. Each thread runs `run_ms` from 10 ms on, then
/// sleeps. The trace ends at 1 s.
fn sqpoll_process_running(tgid: u32, rings: u32, threads: u32, run_ms: u64) -> Vec<RawEvent> {
    let mut v = Vec::new();
    for i in 0..rings {
        let ctx = 0xffff_8880_1000_0000 + u64::from(tgid) * 0x10_0000 + u64::from(i) * 0x1000;
        let own = i < threads;
        let flags = if own { SQPOLL } else { SQPOLL | ATTACH_WQ };
        let ts = 1 + u64::from(i);
        v.push(create(ts, tgid, ctx, 3 + i, flags));
        if own {
            let tid = tgid * 100 + i;
            v.push(sqp_start(ts, tgid, tid));
            v.push(switch_to(10 * MS + u64::from(i), tid));
            v.push(sqp_switch(
                (10 + run_ms) * MS + u64::from(i),
                tgid,
                tid,
                0x1,
            ));
        }
    }
    v.push(ev(EventKind::Register, 1_000 * MS, 0, tgid, tgid));
    v
}

/// Pollers that each spin 100 ms of the first second.
fn sqpoll_process(tgid: u32, rings: u32, threads: u32) -> Vec<RawEvent> {
    sqpoll_process_running(tgid, rings, threads, 100)
}

/// Twelve rings, each with its own poller: one finding, with the CPU they ran.
#[test]
fn twelve_sqpoll_threads_in_one_process_proliferate() {
    let r = run(&sqpoll_process(PID, 12, 12));
    assert_eq!(rules(&r), [("sqpoll-proliferation", Severity::Warning, 1)]);
    let f = &r.findings[0];
    assert_eq!(f.pid, PID);
    assert_eq!(
        f.message,
        "12 SQPOLL threads alive at once in one process (12 SQPOLL rings created, 0 of them sharing \
         a thread through IORING_SETUP_ATTACH_WQ; at most 2 needed); they ran 1200.0 ms of CPU \
         in 1000.0 ms (120% of a CPU)"
    );
}

/// Twelve pollers that sleep when idle (20 ms of CPU each in a second, 24% in all):
/// cheap, as Node.js's one SQPOLL ring per event loop.
#[test]
fn sqpoll_threads_that_sleep_are_quiet() {
    assert_eq!(rules(&run(&sqpoll_process_running(PID, 12, 12, 20))), []);
}

/// One process, four rings sharing one thread through ATTACH_WQ: the design.
#[test]
fn rings_sharing_one_sqpoll_thread_are_quiet() {
    assert_eq!(rules(&run(&sqpoll_process(PID, 4, 1))), []);
}

/// Two SQPOLL threads (one per NUMA node, say): legitimate.
#[test]
fn two_sqpoll_threads_are_quiet() {
    assert_eq!(rules(&run_on(2, &sqpoll_process(PID, 2, 2))), []);
}

/// Twelve rings opened and closed one after the other: never more than one poller.
#[test]
fn sqpoll_threads_one_after_the_other_are_quiet() {
    let mut v = Vec::new();
    for i in 0..12u32 {
        let ts = 1 + u64::from(i) * 50 * MS;
        let tid = 1000 + i;
        v.push(create(
            ts,
            PID,
            0xffff_8880_2000_0000 + u64::from(i) * 0x1000,
            3,
            SQPOLL,
        ));
        v.push(sqp_start(ts, PID, tid));
        v.push(switch_to(ts + MS, tid));
        v.push(sqp_switch(ts + 2 * MS, PID, tid, 0x10));
    }
    assert_eq!(rules(&run(&v)), []);
}

/// Threads started before the trace show up in their switches (no rename): counted.
#[test]
fn sqpoll_threads_from_before_the_trace_count() {
    // Each switched out at 10 ms, back in at 20 ms, still running at the end. The
    // process's ring is known from its submits; another process's poller, seen only
    // as the task a switch replaced, is not counted.
    let ring_seen = RawEvent {
        req: 0x10,
        user_data: 1,
        ..ev(EventKind::Submit, 1, 0xffff_8880_4000_0000, 500, PID)
    };
    let v: Vec<RawEvent> = [ring_seen]
        .into_iter()
        .chain((0..4u32).map(|i| sqp_switch(10 * MS + u64::from(i), PID, 500 + i, 0x1)))
        .chain((0..8u32).map(|i| sqp_switch(11 * MS + u64::from(i), 999, 900 + i, 0x1)))
        .chain((0..4u32).map(|i| switch_to(20 * MS + u64::from(i), 500 + i)))
        .chain([ev(EventKind::Register, 500 * MS, 0, PID, PID)])
        .collect();
    let r = run(&v);
    assert_eq!(rules(&r), [("sqpoll-proliferation", Severity::Warning, 1)]);
    assert!(r.findings[0]
        .message
        .starts_with("4 SQPOLL threads alive at once"));
}

/// Three processes with two pollers each: fine per process; on 4 CPUs six pollers are
/// more than half the host, on 16 they are not.
#[test]
fn sqpoll_threads_across_processes_are_judged_against_the_cpus() {
    let v: Vec<RawEvent> = [200u32, 300, 400]
        .into_iter()
        .flat_map(|t| sqpoll_process(t, 2, 2))
        .collect();
    let mut v = v;
    v.sort_by_key(|e| e.ts_ns);
    let r = run_on(4, &v);
    assert_eq!(rules(&r), [("sqpoll-proliferation", Severity::Warning, 1)]);
    assert_eq!(r.findings[0].pid, 0);
    assert!(
        r.findings[0]
            .message
            .starts_with("6 SQPOLL threads alive at once on a host of 4 CPUs, in 3 processes"),
        "{}",
        r.findings[0].message
    );
    assert_eq!(rules(&run_on(16, &v)), []);
    // An old recording without the CPU count: no host judgement.
    assert_eq!(rules(&run_on(0, &v)), []);
}

// --- task-work-stalled ---

const RING: u64 = 0xffff_8880_3000_0000;
/// The task that writes the pipe and so wakes the READ's poll.
const WAKER: u32 = 200;

fn submit(ts: u64, req: u64, op: u8) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        opcode: op,
        args: [0, 0, 5, 0],
        ..ev(EventKind::Submit, ts, RING, PID, PID)
    }
}

fn task_add(ts: u64, req: u64) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        opcode: READ,
        ..ev(EventKind::TaskAdd, ts, RING, WAKER, WAKER)
    }
}

/// The READ found the pipe empty and armed its poll.
fn poll_arm(ts: u64, req: u64) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        opcode: READ,
        ..ev(EventKind::PollArm, ts, RING, PID, PID)
    }
}

fn complete(ts: u64, req: u64) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        res: 64,
        ..ev(EventKind::Complete, ts, RING, PID, PID)
    }
}

fn enter(ts: u64) -> RawEvent {
    view::Enter {
        fd: 3,
        min_complete: 1,
        flags: ENTER_GETEVENTS,
        ..view::Enter::default()
    }
    .into_raw(ev(EventKind::EnterEnter, ts, 0, PID, PID))
}

fn enter_exit(ts: u64) -> RawEvent {
    RawEvent {
        res: 0,
        ..ev(EventKind::EnterExit, ts, 0, PID, PID)
    }
}

fn local_work_run(ts: u64) -> RawEvent {
    // WorkRun's own kind is task_work_run; local_work_run carries the same view.
    RawEvent {
        kind: EventKind::LocalWorkRun as u16,
        ..view::WorkRun {
            tctx: 0,
            count: 1,
            loops: 1,
        }
        .into_raw(ev(EventKind::LocalWorkRun, ts, RING, PID, PID))
    }
}

/// A READ on an empty pipe of a ring with `flags`: submitted at 10 ms, its poll fires
/// at 100 ms (the writer); the owner next enters io_uring_enter at `owner_enters`
/// (ms), where the work runs; the trace ends at 3 s.
fn pipe_read(flags: u32, owner_enters: u64) -> Vec<RawEvent> {
    let t = owner_enters * MS;
    vec![
        create(1, PID, RING, 3, flags),
        submit(10 * MS, 0x100, READ),
        poll_arm(10 * MS + 1, 0x100),
        task_add(100 * MS, 0x100),
        enter(t),
        complete(t + 10_000, 0x100),
        local_work_run(t + 20_000),
        enter_exit(t + 30_000),
        ev(EventKind::Register, 3_000 * MS, RING, PID, PID),
    ]
}

/// The owner of a DEFER_TASKRUN ring blocked elsewhere for 1.2 s: its READ completed
/// in the kernel at 100 ms but reaches the CQ only when the owner comes back.
#[test]
fn work_waiting_for_a_blocked_owner_is_stalled() {
    let r = run(&pipe_read(SINGLE_ISSUER | DEFER_TASKRUN, 1_300));
    assert_eq!(rules(&r), [("task-work-stalled", Severity::Warning, 1)]);
    let f = &r.findings[0];
    assert_eq!((f.pid, f.ring), (PID, RING));
    assert_eq!(
        f.message,
        "1 completion queued to thread 100, owner of a DEFER_TASKRUN ring, waited 1200.0 ms \
         before the owner ran it: the owner stayed outside io_uring_enter for 1200.0 ms \
         (blocked or busy elsewhere)"
    );
    assert_eq!(f.evidence.requests[0].user_data, 0x100);
}

/// An event loop that computes for 200 ms between waits: within the threshold.
#[test]
fn an_owner_busy_for_a_short_while_is_quiet() {
    assert_eq!(
        rules(&run(&pipe_read(SINGLE_ISSUER | DEFER_TASKRUN, 300))),
        []
    );
}

/// The owner waits in io_uring_enter: the work runs as it is queued.
#[test]
fn an_owner_waiting_in_io_uring_enter_is_quiet() {
    let v = vec![
        create(1, PID, RING, 3, SINGLE_ISSUER | DEFER_TASKRUN),
        submit(10 * MS, 0x100, READ),
        poll_arm(10 * MS + 1, 0x100),
        enter(20 * MS),
        task_add(100 * MS, 0x100),
        complete(100 * MS + 5_000, 0x100),
        local_work_run(100 * MS + 6_000),
        enter_exit(100 * MS + 7_000),
        ev(EventKind::Register, 3_000 * MS, RING, PID, PID),
    ];
    assert_eq!(rules(&run(&v)), []);
}

/// A plain ring: the kernel interrupts the owner to run the work, whatever it does.
#[test]
fn a_plain_ring_never_waits_for_its_owner() {
    assert_eq!(rules(&run(&pipe_read(0, 1_300))), []);
}

/// Still queued when the trace ends, 2.9 s after the wakeup.
#[test]
fn work_still_queued_at_the_end_is_stalled() {
    let v = vec![
        create(1, PID, RING, 3, SINGLE_ISSUER | DEFER_TASKRUN),
        submit(10 * MS, 0x100, READ),
        poll_arm(10 * MS + 1, 0x100),
        task_add(100 * MS, 0x100),
        ev(EventKind::Register, 3_000 * MS, RING, PID, PID),
    ];
    let r = run(&v);
    assert_eq!(rules(&r), [("task-work-stalled", Severity::Warning, 1)]);
    assert!(
        r.findings[0]
            .message
            .contains("has waited 2900.0 ms so far: the owner did not enter io_uring_enter"),
        "{}",
        r.findings[0].message
    );
}

/// COOP_TASKRUN: a NOP the owner completes inline does not run the queued work; its
/// task_work_run does.
#[test]
fn coop_taskrun_work_ends_when_the_owner_runs_its_task_work() {
    let tw_run = |ts: u64| {
        view::WorkRun {
            tctx: 0,
            count: 1,
            loops: 1,
        }
        .into_raw(ev(EventKind::TaskWorkRun, ts, 0, PID, PID))
    };
    let base = |run_at: u64| {
        vec![
            create(1, PID, RING, 3, COOP_TASKRUN),
            submit(10 * MS, 0x100, READ),
            poll_arm(10 * MS + 1, 0x100),
            poll_arm(10 * MS + 1, 0x100),
            task_add(100 * MS, 0x100),
            submit(200 * MS, 0x101, NOP),
            complete(200 * MS + 1_000, 0x101),
            tw_run(run_at * MS),
            ev(EventKind::Register, 3_000 * MS, RING, PID, PID),
        ]
    };
    let r = run(&base(900));
    assert_eq!(rules(&r), [("task-work-stalled", Severity::Warning, 1)]);
    assert!(r.findings[0]
        .message
        .contains("COOP_TASKRUN ring, waited 800.0 ms"));
    assert_eq!(rules(&run(&base(250))), []);
}

/// Userspace read the blocked owner's state from /proc during the wait: shown.
#[test]
fn the_owners_state_from_proc_is_shown() {
    let mut wchan = [0u8; 16];
    wchan[..9].copy_from_slice(b"pipe_read");
    let state = view::TaskState {
        tid: PID,
        state: b'S',
        syscall: 9999,
        wchan,
    }
    .into_raw(ev(EventKind::TaskState, 350 * MS, 0, PID, PID));
    let mut v = pipe_read(SINGLE_ISSUER | DEFER_TASKRUN, 1_300);
    v.insert(4, state);
    let r = run(&v);
    assert_eq!(rules(&r), [("task-work-stalled", Severity::Warning, 1)]);
    assert!(
        r.findings[0].message.ends_with(
            "the owner stayed outside io_uring_enter for 1200.0 ms (blocked or busy \
             elsewhere); /proc showed it asleep (S) in syscall 9999, wchan pipe_read, \
             250.0 ms into the wait"
        ),
        "{}",
        r.findings[0].message
    );
}

/// `check`'s configuration names the two rules by slug, as every other.
#[test]
fn check_config_disables_and_regrades_the_rules() {
    use super::rules::RuleId;
    let c = super::check::Config::parse(
        "[rules]\ndisable = [\"sqpoll-proliferation\"]\n[rules.severity]\ntask-work-stalled = \"error\"",
    )
    .unwrap();
    assert!(c.disabled.contains(&RuleId::SqpollProliferation));
    assert_eq!(
        c.severity.get(&RuleId::TaskWorkStalled),
        Some(&Severity::Error)
    );
}

/// The owner waits in io_uring_enter, but on its other ring: this ring's work waits.
#[test]
fn an_owner_waiting_on_another_ring_stalls_this_ones_work() {
    let other = RING + 0x1000;
    let v = vec![
        create(1, PID, RING, 3, SINGLE_ISSUER | DEFER_TASKRUN),
        create(2, PID, other, 4, SINGLE_ISSUER | DEFER_TASKRUN),
        submit(10 * MS, 0x100, READ),
        poll_arm(10 * MS + 1, 0x100),
        view::Enter {
            fd: 4,
            min_complete: 1,
            flags: ENTER_GETEVENTS,
            ..view::Enter::default()
        }
        .into_raw(ev(EventKind::EnterEnter, 20 * MS, 0, PID, PID)),
        task_add(100 * MS, 0x100),
        enter_exit(1_000 * MS),
        enter(1_000 * MS + 1),
        complete(1_000 * MS + 10_000, 0x100),
        local_work_run(1_000 * MS + 20_000),
        ev(EventKind::Register, 3_000 * MS, RING, PID, PID),
    ];
    let r = run(&v);
    assert_eq!(rules(&r), [("task-work-stalled", Severity::Warning, 1)]);
    assert!(
        r.findings[0].message.ends_with(
            "the owner was waiting in io_uring_enter on another ring (a wait that does not \
             run this ring's work) for 900.0 ms"
        ),
        "{}",
        r.findings[0].message
    );
}
