//! The wait-for graph of requests in flight, and its cycles.
//!
//! A request that is blocked waits for others that could release it:
//! - a chain follower not yet issued waits for its predecessor (links run in order);
//! - a POLL_ADD on a ring fd waits for any CQE of that ring: its in-flight requests,
//!   and MSG_RINGs aimed at it;
//! - a reader waiting for readiness (poll-armed READ/RECV, or POLL_ADD) on a pipe
//!   waits for any in-flight writer of the same pipe. Objects are matched by inode
//!   (`fd_object` events), not by fd number: the two ends of a pipe are two fds.
//!
//! - a FUTEX_WAIT waits for in-flight FUTEX_WAKEs of the same word (read from the
//!   request at submit through BTF, 6.7+ with tp_btf).
//!
//! A set of blocked requests all of whose possible releasers are in the set can never
//! make progress on its own (only something outside io_uring, like a write from
//! userspace or a cancel, can break it): that is a wait-for cycle. Sockets are not
//! matched to their peers (a RECV waits for the *other* end's writes, which no event
//! names), and futex words are known only where the submit is a tp_btf program: those
//! edges are left out otherwise, so such waits never form a cycle. Quiet beats wrong.

use std::collections::HashMap;

use uringtrace_common::FdType;

use super::opcodes;
use super::state::{Request, State};

/// (ring, req): a request in flight.
type Node = (u64, u64);

/// Searches stop after this many requests: a wait-for cycle in real programs is a
/// handful of requests; a bigger blocked set is reported as no cycle.
const MAX_NODES: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleMember {
    pub ctx: u64,
    pub req: u64,
    pub tgid: u32,
    pub user_data: u64,
    pub opcode: u8,
    pub fd: Option<i32>,
    /// `fd` is a registered file's slot (IOSQE_FIXED_FILE).
    pub fixed_file: bool,
    pub submit_ns: u64,
    /// Waits for readiness or a CQE (true), or is a chain follower never issued.
    pub waiting: bool,
    /// What it waits for, in words ("data on pipe 123 that only WRITE ... writes").
    pub waits_for: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// Waiting members first, then the ones never issued, each by submission time.
    pub members: Vec<CycleMember>,
    /// Since when all of them have been in flight (the latest submission).
    pub since_ns: u64,
    /// When it was seen (a release, or the report).
    pub seen_ns: u64,
}

impl Cycle {
    pub fn rings(&self) -> Vec<u64> {
        let mut r: Vec<u64> = self.members.iter().map(|m| m.ctx).collect();
        r.sort_unstable();
        r.dedup();
        r
    }
}

/// Why a request cannot proceed, and who could release it (any of them).
struct Blocked {
    releasers: Vec<Node>,
    waiting: bool,
    what: String,
}

/// Writers per pipe inode and MSG_RINGs per target ring, built once per search and
/// only when a search meets a pipe reader or a ring poll.
#[derive(Default)]
struct Index {
    built: bool,
    pipe_writers: HashMap<u64, Vec<Node>>,
    /// (tgid, ring fd) → MSG_RINGs aimed at it.
    msg_rings: HashMap<(u32, i32), Vec<Node>>,
    /// (tgid, futex word) → FUTEX_WAKEs in flight.
    futex_wakers: HashMap<(u32, u64), Vec<Node>>,
}

impl Index {
    fn build(&mut self, st: &State) {
        if self.built {
            return;
        }
        self.built = true;
        for ring in st.rings.values() {
            for r in ring.inflight.values() {
                if let (opcodes::FUTEX_WAKE, Some(addr)) = (r.opcode, r.futex) {
                    self.futex_wakers
                        .entry((r.tgid, addr))
                        .or_default()
                        .push((r.ctx, r.req));
                }
                let Some(fd) = r.fd else { continue };
                if r.opcode == opcodes::MSG_RING {
                    self.msg_rings
                        .entry((r.tgid, fd))
                        .or_default()
                        .push((r.ctx, r.req));
                } else if opcodes::writes(r.opcode) {
                    if let Some((FdType::Pipe, ino)) = st.fd_object(r.tgid, fd) {
                        self.pipe_writers
                            .entry(ino)
                            .or_default()
                            .push((r.ctx, r.req));
                    }
                }
            }
        }
    }
}

struct Search<'a> {
    st: &'a State,
    /// The request being released (already out of the in-flight set), if any.
    root: Option<&'a Request>,
    index: Index,
}

impl<'a> Search<'a> {
    fn get(&self, (ctx, req): Node) -> Option<Request> {
        if let Some(r) = self.root.filter(|r| r.ctx == ctx && r.req == req) {
            return Some(*r);
        }
        self.st.rings.get(&ctx)?.inflight.get(&req).copied()
    }

    fn describe(&self, n: Node) -> String {
        self.get(n).map_or("?".into(), |r| {
            format!(
                "{} user_data {:#x}{}",
                crate::names::opcode_name(r.opcode),
                r.user_data,
                self.st
                    .fd_label(r.tgid, r.fd, r.fixed_file())
                    .or_else(|| r.fd.map(|f| format!("fd {f}")))
                    .map_or(String::new(), |f| format!(" ({f})"))
            )
        })
    }

    /// A wait that any of `releasers` could end (none: only the outside can).
    fn waiting_on(
        &self,
        releasers: Vec<Node>,
        what: impl FnOnce(String) -> String,
    ) -> Option<Blocked> {
        if releasers.is_empty() {
            return None;
        }
        let who: Vec<String> = releasers
            .iter()
            .take(3)
            .map(|n| self.describe(*n))
            .collect();
        Some(Blocked {
            what: what(who.join(", ")),
            releasers,
            waiting: true,
        })
    }

    /// Who could release `r`, when it is blocked on something io_uring can see.
    fn blocked(&mut self, r: &Request) -> Option<Blocked> {
        // A chain follower waits for the nearest earlier member still in flight.
        if let Some(c) = r.chain.and_then(|id| self.st.chains.get(&id)) {
            if let Some(i) = c.index_of(r.req) {
                if let Some(p) = c.members[..i].iter().rev().find(|m| m.res.is_none()) {
                    return Some(Blocked {
                        releasers: vec![(c.ctx, p.req)],
                        waiting: false,
                        what: format!(
                            "is linked behind {} user_data {:#x}",
                            crate::names::opcode_name(p.opcode),
                            p.user_data
                        ),
                    });
                }
            }
        }
        // FUTEX_WAIT waits for a FUTEX_WAKE of the same word (in the same process: the
        // words are virtual addresses).
        if let (opcodes::FUTEX_WAIT, Some(addr)) = (r.opcode, r.futex) {
            self.index.build(self.st);
            let releasers: Vec<Node> = self.index.futex_wakers.get(&(r.tgid, addr))?.clone();
            return self.waiting_on(releasers, |who| {
                format!("waits on futex {addr:#x}, which only {who} would wake")
            });
        }
        let fd = r.fd?;
        let object = self.st.fd_object(r.tgid, fd);
        let ring_fd = matches!(object, Some((FdType::Ring, _))) || object.is_none();
        if r.opcode == opcodes::POLL_ADD && ring_fd {
            if let Some(target) = self.st.ring_by_fd(r.tgid, fd as u32) {
                self.index.build(self.st);
                let ring = self.st.rings.get(&target)?;
                let mut releasers: Vec<Node> = ring
                    .inflight
                    .values()
                    .filter(|q| q.req != r.req && !q.skips_success())
                    .map(|q| (q.ctx, q.req))
                    .collect();
                if let Some(m) = self.index.msg_rings.get(&(r.tgid, fd)) {
                    releasers.extend(m.iter().copied().filter(|n| n.1 != r.req));
                }
                return self.waiting_on(releasers, |who| {
                    format!("waits for a CQE on ring {target:#x}, which only {who} would post")
                });
            }
        }
        // The request being released was waiting until its wakeup (task_add) just now.
        let is_root = self.root.is_some_and(|x| x.ctx == r.ctx && x.req == r.req);
        let armed = r.poll_armed || (is_root && r.waited_on_poll);
        let reader = (opcodes::reads(r.opcode) && armed) || r.opcode == opcodes::POLL_ADD;
        if let (true, Some((FdType::Pipe, ino))) = (reader, object) {
            self.index.build(self.st);
            let releasers: Vec<Node> = self
                .index
                .pipe_writers
                .get(&ino)?
                .iter()
                .copied()
                .filter(|n| n.1 != r.req)
                .collect();
            return self.waiting_on(releasers, |who| {
                format!("waits for data on pipe {ino} that only {who} would write")
            });
        }
        None
    }
}

/// The wait-for cycle `root` is in, if it has waited on one for at least `min_ns`
/// by `now`. `root` may have just left the in-flight set (it is being released).
pub fn cycle_through(st: &State, root: &Request, now: u64, min_ns: u64) -> Option<Cycle> {
    let mut s = Search {
        st,
        root: Some(root),
        index: Index::default(),
    };
    search(&mut s, (root.ctx, root.req), now, min_ns)
}

fn search(s: &mut Search<'_>, start: Node, now: u64, min_ns: u64) -> Option<Cycle> {
    let mut seen: Vec<(Node, Request, Blocked)> = Vec::new();
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        if seen.iter().any(|(m, _, _)| *m == n) {
            continue;
        }
        if seen.len() >= MAX_NODES {
            return None;
        }
        let r = s.get(n)?;
        // Anything not blocked on io_uring-visible requests can progress (or be
        // released from outside): then nothing here is stuck for good.
        let b = s.blocked(&r)?;
        for m in &b.releasers {
            if !seen.iter().any(|(x, _, _)| x == m) {
                stack.push(*m);
            }
        }
        seen.push((n, r, b));
    }
    let since = seen.iter().map(|(_, r, _)| r.submit_ns).max()?;
    if now.saturating_sub(since) < min_ns {
        return None;
    }
    let mut members: Vec<CycleMember> = seen
        .into_iter()
        .map(|(_, r, b)| CycleMember {
            ctx: r.ctx,
            req: r.req,
            tgid: r.tgid,
            user_data: r.user_data,
            opcode: r.opcode,
            fd: r.fd,
            fixed_file: r.fixed_file(),
            submit_ns: r.submit_ns,
            waiting: b.waiting,
            waits_for: b.what,
        })
        .collect();
    members.sort_by_key(|m| (!m.waiting, m.submit_ns, m.req));
    Some(Cycle {
        members,
        since_ns: since,
        seen_ns: now,
    })
}

/// Every wait-for cycle among the requests in flight at `now` that has lasted at
/// least `min_ns`.
pub fn cycles(st: &State, now: u64, min_ns: u64) -> Vec<Cycle> {
    let mut out: Vec<Cycle> = Vec::new();
    let mut s = Search {
        st,
        root: None,
        index: Index::default(),
    };
    for ring in st.rings.values() {
        for r in ring.inflight.values() {
            let candidate = r.chain.is_some()
                || r.opcode == opcodes::POLL_ADD
                || r.opcode == opcodes::FUTEX_WAIT
                || (opcodes::reads(r.opcode) && r.poll_armed);
            if !candidate || now.saturating_sub(r.submit_ns) < min_ns {
                continue;
            }
            if out
                .iter()
                .any(|c| c.members.iter().any(|m| m.ctx == r.ctx && m.req == r.req))
            {
                continue;
            }
            if let Some(c) = search(&mut s, (r.ctx, r.req), now, min_ns) {
                out.push(c);
            }
        }
    }
    out.sort_by_key(|c| (c.since_ns, c.members.first().map(|m| m.req)));
    out
}
