//! Writing records: the writer's side of the shared state, plus the maps from tid
//! and ctx to table index that only the writer needs.

use std::collections::HashMap;

use uringtrace_common::RawEvent;

use super::state::{KindState, State};
use super::*; // tags and the field layout
use crate::recording::varint::{self, zigzag, zigzag32};

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
