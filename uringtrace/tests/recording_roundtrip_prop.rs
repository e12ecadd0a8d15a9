//! Property: the current format's writer and reader round-trip any event sequence
//! exactly, field for field (padding included), whether the recording is finished or
//! abandoned mid-flight, with `fd_name` runs (a name in 32-byte pieces) among the
//! events. Events come both fully random and drawn from small sets of rings,
//! requests and tasks, so that the encoder's predictions (same task, same ring,
//! known request) are hit and missed.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;

use proptest::prelude::*;
use uringtrace::recording::{ClockBase, Drops, Filter, Header, ReadStatus, Reader, Writer};
use uringtrace::trace::fdinfo::fd_name_events;
use uringtrace_common::{EventKind, RawEvent};

fn header() -> Header {
    Header {
        format: Header::FORMAT.into(),
        format_version: 0,
        tool_version: "prop".into(),
        kernel_release: "6.18".into(),
        host: "h".into(),
        clock: ClockBase {
            source: "CLOCK_MONOTONIC".into(),
            start_monotonic_ns: 1,
            start_realtime_ns: 2,
        },
        tracepoints: Vec::new(),
        missing: Vec::new(),
        degraded: Vec::new(),
        filter: Filter::default(),
        ring_bytes: 1 << 20,
        ncpus: 2,
        drops: Drops::default(),
        finished: false,
    }
}

/// Any bytes at all.
fn any_event() -> impl Strategy<Value = RawEvent> {
    (
        (any::<[u64; 6]>(), any::<[u32; 4]>(), any::<[u32; 4]>()),
        (any::<u16>(), any::<u16>(), any::<u8>(), any::<u8>()),
        (any::<[u8; 2]>(), any::<[u8; 16]>()),
    )
        .prop_map(
            |((w, s, args), (kind, cpu, opcode, role), (pad, comm))| RawEvent {
                ts_ns: w[0],
                ctx: w[1],
                req: w[2],
                user_data: w[3],
                aux: w[4],
                aux2: w[5],
                pid: s[0],
                tgid: s[1],
                res: s[2] as i32,
                cflags: s[3],
                args,
                kind,
                cpu,
                opcode,
                role,
                _pad: pad,
                comm,
            },
        )
}

/// Events as a trace has them: known kinds, a few rings, requests and tasks.
fn plausible_event() -> impl Strategy<Value = RawEvent> {
    (
        (0..EventKind::ALL.len(), 0u64..4, 0u64..8, 0u64..6, 0u32..6),
        (any::<u64>(), any::<i32>(), any::<u32>(), 0u8..64, 0u8..4),
        (any::<[u32; 4]>(), 0u16..4, 0u8..3),
    )
        .prop_map(
            |((k, ring, req, ud, task), (aux, res, cflags, opcode, role), (args, cpu, comm))| {
                let mut c = [0u8; 16];
                let name: &[u8] = [&b"server"[..], b"iou-wrk-1", b"iou-sqp-9"][comm as usize];
                c[..name.len()].copy_from_slice(name);
                RawEvent {
                    ts_ns: 0, // set in order below
                    ctx: 0xffff_8880_1000_0000 + ring * 0x800,
                    req: if req == 0 {
                        0
                    } else {
                        0xffff_8881_2000_0000 + req * 0x100
                    },
                    user_data: ud,
                    aux: if aux % 3 == 0 { aux } else { aux % 1000 },
                    aux2: aux >> 7,
                    pid: 1000 + task,
                    tgid: 1000 + task / 3,
                    res,
                    cflags,
                    args,
                    kind: EventKind::ALL[k] as u16,
                    cpu,
                    opcode,
                    role,
                    _pad: [0; 2],
                    comm: c,
                }
            },
        )
}

/// One step of a trace: an event, or the pieces of a name of an fd.
#[derive(Clone, Debug)]
enum Step {
    Event(RawEvent),
    Plausible(RawEvent, u64),
    FdName(u32, i32, String),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        1 => any_event().prop_map(Step::Event),
        4 => (plausible_event(), 0u64..5_000_000).prop_map(|(e, dt)| Step::Plausible(e, dt)),
        1 => (1000u32..1003, -1i32..40, ".{0,300}").prop_map(|(t, fd, n)| Step::FdName(t, fd, n)),
    ];
    proptest::collection::vec(step, 0..200)
}

fn events(steps: &[Step]) -> Vec<RawEvent> {
    let mut ts = 1_000_000u64;
    let mut out = Vec::new();
    for s in steps {
        match s {
            Step::Event(e) => out.push(*e),
            Step::Plausible(e, dt) => {
                ts += dt;
                out.push(RawEvent { ts_ns: ts, ..*e });
            }
            Step::FdName(tgid, fd, name) => out.extend(fd_name_events(ts, *tgid, *fd, name)),
        }
    }
    out
}

fn read(bytes: &[u8]) -> (Vec<RawEvent>, ReadStatus, Drops) {
    let mut r = Reader::new(bytes).unwrap();
    let mut got = Vec::new();
    while let Some(ev) = r.next_event().unwrap() {
        got.push(ev);
    }
    (got, r.status().clone(), r.drops().clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn record_then_read_gives_back_every_event(steps in steps(), finish in any::<bool>()) {
        let evs = events(&steps);
        let mut w = Writer::new(Cursor::new(Vec::new()), header()).unwrap();
        for ev in &evs {
            w.write_event(ev).unwrap();
        }
        let drops = Drops { per_cpu: vec![1, 2], total: 3, emitted: 9, recorded: 0, end_monotonic_ns: 7 };
        let bytes = if finish {
            w.finish(drops.clone()).unwrap().into_inner()
        } else {
            w.abandon().unwrap().into_inner()
        };
        let (got, status, read_drops) = read(&bytes);
        prop_assert_eq!(got.len(), evs.len());
        for (i, (a, b)) in got.iter().zip(&evs).enumerate() {
            prop_assert_eq!(a, b, "event {}", i);
        }
        if finish {
            prop_assert_eq!(status, ReadStatus::Complete);
            prop_assert_eq!(read_drops, Drops { recorded: evs.len() as u64, ..drops });
        } else {
            prop_assert_eq!(status, ReadStatus::Unfinished);
        }
    }
}
