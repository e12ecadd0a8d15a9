//! Format version 2: self-delimiting records that predict each field from what the
//! file already said (specified in docs/recording-format.md, "Records (version 2)").
//!
//! Encoder and decoder keep the same [`State`]: a table of tasks (tid, tgid, comm, and
//! the cpu/role/ring that task last used), a table of rings (ctx pointer, the last
//! user_data on that ring, and a small set-associative table of recently seen request
//! pointers with the user_data each last carried), and per kind the previous event's
//! kind-specific fields. An event then stores only what differs from the prediction,
//! behind a presence mask: a NOP storm costs about 5.5 bytes per event.
//!
//! Both sides update the state with the same functions ([`State::apply_task`],
//! [`State::apply_ring`], [`RingState::insert`], and the tail of
//! [`State::decode_event`] / [`Encoder::encode_event`] which mirror each other), so
//! every field round-trips exactly.

use std::collections::HashMap;

use uringtrace_common::{RawEvent, COMM_LEN};

use super::varint::{self, unzigzag, unzigzag32, zigzag, zigzag32, VarintError};

/// Record tags (first byte of every record). 1..=0xEF: an event of that kind.
pub const TAG_KIND_ESCAPE: u8 = 0x00;
pub const TAG_MAX_KIND: u8 = 0xEF;
pub const TAG_TASK: u8 = 0xF0;
pub const TAG_RING: u8 = 0xF1;
pub const TAG_END: u8 = 0xF2;

/// No event, task or ring record (nor the tag and length of an end record) is longer
/// than this, valid or not: a decoder that has this many bytes in hand (or the rest
/// of the file) never runs out in the middle of one. (The most an event can use, even
/// corrupt, is 163 bytes: 15 varints of at most 10 bytes, the tag, role and opcode
/// bytes, 8 bytes of req, 2 of pad. A task record: 48; a ring record: 19.)
pub const LOOKAHEAD: usize = 256;

/// Task and ring table sizes; when full, the writer reuses entries round-robin.
pub const MAX_TASKS: usize = 1 << 16;
pub const MAX_RINGS: usize = 1 << 10;

/// Request table of each ring: 64 sets of 4 ways, slot = set * 4 + way.
const REQ_SETS_SHIFT: u32 = 64 - 6;
const REQ_WAYS: usize = 4;
const REQ_SLOTS: usize = 256;
const REQ_HASH: u64 = 0x9E37_79B9_7F4A_7C15;

// Event mask bits (a varint: the first byte holds what changes most often).
const REQ_MODE: u32 = 0b11; // bits 0-1
const REQ_NONE: u32 = 0;
const REQ_SLOT: u32 = 1;
const REQ_LITERAL: u32 = 2;
const REQ_LAST: u32 = 3;
const UD_SHIFT: u32 = 2; // bits 2-3
const UD_ZERO: u32 = 0;
const UD_FROM_REQ: u32 = 1;
const UD_DELTA: u32 = 2;
const UD_LAST: u32 = 3;
const M_RES: u32 = 1 << 4;
const M_TASK: u32 = 1 << 5;
const M_RING: u32 = 1 << 6;
const M_CFLAGS: u32 = 1 << 7;
const M_OPCODE: u32 = 1 << 8;
const AUX_SHIFT: u32 = 9; // bits 9-10
const AUX2_SHIFT: u32 = 14; // bits 14-15
const V_SAME: u32 = 0;
const V_VARINT: u32 = 1;
const V_FIXED: u32 = 2;
const V_DELTA: u32 = 3;
/// args[0..3]
const M_ARG: [u32; 4] = [1 << 13, 1 << 11, 1 << 12, 1 << 16];
const M_CPU: u32 = 1 << 17;
const M_ROLE: u32 = 1 << 18;
const M_PAD: u32 = 1 << 19;
const MASK_BITS: u32 = 20;
/// The bits of fields kept per kind.
const KIND_FIELDS: u32 = M_OPCODE
    | M_RES
    | M_CFLAGS
    | 3 << AUX_SHIFT
    | 3 << AUX2_SHIFT
    | M_ARG[0]
    | M_ARG[1]
    | M_ARG[2]
    | M_ARG[3]
    | M_PAD;

/// Kinds that carry no ring: their ring is predicted as 0 (ctx = 0) and they leave
/// the task's predicted ring alone. task_work_run, enter, enter_exit, sched_waking,
/// sched_switch, task_newtask, task_rename, process_fork, ring_state. (Part of the
/// format: never change, only predictions of new kinds may be added in a new version.)
#[inline(always)]
fn ringless(kind: u16) -> bool {
    kind == 15 || (32..=39).contains(&kind)
}

#[inline(always)]
fn comm_len(comm: &[u8; COMM_LEN]) -> usize {
    // Trailing NULs are implied; anything before them (even after a NUL) is kept.
    COMM_LEN - comm.iter().rev().take_while(|&&b| b == 0).count()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskState {
    pub tid: u32,
    pub tgid: u32,
    pub comm: [u8; COMM_LEN],
    /// Predictions for this task's next event.
    cpu: u16,
    role: u8,
    ring: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct ReqEntry {
    ptr: u64,
    /// user_data of the last event that carried this request (and a user_data).
    ud: u64,
}

#[derive(Clone)]
pub struct RingState {
    ctx: u64,
    /// user_data of the last event on this ring that carried one.
    last_ud: u64,
    /// Slot of the last request seen on this ring.
    last_slot: u8,
    /// Next way to replace, per set.
    fifo: [u8; REQ_SLOTS / REQ_WAYS],
    reqs: Box<[ReqEntry; REQ_SLOTS]>,
}

impl RingState {
    fn new(ctx: u64) -> RingState {
        RingState {
            ctx,
            last_ud: 0,
            last_slot: 0,
            fifo: [0; REQ_SLOTS / REQ_WAYS],
            reqs: Box::new([ReqEntry::default(); REQ_SLOTS]),
        }
    }

    #[inline(always)]
    fn set_of(ptr: u64) -> usize {
        (ptr.wrapping_mul(REQ_HASH) >> REQ_SETS_SHIFT) as usize
    }

    /// Puts a request not in the table into its set (replacing the oldest way).
    #[inline]
    fn insert(&mut self, ptr: u64) -> u8 {
        let set = Self::set_of(ptr);
        let way = self.fifo[set] as usize % REQ_WAYS;
        self.fifo[set] = ((way + 1) % REQ_WAYS) as u8;
        let slot = set * REQ_WAYS + way;
        self.reqs[slot] = ReqEntry { ptr, ud: 0 };
        slot as u8
    }

    #[inline]
    fn find(&self, ptr: u64) -> Option<u8> {
        let base = Self::set_of(ptr) * REQ_WAYS;
        (base..base + REQ_WAYS)
            .find(|&s| self.reqs[s].ptr == ptr)
            .map(|s| s as u8)
    }
}

/// The kind-specific fields of the previous event of a kind.
#[derive(Clone, Copy, Debug, Default)]
struct KindState {
    aux: u64,
    aux2: u64,
    res: i32,
    cflags: u32,
    args: [u32; 4],
    opcode: u8,
    pad: [u8; 2],
}

/// What encoder and decoder both know after the same records.
#[derive(Clone)]
pub struct State {
    prev_ts: u64,
    /// Task of the previous event (usize::MAX before the first).
    cur_task: usize,
    tasks: Vec<TaskState>,
    /// rings[0] is ctx 0, always.
    rings: Vec<RingState>,
    kinds: Box<[KindState; 64]>,
}

impl Default for State {
    fn default() -> Self {
        State {
            prev_ts: 0,
            cur_task: usize::MAX,
            tasks: Vec::new(),
            rings: vec![RingState::new(0)],
            kinds: Box::new([KindState::default(); 64]),
        }
    }
}

/// Why a record did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecErr {
    /// The bytes ran out (only possible with fewer than [`LOOKAHEAD`] bytes in hand).
    Short,
    Bad(&'static str),
}

/// A position in a byte slice; every read is checked.
struct Cur<'a> {
    p: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    #[inline(always)]
    fn u8(&mut self) -> Result<u8, DecErr> {
        match self.p.get(self.i) {
            Some(&b) => {
                self.i += 1;
                Ok(b)
            }
            None => Err(DecErr::Short),
        }
    }

    #[inline(always)]
    fn var(&mut self) -> Result<u64, DecErr> {
        varint::get_u64(self.p, &mut self.i).map_err(|e| match e {
            VarintError::Truncated => DecErr::Short,
            VarintError::Overflow => DecErr::Bad("varint overflows 64 bits"),
        })
    }

    #[inline(always)]
    fn var32(&mut self) -> Result<u32, DecErr> {
        u32::try_from(self.var()?).map_err(|_| DecErr::Bad("value exceeds 32 bits"))
    }

    #[inline(always)]
    fn var16(&mut self) -> Result<u16, DecErr> {
        u16::try_from(self.var()?).map_err(|_| DecErr::Bad("value exceeds 16 bits"))
    }

    #[inline(always)]
    fn fixed64(&mut self) -> Result<u64, DecErr> {
        match self.p.get(self.i..self.i + 8) {
            Some(b) => {
                self.i += 8;
                Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            }
            None => Err(DecErr::Short),
        }
    }

    #[inline(always)]
    fn bytes(&mut self, n: usize) -> Result<&[u8], DecErr> {
        match self.p.get(self.i..self.i + n) {
            Some(b) => {
                self.i += n;
                Ok(b)
            }
            None => Err(DecErr::Short),
        }
    }

    /// The kind-specific fields an event's mask selects, over their predictions.
    #[inline(never)]
    fn kind_fields(&mut self, mask: u32, k: &mut KindState) -> Result<(), DecErr> {
        if mask & M_OPCODE != 0 {
            k.opcode = self.u8()?;
        }
        if mask & M_RES != 0 {
            k.res = unzigzag32(self.var32()?);
        }
        if mask & M_CFLAGS != 0 {
            k.cflags = self.var32()?;
        }
        k.aux = self.wide((mask >> AUX_SHIFT) & 3, k.aux)?;
        k.aux2 = self.wide((mask >> AUX2_SHIFT) & 3, k.aux2)?;
        for (a, bit) in k.args.iter_mut().zip(M_ARG) {
            if mask & bit != 0 {
                *a = self.var32()?;
            }
        }
        if mask & M_PAD != 0 {
            k.pad = [self.u8()?, self.u8()?];
        }
        Ok(())
    }

    /// An aux/aux2 field in mode `mode` (2 mask bits), predicted `prev`.
    #[inline(always)]
    fn wide(&mut self, mode: u32, prev: u64) -> Result<u64, DecErr> {
        match mode {
            V_SAME => Ok(prev),
            V_VARINT => self.var(),
            V_FIXED => self.fixed64(),
            _ => Ok(prev.wrapping_add(unzigzag(self.var()?) as u64)),
        }
    }
}

impl State {
    /// Task record: (re)defines task `idx`. Its predictions restart from zero.
    fn apply_task(&mut self, idx: usize, tid: u32, tgid: u32, comm: [u8; COMM_LEN]) {
        let t = TaskState {
            tid,
            tgid,
            comm,
            ..TaskState::default()
        };
        if idx == self.tasks.len() {
            self.tasks.push(t);
        } else {
            self.tasks[idx] = t;
        }
    }

    /// Ring record: (re)defines ring `idx` (≥ 1); its request table starts empty.
    fn apply_ring(&mut self, idx: usize, ctx: u64) {
        if idx == self.rings.len() {
            self.rings.push(RingState::new(ctx));
        } else {
            self.rings[idx] = RingState::new(ctx);
        }
    }

    /// Decodes a task record (`p` starts at its tag); returns its length.
    pub fn decode_task(&mut self, p: &[u8]) -> Result<usize, DecErr> {
        let mut c = Cur { p, i: 1 };
        let idx = c.var()?;
        let tid = c.var32()?;
        let tgid = c.var32()?;
        let len = c.u8()? as usize;
        if len > COMM_LEN {
            return Err(DecErr::Bad("comm longer than 16 bytes"));
        }
        let mut comm = [0u8; COMM_LEN];
        comm[..len].copy_from_slice(c.bytes(len)?);
        if idx > self.tasks.len() as u64 || idx >= MAX_TASKS as u64 {
            return Err(DecErr::Bad("task index out of sequence"));
        }
        self.apply_task(idx as usize, tid, tgid, comm);
        Ok(c.i)
    }

    /// Decodes a ring record (`p` starts at its tag); returns its length.
    pub fn decode_ring(&mut self, p: &[u8]) -> Result<usize, DecErr> {
        let mut c = Cur { p, i: 1 };
        let idx = c.var()?;
        let ctx = c.fixed64()?;
        if idx == 0 || idx > self.rings.len() as u64 || idx >= MAX_RINGS as u64 {
            return Err(DecErr::Bad("ring index out of sequence"));
        }
        if ctx == 0 {
            return Err(DecErr::Bad("ring record for ctx 0"));
        }
        self.apply_ring(idx as usize, ctx);
        Ok(c.i)
    }

    /// Decodes an event record (`p` starts at its tag, which is ≤ [`TAG_MAX_KIND`]);
    /// returns the event and the record's length.
    #[inline(always)]
    pub fn decode_event(&mut self, p: &[u8]) -> Result<(RawEvent, usize), DecErr> {
        let mut c = Cur { p, i: 0 };
        let tag = c.u8()?;
        let kind = if tag == TAG_KIND_ESCAPE {
            c.var16()?
        } else {
            u16::from(tag)
        };
        let ts_ns = self.prev_ts.wrapping_add(unzigzag(c.var()?) as u64);
        let mask = c.var()?;
        if mask >> MASK_BITS != 0 {
            return Err(DecErr::Bad("unknown bits in the event mask"));
        }
        let mask = mask as u32;

        if mask & M_TASK != 0 {
            let t = c.var()?;
            if t >= self.tasks.len() as u64 {
                return Err(DecErr::Bad("event names a task no task record defined"));
            }
            self.cur_task = t as usize;
        }
        let task = self
            .tasks
            .get_mut(self.cur_task)
            .ok_or(DecErr::Bad("event before any task record"))?;
        let cpu = if mask & M_CPU != 0 {
            c.var16()?
        } else {
            task.cpu
        };
        let role = if mask & M_ROLE != 0 {
            c.u8()?
        } else {
            task.role
        };
        let has_ring = !ringless(kind);
        let ri = if mask & M_RING != 0 {
            let r = c.var()?;
            if r >= self.rings.len() as u64 {
                return Err(DecErr::Bad("event names a ring no ring record defined"));
            }
            r as usize
        } else if has_ring {
            task.ring as usize
        } else {
            0
        };
        task.cpu = cpu;
        task.role = role;
        if has_ring {
            task.ring = ri as u32;
        }
        let (pid, tgid, comm) = (task.tid, task.tgid, task.comm);

        let ring = self
            .rings
            .get_mut(ri)
            .ok_or(DecErr::Bad("ring index out of range"))?;
        let (req, slot) = match mask & REQ_MODE {
            REQ_NONE => (0, 0),
            REQ_SLOT => {
                let s = c.u8()?;
                (ring.reqs[s as usize].ptr, s)
            }
            REQ_LITERAL => {
                let ptr = c.fixed64()?;
                if ptr == 0 {
                    return Err(DecErr::Bad("literal req 0"));
                }
                (ptr, ring.insert(ptr))
            }
            _ => (ring.reqs[ring.last_slot as usize].ptr, ring.last_slot),
        };
        if mask & REQ_MODE != REQ_NONE {
            if req == 0 {
                return Err(DecErr::Bad("event names an empty request slot"));
            }
            ring.last_slot = slot;
        }
        let ud_mode = (mask >> UD_SHIFT) & 3;
        let user_data = match ud_mode {
            UD_ZERO => 0,
            UD_FROM_REQ => {
                if req == 0 {
                    return Err(DecErr::Bad("user_data from the request, without one"));
                }
                ring.reqs[slot as usize].ud
            }
            UD_DELTA => ring.last_ud.wrapping_add(unzigzag(c.var()?) as u64),
            _ => ring.last_ud,
        };
        if ud_mode != UD_ZERO {
            ring.last_ud = user_data;
            if req != 0 {
                ring.reqs[slot as usize].ud = user_data;
            }
        }
        let ctx = ring.ctx;

        let k = &mut self.kinds[kind as usize & 63];
        if mask & KIND_FIELDS != 0 {
            c.kind_fields(mask, k)?;
        }
        self.prev_ts = ts_ns;
        Ok((
            RawEvent {
                ts_ns,
                ctx,
                req,
                user_data,
                aux: k.aux,
                aux2: k.aux2,
                pid,
                tgid,
                res: k.res,
                cflags: k.cflags,
                args: k.args,
                kind,
                cpu,
                opcode: k.opcode,
                role,
                _pad: k.pad,
                comm,
            },
            c.i,
        ))
    }
}

/// Bytes of one record being built (never more than [`LOOKAHEAD`]).
struct Out {
    a: [u8; LOOKAHEAD],
    n: usize,
}

impl Out {
    #[inline(always)]
    fn u8(&mut self, b: u8) {
        self.a[self.n] = b;
        self.n += 1;
    }

    #[inline(always)]
    fn var(&mut self, v: u64) {
        self.n += varint::encode(v, &mut self.a[self.n..]);
    }

    #[inline(always)]
    fn fixed64(&mut self, v: u64) {
        self.a[self.n..self.n + 8].copy_from_slice(&v.to_le_bytes());
        self.n += 8;
    }

    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        self.a[self.n..self.n + b.len()].copy_from_slice(b);
        self.n += b.len();
    }
}

/// Picks the cheapest coding of an aux/aux2 value against its prediction.
#[inline(always)]
fn wide_mode(v: u64, prev: u64) -> u32 {
    if v == prev {
        return V_SAME;
    }
    let lv = varint::len(v);
    let ld = varint::len(zigzag(v.wrapping_sub(prev) as i64));
    if lv <= ld && lv <= 8 {
        V_VARINT
    } else if ld <= 8 {
        V_DELTA
    } else {
        V_FIXED
    }
}

#[inline(always)]
fn put_wide(o: &mut Out, mode: u32, v: u64, prev: u64) {
    match mode {
        V_VARINT => o.var(v),
        V_FIXED => o.fixed64(v),
        V_DELTA => o.var(zigzag(v.wrapping_sub(prev) as i64)),
        _ => {}
    }
}

/// The writer's side: the shared state plus the maps from tid and ctx to table index.
pub struct Encoder {
    st: State,
    /// An event's fields, built before its mask (reused: no per-event initialisation).
    fields: Out,
    task_of: HashMap<u32, u32, foldhash::fast::RandomState>,
    ring_of: HashMap<u64, u32, foldhash::fast::RandomState>,
    task_victim: usize,
    ring_victim: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            st: State::default(),
            fields: Out {
                a: [0; LOOKAHEAD],
                n: 0,
            },
            task_of: HashMap::default(),
            ring_of: HashMap::default(),
            task_victim: 0,
            ring_victim: 1,
        }
    }
}

impl Encoder {
    /// Index of `ev`'s task, writing a task record first when the task is new or its
    /// tgid or comm changed.
    #[inline]
    fn task(&mut self, ev: &RawEvent, out: &mut Vec<u8>) -> usize {
        let st = &mut self.st;
        let cur = st.cur_task;
        let idx = match st.tasks.get(cur) {
            Some(t) if t.tid == ev.pid => Some(cur),
            _ => self.task_of.get(&ev.pid).map(|&i| i as usize),
        };
        if let Some(i) = idx {
            let t = &st.tasks[i];
            if t.tgid == ev.tgid && t.comm == ev.comm {
                return i;
            }
        }
        let i = idx.unwrap_or_else(|| {
            let i = if st.tasks.len() < MAX_TASKS {
                st.tasks.len()
            } else {
                let v = self.task_victim;
                self.task_victim = (v + 1) % MAX_TASKS;
                let old = st.tasks[v].tid;
                if self.task_of.get(&old) == Some(&(v as u32)) {
                    self.task_of.remove(&old);
                }
                v
            };
            self.task_of.insert(ev.pid, i as u32);
            i
        });
        let mut o = Out {
            a: [0; LOOKAHEAD],
            n: 0,
        };
        o.u8(TAG_TASK);
        o.var(i as u64);
        o.var(ev.pid.into());
        o.var(ev.tgid.into());
        let len = comm_len(&ev.comm);
        o.u8(len as u8);
        o.bytes(&ev.comm[..len]);
        out.extend_from_slice(&o.a[..o.n]);
        st.apply_task(i, ev.pid, ev.tgid, ev.comm);
        i
    }

    /// Index of `ctx`'s ring (`predicted` first), writing a ring record for a new one.
    #[inline]
    fn ring(&mut self, ctx: u64, predicted: usize, out: &mut Vec<u8>) -> usize {
        if self.st.rings[predicted].ctx == ctx {
            return predicted;
        }
        if ctx == 0 {
            return 0;
        }
        if let Some(&i) = self.ring_of.get(&ctx) {
            return i as usize;
        }
        let st = &mut self.st;
        let i = if st.rings.len() < MAX_RINGS {
            st.rings.len()
        } else {
            let v = self.ring_victim;
            self.ring_victim = v % (MAX_RINGS - 1) + 1;
            self.ring_of.remove(&st.rings[v].ctx);
            v
        };
        self.ring_of.insert(ctx, i as u32);
        let mut o = Out {
            a: [0; LOOKAHEAD],
            n: 0,
        };
        o.u8(TAG_RING);
        o.var(i as u64);
        o.fixed64(ctx);
        out.extend_from_slice(&o.a[..o.n]);
        st.apply_ring(i, ctx);
        i
    }

    /// Appends `ev` (preceded by any task or ring record it needs) to `out`.
    pub fn encode_event(&mut self, ev: &RawEvent, out: &mut Vec<u8>) {
        let ti = self.task(ev, out);
        let has_ring = !ringless(ev.kind);
        let task = self.st.tasks[ti];
        let predicted_ring = if has_ring { task.ring as usize } else { 0 };
        let ri = self.ring(ev.ctx, predicted_ring, out);

        let st = &mut self.st;
        if ev.kind != 0 && ev.kind <= u16::from(TAG_MAX_KIND) {
            out.push(ev.kind as u8);
        } else {
            out.push(TAG_KIND_ESCAPE);
            varint::put_u64(out, ev.kind.into());
        }
        varint::put_u64(out, zigzag(ev.ts_ns.wrapping_sub(st.prev_ts) as i64));
        // The mask comes next but is known only at the end: the fields go to a
        // scratch buffer first.
        let f = &mut self.fields;
        f.n = 0;
        let mut mask = 0u32;

        if ti != st.cur_task {
            mask |= M_TASK;
            f.var(ti as u64);
            st.cur_task = ti;
        }
        if ev.cpu != task.cpu {
            mask |= M_CPU;
            f.var(ev.cpu.into());
        }
        if ev.role != task.role {
            mask |= M_ROLE;
            f.u8(ev.role);
        }
        if ri != predicted_ring {
            mask |= M_RING;
            f.var(ri as u64);
        }
        let t = &mut st.tasks[ti];
        t.cpu = ev.cpu;
        t.role = ev.role;
        if has_ring {
            t.ring = ri as u32;
        }

        let ring = &mut st.rings[ri];
        let slot = if ev.req == 0 {
            0
        } else if ring.reqs[ring.last_slot as usize].ptr == ev.req {
            mask |= REQ_LAST;
            ring.last_slot
        } else if let Some(s) = ring.find(ev.req) {
            mask |= REQ_SLOT;
            f.u8(s);
            s
        } else {
            mask |= REQ_LITERAL;
            f.fixed64(ev.req);
            ring.insert(ev.req)
        };
        if ev.req != 0 {
            ring.last_slot = slot;
        }
        let ud = ev.user_data;
        let ud_mode = if ud == 0 {
            UD_ZERO
        } else if ev.req != 0 && ring.reqs[slot as usize].ud == ud {
            UD_FROM_REQ
        } else if ud == ring.last_ud {
            UD_LAST
        } else {
            f.var(zigzag(ud.wrapping_sub(ring.last_ud) as i64));
            UD_DELTA
        };
        mask |= ud_mode << UD_SHIFT;
        if ud_mode != UD_ZERO {
            ring.last_ud = ud;
            if ev.req != 0 {
                ring.reqs[slot as usize].ud = ud;
            }
        }

        let k = &mut st.kinds[ev.kind as usize & 63];
        if ev.opcode != k.opcode {
            mask |= M_OPCODE;
            f.u8(ev.opcode);
        }
        if ev.res != k.res {
            mask |= M_RES;
            f.var(zigzag32(ev.res).into());
        }
        if ev.cflags != k.cflags {
            mask |= M_CFLAGS;
            f.var(ev.cflags.into());
        }
        let am = wide_mode(ev.aux, k.aux);
        put_wide(f, am, ev.aux, k.aux);
        let a2m = wide_mode(ev.aux2, k.aux2);
        put_wide(f, a2m, ev.aux2, k.aux2);
        mask |= am << AUX_SHIFT | a2m << AUX2_SHIFT;
        for ((&a, prev), bit) in ev.args.iter().zip(k.args).zip(M_ARG) {
            if a != prev {
                mask |= bit;
                f.var(a.into());
            }
        }
        if ev._pad != k.pad {
            mask |= M_PAD;
            f.bytes(&ev._pad);
        }
        *k = KindState {
            aux: ev.aux,
            aux2: ev.aux2,
            res: ev.res,
            cflags: ev.cflags,
            args: ev.args,
            opcode: ev.opcode,
            pad: ev._pad,
        };
        st.prev_ts = ev.ts_ns;

        varint::put_u64(out, mask.into());
        out.extend_from_slice(&f.a[..f.n]);
    }
}

#[cfg(test)]
mod tests {
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
}
