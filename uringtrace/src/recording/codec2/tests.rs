use uringtrace_common::{RawEvent, COMM_LEN};

use super::*;

/// Decodes every record of `bytes` (which must be whole records).
fn decode_all(bytes: &[u8]) -> Vec<RawEvent> {
    let mut st = State::default();
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let p = &bytes[pos..];
        let n = match p[0] {
            TAG_TASK => st.decode_task(p).unwrap(),
            TAG_RING => st.decode_ring(p).unwrap(),
            t if t <= TAG_MAX_KIND => {
                let (ev, n) = st.decode_event(p).unwrap();
                out.push(ev);
                n
            }
            t => panic!("tag {t:#x} at {pos}"),
        };
        pos += n;
    }
    out
}

fn encode_all(evs: &[RawEvent]) -> Vec<u8> {
    let mut enc = Encoder::default();
    let mut out = Vec::new();
    for e in evs {
        enc.encode_event(e, &mut out);
    }
    out
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// Events whose fields come from small pools (so every prediction is hit and
/// missed) and sometimes anything at all.
fn random_events(n: usize, seed: u64) -> Vec<RawEvent> {
    let mut r = Rng(seed);
    let mut ts = 1u64 << 40;
    let reqs: Vec<u64> = (0..400)
        .map(|i| 0xffff_8881_0000_0000 + i * 0x100)
        .collect();
    (0..n)
        .map(|_| {
            let wild = r.next().is_multiple_of(8);
            let any = |r: &mut Rng| {
                if r.next().is_multiple_of(2) {
                    r.next()
                } else {
                    0
                }
            };
            ts = ts.wrapping_add(r.next() % 1000).wrapping_sub(100);
            let mut comm = [0u8; COMM_LEN];
            let names: [&[u8]; 4] = [b"app", b"iou-wrk-7", b"a\0b", b"sixteen-bytes-xx"];
            let name = r.pick(&names);
            comm[..name.len()].copy_from_slice(name);
            RawEvent {
                ts_ns: if wild { r.next() } else { ts },
                ctx: r.pick(&[0, 0xffff_8880_1000_0000, 0xffff_8880_2000_0800, u64::MAX]),
                req: if r.next().is_multiple_of(4) {
                    0
                } else {
                    r.pick(&reqs)
                },
                user_data: if wild { r.next() } else { r.next() % 5 },
                aux: if wild { any(&mut r) } else { r.next() % 3 },
                aux2: if wild { any(&mut r) } else { 7 },
                pid: r.pick(&[1, 2, 3, u32::MAX]),
                tgid: r.pick(&[1, 1, 1, 9]),
                res: if wild {
                    r.next() as i32
                } else {
                    -(r.next() as i32 % 3)
                },
                cflags: if wild { r.next() as u32 } else { 0 },
                args: [r.next() as u32 % 2, 0, if wild { u32::MAX } else { 3 }, 1],
                kind: if wild {
                    r.next() as u16
                } else {
                    r.pick(&[9, 10, 32, 0, 15])
                },
                cpu: r.pick(&[0, 1, u16::MAX]),
                opcode: r.pick(&[0, 0, 22, 255]),
                role: r.pick(&[0, 0, 2]),
                _pad: if wild { [1, 2] } else { [0, 0] },
                comm,
            }
        })
        .collect()
}

#[test]
fn random_streams_round_trip() {
    for seed in 1..20 {
        let evs = random_events(5000, seed * 0x9E37_79B9);
        let bytes = encode_all(&evs);
        assert_eq!(decode_all(&bytes), evs, "seed {seed}");
    }
}

#[test]
fn extreme_values_round_trip() {
    let mut comm = [0xffu8; COMM_LEN];
    comm[3] = 0;
    let max = RawEvent {
        ts_ns: u64::MAX,
        ctx: u64::MAX,
        req: u64::MAX,
        user_data: u64::MAX,
        aux: u64::MAX,
        aux2: 1 << 63,
        pid: u32::MAX,
        tgid: u32::MAX,
        res: i32::MIN,
        cflags: u32::MAX,
        args: [u32::MAX; 4],
        kind: u16::MAX,
        cpu: u16::MAX,
        opcode: u8::MAX,
        role: u8::MAX,
        _pad: [0xff; 2],
        comm,
    };
    let evs = vec![RawEvent::default(), max, RawEvent::default(), max, max];
    let bytes = encode_all(&evs);
    assert_eq!(decode_all(&bytes), evs);
}

#[test]
fn tables_that_fill_up_are_reused() {
    // More tasks and rings than the tables hold: entries are recycled.
    let evs: Vec<RawEvent> = (0..(MAX_TASKS + 3000) as u64)
        .map(|i| RawEvent {
            ts_ns: i,
            ctx: 0x1000 + (i % (MAX_RINGS as u64 + 100)) * 0x800,
            req: 0x5000 + i * 64,
            user_data: i,
            pid: i as u32 % (MAX_TASKS as u32 + 700),
            kind: 9,
            ..RawEvent::default()
        })
        .collect();
    let bytes = encode_all(&evs);
    assert_eq!(decode_all(&bytes), evs);
}

#[test]
fn lookahead_bounds_the_longest_record() {
    let mut max = RawEvent {
        kind: 0xffff,
        ts_ns: 1 << 63,
        req: u64::MAX,
        user_data: 1 << 63,
        aux: 1 << 63,
        aux2: 1 << 62,
        cpu: u16::MAX,
        res: i32::MIN,
        cflags: u32::MAX,
        args: [u32::MAX; 4],
        opcode: 1,
        role: 1,
        _pad: [1, 1],
        ..RawEvent::default()
    };
    let mut enc = Encoder::default();
    let mut out = Vec::new();
    enc.encode_event(&RawEvent::default(), &mut out);
    out.clear();
    max.pid = 7;
    enc.encode_event(&max, &mut out);
    // Task record + event, both well under the bound.
    assert!(out.len() < LOOKAHEAD, "{}", out.len());
}

#[test]
fn every_prefix_of_a_record_is_short_and_corrupt_masks_are_bad() {
    let evs = random_events(300, 77);
    let bytes = encode_all(&evs);
    let mut st = State::default();
    let mut pos = 0;
    while pos < bytes.len() {
        let p = &bytes[pos..];
        let decode = |s: &mut State, p: &[u8]| match p[0] {
            TAG_TASK => s.decode_task(p),
            TAG_RING => s.decode_ring(p),
            _ => s.decode_event(p).map(|(_, n)| n),
        };
        let n = decode(&mut st.clone(), p).unwrap();
        for cut in 1..n {
            assert_eq!(decode(&mut st.clone(), &p[..cut]), Err(DecErr::Short));
        }
        decode(&mut st, p).unwrap();
        pos += n;
    }
    let ev = [9u8, 0, 0x80, 0x80, 0x40];
    assert_eq!(
        State::default().decode_event(&ev),
        Err(DecErr::Bad("unknown bits in the event mask"))
    );
    let ev = [9u8, 0, 0];
    assert_eq!(
        State::default().decode_event(&ev),
        Err(DecErr::Bad("event before any task record"))
    );
}

/// Random bytes (mostly with the continuation bit set, for the longest varints)
/// decoded over a populated state: no record ever needs more than 163 bytes.
#[test]
fn no_record_is_longer_than_the_bound() {
    let mut st = State::default();
    let bytes = encode_all(&random_events(2000, 5));
    let mut pos = 0;
    while pos < bytes.len() {
        let p = &bytes[pos..];
        pos += match p[0] {
            TAG_TASK => st.decode_task(p).unwrap(),
            TAG_RING => st.decode_ring(p).unwrap(),
            _ => st.decode_event(p).unwrap().1,
        };
    }
    let mut r = Rng(99);
    let mut buf = [0u8; LOOKAHEAD];
    for _ in 0..50_000 {
        for b in buf.iter_mut() {
            let x = r.next();
            *b = if x.is_multiple_of(10) {
                x as u8 & 0x7f
            } else {
                x as u8 | 0x80
            };
        }
        buf[0] = r.next() as u8;
        let mut s = st.clone();
        let r = match buf[0] {
            TAG_TASK => s.decode_task(&buf[..163]),
            TAG_RING => s.decode_ring(&buf[..163]),
            TAG_END.. => continue,
            _ => s.decode_event(&buf[..163]).map(|(_, n)| n),
        };
        assert_ne!(r, Err(DecErr::Short), "{buf:?}");
    }
}

/// The longest event: every varint in its overlong 10-byte form, every field
/// present, a literal req.
#[test]
fn the_longest_event_is_163_bytes() {
    fn long(p: &mut Vec<u8>, v: u64) {
        for k in 0..9 {
            p.push((v >> (7 * k)) as u8 & 0x7f | 0x80);
        }
        p.push((v >> 63) as u8);
    }
    let mut st = State::default();
    st.apply_task(0, 1, 1, [0; COMM_LEN]);
    let mask = REQ_LITERAL
        | UD_DELTA << UD_SHIFT
        | M_RES
        | M_TASK
        | M_RING
        | M_CFLAGS
        | M_OPCODE
        | V_VARINT << AUX_SHIFT
        | V_VARINT << AUX2_SHIFT
        | M_ARG[0]
        | M_ARG[1]
        | M_ARG[2]
        | M_ARG[3]
        | M_CPU
        | M_ROLE
        | M_PAD;
    let mut p = vec![TAG_KIND_ESCAPE];
    long(&mut p, 9); // kind
    long(&mut p, 2); // ts
    long(&mut p, mask.into());
    long(&mut p, 0); // task
    long(&mut p, 3); // cpu
    p.push(1); // role
    long(&mut p, 0); // ring
    p.extend_from_slice(&0x1234u64.to_le_bytes()); // req
    long(&mut p, 4); // user_data
    p.push(5); // opcode
    for v in [6, 7, 8, 9, 10, 11, 12, 13] {
        long(&mut p, v); // res, cflags, aux, aux2, args
    }
    p.extend_from_slice(&[1, 2]); // pad
    assert_eq!(p.len(), 163);
    let (ev, n) = st.clone().decode_event(&p).unwrap();
    assert_eq!(n, 163);
    assert_eq!(
        (ev.kind, ev.req, ev.user_data, ev.args[3]),
        (9, 0x1234, 2, 13)
    );
    assert_eq!(st.decode_event(&p[..162]), Err(DecErr::Short));
}

/// fd_name pieces (kind 45) are events like any other: they round-trip exactly, and
/// every prefix of one is short (a truncated file), never a wrong name.
#[test]
fn fd_name_pieces_round_trip_and_cut_short() {
    use uringtrace_common::view::{FdName, FdObject};
    use uringtrace_common::{EventView, FdType};
    let base = RawEvent {
        ts_ns: 5_000,
        pid: 42,
        tgid: 42,
        ..RawEvent::default()
    };
    let name = "socket:[::1]:8080->[::1]:51234 and a path with é";
    let mut evs = vec![FdObject::new(7, FdType::Socket, 99).into_raw(base)];
    evs.extend(FdName::pieces(7, name.as_bytes()).map(|p| p.into_raw(base)));
    assert_eq!(evs.len(), 3);
    let bytes = encode_all(&evs);
    assert_eq!(decode_all(&bytes), evs);
    let mut back = Vec::new();
    for e in &decode_all(&bytes)[1..] {
        let p = FdName::read(e);
        back.extend_from_slice(&p.bytes[..p.used()]);
    }
    assert_eq!(back, name.as_bytes());
    // Each record of the stream, cut anywhere, is short.
    let mut st = State::default();
    let mut pos = 0;
    while pos < bytes.len() {
        let p = &bytes[pos..];
        let decode = |s: &mut State, p: &[u8]| match p[0] {
            TAG_TASK => s.decode_task(p),
            TAG_RING => s.decode_ring(p),
            _ => s.decode_event(p).map(|(_, n)| n),
        };
        let n = decode(&mut st.clone(), p).unwrap();
        for cut in 1..n {
            assert_eq!(decode(&mut st.clone(), &p[..cut]), Err(DecErr::Short));
        }
        decode(&mut st, p).unwrap();
        pos += n;
    }
}
