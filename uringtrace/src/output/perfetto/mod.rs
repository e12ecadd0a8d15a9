//! A trace as a Perfetto timeline (protobuf TrackEvent format, official protos).
//!
//! [`Exporter::push`] takes the events in the order replay or a live trace delivers
//! them and writes packets as it goes; memory holds the tracks declared, the requests in
//! flight and the open io_uring_enter waits, never the trace. Packets need not be in
//! timestamp order: Perfetto sorts them. A request becomes one slice on a lane of its
//! ring's track group, written at its completion (so its result is among its args).
//! Findings and the lost-events count come from the analyzer's report at the end
//! ([`Exporter::finish`]): the exporter reads events, it never judges them.

mod background;
mod direct;
mod interner;
mod packets;
mod requests;
mod slices;
mod tracks;
mod wire;

use std::collections::HashMap as StdHashMap;

/// foldhash: SipHash was a tenth of an export's time.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
use std::io::Write;

use perfetto_protos::track_event::track_event::Type;
use uringtrace_common::aggregate::CQE_F_MORE;
use uringtrace_common::view::{
    CqeOverflow, Create, Enter, EventView, FdName, FdObject, Link, RingClosed, RingState, Submit,
    TaskRename,
};
use uringtrace_common::{opcode, EventKind, FdType, RawEvent};

use crate::analyzer::report::Report;
use crate::analyzer::state::FdNames;
use crate::display::comm_text;
use crate::names;

pub use background::Background;
pub use direct::OutFile;
pub use packets::Written;
use packets::{Arg, ArgName, Event, Name, PacketWriter};
use requests::{InFlight, Request};
use slices::{write_slice, Files, Held};
use tracks::{Counter, Tracks};
pub use wire::MissingField;

/// A CQE posted without a request of its ring (MSG_RING's, or another aux CQE).
#[derive(Clone, Copy)]
struct AuxCqe {
    ts: u64,
    ctx: u64,
    user_data: u64,
    res: i32,
}

/// An io_uring_enter in progress on a thread.
struct OpenEnter {
    ts: u64,
    ctx: u64,
    min_complete: u32,
    to_submit: u32,
    flags: u32,
    /// Read at its wait: no exit event comes; it ends at the thread's next submit.
    without_exit: bool,
}

pub struct Exporter<W: Write> {
    out: PacketWriter<W>,
    tracks: Tracks,
    reqs: InFlight,
    enters: HashMap<u32, OpenEnter>,
    /// Open enters read at their wait (`without_exit`): a submit looks for one only
    /// when there is any.
    enters_without_exit: usize,
    /// Scratch for a request's fd arg.
    fd_text: String,
    /// (tgid, fd) → what the fd is (fd_object events).
    fds: HashMap<(u32, i32), (FdType, u64)>,
    /// (tgid, fd) → its name (path, socket addresses, ...), from fd_name events.
    names: FdNames,
    /// (tgid, ring fd) → ring, from create events: a MSG_RING's target.
    ring_fds: HashMap<(u32, i32), u64>,
    /// tid → a CQE no request posted (req 0), held until the thread's next completion
    /// says whether a MSG_RING of another ring posted it.
    aux_cqes: HashMap<u32, AuxCqe>,
    /// The task of the last event (most events come from the task before them): its
    /// (pid, tgid, comm) need no lookup.
    last_task: (u32, u32, [u8; uringtrace_common::COMM_LEN]),
    /// tid → last comm seen (compact events carry none).
    comms: HashMap<u32, String>,
    first_ts: u64,
    last_ts: u64,
}

impl<W: Write> Exporter<W> {
    pub fn new(sink: W) -> Result<Self, MissingField> {
        Ok(Exporter {
            out: PacketWriter::new(sink)?,
            tracks: Tracks::default(),
            reqs: InFlight::default(),
            enters: HashMap::default(),
            enters_without_exit: 0,
            fd_text: String::new(),
            fds: HashMap::default(),
            names: FdNames::default(),
            ring_fds: HashMap::default(),
            aux_cqes: HashMap::default(),
            last_task: (0, 0, [0; uringtrace_common::COMM_LEN]),
            comms: HashMap::default(),
            first_ts: 0,
            last_ts: 0,
        })
    }

    pub fn push(&mut self, ev: &RawEvent) -> std::io::Result<()> {
        if ev.ts_ns != 0 {
            if self.first_ts == 0 {
                self.first_ts = ev.ts_ns;
            }
            self.last_ts = self.last_ts.max(ev.ts_ns);
        }
        let Some(kind) = EventKind::from_u16(ev.kind) else {
            return Ok(());
        };
        self.task(ev)?;
        if ev.ctx == 0 && matches!(kind, EventKind::CqeOverflow | EventKind::Create) {
            // Not tied to a ring the trace knows: nothing to draw it on.
            return Ok(());
        }
        match kind {
            EventKind::Create => {
                if let Some(c) = Create::of(ev) {
                    self.ring_fds.insert((ev.tgid, c.fd as i32), ev.ctx);
                }
                self.tracks.ring(&mut self.out, ev.ctx, ev.tgid)?;
            }
            EventKind::Submit => self.submit(ev)?,
            EventKind::Link => {
                if let Some(l) = Link::of(ev) {
                    self.reqs.link(ev.req, l.target_req);
                }
            }
            EventKind::QueueAsyncWork => self.punt(ev)?,
            EventKind::Complete => self.complete(ev)?,
            EventKind::CqeOverflow => self.overflow(ev)?,
            EventKind::EnterEnter => self.enter(ev)?,
            EventKind::EnterExit => {
                if let Some(e) = self.take_enter(ev.pid) {
                    self.wait(ev.pid, e, ev.ts_ns, Some(ev.res))?;
                }
            }
            EventKind::RingState => self.ring_state(ev)?,
            EventKind::FdObject => {
                if let Some(o) = FdObject::of(ev) {
                    self.names.forget(ev.tgid, o.fd);
                    match o.fd_type() {
                        Some(FdType::Closed) | None => self.fds.remove(&(ev.tgid, o.fd)),
                        Some(t) => self.fds.insert((ev.tgid, o.fd), (t, o.inode)),
                    };
                }
            }
            EventKind::TaskRename => {
                if let Some(r) = TaskRename::of(ev) {
                    let comm = comm_text(&r.newcomm).into_owned();
                    self.comms.insert(r.tid, comm.clone());
                    self.tracks.task(&mut self.out, ev.tgid, r.tid, &comm)?;
                }
            }
            EventKind::RingClosed => {
                if let Some(c) = RingClosed::of(ev) {
                    self.ring_fds.remove(&(ev.tgid, c.fd as i32));
                }
            }
            EventKind::FdName => {
                if let Some(piece) = FdName::of(ev) {
                    self.names.on_piece(ev.tgid, &piece);
                }
            }
            EventKind::ProcessExit => {
                self.names.forget_process(ev.tgid);
                self.fds.retain(|k, _| k.0 != ev.tgid);
                self.ring_fds.retain(|k, _| k.0 != ev.tgid);
            }
            _ => {}
        }
        Ok(())
    }

    /// Declares the event's process and thread (with its comm, remembered per tid).
    fn task(&mut self, ev: &RawEvent) -> std::io::Result<()> {
        if ev.pid == 0 {
            return Ok(());
        }
        let empty = ev.comm[0] == 0;
        if ev.pid == self.last_task.0
            && ev.tgid == self.last_task.1
            && (empty || ev.comm == self.last_task.2)
        {
            return Ok(());
        }
        if !empty || ev.pid != self.last_task.0 {
            self.last_task = (ev.pid, ev.tgid, ev.comm);
        }
        let comm = comm_text(&ev.comm);
        let comm = if comm.is_empty() {
            self.comms.get(&ev.pid).cloned().unwrap_or_default()
        } else {
            if self.comms.get(&ev.pid).is_none_or(|c| *c != comm) {
                self.comms.insert(ev.pid, comm.clone().into_owned());
            }
            comm.into_owned()
        };
        self.tracks.task(&mut self.out, ev.tgid, ev.pid, &comm)
    }

    fn submit(&mut self, ev: &RawEvent) -> std::io::Result<()> {
        let Some(s) = Submit::of(ev) else {
            return Ok(());
        };
        // An enter read at its wait ends at the thread's next submit.
        if self.enters_without_exit > 0 && self.enters.get(&ev.pid).is_some_and(|e| e.without_exit)
        {
            if let Some(e) = self.take_enter(ev.pid) {
                self.wait(ev.pid, e, ev.ts_ns, None)?;
            }
        }
        let ring = self.tracks.ring(&mut self.out, ev.ctx, ev.tgid)?;
        let (lane, _) = self.tracks.take_lane(&mut self.out, ring)?;
        self.tracks.get_mut(ring).in_flight += 1;
        let mut r = Request {
            ctx: ev.ctx,
            ring,
            lane,
            tgid: ev.tgid,
            opcode: ev.opcode,
            ts: ev.ts_ns,
            user_data: ev.user_data,
            flags: s.req_flags,
            fd: s.fd(),
            punt: None,
            chain: None,
            msg: None,
        };
        if ev.opcode == opcode::MSG_RING {
            if let Some(&target) = s.fd().and_then(|fd| self.ring_fds.get(&(ev.tgid, fd))) {
                let flow = self.reqs.flow_id();
                self.reqs.msg_sent(target, flow);
                r.msg = Some(flow);
            }
        }
        if let Some(old) = self.reqs.insert(ev.req, r) {
            // The same req pointer again: the old one ended unseen (CQE_SKIP_SUCCESS).
            self.slice(Held::Owned(old), ev.ts_ns, None, None)?;
        }
        Ok(())
    }

    fn punt(&mut self, ev: &RawEvent) -> std::io::Result<()> {
        let flow = self.reqs.flow_id();
        let Some(r) = self.reqs.get_mut(ev.req) else {
            return Ok(());
        };
        r.punt = Some(flow);
        let track = self.tracks.thread(&mut self.out, ev.pid)?;
        let mut e = Event::new(ev.ts_ns, track, Type::TYPE_INSTANT, Name::Punt(ev.opcode));
        e.arg(ArgName::UserData, Arg::Uint(ev.user_data));
        e.flow(flow);
        self.out.event(&e)
    }

    /// The thread's open enter, if any.
    fn take_enter(&mut self, tid: u32) -> Option<OpenEnter> {
        if self.enters.is_empty() {
            return None;
        }
        let e = self.enters.remove(&tid)?;
        if e.without_exit {
            self.enters_without_exit -= 1;
        }
        Some(e)
    }

    fn complete(&mut self, ev: &RawEvent) -> std::io::Result<()> {
        if ev.req == 0 {
            if ev.ctx == 0 {
                return Ok(());
            }
            self.tracks.ring(&mut self.out, ev.ctx, ev.tgid)?;
            let aux = AuxCqe {
                ts: ev.ts_ns,
                ctx: ev.ctx,
                user_data: ev.user_data,
                res: ev.res,
            };
            if let Some(flow) = self.reqs.msg_received(ev.ctx) {
                self.aux_cqe(aux, Some(flow))?;
            } else if let Some(prev) = self.aux_cqes.insert(ev.pid, aux) {
                self.aux_cqe(prev, None)?;
            }
            return Ok(());
        }
        // A MSG_RING that completes right after a CQE appeared in another ring on the
        // same thread posted it: io_msg_ring posts into the target before its own
        // completion when it runs in the sender's context (6.x; a target with
        // DEFER_TASKRUN gets it later through task work, and then no flow is drawn).
        let aux = match self.aux_cqes.is_empty() {
            true => None,
            false => self.aux_cqes.remove(&ev.pid),
        };
        if let Some(aux) = aux {
            let sender = self
                .reqs
                .get_mut(ev.req)
                .filter(|r| r.opcode == opcode::MSG_RING && r.ctx != aux.ctx && r.msg.is_none());
            let flow = match sender {
                Some(_) => {
                    let flow = self.reqs.flow_id();
                    if let Some(r) = self.reqs.get_mut(ev.req) {
                        r.msg = Some(flow);
                    }
                    Some(flow)
                }
                None => None,
            };
            self.aux_cqe(aux, flow)?;
        }
        // A multishot CQE (F_MORE) does not end its request.
        if ev.cflags & CQE_F_MORE != 0 {
            return Ok(());
        }
        let Some(slot) = self.reqs.detach(ev.req) else {
            return Ok(());
        };
        let r = self.reqs.at(slot);
        if let Some(flow) = r.punt {
            let opcode = r.opcode;
            let track = self.tracks.thread(&mut self.out, ev.pid)?;
            let mut e = Event::new(ev.ts_ns, track, Type::TYPE_INSTANT, Name::Cqe(opcode));
            e.arg(ArgName::UserData, Arg::Uint(ev.user_data));
            e.terminating_flow = Some(flow);
            self.out.event(&e)?;
        }
        self.slice(Held::Detached(slot), ev.ts_ns, Some(ev.res), None)
    }

    /// A CQE no request of its ring posted, as an instant on the ring; with the flow of
    /// the MSG_RING that posted it, when known.
    fn aux_cqe(&mut self, aux: AuxCqe, flow: Option<u64>) -> std::io::Result<()> {
        let name = if flow.is_some() {
            "MSG_RING CQE"
        } else {
            "CQE (no request)"
        };
        let ring = self.tracks.ring(&mut self.out, aux.ctx, 0)?;
        let track = self.tracks.get(ring).uuid;
        let mut e = Event::new(aux.ts, track, Type::TYPE_INSTANT, Name::Text(name));
        e.arg(ArgName::UserData, Arg::Uint(aux.user_data));
        e.arg(ArgName::Result, Arg::Result(aux.res));
        e.terminating_flow = flow;
        self.out.event(&e)
    }

    fn overflow(&mut self, ev: &RawEvent) -> std::io::Result<()> {
        let dropped = CqeOverflow::of(ev).is_some_and(|o| o.dropped());
        let ring = self.tracks.ring(&mut self.out, ev.ctx, ev.tgid)?;
        let track = self.tracks.get(ring).uuid;
        let mut e = Event::new(
            ev.ts_ns,
            track,
            Type::TYPE_INSTANT,
            Name::Text("CQ overflow"),
        );
        e.arg(ArgName::UserData, Arg::Uint(ev.user_data));
        e.arg(ArgName::Result, Arg::Result(ev.res));
        e.arg(ArgName::Dropped, Arg::Bool(dropped));
        self.out.event(&e)?;
        if ev.cflags & CQE_F_MORE != 0 {
            return Ok(());
        }
        if let Some(slot) = self.reqs.detach_by_user_data(ring, ev.user_data) {
            self.slice(Held::Detached(slot), ev.ts_ns, Some(ev.res), Some(dropped))?;
        }
        Ok(())
    }

    fn enter(&mut self, ev: &RawEvent) -> std::io::Result<()> {
        let Some(en) = Enter::of(ev) else {
            return Ok(());
        };
        if let Some(e) = self.take_enter(ev.pid) {
            self.wait(ev.pid, e, ev.ts_ns, None)?;
        }
        if en.without_exit {
            self.enters_without_exit += 1;
        }
        self.enters.insert(
            ev.pid,
            OpenEnter {
                ts: ev.ts_ns,
                ctx: ev.ctx,
                min_complete: en.min_complete,
                to_submit: en.to_submit,
                flags: en.flags,
                without_exit: en.without_exit,
            },
        );
        Ok(())
    }

    /// An io_uring_enter as a slice on its thread.
    fn wait(&mut self, tid: u32, e: OpenEnter, end: u64, res: Option<i32>) -> std::io::Result<()> {
        let track = self.tracks.thread(&mut self.out, tid)?;
        let flags = names::enter_flags(e.flags);
        let ring = format!("{:#x}", e.ctx);
        let mut b = Event::new(
            e.ts,
            track,
            Type::TYPE_SLICE_BEGIN,
            Name::Text("io_uring_enter"),
        );
        b.arg(ArgName::MinComplete, Arg::Uint(e.min_complete.into()));
        b.arg(ArgName::ToSubmit, Arg::Uint(e.to_submit.into()));
        b.arg(ArgName::Flags, Arg::Str(&flags));
        if e.ctx != 0 {
            b.arg(ArgName::Ring, Arg::Str(&ring));
        }
        if let Some(res) = res {
            b.arg(ArgName::Result, Arg::Result(res));
        }
        self.out.event(&b)?;
        self.out.slice_end(end.max(e.ts), track)
    }

    fn ring_state(&mut self, ev: &RawEvent) -> std::io::Result<()> {
        let Some(s) = RingState::of(ev) else {
            return Ok(());
        };
        // Samples name the ring by its fd in the owner.
        let ctx = match ev.ctx {
            0 => match self.ring_fds.get(&(ev.tgid, s.fd as i32)) {
                Some(&ctx) => ctx,
                None => return Ok(()),
            },
            ctx => ctx,
        };
        let ring = self.tracks.ring(&mut self.out, ctx, ev.tgid)?;
        let r = self.tracks.get(ring);
        let values = [
            (Counter::InFlight, i64::from(r.in_flight)),
            (Counter::CqReady, i64::from(s.cq_ready)),
            (
                Counter::SqPending,
                i64::from(s.sq_tail.wrapping_sub(s.sq_head)),
            ),
        ];
        let uuids = r.counters;
        for (c, v) in values {
            let mut e = Event::new(
                ev.ts_ns,
                uuids[c as usize],
                Type::TYPE_COUNTER,
                Name::Text(""),
            );
            e.counter = Some(v);
            self.out.event(&e)?;
        }
        Ok(())
    }

    /// One request as a slice on its lane; `end` None: still in flight at the end.
    fn slice(
        &mut self,
        held: Held,
        end: u64,
        res: Option<i32>,
        overflowed: Option<bool>,
    ) -> std::io::Result<()> {
        let mut files = Files {
            text: &mut self.fd_text,
            fds: &self.fds,
            names: &self.names,
        };
        let r = match &held {
            Held::Owned(r) => r,
            Held::Detached(slot) => self.reqs.at(*slot),
        };
        let written = write_slice(
            &mut self.out,
            &mut self.tracks,
            &mut files,
            r,
            end,
            res,
            overflowed,
        );
        if let Held::Detached(slot) = held {
            self.reqs.release(slot);
        }
        written
    }

    /// Tests: write track events with the generated messages (the reference encoding).
    #[cfg(test)]
    pub fn generated(mut self) -> Self {
        self.out.generated = true;
        self
    }

    /// Ends the trace: requests still in flight (open slices), waits still open, the
    /// report's findings as instants and the lost-events counter. Returns the sink.
    pub fn finish(mut self, report: &Report) -> std::io::Result<(W, Written)> {
        let end = self.last_ts;
        // In tid order: the same recording exports to the same bytes every time.
        let mut aux: Vec<_> = std::mem::take(&mut self.aux_cqes).into_iter().collect();
        aux.sort_unstable_by_key(|&(tid, _)| tid);
        for (_, aux) in aux {
            self.aux_cqe(aux, None)?;
        }
        let mut enters: Vec<_> = std::mem::take(&mut self.enters).into_iter().collect();
        enters.sort_unstable_by_key(|&(tid, _)| tid);
        for (tid, e) in enters {
            self.wait(tid, e, end, None)?;
        }
        for r in self.reqs.drain() {
            self.slice(Held::Owned(r), end, None, None)?;
        }
        for f in &report.findings {
            let track = if f.ring != 0 && self.tracks.lanes(f.ring) > 0 {
                let ring = self.tracks.ring(&mut self.out, f.ring, 0)?;
                self.tracks.get(ring).uuid
            } else if f.pid != 0 {
                self.tracks.task(&mut self.out, f.pid, f.pid, &f.comm)?;
                self.tracks.process(&mut self.out, f.pid)?
            } else {
                self.tracks.findings(&mut self.out)?
            };
            let ts = if f.evidence.first_ns != 0 {
                f.evidence.first_ns
            } else {
                end
            };
            let name = format!("finding: {}", f.rule.slug());
            let mut e = Event::new(ts, track, Type::TYPE_INSTANT, Name::Text(&name));
            e.arg(ArgName::Rule, Arg::Str(f.rule.slug()));
            e.arg(ArgName::Severity, Arg::Str(f.severity.name()));
            e.arg(ArgName::Message, Arg::Str(&f.message));
            e.arg(ArgName::Occurrences, Arg::Uint(f.occurrences));
            if f.inconclusive {
                e.arg(ArgName::Inconclusive, Arg::Bool(true));
            }
            self.out.event(&e)?;
        }
        let lost = self.tracks.lost(&mut self.out)?;
        let total = i64::try_from(report.lost_events.total).unwrap_or(i64::MAX);
        for (ts, v) in [(self.first_ts, 0), (end, total)] {
            let mut e = Event::new(ts, lost, Type::TYPE_COUNTER, Name::Text(""));
            e.counter = Some(v);
            self.out.event(&e)?;
        }
        self.out.finish()
    }
}

#[cfg(test)]
mod tests;
