//! Reading records: every read is checked, and a record that does not decode is
//! either cut short ([`DecErr::Short`], only possible with fewer than [`LOOKAHEAD`]
//! bytes in hand) or corrupt.

use uringtrace_common::{RawEvent, COMM_LEN};

use super::state::{KindState, State};
use super::*; // tags and the field layout
use crate::recording::varint::{self, unzigzag, unzigzag32, VarintError};

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
        match self.p.get(self.i..).and_then(<[u8]>::first_chunk::<8>) {
            Some(&b) => {
                self.i += 8;
                Ok(u64::from_le_bytes(b))
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
