//! What the request-misuse rules need: registered file and buffer table sizes,
//! failures of requests on registered files and buffers, IOSQE_IO_DRAIN deferrals and
//! what held them, and short regular-file writes. All of it on rare paths: the
//! completion path pays one compare (`Ring::drains` empty) and one error test.

use super::requests::Done;
use super::*;
use crate::analyzer::rules::fixed_buffer_misuse;

/// IOSQE_IO_DRAIN: the request waits for everything submitted before it.
pub const IOSQE_IO_DRAIN: u64 = 2;
/// Drains followed per ring; past this the oldest is dropped (a ring that drains
/// every request behind a request that never completes).
const MAX_DRAINS: usize = 64;
/// Requests named per drain (the slowest).
const MAX_BLOCKERS: usize = 4;

/// io_uring_register opcodes whose event reports the table sizes that matter here
/// (every register event carries them; these are the ones that change them).
const REGISTER_BUFFERS: u32 = 0;
const UNREGISTER_BUFFERS: u32 = 1;
const REGISTER_FILES: u32 = 2;
const UNREGISTER_FILES: u32 = 3;
const REGISTER_FILES2: u32 = 13;
const REGISTER_BUFFERS2: u32 = 15;

/// A request on a registered file or buffer that failed, with what the trace knows.
#[derive(Clone, Copy, Debug)]
pub struct FixedFailure {
    pub ctx: u64,
    pub tgid: u32,
    pub user_data: u64,
    pub opcode: u8,
    pub res: i32,
    pub ts_ns: u64,
    pub submit_ns: Option<u64>,
    /// The registered file's slot (IOSQE_FIXED_FILE), when the submit event had it.
    pub slot: Option<i32>,
    /// sqe->buf_index, known only when the SQE was rejected at submit (req_failed).
    pub buf_index: Option<u32>,
    /// The SQE's addr and len (req_failed only).
    pub range: Option<(u64, u32)>,
    /// Table sizes as io_uring_register last reported them for the ring.
    pub table_files: Option<u32>,
    pub table_bufs: Option<u32>,
    /// Rejected at init/prep (io_uring_req_failed), not failed at issue.
    pub at_submit: bool,
    /// A registered-buffer failure (else a registered-file one).
    pub buffer: bool,
}

/// A request submitted before a drain that completed after the drain was deferred.
#[derive(Clone, Copy, Debug)]
pub struct Blocker {
    pub user_data: u64,
    pub opcode: u8,
    pub fd: Option<i32>,
    pub fixed: bool,
    pub submit_ns: u64,
    pub done_ns: Option<u64>,
    pub res: Option<i32>,
}

impl Blocker {
    pub fn of(r: &Request, done_ns: Option<u64>, res: Option<i32>) -> Blocker {
        Blocker {
            user_data: r.user_data,
            opcode: r.opcode,
            fd: r.fd,
            fixed: r.fixed_file(),
            submit_ns: r.submit_ns,
            done_ns,
            res,
        }
    }
}

/// An IOSQE_IO_DRAIN request the kernel deferred.
#[derive(Clone, Debug)]
pub struct DrainWait {
    pub ctx: u64,
    pub req: u64,
    pub tgid: u32,
    pub user_data: u64,
    pub opcode: u8,
    pub submit_ns: u64,
    pub deferred_ns: u64,
    /// When the last request submitted before it completed (seen so far).
    pub released_ns: Option<u64>,
    /// Requests before it that completed after its deferral.
    pub blocked_by: u64,
    /// The latest-completing of them, latest first (at most [`MAX_BLOCKERS`]).
    pub blockers: Vec<Blocker>,
    /// Requests deferred after it (they wait for it).
    pub followers: u64,
}

impl DrainWait {
    fn note(&mut self, r: &Request, ts: u64) {
        self.blocked_by += 1;
        self.released_ns = Some(self.released_ns.map_or(ts, |t| t.max(ts)));
        let b = Blocker::of(r, Some(ts), None);
        let at = self
            .blockers
            .iter()
            .position(|x| x.done_ns < b.done_ns)
            .unwrap_or(self.blockers.len());
        if at < MAX_BLOCKERS {
            self.blockers.insert(at, b);
            self.blockers.truncate(MAX_BLOCKERS);
        }
    }
}

/// A request of `ring` completes at `ts` (called from the completion path only when
/// the ring has drains waiting). Returns the drain it was, if it was one.
#[cold]
pub(super) fn drain_progress(
    drains: &mut Vec<DrainWait>,
    r: &Request,
    ts: u64,
) -> Option<Box<DrainWait>> {
    let mut own = None;
    for (i, d) in drains.iter_mut().enumerate() {
        if d.req == r.req {
            own = Some(i);
        } else if r.submit_ns <= d.submit_ns && ts >= d.deferred_ns {
            d.note(r, ts);
        }
    }
    own.map(|i| Box::new(drains.remove(i)))
}

impl Ring {
    /// When an in-flight request could start, as far as IOSQE_IO_DRAIN is concerned:
    /// a drain the ring follows starts when the last request submitted before it
    /// completed (its release), and None while one of them is still in flight (it is
    /// still parked on the defer list: drain-blocked's to report, not a stall). Any
    /// other request: its submission. Pays one compare when the ring has no drains.
    pub fn drain_start(&self, r: &Request) -> Option<u64> {
        if self.drains.is_empty() {
            return Some(r.submit_ns);
        }
        let Some(d) = self.drains.iter().find(|d| d.req == r.req) else {
            return Some(r.submit_ns);
        };
        let held = self
            .inflight
            .values()
            .any(|x| x.req != d.req && x.submit_ns <= d.submit_ns);
        if held {
            return None;
        }
        Some(d.released_ns.map_or(r.submit_ns, |t| t.max(r.submit_ns)))
    }
}

impl State {
    pub(super) fn on_register_tables(&mut self, ev: &RawEvent) {
        let reg = view::Register::read(ev);
        if ev.ctx == 0 {
            return;
        }
        // The event reports the ring's table sizes after the call (5.10 to 6.18), so
        // any register event updates them; only a ring that ever had a table, or a
        // call about tables, is followed (a ring that never registers stays unknown).
        let about_tables = matches!(
            reg.opcode,
            REGISTER_BUFFERS
                | UNREGISTER_BUFFERS
                | REGISTER_FILES
                | UNREGISTER_FILES
                | REGISTER_FILES2
                | REGISTER_BUFFERS2
        );
        let ring = self.ring(ev.ctx, ev.tgid);
        if about_tables || ring.files_table.is_some() || ring.bufs_table.is_some() {
            ring.files_table = Some(reg.nr_files);
            ring.bufs_table = Some(reg.nr_bufs);
        }
    }

    /// io_uring_defer: a request parked on the drain list. The drain itself (its
    /// IOSQE_IO_DRAIN flag, from its submit) is followed; requests deferred behind it
    /// are counted.
    pub(super) fn on_defer(&mut self, ev: &RawEvent) {
        let Some(ring) = self.rings.get_mut(&ev.ctx) else {
            return;
        };
        let req = if ev.req != 0 && ring.inflight.contains_key(&ev.req) {
            Some(ev.req)
        } else {
            ring.by_user_data.get(&ev.user_data).copied()
        };
        let Some(r) = req.and_then(|q| ring.inflight.get(&q)).copied() else {
            return;
        };
        if r.flags & IOSQE_IO_DRAIN == 0 {
            if let Some(d) = ring.drains.last_mut() {
                d.followers += 1;
            }
            return;
        }
        if ring.drains.iter().any(|d| d.req == r.req) {
            return;
        }
        if ring.drains.len() == MAX_DRAINS {
            ring.drains.remove(0);
        }
        ring.drains.push(DrainWait {
            ctx: ev.ctx,
            req: r.req,
            tgid: r.tgid,
            user_data: r.user_data,
            opcode: r.opcode,
            submit_ns: r.submit_ns,
            deferred_ns: ev.ts_ns,
            released_ns: None,
            blocked_by: 0,
            blockers: Vec::new(),
            followers: 0,
        });
    }

    /// io_uring_short_write names the ring, not the request: the write is named when
    /// it is the only write in flight on the ring.
    pub(super) fn on_short_write(&mut self, ev: &RawEvent) {
        let write = self.rings.get(&ev.ctx).and_then(|ring| {
            let mut writes = ring
                .inflight
                .values()
                .filter(|r| crate::analyzer::opcodes::writes(r.opcode));
            match (writes.next(), writes.next()) {
                (Some(r), None) => Some(*r),
                _ => None,
            }
        });
        self.observations.push(Observation::ShortWrite {
            ev: *ev,
            write: write.map(Box::new),
        });
    }

    /// io_uring_req_failed of an SQE on a registered file (-EBADF) or buffer
    /// (-EFAULT, -EINVAL): a misuse finding instead of invalid-sqe.
    pub(super) fn on_req_failed(&mut self, ev: &RawEvent) {
        let f = view::ReqFailed::read(ev);
        let fixed_file = u64::from(f.sqe_flags) & crate::names::IOSQE_FIXED_FILE != 0;
        let buffer = fixed_buffer_misuse::uses_buffer(ev.opcode, f.ioprio, f.op_flags);
        let misuse = match ev.res {
            r if r == -libc::EBADF && fixed_file => Some(false),
            r if (r == -libc::EFAULT || r == -libc::EINVAL) && buffer => Some(true),
            _ => None,
        };
        let Some(buffer) = misuse else {
            self.observations.push(Observation::InvalidSqe(*ev));
            return;
        };
        let ring = self.rings.get(&ev.ctx);
        self.observations
            .push(Observation::FixedMisuse(Box::new(FixedFailure {
                ctx: ev.ctx,
                tgid: ev.tgid,
                user_data: ev.user_data,
                opcode: ev.opcode,
                res: ev.res,
                ts_ns: ev.ts_ns,
                submit_ns: None,
                slot: None,
                buf_index: buffer.then_some(f.buf_index),
                range: buffer.then_some((f.addr, f.len)),
                table_files: ring.and_then(|r| r.files_table),
                table_bufs: ring.and_then(|r| r.bufs_table),
                at_submit: true,
                buffer,
            })));
    }

    /// A request's final result: a fixed-file -EBADF or a registered-buffer -EFAULT.
    /// Called only for those errors.
    #[cold]
    pub(super) fn fixed_failure(&mut self, ctx: u64, r: &Done, res: i32, ts: u64) {
        let fixed_file = r.flags & crate::names::IOSQE_FIXED_FILE != 0;
        let buffer = match res {
            x if x == -libc::EBADF && fixed_file => false,
            x if x == -libc::EFAULT && fixed_buffer_misuse::always_fixed(r.opcode) => true,
            _ => return,
        };
        let ring = self.rings.get(&ctx);
        self.observations
            .push(Observation::FixedMisuse(Box::new(FixedFailure {
                ctx,
                tgid: r.tgid,
                user_data: r.user_data,
                opcode: r.opcode,
                res,
                ts_ns: ts,
                submit_ns: Some(r.submit_ns),
                slot: if buffer { None } else { r.fd },
                buf_index: None,
                range: None,
                table_files: ring.and_then(|g| g.files_table),
                table_bufs: ring.and_then(|g| g.bufs_table),
                at_submit: false,
                buffer,
            })));
    }
}
