//! Format version 1 (docs/recording-format.md, "Records (version 1)"): only read now,
//! the writer writes version 2 (codec2). Kept whole in this module so it can be
//! dropped in one piece; tested on a committed version-1 recording
//! (tests/fixtures/v1/chain-ok-v1.utr, see `upgrade`).
//!
//! Every record is a type byte, a payload length (varint) and the payload; the
//! framing is read by [`super::Reader`], the payloads here. An event record omits
//! what a preceding task record already said (tgid, comm) and stores its timestamp
//! as a delta, absent fields as a bit in a presence mask, and small numbers as
//! varints: about 30 bytes per event instead of 104.

use std::collections::HashMap;

use uringtrace_common::{RawEvent, COMM_LEN};

use super::varint::{get_i64, get_u64, put_i64, put_u64};

/// Record types.
pub const REC_TASK: u8 = 1;
pub const REC_EVENT: u8 = 2;
pub const REC_END: u8 = 3;

/// What a reader of a version-1 file keeps between records.
#[derive(Clone, Debug, Default)]
pub struct State {
    tasks: TaskTable,
    prev_ts: u64,
}

impl State {
    /// Applies the task or event record of type `kind` (not [`REC_END`], which the
    /// reader handles for both versions): the event, if it is one. Err: why the record
    /// is corrupt.
    pub fn record(&mut self, kind: u8, payload: &[u8]) -> Result<Option<RawEvent>, String> {
        match kind {
            REC_TASK => {
                let (tid, tgid, comm) =
                    decode_task(payload).ok_or_else(|| "malformed task record".to_string())?;
                self.tasks.set(tid, tgid, comm);
                Ok(None)
            }
            REC_EVENT => {
                let ev = decode_event(payload, self.prev_ts, &self.tasks)
                    .ok_or_else(|| "malformed event record".to_string())?;
                self.prev_ts = ev.ts_ns;
                Ok(Some(ev))
            }
            other => Err(format!("unknown record type {other}")),
        }
    }
}

/// tid → (tgid, comm), as established by task records. Looked up once per event:
/// foldhash (seeded per table, so a crafted file cannot pick colliding tids), not
/// SipHash, which took about 15% of a version-1 replay.
#[derive(Clone, Debug, Default)]
pub struct TaskTable {
    tasks: HashMap<u32, (u32, [u8; COMM_LEN]), foldhash::fast::RandomState>,
}

impl TaskTable {
    /// True when `ev`'s task is unknown or changed (exec, rename, tid reuse).
    pub fn is_current(&self, ev: &RawEvent) -> bool {
        self.tasks.get(&ev.pid) == Some(&(ev.tgid, ev.comm))
    }

    pub fn set(&mut self, tid: u32, tgid: u32, comm: [u8; COMM_LEN]) {
        self.tasks.insert(tid, (tgid, comm));
    }

    pub fn get(&self, tid: u32) -> Option<&(u32, [u8; COMM_LEN])> {
        self.tasks.get(&tid)
    }
}

#[cfg(test)]
pub fn encode_task(tid: u32, tgid: u32, comm: &[u8; COMM_LEN], out: &mut Vec<u8>) {
    put_u64(out, tid.into());
    put_u64(out, tgid.into());
    let len = comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
    out.push(len as u8);
    out.extend_from_slice(&comm[..len]);
}

pub fn decode_task(p: &[u8]) -> Option<(u32, u32, [u8; COMM_LEN])> {
    let mut pos = 0;
    let tid = u32::try_from(get_u64(p, &mut pos).ok()?).ok()?;
    let tgid = u32::try_from(get_u64(p, &mut pos).ok()?).ok()?;
    let len = *p.get(pos)? as usize;
    pos += 1;
    if len > COMM_LEN || pos + len != p.len() {
        return None;
    }
    let mut comm = [0u8; COMM_LEN];
    comm[..len].copy_from_slice(&p[pos..pos + len]);
    Some((tid, tgid, comm))
}

const HAS_CTX: u16 = 1 << 0;
const HAS_REQ: u16 = 1 << 1;
const HAS_USER_DATA: u16 = 1 << 2;
const HAS_AUX: u16 = 1 << 3;
const HAS_AUX2: u16 = 1 << 4;
const HAS_RES: u16 = 1 << 5;
const HAS_CFLAGS: u16 = 1 << 6;
const HAS_OPCODE: u16 = 1 << 7;
const HAS_ARG0: u16 = 1 << 8;
const KNOWN_BITS: u16 = (1 << 12) - 1;

/// Encodes the payload of an event record. `prev_ts` is the previous event's
/// timestamp in the file (events from different CPUs may go backwards: zigzag).
pub fn encode_event(ev: &RawEvent, prev_ts: u64, out: &mut Vec<u8>) {
    put_u64(out, ev.kind.into());
    put_i64(out, ev.ts_ns.wrapping_sub(prev_ts) as i64);
    put_u64(out, ev.cpu.into());
    put_u64(out, ev.pid.into());
    out.push(ev.role);
    let mut mask = 0u16;
    let bit = |cond: bool, b: u16| if cond { b } else { 0 };
    mask |= bit(ev.ctx != 0, HAS_CTX);
    mask |= bit(ev.req != 0, HAS_REQ);
    mask |= bit(ev.user_data != 0, HAS_USER_DATA);
    mask |= bit(ev.aux != 0, HAS_AUX);
    mask |= bit(ev.aux2 != 0, HAS_AUX2);
    mask |= bit(ev.res != 0, HAS_RES);
    mask |= bit(ev.cflags != 0, HAS_CFLAGS);
    mask |= bit(ev.opcode != 0, HAS_OPCODE);
    for (i, a) in ev.args.iter().enumerate() {
        mask |= bit(*a != 0, HAS_ARG0 << i);
    }
    out.extend_from_slice(&mask.to_le_bytes());
    // Kernel pointers are ~0xffff88..: fixed 8 bytes beat a 10-byte varint.
    if mask & HAS_CTX != 0 {
        out.extend_from_slice(&ev.ctx.to_le_bytes());
    }
    if mask & HAS_REQ != 0 {
        out.extend_from_slice(&ev.req.to_le_bytes());
    }
    if mask & HAS_USER_DATA != 0 {
        put_u64(out, ev.user_data);
    }
    if mask & HAS_AUX != 0 {
        put_u64(out, ev.aux);
    }
    if mask & HAS_AUX2 != 0 {
        put_u64(out, ev.aux2);
    }
    if mask & HAS_RES != 0 {
        put_i64(out, ev.res.into());
    }
    if mask & HAS_CFLAGS != 0 {
        put_u64(out, ev.cflags.into());
    }
    if mask & HAS_OPCODE != 0 {
        out.push(ev.opcode);
    }
    for (i, a) in ev.args.iter().enumerate() {
        if mask & (HAS_ARG0 << i) != 0 {
            put_u64(out, (*a).into());
        }
    }
}

fn fixed_u64(p: &[u8], pos: &mut usize) -> Option<u64> {
    let b: [u8; 8] = p.get(*pos..*pos + 8)?.try_into().ok()?;
    *pos += 8;
    Some(u64::from_le_bytes(b))
}

/// Decodes an event payload; the task table supplies tgid and comm. None: corrupt.
pub fn decode_event(p: &[u8], prev_ts: u64, tasks: &TaskTable) -> Option<RawEvent> {
    let mut pos = 0;
    let mut ev = RawEvent {
        kind: u16::try_from(get_u64(p, &mut pos).ok()?).ok()?,
        ts_ns: prev_ts.wrapping_add(get_i64(p, &mut pos).ok()? as u64),
        cpu: u16::try_from(get_u64(p, &mut pos).ok()?).ok()?,
        pid: u32::try_from(get_u64(p, &mut pos).ok()?).ok()?,
        ..RawEvent::default()
    };
    ev.role = *p.get(pos)?;
    pos += 1;
    let mask = u16::from_le_bytes(p.get(pos..pos + 2)?.try_into().ok()?);
    pos += 2;
    if mask & !KNOWN_BITS != 0 {
        return None;
    }
    let u32v = |p: &[u8], pos: &mut usize| get_u64(p, pos).ok().and_then(|v| u32::try_from(v).ok());
    if mask & HAS_CTX != 0 {
        ev.ctx = fixed_u64(p, &mut pos)?;
    }
    if mask & HAS_REQ != 0 {
        ev.req = fixed_u64(p, &mut pos)?;
    }
    if mask & HAS_USER_DATA != 0 {
        ev.user_data = get_u64(p, &mut pos).ok()?;
    }
    if mask & HAS_AUX != 0 {
        ev.aux = get_u64(p, &mut pos).ok()?;
    }
    if mask & HAS_AUX2 != 0 {
        ev.aux2 = get_u64(p, &mut pos).ok()?;
    }
    if mask & HAS_RES != 0 {
        ev.res = i32::try_from(get_i64(p, &mut pos).ok()?).ok()?;
    }
    if mask & HAS_CFLAGS != 0 {
        ev.cflags = u32v(p, &mut pos)?;
    }
    if mask & HAS_OPCODE != 0 {
        ev.opcode = *p.get(pos)?;
        pos += 1;
    }
    for i in 0..4 {
        if mask & (HAS_ARG0 << i) != 0 {
            ev.args[i] = u32v(p, &mut pos)?;
        }
    }
    if pos != p.len() {
        return None;
    }
    let (tgid, comm) = tasks.get(ev.pid).copied()?;
    ev.tgid = tgid;
    ev.comm = comm;
    Some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> RawEvent {
        let mut comm = [0u8; COMM_LEN];
        comm[..7].copy_from_slice(b"fio-job");
        RawEvent {
            ts_ns: 1_000_000_123,
            ctx: 0xffff_8881_0abc_d000,
            req: 0xffff_8881_1234_5600,
            user_data: u64::MAX,
            aux: 0x1_0000_0004,
            aux2: 7,
            pid: 4242,
            tgid: 4240,
            res: -125,
            cflags: 0x10003,
            args: [1, 0, u32::MAX, 3],
            kind: 9,
            cpu: 1,
            opcode: 22,
            role: 2,
            _pad: [0; 2],
            comm,
        }
    }

    #[test]
    fn event_round_trips_every_field() {
        let ev = sample();
        let mut tasks = TaskTable::default();
        tasks.set(ev.pid, ev.tgid, ev.comm);
        let mut p = Vec::new();
        encode_event(&ev, 999_999_000, &mut p);
        assert_eq!(decode_event(&p, 999_999_000, &tasks), Some(ev));
        // Timestamps that go backwards (another CPU) survive too.
        let mut p2 = Vec::new();
        encode_event(&ev, ev.ts_ns + 50, &mut p2);
        assert_eq!(decode_event(&p2, ev.ts_ns + 50, &tasks), Some(ev));
    }

    #[test]
    fn zero_fields_cost_nothing() {
        let ev = RawEvent {
            kind: 10,
            pid: 1,
            ..RawEvent::default()
        };
        let mut p = Vec::new();
        encode_event(&ev, 0, &mut p);
        assert_eq!(p.len(), 7); // kind, ts, cpu, pid, role (1 byte each), 2-byte mask
    }

    #[test]
    fn corrupt_payloads_are_rejected() {
        let ev = sample();
        let mut tasks = TaskTable::default();
        tasks.set(ev.pid, ev.tgid, ev.comm);
        let mut p = Vec::new();
        encode_event(&ev, 0, &mut p);
        for cut in 0..p.len() {
            assert_eq!(decode_event(&p[..cut], 0, &tasks), None, "cut at {cut}");
        }
        let mut extra = p.clone();
        extra.push(0);
        assert_eq!(decode_event(&extra, 0, &tasks), None);
        // Unknown task: the record refers to a tid no task record introduced.
        assert_eq!(decode_event(&p, 0, &TaskTable::default()), None);
    }

    #[test]
    fn task_round_trips() {
        let ev = sample();
        let mut p = Vec::new();
        encode_task(ev.pid, ev.tgid, &ev.comm, &mut p);
        assert_eq!(decode_task(&p), Some((ev.pid, ev.tgid, ev.comm)));
        assert_eq!(decode_task(&p[..p.len() - 1]), None);
    }
}
