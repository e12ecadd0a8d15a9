//! Round trips of the typed views over hand-built events, and the slots they read
//! (the wire and recording layout, which must not move).

use super::*;
use crate::aggregate::{SUBMIT_FROM_TABLE, WAIT_WITH_COUNTS, WAIT_WITH_READY};
use crate::{FdType, CLONE_IO, ENTER_WITHOUT_EXIT};

/// An event with every slot set to something a view must not touch, of `kind`.
fn base(kind: EventKind) -> RawEvent {
    RawEvent {
        ts_ns: 11,
        ctx: 0xc0,
        req: 0xe0,
        user_data: 0x5555,
        pid: 7,
        tgid: 6,
        res: -3,
        cflags: 0x77,
        kind: kind as u16,
        cpu: 2,
        opcode: 9,
        role: 1,
        comm: *b"comm-of-the-task",
        ..RawEvent::default()
    }
}

/// `v` packed into a fresh event reads back as `v`, as an event of its kind only,
/// and leaves the slots it does not own alone.
fn round_trip<V: EventView + PartialEq + core::fmt::Debug + Copy>(v: V) -> RawEvent {
    let ev = v.into_raw(RawEvent::default());
    assert_eq!(ev.kind, V::KIND as u16);
    assert_eq!(V::of(&ev), Some(v));
    let other = if V::KIND == EventKind::Create {
        EventKind::Register
    } else {
        EventKind::Create
    };
    assert_eq!(
        V::of(&RawEvent {
            kind: other as u16,
            ..ev
        }),
        None
    );
    ev
}

#[test]
fn ring_state_packs_as_the_sampler_always_did() {
    let v = RingState {
        fd: 3,
        sq_head: 10,
        sq_tail: 14,
        cq_ready: 2,
        sq_thread: Some(19359),
        sq_total_us: 1200,
        sq_work_us: 7,
        overflow_list: Some(5),
    };
    let ev = round_trip(v);
    assert_eq!(ev.args, [3, 10, 14, 2]);
    assert_eq!((ev.aux, ev.aux2, ev.user_data), (19359, 1200, 7));
    assert_eq!((ev.opcode, ev.res), (1, 5));
    assert_eq!(v.sq_pending(), 4);
    // No SQPOLL thread, no overflow list (older recordings): zeros.
    let v = RingState {
        sq_thread: None,
        overflow_list: None,
        ..v
    };
    let ev = round_trip(v);
    assert_eq!((ev.aux, ev.opcode, ev.res), (0, 0, 0));
    // Header fields stay as given.
    let ev = v.into_raw(base(EventKind::Create));
    assert_eq!((ev.ts_ns, ev.pid, ev.tgid, ev.ctx), (11, 7, 6, 0xc0));
    assert_eq!(ev.kind, EventKind::RingState as u16);
}

#[test]
fn enter_without_exit_is_aux2() {
    let v = Enter {
        fd: 4,
        to_submit: 1,
        min_complete: 2,
        flags: 0x11,
        argsz: 24,
        argp: 0x7fff_0000,
        without_exit: true,
    };
    let ev = round_trip(v);
    assert_eq!(ev.args, [4, 1, 2, 24]);
    assert_eq!(
        (ev.cflags, ev.aux, ev.aux2),
        (0x11, 0x7fff_0000, ENTER_WITHOUT_EXIT)
    );
    let ev = round_trip(Enter {
        without_exit: false,
        ..v
    });
    assert_eq!(ev.aux2, 0);
}

#[test]
fn submit_fd_and_table_origin() {
    let v = Submit {
        req_flags: 0x44,
        force_nonblock: 0,
        sq_thread: 1,
        fd: 9,
        fd_known: false,
        from_table: true,
        futex_uaddr: 0x1000,
    };
    let ev = round_trip(v);
    assert_eq!(ev.args, [0, 1, 9, SUBMIT_FROM_TABLE]);
    assert_eq!((ev.aux, ev.aux2), (0x44, 0x1000));
    assert_eq!(v.fd(), Some(9));
    assert_eq!(Submit { fd: 0, ..v }.fd(), None);
    let ev = round_trip(Submit {
        from_table: false,
        ..v
    });
    assert_eq!(ev.args[3], 0);
}

/// fd 0 is unknown unless the event says it was read; then it is registered-file
/// slot 0 under IOSQE_FIXED_FILE, and still no fd otherwise (requests without a
/// file). `sq_thread` is bit 0 only.
#[test]
fn submit_fd_known_tells_slot_0_from_unknown() {
    let fixed = Submit {
        req_flags: 1,
        sq_thread: 1,
        fd: 0,
        fd_known: true,
        ..Submit::default()
    };
    let ev = round_trip(fixed);
    assert_eq!(ev.args[1], 1 | SUBMIT_FD_KNOWN);
    assert_eq!(Submit::read(&ev).sq_thread, 1);
    assert_eq!(fixed.fd_or_slot(), Some(0));
    assert_eq!(fixed.fd(), None);
    assert_eq!(
        Submit {
            req_flags: 0,
            ..fixed
        }
        .fd_or_slot(),
        None
    );
    // Old recordings and the classic path: no bit, fd 0 is unknown.
    assert_eq!(
        Submit {
            fd_known: false,
            ..fixed
        }
        .fd_or_slot(),
        None
    );
    assert_eq!(
        Submit {
            fd: 4,
            fd_known: false,
            ..fixed
        }
        .fd_or_slot(),
        Some(4)
    );
    // The compact wire form carries the bit (tag bits 4-5 hold args[1]).
    let (tag, aux, arg) = crate::wire::WireEvent::pack(&ev).expect("fits");
    let w = crate::wire::WireEvent {
        aux,
        arg,
        tag,
        ..crate::wire::WireEvent::default()
    };
    assert_eq!(w.expand().map(|e| Submit::read(&e)), Some(fixed));
}

#[test]
fn wait_counts_by_args3() {
    for counts in [
        WaitCounts::None,
        WaitCounts::Ready { ready: 3 },
        WaitCounts::Full {
            in_flight: 8,
            ready: 3,
        },
    ] {
        round_trip(CqringWait {
            min_events: 4,
            counts,
        });
    }
    let mut ev = base(EventKind::CqringWait);
    ev.args = [4, 0, 0, WAIT_WITH_COUNTS];
    (ev.aux, ev.aux2) = (8, 3);
    let w = CqringWait::read(&ev);
    assert_eq!(w.min_events, 4);
    assert_eq!(w.counts.in_flight_ready(), (Some(8), Some(3)));
    ev.args[3] = WAIT_WITH_READY;
    assert_eq!(
        CqringWait::read(&ev).counts.in_flight_ready(),
        (None, Some(3))
    );
    ev.args[3] = 0;
    assert_eq!(CqringWait::read(&ev).counts.in_flight_ready(), (None, None));
}

#[test]
fn complete_regular_file() {
    let ev = round_trip(Complete {
        file: COMPLETE_FILE_REGULAR,
        extra1: 1,
        extra2: 2,
    });
    assert_eq!((ev.args[1], ev.aux, ev.aux2), (2, 1, 2));
    let of = |file| {
        Complete {
            file,
            ..Complete::default()
        }
        .regular_file()
    };
    assert_eq!(of(COMPLETE_FILE_UNKNOWN), None);
    assert_eq!(of(COMPLETE_FILE_NOT_REGULAR), Some(false));
    assert_eq!(of(COMPLETE_FILE_REGULAR), Some(true));
}

#[test]
fn rename_splits_the_comm_in_two() {
    let v = TaskRename {
        tid: 42,
        newcomm: *b"iou-wrk-1234\0\0\0\0",
    };
    let ev = round_trip(v);
    assert_eq!(ev.aux.to_ne_bytes(), *b"iou-wrk-");
    assert_eq!(ev.aux2.to_ne_bytes(), *b"1234\0\0\0\0");
    assert_eq!(v.tid_or(7), 42);
    assert_eq!(TaskRename { tid: 0, ..v }.tid_or(7), 7);
}

#[test]
fn shared_views_are_carried_by_each_of_their_kinds() {
    let mut ev = round_trip(Poll {
        mask: 1,
        events: 0x19,
    });
    for k in [EventKind::PollArm, EventKind::TaskAdd, EventKind::PollWake] {
        ev.kind = k as u16;
        assert_eq!(Poll::of(&ev).map(|p| p.mask), Some(1));
    }
    let mut ev = round_trip(WorkRun {
        tctx: 0xabc,
        count: 3,
        loops: 1,
    });
    ev.kind = EventKind::LocalWorkRun as u16;
    assert_eq!(WorkRun::of(&ev).map(|w| (w.count, w.loops)), Some((3, 1)));
}

#[test]
fn every_other_view_round_trips_in_its_slots() {
    let ev = round_trip(Create {
        fd: 5,
        sq_entries: 8,
        cq_entries: 16,
        flags: 2,
        cgroup_id: 7,
    });
    assert_eq!((ev.args, ev.cflags, ev.aux), ([5, 8, 16, 0], 2, 7));
    let ev = round_trip(Register {
        opcode: 19,
        nr_files: 1,
        nr_bufs: 2,
    });
    assert_eq!(ev.args, [19, 1, 2, 0]);
    let ev = round_trip(CqeOverflow { ocqe: 0 });
    assert!(CqeOverflow::read(&ev).dropped());
    assert_eq!(round_trip(Link { target_req: 9 }).aux, 9);
    assert_eq!(round_trip(FailLink { link: 9 }).aux, 9);
    assert_eq!(round_trip(FileGet { fd: -1 }).args[0], u32::MAX);
    let ev = round_trip(QueueAsyncWork {
        req_flags: 1,
        work: 2,
        hashed: 1,
    });
    assert_eq!((ev.aux, ev.aux2, ev.args[0]), (1, 2, 1));
    let ev = round_trip(ReqFailed {
        sqe_flags: 4,
        off: 1,
        addr: 2,
        len: 3,
        op_flags: 5,
        ioprio: 6,
        buf_index: 7,
    });
    assert_eq!(
        (ev.cflags, ev.aux, ev.aux2, ev.args),
        (4, 1, 2, [3, 5, 6, 7])
    );
    let ev = round_trip(ShortWrite {
        pos: 4096,
        wanted: 100,
        got: 10,
    });
    assert_eq!((ev.aux, ev.aux2, ev.res), (4096, 100, 10));
    let ev = round_trip(SchedWaking {
        woken: 3,
        target_cpu: 1,
        prio: 120,
    });
    assert_eq!(ev.args, [3, 1, 120, 0]);
    let ev = round_trip(SchedSwitch {
        prev: 1,
        next: 2,
        prev_prio: 120,
        next_prio: 100,
        prev_state: 0x100,
    });
    assert_eq!((ev.args, ev.aux), ([1, 2, 120, 100], 0x100));
    let ev = round_trip(TaskNewtask {
        new_tid: 8,
        clone_flags: CLONE_IO,
    });
    assert!(TaskNewtask::read(&ev).io_thread());
    assert_eq!(
        round_trip(ProcessFork {
            parent: 1,
            child: 2
        })
        .args,
        [1, 2, 0, 0]
    );
    let ev = round_trip(AggOps {
        requests: 32,
        latency_sum_ns: 6400,
        ended_unseen: 3,
    });
    assert_eq!(ev.args[crate::aggregate::AGG_OPS_UNSEEN_ARG], 3);
    assert_eq!((ev.aux, ev.aux2), (32, 6400));
    let ev = round_trip(AggLatency {
        bucket: 5,
        requests: 2,
    });
    assert_eq!((ev.args[0], ev.aux), (5, 2));
    let v = FdObject::new(-1, FdType::Pipe, 77);
    let ev = round_trip(v);
    assert_eq!((ev.args[0], ev.args[1], ev.aux), (u32::MAX, 2, 77));
    assert_eq!(v.fd_type(), Some(FdType::Pipe));
    assert_eq!(round_trip(RingClosed { fd: 3 }).args, [3, 0, 0, 0]);
}

#[test]
fn fd_names_split_into_pieces_and_back() {
    let name = b"socket:127.0.0.1:8080->127.0.0.1:51234";
    let mut back = [0u8; 64];
    let mut n = 0;
    let mut count = 0;
    for (i, p) in FdName::pieces(7, name).enumerate() {
        let ev = round_trip(p);
        assert_eq!((ev.args[0], ev.args[1], ev.opcode), (7, 38, i as u8));
        let r = FdName::read(&ev);
        back[n..n + r.used()].copy_from_slice(&r.bytes[..r.used()]);
        n += r.used();
        count += 1;
    }
    assert_eq!((count, &back[..n]), (2, &name[..]));
    // Cut at MAX: 8 pieces, no more.
    let long = [b'a'; 1000];
    assert_eq!(FdName::pieces(1, &long).count(), 8);
    let last = FdName::pieces(1, &long).last().unwrap();
    assert_eq!((last.index, last.len, last.used()), (7, 256, 32));
    assert_eq!(FdName::pieces(1, b"").count(), 0);
}
