//! The analyzer on hand-built event sequences: kernel-version semantics, pointer
//! reuse, overflow, reordering.

use uringtrace_common::{EventKind, RawEvent};

use super::report::{Environment, Report};
use super::{Analyzer, AnalyzerConfig};

const CTX: u64 = 0xffff_8880_0000_1000;
const PID: u32 = 100;

fn ev(kind: EventKind, ts: u64) -> RawEvent {
    let mut comm = [0u8; 16];
    comm[..3].copy_from_slice(b"app");
    RawEvent {
        kind: kind as u16,
        ts_ns: ts,
        pid: PID,
        tgid: PID,
        ctx: CTX,
        comm,
        ..RawEvent::default()
    }
}

fn create(ts: u64) -> RawEvent {
    RawEvent {
        args: [3, 8, 16, 0],
        ..ev(EventKind::Create, ts)
    }
}

fn submit(ts: u64, req: u64, ud: u64, op: u8, flags: u64) -> RawEvent {
    RawEvent {
        req,
        user_data: ud,
        opcode: op,
        aux: flags,
        ..ev(EventKind::Submit, ts)
    }
}

fn link(ts: u64, req: u64, target: u64) -> RawEvent {
    RawEvent {
        req,
        aux: target,
        ..ev(EventKind::Link, ts)
    }
}

fn complete(ts: u64, req: u64, ud: u64, res: i32) -> RawEvent {
    RawEvent {
        req,
        user_data: ud,
        res,
        ..ev(EventKind::Complete, ts)
    }
}

fn fail_link(ts: u64, req: u64, ud: u64, cancelled: u64) -> RawEvent {
    RawEvent {
        req,
        user_data: ud,
        opcode: 22,
        aux: cancelled,
        ..ev(EventKind::FailLink, ts)
    }
}

fn run(events: &[RawEvent]) -> Report {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for e in events {
        a.push(*e);
    }
    a.finish()
}

const LINK: u64 = 4;
const R: [u64; 4] = [0xa00, 0xb00, 0xc00, 0xd00];

/// NOP → READ(bad fd) → NOP → NOP; `target(i)` is what the link event of member i names.
fn broken_chain(target: impl Fn(usize) -> u64) -> Vec<RawEvent> {
    let mut v = vec![create(1)];
    let ops = [0u8, 22, 0, 0];
    let mut t = 10;
    for i in 0..4 {
        let flags = if i < 3 { LINK } else { 0 };
        v.push(submit(t, R[i], i as u64 + 1, ops[i], flags));
        t += 1;
        if i > 0 {
            v.push(link(t, R[i], target(i)));
            t += 1;
        }
    }
    v.push(complete(100, R[0], 1, 0));
    v.push(complete(101, R[1], 2, -9));
    v.push(fail_link(102, R[1], 2, R[2]));
    v.push(fail_link(103, R[1], 2, R[3]));
    v.push(complete(104, R[2], 3, -125));
    v.push(complete(105, R[3], 4, -125));
    v
}

fn assert_broken_chain(r: &Report) {
    let broken: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "link-chain-broken")
        .collect();
    assert_eq!(broken.len(), 1, "{:#?}", r.findings);
    let f = broken[0];
    assert_eq!(f.pid, PID);
    assert_eq!(f.ring, CTX);
    assert!(f.message.contains("member 2 of 4"), "{}", f.message);
    assert!(f.message.contains("READ"), "{}", f.message);
    assert!(f.message.contains("-EBADF"), "{}", f.message);
    assert!(
        f.message.contains("2 follower(s) cancelled"),
        "{}",
        f.message
    );
    let roles: Vec<_> = f
        .evidence
        .requests
        .iter()
        .map(|q| q.role.as_str())
        .collect();
    assert_eq!(roles, ["ok", "breaker", "cancelled", "cancelled"]);
    let uds: Vec<_> = f.evidence.requests.iter().map(|q| q.user_data).collect();
    assert_eq!(uds, [1, 2, 3, 4]);
    assert_eq!(r.rings[0].in_flight, 0);
}

#[test]
fn link_target_is_the_previous_member_from_6_12() {
    assert_broken_chain(&run(&broken_chain(|i| R[i - 1])));
}

#[test]
fn link_target_is_the_chain_head_before_6_12() {
    assert_broken_chain(&run(&broken_chain(|_| R[0])));
}

#[test]
fn a_hardlink_chain_past_a_failure_is_not_flagged() {
    let mut v = vec![create(1)];
    v.push(submit(10, R[0], 1, 0, 8));
    v.push(submit(11, R[1], 2, 22, 8));
    v.push(link(12, R[1], R[0]));
    v.push(submit(13, R[2], 3, 0, 0));
    v.push(link(14, R[2], R[1]));
    v.push(complete(20, R[0], 1, 0));
    v.push(complete(21, R[1], 2, -9));
    v.push(complete(22, R[2], 3, 0));
    let r = run(&v);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn a_reused_req_pointer_is_a_new_request() {
    let r = run(&[
        create(1),
        submit(10, R[0], 1, 0, 0),
        complete(20, R[0], 1, 0),
        submit(30, R[0], 2, 22, 0),
        complete(1_030, R[0], 2, 4096),
    ]);
    let ring = &r.rings[0];
    assert_eq!((ring.submitted, ring.completed, ring.in_flight), (2, 2, 0));
    let nop = r.latency.iter().find(|l| l.opcode == "NOP").unwrap();
    let read = r.latency.iter().find(|l| l.opcode == "READ").unwrap();
    assert_eq!((nop.count, nop.max_ns), (1, 10));
    assert_eq!((read.count, read.max_ns), (1, 1000));
}

#[test]
fn overflowed_cqes_complete_their_requests() {
    let mut v = vec![create(1)];
    for i in 0..6u64 {
        v.push(submit(10 + i, 0x100 * (i + 1), i + 1, 0, 0));
    }
    for i in 0..4u64 {
        v.push(complete(20 + i, 0x100 * (i + 1), i + 1, 0));
    }
    for i in 4..6u64 {
        // Overflowed CQEs carry no req; ocqe (aux) is the allocated entry.
        v.push(RawEvent {
            user_data: i + 1,
            aux: 0xffff_0000,
            ..ev(EventKind::CqeOverflow, 30 + i)
        });
    }
    // The trace goes on for 2 s and nobody flushes the overflow list.
    v.push(ev(EventKind::Register, 2_000_000_000));
    let r = run(&v);
    let ring = &r.rings[0];
    assert_eq!((ring.completed, ring.overflowed, ring.in_flight), (6, 2, 0));
    let f: Vec<_> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(f, ["cq-overflow"]);
    assert!(r.findings[0]
        .message
        .starts_with("2 CQEs did not fit in the CQ ring (16 entries)"));
}

#[test]
fn a_dropped_cqe_is_an_error() {
    let r = run(&[
        create(1),
        submit(10, R[0], 7, 0, 0),
        RawEvent {
            user_data: 7,
            aux: 0,
            ..ev(EventKind::CqeOverflow, 20)
        },
        ev(EventKind::Register, 2_000_000_000),
    ]);
    let rules: Vec<_> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["cqe-dropped", "cq-overflow"]);
}

#[test]
fn events_out_of_order_across_cpus_are_reordered() {
    let mut v = broken_chain(|i| R[i - 1]);
    // The ring buffer can hand over a later event first (another CPU reserved earlier).
    v.swap(3, 4);
    v.swap(9, 10);
    assert_broken_chain(&run(&v));
}

#[test]
fn invalid_sqe_and_multishot_end() {
    let r = run(&[
        create(1),
        RawEvent {
            user_data: 9,
            opcode: 250,
            res: -22,
            ..ev(EventKind::ReqFailed, 10)
        },
        submit(20, R[0], 5, 27, 0),
        RawEvent {
            req: 0,
            user_data: 5,
            res: 16,
            cflags: 3,
            ..ev(EventKind::Complete, 30)
        },
        RawEvent {
            req: 0,
            user_data: 5,
            res: 16,
            cflags: 0x10003,
            ..ev(EventKind::Complete, 31)
        },
        complete(32, R[0], 5, -105),
    ]);
    let mut rules: Vec<_> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    rules.sort_unstable();
    assert_eq!(
        rules,
        ["buffer-exhausted", "invalid-sqe", "multishot-terminated"]
    );
    let ms = r
        .findings
        .iter()
        .find(|f| f.rule == "multishot-terminated")
        .unwrap();
    assert!(ms.message.contains("after 3 CQEs"), "{}", ms.message);
    assert!(ms.message.contains("-ENOBUFS"), "{}", ms.message);
}

#[test]
fn lost_events_make_every_finding_inconclusive() {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for e in broken_chain(|i| R[i - 1]) {
        a.push(e);
    }
    a.set_lost(super::report::LostEvents {
        total: 5,
        per_cpu: vec![5, 0],
        known: true,
    });
    let r = a.finish();
    assert!(!r.findings.is_empty());
    assert!(r.findings.iter().all(|f| f.inconclusive));
}

#[test]
fn memory_is_bounded_by_what_is_in_flight() {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    a.push(create(1));
    for i in 0..100_000u64 {
        a.push(submit(
            10 + 2 * i,
            0x1000 + (i % 64) * 0x40,
            i,
            0,
            if i % 2 == 0 { LINK } else { 0 },
        ));
        if i % 2 == 1 {
            a.push(link(
                10 + 2 * i,
                0x1000 + (i % 64) * 0x40,
                0x1000 + ((i - 1) % 64) * 0x40,
            ));
        }
        a.push(complete(11 + 2 * i, 0x1000 + (i % 64) * 0x40, i, 0));
    }
    a.flush();
    let st = a.state();
    assert!(st.chains.len() <= 1, "{} chains kept", st.chains.len());
    assert!(st.rings[&CTX].inflight.len() <= 1);
}

#[test]
fn a_reused_ctx_address_starts_a_new_ring_and_keeps_the_old_findings() {
    let r = run(&[
        create(1),
        submit(10, R[0], 1, 0, 0),
        RawEvent {
            user_data: 1,
            aux: 0xffff_0000,
            ..ev(EventKind::CqeOverflow, 20)
        },
        // The ring is freed 3 s later, its overflow never flushed; a new ring
        // (another process) gets the same ctx address.
        RawEvent {
            tgid: 200,
            pid: 200,
            ..create(3_000_000_030)
        },
        RawEvent {
            tgid: 200,
            pid: 200,
            ..submit(3_000_000_040, R[1], 9, 0, 0)
        },
        RawEvent {
            tgid: 200,
            pid: 200,
            ..complete(3_000_000_050, R[1], 9, 0)
        },
    ]);
    // The old ring is listed as it ended, the new one as it is.
    assert_eq!(r.rings.len(), 2);
    let ring = r.rings.iter().find(|r| r.pid == 200).expect("new ring");
    assert_eq!(
        (ring.pid, ring.submitted, ring.completed, ring.overflowed),
        (200, 1, 1, 0)
    );
    let f: Vec<_> = r
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.pid))
        .collect();
    assert_eq!(f, [("cq-overflow", PID)]);
}

/// The same problem over and over is one finding counting its occurrences, and is
/// kept as one while the trace goes on (memory flat with trace length).
#[test]
fn repeated_findings_collapse_as_they_come() {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    a.push(create(1));
    a.push(submit(10, R[0], 7, 100, 0));
    for i in 0..10_000u64 {
        // Multishot CQEs of one request, each out of buffers.
        a.push(RawEvent {
            req: R[0],
            user_data: 7,
            res: -105,
            cflags: crate::names::CQE_F_MORE,
            ..ev(EventKind::Complete, 20 + i)
        });
    }
    a.flush();
    assert_eq!(a.findings.list.len(), 1);
    let r = a.report();
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(f.rule, "buffer-exhausted");
    assert_eq!(f.occurrences, 10_000, "{f:?}");
}

/// A small deterministic generator (xorshift), so the shuffles below are repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The reorder window's queue-plus-heap gives exactly the order of a single heap over
/// all events by (ts, arrival), whatever the arrival order, ties and interleaved
/// `advance`s.
#[test]
fn reorder_releases_events_as_one_heap_would() {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    for seed in 1..=20u64 {
        let mut rng = Rng(seed * 0x9e37_79b9_7f4a_7c15);
        let window = 1 + rng.next() % 50;
        let mut fast = super::Reorder::default();
        let mut reference = BinaryHeap::new();
        let (mut got, mut want) = (Vec::new(), Vec::new());
        let mut clock = 1000u64;
        for seq in 1..=3000u64 {
            // Mostly in order, with ties, and some events late by up to 2 windows.
            clock += rng.next() % 3;
            let ts = match rng.next() % 10 {
                0 => clock.saturating_sub(rng.next() % (2 * window)),
                1 => clock.saturating_sub(rng.next() % 4),
                _ => clock,
            };
            let ev = RawEvent {
                ts_ns: ts,
                user_data: seq,
                ..RawEvent::default()
            };
            fast.push(seq, ev);
            reference.push(Reverse((ts, seq)));
            let until = if rng.next().is_multiple_of(7) {
                clock + rng.next() % window
            } else {
                clock
            };
            while let Some(late) = fast.ready(window, until) {
                got.push(if late {
                    fast.pop_late().user_data
                } else {
                    let ud = fast.run.front().unwrap().user_data;
                    fast.run.pop_front();
                    ud
                });
            }
            while let Some(Reverse((t, s))) = reference.peek().copied() {
                if t + window > until {
                    break;
                }
                reference.pop();
                want.push(s);
            }
            assert_eq!(got, want, "seed {seed}, after event {seq}");
        }
        while let Some(late) = fast.ready(0, u64::MAX) {
            got.push(if late {
                fast.pop_late().user_data
            } else {
                let ud = fast.run.front().unwrap().user_data;
                fast.run.pop_front();
                ud
            });
        }
        while let Some(Reverse((_, s))) = reference.pop() {
            want.push(s);
        }
        assert_eq!(got, want, "seed {seed}, at the end");
        assert_eq!(fast.len(), 0);
    }
}

/// Events handed over out of order (within the window) give the same report as the
/// same events in order: the in-order fast path and the heap agree.
#[test]
fn in_order_and_out_of_order_input_give_the_same_report() {
    use super::synthetic::nop_storm;

    let mut events: Vec<RawEvent> = nop_storm(20_000).collect();
    // Some requests link, fail and overflow, so that order matters to the findings.
    events.extend(broken_chain(|i| R[i - 1]).into_iter().map(|e| RawEvent {
        ts_ns: e.ts_ns + 20_000_000,
        ..e
    }));
    let in_order = run(&events);
    assert_eq!(in_order.events, events.len() as u64);
    assert_broken_chain(&in_order);

    let mut rng = Rng(42);
    let mut shuffled = events.clone();
    // Swap events a few positions apart (a few µs: well within the 20 ms window).
    // Timestamps are all distinct, so the order they are applied in is the same.
    for i in 0..shuffled.len() {
        if rng.next().is_multiple_of(3) {
            let j = (i + 1 + (rng.next() % 8) as usize).min(shuffled.len() - 1);
            shuffled.swap(i, j);
        }
    }
    assert_ne!(
        shuffled.iter().map(|e| e.ts_ns).collect::<Vec<_>>(),
        events.iter().map(|e| e.ts_ns).collect::<Vec<_>>()
    );
    assert_eq!(run(&shuffled), in_order);
}

/// The analyzer's own speed on a synthetic NOP storm, without any file format:
/// `cargo test --release -p uringtrace --lib analyzer_speed -- --ignored --nocapture`.
/// Prints events/s; asserts nothing about time.
#[test]
#[ignore]
fn analyzer_speed() {
    use super::synthetic::{nop_storm, peak_rss_kib};

    let n = 2_000_000u64;
    let events: Vec<RawEvent> = nop_storm(n).collect();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
        for e in &events {
            a.push(*e);
        }
        let r = a.finish();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(r.events, n);
        println!(
            "Analyzer::push: {n} events in {secs:.3} s, {:.2} M events/s",
            n as f64 / secs / 1e6
        );
    }
    println!(
        "peak RSS {} KiB (events held in memory included)",
        peak_rss_kib()
    );
}

#[test]
fn a_ring_is_shown_once_it_carried_requests_or_was_created() {
    use super::ring_is_shown;
    use super::state::Ring;
    assert!(!ring_is_shown(&Ring::default()));
    for ring in [
        Ring {
            submitted: 1,
            ..Ring::default()
        },
        Ring {
            completed: 1,
            ..Ring::default()
        },
        Ring {
            fd: Some(3),
            ..Ring::default()
        },
    ] {
        assert!(ring_is_shown(&ring));
    }
}

/// Pid reuse: process 100 ("app", ring CTX) exits unseen (no process_exit: /proc is
/// sampled every 100 ms), and process 300 forks a child that gets pid 100 ("newapp").
/// The old ring stays the old process's: its comm, its counts.
#[test]
fn a_reused_pid_is_a_new_process() {
    const CTX2: u64 = CTX + 0x800;
    let as_new = |e: RawEvent| {
        let mut comm = [0u8; 16];
        comm[..6].copy_from_slice(b"newapp");
        RawEvent {
            ctx: CTX2,
            comm,
            ..e
        }
    };
    let fork = RawEvent {
        tgid: 300,
        pid: 300,
        ctx: 0,
        args: [300, PID, 0, 0],
        ..ev(EventKind::ProcessFork, 100)
    };
    let r = run(&[
        create(1),
        submit(10, R[0], 1, 0, 0),
        complete(20, R[0], 1, 0),
        fork,
        // Another fd than the old ring's: only the fork tells the processes apart.
        as_new(RawEvent {
            args: [4, 8, 16, 0],
            ..create(200)
        }),
        as_new(submit(210, R[1], 7, 0, 0)),
        as_new(complete(220, R[1], 7, 0)),
        as_new(submit(230, R[2], 8, 0, 0)),
        as_new(complete(240, R[2], 8, 0)),
    ]);
    let rings: Vec<_> = r
        .rings
        .iter()
        .map(|r| (r.ring.as_str(), r.pid, r.comm.as_str(), r.submitted))
        .collect();
    assert_eq!(
        rings,
        [
            ("0xffff888000001000", PID, "app", 1),
            ("0xffff888000001800", PID, "newapp", 2)
        ]
    );
}

/// An exec closes the process's rings (O_CLOEXEC) and renames it: a ring created
/// afterwards on the same fd replaces the old one, which keeps its comm.
#[test]
fn a_ring_created_on_the_fd_of_a_known_ring_replaces_it() {
    const CTX2: u64 = CTX + 0x800;
    let exe = |e: RawEvent| {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"exe");
        RawEvent {
            ctx: CTX2,
            comm,
            ..e
        }
    };
    // The old ring has a request in flight when the exec closes it: it must not
    // stay in flight, nor be the new image's.
    let r = run(&[
        create(1),
        submit(10, R[0], 1, 0, 0),
        exe(create(200)),
        exe(submit(210, R[1], 7, 0, 0)),
        exe(complete(220, R[1], 7, 0)),
    ]);
    let rings: Vec<_> = r
        .rings
        .iter()
        .map(|r| (r.pid, r.comm.as_str(), r.submitted, r.completed))
        .collect();
    assert_eq!(rings, [(PID, "app", 1, 0), (PID, "exe", 1, 1)]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}
