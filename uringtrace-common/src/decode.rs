//! Pure decoding of ring-buffer bytes into [`RawEvent`]s.

use crate::{RawEvent, COMM_LEN, RAW_EVENT_SIZE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The sample is shorter than a [`RawEvent`].
    TooShort { len: usize },
    /// A compact sample whose tag no kernel program writes.
    BadTag { tag: u8 },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::TooShort { len } => {
                write!(f, "event sample is {len} bytes, expected {RAW_EVENT_SIZE}")
            }
            DecodeError::BadTag { tag } => write!(f, "compact event with unknown tag {tag:#x}"),
        }
    }
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(a)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_ne_bytes(a)
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}

impl RawEvent {
    /// Decodes one ring-buffer sample. The kernel writes native-endian values; the
    /// ring buffer gives 8-byte aligned samples but we never rely on alignment.
    pub fn decode(b: &[u8]) -> Result<RawEvent, DecodeError> {
        if b.len() < RAW_EVENT_SIZE {
            return Err(DecodeError::TooShort { len: b.len() });
        }
        let mut comm = [0u8; COMM_LEN];
        comm.copy_from_slice(&b[88..88 + COMM_LEN]);
        Ok(RawEvent {
            ts_ns: u64_at(b, 0),
            ctx: u64_at(b, 8),
            req: u64_at(b, 16),
            user_data: u64_at(b, 24),
            aux: u64_at(b, 32),
            aux2: u64_at(b, 40),
            pid: u32_at(b, 48),
            tgid: u32_at(b, 52),
            res: u32_at(b, 56) as i32,
            cflags: u32_at(b, 60),
            args: [u32_at(b, 64), u32_at(b, 68), u32_at(b, 72), u32_at(b, 76)],
            kind: u16_at(b, 80),
            cpu: u16_at(b, 82),
            opcode: b[84],
            role: b[85],
            _pad: [b[86], b[87]],
            comm,
        })
    }

    /// Inverse of [`RawEvent::decode`]; used by tests and fixtures.
    pub fn encode(&self) -> [u8; RAW_EVENT_SIZE] {
        let mut b = [0u8; RAW_EVENT_SIZE];
        b[0..8].copy_from_slice(&self.ts_ns.to_ne_bytes());
        b[8..16].copy_from_slice(&self.ctx.to_ne_bytes());
        b[16..24].copy_from_slice(&self.req.to_ne_bytes());
        b[24..32].copy_from_slice(&self.user_data.to_ne_bytes());
        b[32..40].copy_from_slice(&self.aux.to_ne_bytes());
        b[40..48].copy_from_slice(&self.aux2.to_ne_bytes());
        b[48..52].copy_from_slice(&self.pid.to_ne_bytes());
        b[52..56].copy_from_slice(&self.tgid.to_ne_bytes());
        b[56..60].copy_from_slice(&self.res.to_ne_bytes());
        b[60..64].copy_from_slice(&self.cflags.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[64 + 4 * i..68 + 4 * i].copy_from_slice(&a.to_ne_bytes());
        }
        b[80..82].copy_from_slice(&self.kind.to_ne_bytes());
        b[82..84].copy_from_slice(&self.cpu.to_ne_bytes());
        b[84] = self.opcode;
        b[85] = self.role;
        b[86..88].copy_from_slice(&self._pad);
        b[88..88 + COMM_LEN].copy_from_slice(&self.comm);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn offsets_match_the_decoder() {
        assert_eq!(offset_of!(RawEvent, ts_ns), 0);
        assert_eq!(offset_of!(RawEvent, aux2), 40);
        assert_eq!(offset_of!(RawEvent, pid), 48);
        assert_eq!(offset_of!(RawEvent, res), 56);
        assert_eq!(offset_of!(RawEvent, args), 64);
        assert_eq!(offset_of!(RawEvent, kind), 80);
        assert_eq!(offset_of!(RawEvent, opcode), 84);
        assert_eq!(offset_of!(RawEvent, comm), 88);
    }

    #[test]
    fn decodes_hand_built_bytes() {
        let mut b = [0u8; RAW_EVENT_SIZE];
        b[0..8].copy_from_slice(&123_456_789u64.to_ne_bytes());
        b[8..16].copy_from_slice(&0xffff_8880_0000_1000u64.to_ne_bytes());
        b[24..32].copy_from_slice(&42u64.to_ne_bytes());
        b[48..52].copy_from_slice(&7u32.to_ne_bytes());
        b[52..56].copy_from_slice(&5u32.to_ne_bytes());
        b[56..60].copy_from_slice(&(-125i32).to_ne_bytes());
        b[60..64].copy_from_slice(&3u32.to_ne_bytes());
        b[72..76].copy_from_slice(&9u32.to_ne_bytes());
        b[80..82].copy_from_slice(&9u16.to_ne_bytes());
        b[82..84].copy_from_slice(&1u16.to_ne_bytes());
        b[84] = 22;
        b[85] = 1;
        b[88..92].copy_from_slice(b"nop\0");
        let e = RawEvent::decode(&b).unwrap();
        assert_eq!(e.ts_ns, 123_456_789);
        assert_eq!(e.ctx, 0xffff_8880_0000_1000);
        assert_eq!(e.user_data, 42);
        assert_eq!((e.pid, e.tgid), (7, 5));
        assert_eq!(e.res, -125);
        assert_eq!(e.cflags, 3);
        assert_eq!(e.args, [0, 0, 9, 0]);
        assert_eq!(e.kind, 9);
        assert_eq!(e.cpu, 1);
        assert_eq!(e.opcode, 22);
        assert_eq!(e.role, 1);
        assert_eq!(&e.comm[..4], b"nop\0");
        assert_eq!(e.encode(), b);
    }

    #[test]
    fn rejects_short_samples() {
        assert_eq!(
            RawEvent::decode(&[0u8; 50]),
            Err(DecodeError::TooShort { len: 50 })
        );
    }

    #[test]
    fn longer_samples_decode_prefix() {
        // The ring buffer rounds samples up to 8 bytes; extra bytes are ignored.
        let mut b = [0u8; RAW_EVENT_SIZE + 8];
        b[80] = 1;
        assert_eq!(RawEvent::decode(&b).unwrap().kind, 1);
    }

    #[test]
    fn kind_numbers_round_trip() {
        for k in EventKindAll() {
            assert_eq!(crate::EventKind::from_u16(k as u16), Some(k));
            assert_eq!(crate::EventKind::from_name(k.name()), Some(k));
        }
    }

    #[allow(non_snake_case)]
    fn EventKindAll() -> impl Iterator<Item = crate::EventKind> {
        crate::EventKind::ALL.iter().copied()
    }

    #[test]
    fn role_from_comm() {
        use crate::Role;
        assert_eq!(Role::from_comm(b"iou-sqp-1234\0\0\0\0"), Role::SqPoll);
        assert_eq!(Role::from_comm(b"iou-wrk-99"), Role::IoWorker);
        assert_eq!(Role::from_comm(b"io_uring-sq"), Role::SqPoll);
        assert_eq!(Role::from_comm(b"io_wqe_worker-0"), Role::IoWorker);
        assert_eq!(Role::from_comm(b"fio"), Role::Submitter);
    }
}
