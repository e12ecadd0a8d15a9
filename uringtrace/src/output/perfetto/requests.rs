//! Requests in flight and the flows between them: submit → io-wq punt → completion,
//! chain member → next member, MSG_RING sender → the target ring's CQE. State is bounded
//! by what is in flight: a request leaves at its completion.

use std::collections::{HashMap as StdHashMap, VecDeque};

/// foldhash: SipHash was a tenth of an export's time.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

/// A MSG_RING whose target's CQE was not seen yet; at most this many per target ring.
const MAX_PENDING_MSG: usize = 1024;

pub struct Request {
    pub ctx: u64,
    pub tgid: u32,
    pub ts: u64,
    pub opcode: u8,
    pub user_data: u64,
    pub flags: u64,
    pub fd: Option<i32>,
    pub lane: usize,
    /// Flow id of the punt (submit → punt → completion), once punted.
    pub punt: Option<u64>,
    /// (flow id, position in the chain: 0 = head).
    pub chain: Option<(u64, u32)>,
    /// The MSG_RING flow this request starts.
    pub msg: Option<u64>,
}

#[derive(Default)]
pub struct InFlight {
    by_req: HashMap<u64, Request>,
    /// (ring, user_data) → req: overflowed CQEs have no req pointer.
    by_user_data: HashMap<(u64, u64), u64>,
    per_ring: HashMap<u64, u32>,
    /// Target ring → MSG_RING flows waiting for their CQE there.
    msg_pending: HashMap<u64, VecDeque<u64>>,
    next_flow: u64,
}

impl InFlight {
    pub fn flow_id(&mut self) -> u64 {
        self.next_flow += 1;
        self.next_flow
    }

    pub fn insert(&mut self, req: u64, r: Request) -> Option<Request> {
        *self.per_ring.entry(r.ctx).or_default() += 1;
        self.by_user_data.insert((r.ctx, r.user_data), req);
        let old = self.by_req.insert(req, r);
        if let Some(o) = &old {
            self.forget(o);
        }
        old
    }

    fn forget(&mut self, r: &Request) {
        if let Some(n) = self.per_ring.get_mut(&r.ctx) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ring.remove(&r.ctx);
            }
        }
    }

    pub fn get_mut(&mut self, req: u64) -> Option<&mut Request> {
        self.by_req.get_mut(&req)
    }

    pub fn remove(&mut self, req: u64) -> Option<Request> {
        let r = self.by_req.remove(&req)?;
        if self.by_user_data.get(&(r.ctx, r.user_data)) == Some(&req) {
            self.by_user_data.remove(&(r.ctx, r.user_data));
        }
        self.forget(&r);
        Some(r)
    }

    pub fn remove_by_user_data(&mut self, ctx: u64, user_data: u64) -> Option<(u64, Request)> {
        let req = *self.by_user_data.get(&(ctx, user_data))?;
        self.remove(req).map(|r| (req, r))
    }

    pub fn in_flight(&self, ctx: u64) -> u32 {
        self.per_ring.get(&ctx).copied().unwrap_or(0)
    }

    /// `req` is linked after `target`: both join one chain flow.
    pub fn link(&mut self, req: u64, target: u64) {
        let Some(t) = self.by_req.get(&target) else {
            return;
        };
        let chain = t.chain;
        let (flow, pos) = match chain {
            Some((flow, pos)) => (flow, pos),
            None => {
                let flow = self.flow_id();
                if let Some(t) = self.by_req.get_mut(&target) {
                    t.chain = Some((flow, 0));
                }
                (flow, 0)
            }
        };
        if let Some(r) = self.by_req.get_mut(&req) {
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
        let q = self.msg_pending.get_mut(&target)?;
        let f = q.pop_front();
        if q.is_empty() {
            self.msg_pending.remove(&target);
        }
        f
    }

    /// What is still in flight at the end, oldest first.
    pub fn drain(&mut self) -> Vec<Request> {
        let mut v: Vec<Request> = self.by_req.drain().map(|(_, r)| r).collect();
        self.by_user_data.clear();
        self.per_ring.clear();
        // Lanes are unique per ring among requests in flight: a total order.
        v.sort_unstable_by_key(|r| (r.ts, r.ctx, r.lane));
        v
    }
}
