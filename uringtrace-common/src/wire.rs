//! The compact ring-buffer form of the hottest events, and decoding of every sample.
//!
//! A [`RawEvent`] is 104 bytes; with the ring buffer's 8-byte record header a submit
//! and its completion took 224 bytes of ring and most of two cache lines each. A
//! [`WireEvent`] is 56 bytes: header included, one 64-byte cache line. It carries no
//! comm (userspace knows it per task: the first event a task sends after the kernel
//! filled its per-CPU task cache is a full [`RawEvent`], comm included) and packs the
//! few kind-specific values submits and completions have. Any event that does not fit
//! is sent full size; the two are told apart by the sample's length.

use crate::{EventKind, RawEvent, Role, RAW_EVENT_SIZE};

/// One submit or completion, as the kernel writes it when it fits (see [`WireEvent::pack`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WireEvent {
    pub ts_ns: u64,
    pub ctx: u64,
    pub req: u64,
    pub user_data: u64,
    /// Submit: `aux` (req->flags). Complete: `res` in the low 32 bits, `cflags` in the
    /// high 32 bits.
    pub aux: u64,
    pub pid: u32,
    pub tgid: u32,
    /// Submit: `args[2]` (the SQE's fd). Complete: 0.
    pub arg: u32,
    pub cpu: u16,
    pub opcode: u8,
    /// Bits 0-1: [`WireKind`]; 2-3: role; 4-5: `args[1]`; 6: `args[3]` is
    /// [`crate::aggregate::SUBMIT_FROM_TABLE`].
    pub tag: u8,
}

pub const WIRE_EVENT_SIZE: usize = 56;
const _: () = assert!(core::mem::size_of::<WireEvent>() == WIRE_EVENT_SIZE);
const _: () = assert!(core::mem::align_of::<WireEvent>() == 8);
// Header included, one cache line.
const _: () = assert!(WIRE_EVENT_SIZE + 8 <= 64);

/// The event kinds a [`WireEvent`] can carry (`tag` bits 0-1).
pub const WIRE_SUBMIT: u8 = 0;
pub const WIRE_COMPLETE: u8 = 1;

const TAG_ROLE_SHIFT: u8 = 2;
const TAG_ARG1_SHIFT: u8 = 4;
const TAG_FROM_TABLE: u8 = 1 << 6;

/// Builds a [`WireEvent::tag`].
#[inline(always)]
pub const fn tag(wire_kind: u8, role: u8, arg1: u32, from_table: bool) -> u8 {
    (wire_kind & 3)
        | ((role & 3) << TAG_ROLE_SHIFT)
        | (((arg1 & 3) as u8) << TAG_ARG1_SHIFT)
        | if from_table { TAG_FROM_TABLE } else { 0 }
}

impl WireEvent {
    /// The tag and the packed `aux`/`arg` of `ev` when it fits in a [`WireEvent`]:
    /// a submit or completion whose other kind-specific fields are zero and whose
    /// small values fit their bits. The comm is never carried.
    #[inline(always)]
    pub fn pack(ev: &RawEvent) -> Option<(u8, u64, u32)> {
        if ev.args[0] != 0 || ev.args[1] > 3 || ev.aux2 != 0 || ev.role > 2 || ev._pad != [0; 2] {
            return None;
        }
        if ev.kind == EventKind::Submit as u16 {
            let from_table = ev.args[3] == crate::aggregate::SUBMIT_FROM_TABLE;
            if ev.res != 0 || ev.cflags != 0 || (ev.args[3] != 0 && !from_table) {
                return None;
            }
            Some((
                tag(WIRE_SUBMIT, ev.role, ev.args[1], from_table),
                ev.aux,
                ev.args[2],
            ))
        } else if ev.kind == EventKind::Complete as u16 {
            if ev.aux != 0 || ev.args[2] != 0 || ev.args[3] != 0 {
                return None;
            }
            Some((
                tag(WIRE_COMPLETE, ev.role, ev.args[1], false),
                ev.res as u32 as u64 | (ev.cflags as u64) << 32,
                0,
            ))
        } else {
            None
        }
    }

    /// The full event (comm zero: the caller knows it per task). None: a tag no
    /// kernel program writes.
    pub fn expand(&self) -> Option<RawEvent> {
        let role = (self.tag >> TAG_ROLE_SHIFT) & 3;
        Role::from_u8(role)?;
        let arg1 = ((self.tag >> TAG_ARG1_SHIFT) & 3) as u32;
        let mut ev = RawEvent {
            ts_ns: self.ts_ns,
            ctx: self.ctx,
            req: self.req,
            user_data: self.user_data,
            pid: self.pid,
            tgid: self.tgid,
            cpu: self.cpu,
            opcode: self.opcode,
            role,
            ..RawEvent::default()
        };
        ev.args[1] = arg1;
        match self.tag & 3 {
            WIRE_SUBMIT => {
                ev.kind = EventKind::Submit as u16;
                ev.aux = self.aux;
                ev.args[2] = self.arg;
                if self.tag & TAG_FROM_TABLE != 0 {
                    ev.args[3] = crate::aggregate::SUBMIT_FROM_TABLE;
                }
            }
            WIRE_COMPLETE if self.tag & TAG_FROM_TABLE == 0 && self.arg == 0 => {
                ev.kind = EventKind::Complete as u16;
                ev.res = self.aux as u32 as i32;
                ev.cflags = (self.aux >> 32) as u32;
            }
            _ => return None,
        }
        Some(ev)
    }

    /// Decodes a compact sample (native-endian, alignment not relied on).
    pub fn decode(b: &[u8]) -> Option<WireEvent> {
        let b: &[u8; WIRE_EVENT_SIZE] = b.get(..WIRE_EVENT_SIZE)?.try_into().ok()?;
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
        Some(WireEvent {
            ts_ns: u64_at(0),
            ctx: u64_at(8),
            req: u64_at(16),
            user_data: u64_at(24),
            aux: u64_at(32),
            pid: u32_at(40),
            tgid: u32_at(44),
            arg: u32_at(48),
            cpu: u16::from_ne_bytes([b[52], b[53]]),
            opcode: b[54],
            tag: b[55],
        })
    }

    /// Inverse of [`WireEvent::decode`]; used by tests and benchmarks.
    pub fn encode(&self) -> [u8; WIRE_EVENT_SIZE] {
        let mut b = [0u8; WIRE_EVENT_SIZE];
        b[0..8].copy_from_slice(&self.ts_ns.to_ne_bytes());
        b[8..16].copy_from_slice(&self.ctx.to_ne_bytes());
        b[16..24].copy_from_slice(&self.req.to_ne_bytes());
        b[24..32].copy_from_slice(&self.user_data.to_ne_bytes());
        b[32..40].copy_from_slice(&self.aux.to_ne_bytes());
        b[40..44].copy_from_slice(&self.pid.to_ne_bytes());
        b[44..48].copy_from_slice(&self.tgid.to_ne_bytes());
        b[48..52].copy_from_slice(&self.arg.to_ne_bytes());
        b[52..54].copy_from_slice(&self.cpu.to_ne_bytes());
        b[54] = self.opcode;
        b[55] = self.tag;
        b
    }

    /// The compact form of `ev`, when it fits (tests and benchmarks; the kernel
    /// stores the fields itself).
    pub fn of(ev: &RawEvent) -> Option<WireEvent> {
        let (tag, aux, arg) = WireEvent::pack(ev)?;
        Some(WireEvent {
            ts_ns: ev.ts_ns,
            ctx: ev.ctx,
            req: ev.req,
            user_data: ev.user_data,
            aux,
            pid: ev.pid,
            tgid: ev.tgid,
            arg,
            cpu: ev.cpu,
            opcode: ev.opcode,
            tag,
        })
    }
}

/// One ring-buffer sample, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// A full event: its comm is the task's (`pid`'s) current comm.
    Full(RawEvent),
    /// A compact event, expanded: comm zero, to be filled from what full events said.
    Compact(RawEvent),
}

/// Decodes one ring-buffer sample, full or compact by its length. Pure.
pub fn decode_sample(b: &[u8]) -> Result<Sample, crate::DecodeError> {
    // The ring buffer reports a sample's exact reserved length.
    if b.len() >= RAW_EVENT_SIZE {
        return RawEvent::decode(b).map(Sample::Full);
    }
    if b.len() == WIRE_EVENT_SIZE {
        return WireEvent::decode(b)
            .and_then(|w| w.expand())
            .map(Sample::Compact)
            .ok_or(crate::DecodeError::BadTag { tag: b[55] });
    }
    Err(crate::DecodeError::TooShort { len: b.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn offsets_match_the_decoder() {
        assert_eq!(offset_of!(WireEvent, aux), 32);
        assert_eq!(offset_of!(WireEvent, pid), 40);
        assert_eq!(offset_of!(WireEvent, tgid), 44);
        assert_eq!(offset_of!(WireEvent, arg), 48);
        assert_eq!(offset_of!(WireEvent, cpu), 52);
        assert_eq!(offset_of!(WireEvent, opcode), 54);
        assert_eq!(offset_of!(WireEvent, tag), 55);
    }

    fn submit_bytes() -> [u8; WIRE_EVENT_SIZE] {
        let mut b = [0u8; WIRE_EVENT_SIZE];
        b[0..8].copy_from_slice(&1_000u64.to_ne_bytes());
        b[8..16].copy_from_slice(&0xffff_8880_0000_1000u64.to_ne_bytes());
        b[16..24].copy_from_slice(&0xffff_8880_0000_2000u64.to_ne_bytes());
        b[24..32].copy_from_slice(&77u64.to_ne_bytes());
        b[32..40].copy_from_slice(&0x1_0000_0004u64.to_ne_bytes());
        b[40..44].copy_from_slice(&8u32.to_ne_bytes());
        b[44..48].copy_from_slice(&5u32.to_ne_bytes());
        b[48..52].copy_from_slice(&3u32.to_ne_bytes());
        b[52..54].copy_from_slice(&1u16.to_ne_bytes());
        b[54] = 22;
        // Submit, role SqPoll (1), args[1] = 1, from the table.
        b[55] = 0b0101_0100;
        b
    }

    #[test]
    fn decodes_a_hand_built_submit() {
        let b = submit_bytes();
        let Ok(Sample::Compact(e)) = decode_sample(&b) else {
            panic!("not a compact sample");
        };
        assert_eq!(e.kind, EventKind::Submit as u16);
        assert_eq!(e.ts_ns, 1_000);
        assert_eq!(e.ctx, 0xffff_8880_0000_1000);
        assert_eq!(e.req, 0xffff_8880_0000_2000);
        assert_eq!(e.user_data, 77);
        assert_eq!(e.aux, 0x1_0000_0004);
        assert_eq!(e.aux2, 0);
        assert_eq!((e.pid, e.tgid, e.cpu, e.opcode), (8, 5, 1, 22));
        assert_eq!(e.role, Role::SqPoll as u8);
        assert_eq!(e.args, [0, 1, 3, crate::aggregate::SUBMIT_FROM_TABLE]);
        assert_eq!((e.res, e.cflags), (0, 0));
        assert_eq!(e.comm, [0; 16]);
        assert_eq!(WireEvent::of(&e).map(|w| w.encode()), Some(b));
    }

    #[test]
    fn decodes_a_hand_built_completion() {
        let mut b = [0u8; WIRE_EVENT_SIZE];
        b[0..8].copy_from_slice(&2_000u64.to_ne_bytes());
        b[16..24].copy_from_slice(&0xffff_8880_0000_2000u64.to_ne_bytes());
        b[24..32].copy_from_slice(&77u64.to_ne_bytes());
        b[32..36].copy_from_slice(&(-11i32).to_ne_bytes());
        b[36..40].copy_from_slice(&2u32.to_ne_bytes());
        b[40..44].copy_from_slice(&8u32.to_ne_bytes());
        b[44..48].copy_from_slice(&8u32.to_ne_bytes());
        // Complete, io-wq (2), args[1] = 2 (regular file).
        b[55] = 0b0010_1001;
        let Ok(Sample::Compact(e)) = decode_sample(&b) else {
            panic!("not a compact sample");
        };
        assert_eq!(e.kind, EventKind::Complete as u16);
        assert_eq!((e.res, e.cflags), (-11, 2));
        assert_eq!((e.aux, e.aux2), (0, 0));
        assert_eq!(e.args, [0, 2, 0, 0]);
        assert_eq!(e.role, Role::IoWorker as u8);
        assert_eq!((e.ctx, e.req, e.user_data), (0, 0xffff_8880_0000_2000, 77));
        assert_eq!(WireEvent::of(&e).map(|w| w.encode()), Some(b));
    }

    #[test]
    fn rejects_tags_no_program_writes() {
        let mut b = submit_bytes();
        b[55] = 2; // wire kind 2
        assert_eq!(
            decode_sample(&b),
            Err(crate::DecodeError::BadTag { tag: 2 })
        );
        b[55] = 0b1100; // role 3
        assert!(decode_sample(&b).is_err());
        b[55] = WIRE_COMPLETE | TAG_FROM_TABLE;
        assert!(decode_sample(&b).is_err());
    }

    #[test]
    fn full_samples_decode_by_length() {
        let ev = RawEvent {
            kind: EventKind::EnterEnter as u16,
            pid: 3,
            comm: *b"app\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..RawEvent::default()
        };
        assert_eq!(decode_sample(&ev.encode()), Ok(Sample::Full(ev)));
        assert_eq!(
            decode_sample(&[0u8; 57]),
            Err(crate::DecodeError::TooShort { len: 57 })
        );
        assert_eq!(
            decode_sample(&[0u8; 48]),
            Err(crate::DecodeError::TooShort { len: 48 })
        );
    }

    #[test]
    fn only_what_fits_is_packed() {
        let sub = RawEvent {
            kind: EventKind::Submit as u16,
            args: [0, 1, 9, 0],
            aux: u64::MAX,
            role: 2,
            ..RawEvent::default()
        };
        let w = WireEvent::of(&sub).unwrap();
        assert_eq!(w.expand(), Some(sub));
        // A futex submit's word (aux2), a completion's extra values, other kinds,
        // a comm: none of them fit... except the comm, which is never carried.
        assert_eq!(WireEvent::pack(&RawEvent { aux2: 1, ..sub }), None);
        assert_eq!(
            WireEvent::pack(&RawEvent {
                args: [0, 1, 9, 2],
                ..sub
            }),
            None
        );
        assert_eq!(WireEvent::pack(&RawEvent { res: 1, ..sub }), None);
        let comp = RawEvent {
            kind: EventKind::Complete as u16,
            res: i32::MIN,
            cflags: u32::MAX,
            args: [0, 1, 0, 0],
            ..RawEvent::default()
        };
        assert_eq!(WireEvent::of(&comp).unwrap().expand(), Some(comp));
        assert_eq!(WireEvent::pack(&RawEvent { aux: 1, ..comp }), None);
        assert_eq!(
            WireEvent::pack(&RawEvent {
                args: [1, 0, 0, 0],
                ..comp
            }),
            None
        );
        let other = RawEvent {
            kind: EventKind::EnterEnter as u16,
            ..RawEvent::default()
        };
        assert_eq!(WireEvent::pack(&other), None);
        let named = RawEvent {
            comm: *b"fio\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..comp
        };
        assert_eq!(WireEvent::of(&named).unwrap().expand(), Some(comp));
    }
}
