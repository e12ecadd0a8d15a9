//! Requests in flight and the flows between them: submit → io-wq punt → completion,
//! chain member → next member, MSG_RING sender → the target ring's CQE. State is bounded
//! by what is in flight: a request leaves at its completion.

use std::collections::{HashMap as StdHashMap, VecDeque};

use uringtrace_common::FdType;

use crate::analyzer::index::U64Map;

/// foldhash: SipHash was a tenth of an export's time.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

/// A MSG_RING whose target's CQE was not seen yet; at most this many per target ring.
const MAX_PENDING_MSG: usize = 1024;

#[derive(Clone, Copy)]
pub struct Request {
    pub ctx: u64,
    /// The ring's index in `Tracks`.
    pub ring: u32,
    pub lane: u32,
    pub tgid: u32,
    pub opcode: u8,
    pub ts: u64,
    pub user_data: u64,
    pub flags: u64,
    pub fd: Option<i32>,
    /// Flow id of the punt (submit → punt → completion), once punted.
    pub punt: Option<u64>,
    /// (flow id, position in the chain: 0 = head).
    pub chain: Option<(u64, u32)>,
    /// The MSG_RING flow this request starts.
    pub msg: Option<u64>,
}

/// What [`InFlight::at`] returns for a slot that is not in use (never, when used right).
static EMPTY: Request = Request {
    ctx: 0,
    ring: 0,
    lane: 0,
    tgid: 0,
    opcode: 0,
    ts: 0,
    user_data: 0,
    flags: 0,
    fd: None,
    punt: None,
    chain: None,
    msg: None,
};

#[derive(Default)]
pub struct InFlight {
    /// req pointer → its slot in `slots`: a submit and a completion each touch this map,
    /// and a u64 → u64 map with the requests beside it costs a fraction of a general
    /// map holding them.
    by_req: U64Map,
    /// (req pointer, request), or a free slot (listed in `free`).
    slots: Vec<Option<(u64, Request)>>,
    free: Vec<u32>,
    /// (ring, user_data) → req, for the rings that had an overflow: overflowed CQEs have
    /// no req pointer. Built at a ring's first overflow, so that rings that never
    /// overflow (nearly all) pay nothing for it.
    by_user_data: HashMap<(u32, u64), u64>,
    indexed: Vec<bool>,
    /// Target ring → MSG_RING flows waiting for their CQE there.
    msg_pending: HashMap<u64, VecDeque<u64>>,
    next_flow: u64,
}

impl InFlight {
    pub fn flow_id(&mut self) -> u64 {
        self.next_flow += 1;
        self.next_flow
    }

    #[inline]
    fn indexed(&self, ring: u32) -> bool {
        self.indexed.get(ring as usize).copied().unwrap_or(false)
    }

    /// Adds a request; returns the one with the same req pointer it replaces.
    #[inline]
    pub fn insert(&mut self, req: u64, r: Request) -> Option<Request> {
        if self.indexed(r.ring) {
            self.by_user_data.insert((r.ring, r.user_data), req);
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some((req, r));
                slot
            }
            None => {
                self.slots.push(Some((req, r)));
                (self.slots.len() - 1) as u32
            }
        };
        // One probe: a req pointer seen again (rare) comes back as the old slot.
        let old_slot = self.by_req.insert(req, slot.into())?;
        let (_, old) = self.slots[old_slot as usize].take()?;
        self.free.push(old_slot as u32);
        self.unindex(req, &old);
        Some(old)
    }

    #[inline]
    fn unindex(&mut self, req: u64, r: &Request) {
        if self.indexed(r.ring) && self.by_user_data.get(&(r.ring, r.user_data)) == Some(&req) {
            self.by_user_data.remove(&(r.ring, r.user_data));
        }
    }

    #[inline]
    pub fn get_mut(&mut self, req: u64) -> Option<&mut Request> {
        let &slot = self.by_req.get(&req)?;
        self.slots[slot as usize].as_mut().map(|(_, r)| r)
    }

    #[inline]
    fn get(&self, req: u64) -> Option<&Request> {
        let &slot = self.by_req.get(&req)?;
        self.slots[slot as usize].as_ref().map(|(_, r)| r)
    }

    /// Takes `req` out of the index; its request stays readable in its slot ([`Self::at`])
    /// until [`Self::release`].
    #[inline]
    pub fn detach(&mut self, req: u64) -> Option<u32> {
        let slot = self.by_req.remove(&req)? as u32;
        if let Some((_, r)) = &self.slots[slot as usize] {
            let (ring, user_data) = (r.ring, r.user_data);
            if self.indexed(ring) && self.by_user_data.get(&(ring, user_data)) == Some(&req) {
                self.by_user_data.remove(&(ring, user_data));
            }
        }
        Some(slot)
    }

    /// The request in a slot [`Self::detach`] returned (a detached slot is never empty).
    #[inline]
    pub fn at(&self, slot: u32) -> &Request {
        match &self.slots[slot as usize] {
            Some((_, r)) => r,
            None => &EMPTY,
        }
    }

    /// Frees a detached slot.
    #[inline]
    pub fn release(&mut self, slot: u32) {
        self.slots[slot as usize] = None;
        self.free.push(slot);
    }

    /// The requests in flight, with their req pointers.
    fn iter(&self) -> impl Iterator<Item = &(u64, Request)> {
        self.slots.iter().flatten()
    }

    /// [`Self::detach`] by user_data, for a CQE that has no req pointer (an overflow).
    pub fn detach_by_user_data(&mut self, ring: u32, user_data: u64) -> Option<u32> {
        if !self.indexed(ring) {
            self.index(ring);
        }
        let req = *self.by_user_data.get(&(ring, user_data))?;
        self.detach(req)
    }

    /// Indexes a ring's requests by user_data; of two with one user_data, the later
    /// submitted one is found (as a new submission replaces the index entry).
    fn index(&mut self, ring: u32) {
        if self.indexed.len() <= ring as usize {
            self.indexed.resize(ring as usize + 1, false);
        }
        self.indexed[ring as usize] = true;
        let mut reqs: Vec<(u64, u32, u64, u64)> = self
            .iter()
            .filter(|(_, r)| r.ring == ring)
            .map(|&(req, ref r)| (r.ts, r.lane, r.user_data, req))
            .collect();
        reqs.sort_unstable();
        for (_, _, user_data, req) in reqs {
            self.by_user_data.insert((ring, user_data), req);
        }
    }

    /// `req` is linked after `target`: both join one chain flow.
    pub fn link(&mut self, req: u64, target: u64) {
        let Some(t) = self.get(target) else {
            return;
        };
        let chain = t.chain;
        let (flow, pos) = match chain {
            Some((flow, pos)) => (flow, pos),
            None => {
                let flow = self.flow_id();
                if let Some(t) = self.get_mut(target) {
                    t.chain = Some((flow, 0));
                }
                (flow, 0)
            }
        };
        if let Some(r) = self.get_mut(req) {
            r.chain = Some((flow, pos + 1));
        }
    }

    pub fn msg_sent(&mut self, target: u64, flow: u64) {
        let q = self.msg_pending.entry(target).or_default();
        if q.len() == MAX_PENDING_MSG {
            q.pop_front();
        }
        q.push_back(flow);
    }

    pub fn msg_received(&mut self, target: u64) -> Option<u64> {
        if self.msg_pending.is_empty() {
            return None;
        }
        let q = self.msg_pending.get_mut(&target)?;
        let f = q.pop_front();
        if q.is_empty() {
            self.msg_pending.remove(&target);
        }
        f
    }

    /// What is still in flight at the end, oldest first.
    pub fn drain(&mut self) -> Vec<Request> {
        let mut v: Vec<Request> = self.iter().map(|&(_, r)| r).collect();
        self.by_req = U64Map::default();
        self.slots.clear();
        self.free.clear();
        self.by_user_data.clear();
        // Lanes are unique per ring among requests in flight: a total order.
        v.sort_unstable_by_key(|r| (r.ts, r.ctx, r.lane));
        v
    }
}

/// The text shown for a request's fd, written into `out`: its name when the recording
/// has one (a path, socket addresses, ...), else what the recording says it is (type
/// and inode); a registered file's number is a slot in the ring's table, not an fd.
pub fn fd_label(
    out: &mut String,
    fd: i32,
    object: Option<(FdType, u64)>,
    name: Option<&str>,
    fixed: bool,
) {
    use std::fmt::Write as _;
    out.clear();
    // Writing to a String cannot fail.
    let _ = if fixed {
        write!(out, "fixed slot {fd}")
    } else if let Some(name) = name {
        write!(out, "{fd} ({name})")
    } else {
        match object {
            Some((FdType::File, ino)) => write!(out, "{fd} (file, inode {ino})"),
            Some((FdType::Pipe, ino)) => write!(out, "{fd} (pipe:[{ino}])"),
            Some((FdType::Socket, ino)) => write!(out, "{fd} (socket:[{ino}])"),
            Some((FdType::Ring, _)) => write!(out, "{fd} (io_uring)"),
            Some((FdType::Other, ino)) => write!(out, "{fd} (inode {ino})"),
            Some((FdType::Closed, _)) | None => write!(out, "{fd}"),
        }
    };
}
