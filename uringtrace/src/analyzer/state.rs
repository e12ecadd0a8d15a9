//! The analyzer's model of io_uring: rings, requests in flight, link chains, io
//! threads. Updated one event at a time, in timestamp order. Memory is bounded by what
//! is in flight: completed requests and chains are summarised, then dropped.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};

use uringtrace_common::{EventKind, FdType, RawEvent, Role};

use super::index::U64Map;
use super::latency::Histogram;
use super::opcodes;
use crate::display::comm_str;
use crate::names::{
    CQE_F_MORE, CQE_F_NOTIF, ENTER_EXT_ARG, ENTER_GETEVENTS, ENTER_REGISTERED_RING,
    ENTER_SQ_WAKEUP, IOSQE_CQE_SKIP_SUCCESS, IOSQE_IO_HARDLINK, IOSQE_IO_LINK,
};

pub type ChainId = u64;

/// IORING_REGISTER_IOWQ_MAX_WORKERS (5.15+).
const REGISTER_IOWQ_MAX_WORKERS: u32 = 19;
/// sched_switch prev_state of a task that is exiting (EXIT_DEAD, EXIT_ZOMBIE as
/// `__trace_sched_switch_state` reports them, 6.18).
const EXITING_STATES: u64 = 0x10 | 0x20;

/// The analyzer's hash maps: keys are kernel pointers and ids, not attacker-chosen
/// strings, so a fast fixed-seed hasher instead of SipHash (a tenth of replay time).
pub type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub ctx: u64,
    pub req: u64,
    pub user_data: u64,
    pub opcode: u8,
    pub flags: u64,
    pub submit_ns: u64,
    pub tid: u32,
    pub tgid: u32,
    /// The SQE fd: from file_get when issued, else from submit (tp_btf path).
    pub fd: Option<i32>,
    /// file_get seen: the request was issued (it reached its file).
    pub issued: bool,
    pub poll_armed: bool,
    /// Ever waited for readiness (poll armed), even if woken since.
    pub waited_on_poll: bool,
    pub punted: bool,
    pub chain: Option<ChainId>,
    /// Intermediate multishot CQEs seen.
    pub multishot_cqes: u64,
    /// The futex word of a FUTEX_WAIT/WAKE (from the tp_btf submit), when known.
    pub futex: Option<u64>,
}

impl Request {
    /// Placeholder for a table slot about to be filled in.
    const BLANK: Request = Request {
        ctx: 0,
        req: 0,
        user_data: 0,
        opcode: 0,
        flags: 0,
        submit_ns: 0,
        tid: 0,
        tgid: 0,
        fd: None,
        issued: false,
        poll_armed: false,
        waited_on_poll: false,
        punted: false,
        chain: None,
        multishot_cqes: 0,
        futex: None,
    };

    pub fn links(&self) -> bool {
        self.flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK) != 0
    }

    /// IOSQE_CQE_SKIP_SUCCESS: no CQE, and no completion event, unless it fails.
    pub fn skips_success(&self) -> bool {
        self.flags & IOSQE_CQE_SKIP_SUCCESS != 0
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub req: u64,
    pub user_data: u64,
    pub opcode: u8,
    pub hard: bool,
    pub submit_ns: u64,
    pub res: Option<i32>,
    pub complete_ns: Option<u64>,
    /// Named by a fail_link event as a cancelled follower.
    pub cancelled: bool,
    /// The SQE's fd, when known at submission.
    pub fd: Option<i32>,
    /// The kernel said at completion whether its file is a regular file (REQ_F_ISREG).
    pub regular_file: Option<bool>,
}

impl Member {
    fn of(r: &Request) -> Member {
        Member {
            req: r.req,
            user_data: r.user_data,
            opcode: r.opcode,
            hard: r.flags & IOSQE_IO_HARDLINK != 0,
            submit_ns: r.submit_ns,
            res: None,
            complete_ns: None,
            cancelled: false,
            fd: r.fd,
            regular_file: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Chain {
    pub id: ChainId,
    pub ctx: u64,
    pub tgid: u32,
    pub tid: u32,
    pub members: Vec<Member>,
    /// The last member had no link flag: nothing more can be appended.
    pub closed: bool,
    /// The submit batch ended while the chain was still open: the kernel queued it as
    /// it was, and the SQEs after it started a new chain.
    pub cut_at_batch_end: bool,
    /// Index of the member a fail_link event named as failed.
    pub breaker: Option<usize>,
}

impl Chain {
    pub fn index_of(&self, req: u64) -> Option<usize> {
        self.members.iter().position(|m| m.req == req)
    }

    pub fn all_done(&self) -> bool {
        self.members.iter().all(|m| m.res.is_some())
    }
}

#[derive(Clone, Debug, Default)]
pub struct Ring {
    pub ctx: u64,
    pub tgid: u32,
    /// When the create event was seen (0: created before the trace).
    pub created_ns: u64,
    pub fd: Option<i32>,
    pub sq_entries: Option<u32>,
    pub cq_entries: Option<u32>,
    pub setup_flags: Option<u32>,
    pub submitted: u64,
    pub completed: u64,
    pub overflowed: u64,
    pub dropped: u64,
    pub punted: u64,
    pub max_in_flight: u64,
    pub inflight: Map<u64, Request>,
    /// user_data → req of in-flight requests (overflowed CQEs carry no req).
    pub by_user_data: U64Map,
    pub open_chain: Option<ChainId>,
    /// A request submitted while a chain was open, not yet confirmed appended by a
    /// link event (which immediately follows the submit when it is).
    pub pending_append: Option<u64>,
    /// CQEs in the CQ ring at the last fdinfo sample (CqTail - CqHead), when one was
    /// taken; with `cq_posted_since` an upper bound of the CQEs ready now.
    pub cq_ready_sampled: Option<u64>,
    /// CQEs posted (into the ring or the overflow list) since that sample, or since the
    /// ring was created when there is no sample yet.
    pub cq_posted_since: u64,
    /// Zero-copy send notifications (IORING_CQE_F_NOTIF) still owed.
    pub notifs_owed: u64,
    /// CQEs other rings posted here (MSG_RING): this ring is fed from outside.
    pub msg_ring_deliveries: u64,
    /// In-flight requests with IOSQE_CQE_SKIP_SUCCESS (they post nothing on success).
    pub silent_in_flight: u64,
    /// The first thread that submitted to this ring, and whether others did too (a
    /// ring fed by several threads can get new work while one of them waits).
    pub first_submitter: Option<u32>,
    pub several_submitters: bool,
    /// The overflow episode in progress: when its first CQE overflowed, how many, how
    /// many of them were -ECANCELED. An episode ends when the owner enters with
    /// GETEVENTS, which flushes the overflow list into the CQ ring.
    pub overflow_open: Option<OverflowEpisode>,
    /// Episodes that ended, summed by how they ended.
    pub overflow_flushed: OverflowTally,
    pub sqpoll_tid: Option<u32>,
    pub first_overflow_ns: Option<u64>,
    pub last_overflow_ns: u64,
    pub overflow_user_data: Vec<u64>,
    pub last_sq_wakeup_ns: Option<u64>,
    // --- For `uringtrace top` (ring table and ring detail); no detector reads these. ---
    /// Completions with a negative result (CQ ring or overflow list, multishot
    /// intermediates included).
    pub errors: u64,
    /// Submit-to-final-completion latency of this ring's requests, per opcode.
    pub latency: BTreeMap<u8, Histogram>,
    /// The same over all opcodes of this ring.
    pub latency_all: Histogram,
    /// The last [`RECENT_CHAINS`] link chains that finished on this ring, oldest first.
    pub recent_chains: VecDeque<Chain>,
    /// The owner's comm, kept when the ring retires (its process may be forgotten).
    pub owner_comm: String,
}

/// How many finished chains each ring keeps for display (bounded memory).
pub const RECENT_CHAINS: usize = 16;

/// CQEs that went to the overflow list since the list was last empty.
#[derive(Clone, Copy, Debug, Default)]
pub struct OverflowEpisode {
    pub since_ns: u64,
    pub last_ns: u64,
    pub cqes: u64,
    /// Of them, -ECANCELED: requests cancelled as the ring or its task went away.
    pub cancelled: u64,
    /// The owner's last GETEVENTS enter (a flush attempt: it moves overflowed CQEs
    /// into the CQ ring as far as there is room).
    pub flush_attempt_ns: Option<u64>,
    /// No fdinfo sample has shown CQEs in the list since that attempt: the list is
    /// presumed empty from then.
    pub presumed_empty: bool,
    /// The longest time CQEs sat in the list with no flush attempt: how long the
    /// application left the overflow unhandled. (A list that stays long because the CQ
    /// is small for the load, while the application keeps flushing, is its design.)
    pub max_gap_ns: u64,
}

impl OverflowEpisode {
    /// When the list was (presumably) emptied, if it was.
    pub fn presumed_flush(&self) -> Option<u64> {
        self.flush_attempt_ns
            .filter(|t| self.presumed_empty && *t >= self.last_ns)
    }

    /// A flush attempt at `ts`.
    pub fn attempt(&mut self, ts: u64) {
        let since = self
            .flush_attempt_ns
            .unwrap_or(self.since_ns)
            .max(self.since_ns);
        self.max_gap_ns = self.max_gap_ns.max(ts.saturating_sub(since));
        self.flush_attempt_ns = Some(ts);
        self.presumed_empty = true;
    }

    /// The longest unhandled stretch, counting the one still open at `now`.
    pub fn gap_until(&self, now: u64) -> u64 {
        let since = self
            .flush_attempt_ns
            .unwrap_or(self.since_ns)
            .max(self.since_ns);
        self.max_gap_ns.max(now.saturating_sub(since))
    }
}

/// Overflow episodes that were flushed.
#[derive(Clone, Copy, Debug, Default)]
pub struct OverflowTally {
    pub episodes: u64,
    pub cqes: u64,
    pub cancelled: u64,
    /// Longest time CQEs sat in the list with no flush attempt.
    pub max_wait_ns: u64,
    /// Longest time the list stayed non-empty (flushing included).
    pub max_nonempty_ns: u64,
    pub first_ns: Option<u64>,
    pub last_ns: u64,
}

impl Ring {
    /// Requests in flight that will post a CQE.
    pub fn posting_in_flight(&self) -> u64 {
        (self.inflight.len() as u64).saturating_sub(self.silent_in_flight)
    }

    /// At most this many CQEs wait unreaped in the CQ ring: the last fdinfo sample's
    /// count plus everything posted since (the app may have reaped some meanwhile).
    pub fn cq_ready_upper_bound(&self) -> u64 {
        self.cq_ready_sampled.unwrap_or(0) + self.cq_posted_since
    }

    pub fn has_sqpoll(&self) -> bool {
        self.setup_flags
            .is_some_and(|f| f & crate::names::SETUP_SQPOLL != 0)
            || self.sqpoll_tid.is_some()
    }
}

/// What the scheduler tells about an io thread.
#[derive(Clone, Debug, Default)]
pub struct Thread {
    pub tid: u32,
    pub tgid: u32,
    pub role: Option<Role>,
    pub comm: String,
    /// "running", "asleep", "preempted", "woken".
    pub state: &'static str,
    pub state_since_ns: u64,
    pub run_start_ns: Option<u64>,
    pub runtime_ns: u64,
    pub submits: u64,
    pub created_ns: Option<u64>,
}

/// A GETEVENTS wait in progress: (fd, min_complete) from io_uring_enter.
#[derive(Clone, Copy, Debug)]
pub struct Enter {
    pub fd: u32,
    pub flags: u32,
    pub to_submit: u32,
    pub min_complete: u32,
    pub ts: u64,
    /// The ring, once known: from the fd, or (IORING_ENTER_REGISTERED_RING, where the
    /// fd is an index) from the first event of this enter that names its ring.
    pub ctx: Option<u64>,
    /// The wait of this enter could not be satisfied (reported when it ends, with how
    /// long it lasted, when it had a timeout).
    pub unsatisfiable: Option<UnsatisfiableWait>,
}

/// A GETEVENTS wait for more CQEs than can arrive: need = min_complete - ready, and
/// need > producers (requests still able to post).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsatisfiableWait {
    pub ctx: u64,
    pub tid: u32,
    pub tgid: u32,
    pub min_complete: u64,
    pub ready: u64,
    pub producers: u64,
    pub in_flight: u64,
    pub timed: bool,
    pub since_ns: u64,
}

/// Samples of one ring's fdinfo (first and latest), keyed by (tgid, fd).
#[derive(Clone, Debug, Default)]
pub struct RingSamples {
    pub first: Option<RawEvent>,
    pub last: Option<RawEvent>,
    /// When SQ tail ≠ head was first seen and has stayed so.
    pub pending_since_ns: Option<u64>,
    pub pending_sqes: u32,
    pub max_pending_sqes: u32,
    /// The latest samples, spanning just over the idle-spin window (sliding: a thread
    /// that spins only for its sq_thread_idle after each burst is not judged over the
    /// whole trace, nor over the time before it started).
    /// Each with the ring's submissions counted by then.
    pub window: VecDeque<(RawEvent, u64)>,
    /// This episode of pending SQEs / this ring's idle spin was already reported.
    pub missed_reported: bool,
    pub spin_reported: bool,
}

/// Things that happened and become findings (built in detect.rs).
#[derive(Clone, Debug)]
pub enum Observation {
    InvalidSqe(RawEvent),
    ChainDone(Chain),
    MultishotEnded {
        ev: RawEvent,
        intermediate: u64,
        opcode: u8,
    },
    NoBufs {
        ev: RawEvent,
        opcode: u8,
    },
    /// A wait that could not be satisfied; `until_ns` is when it ended (None: still
    /// waiting when seen, an untimed wait).
    UnsatisfiableWait {
        wait: UnsatisfiableWait,
        until_ns: Option<u64>,
    },
    /// A process is gone: findings about it (io-wq) are made before it is forgotten.
    ProcessRetired {
        tgid: u32,
        ts: u64,
    },
    /// A set of requests that waited on each other (a wait-for cycle), seen as one of
    /// them was released from outside after waiting at least the cycle threshold.
    CycleReleased(super::graph::Cycle),
    DroppedCqe(RawEvent),
    /// A ring that is gone (its ctx reused, its fd closed, its process exited), with
    /// what it showed, when: findings about its state are made before it is dropped.
    RingRetired(Box<Ring>, u64),
    /// SQEs pending past the threshold while the SQPOLL thread was not running.
    MissedWakeup {
        tgid: u32,
        fd: u32,
        samples: RingSamples,
        thread_state: &'static str,
    },
    /// The SQPOLL thread's fdinfo times show it spinning with no work.
    IdleSpin {
        tgid: u32,
        fd: u32,
        samples: RingSamples,
    },
    /// A request completed at least `slow_ns` after it could start (its submission,
    /// or its chain predecessor's completion).
    SlowCompletion {
        req: Request,
        chain: Option<Chain>,
        start_ns: u64,
        done_ns: u64,
        res: i32,
    },
}

/// Threads remembered before the ones that are no io thread are forgotten.
const MAX_THREADS: usize = 8192;

/// How many gone rings the report still lists.
pub const RETIRED_RINGS: usize = 64;

/// Process-wide io-wq facts.
#[derive(Clone, Debug, Default)]
pub struct Process {
    /// iou-wrk threads alive now, and the most alive at once (and when).
    pub workers_live: u64,
    pub workers_max_live: u64,
    pub workers_max_live_ns: u64,
    /// IORING_REGISTER_IOWQ_MAX_WORKERS succeeded: the process caps its workers.
    pub max_workers_registered: bool,
    pub punts: RateWindow,
}

/// Events per sliding second, in ten 100 ms slots: the highest rate seen, not an
/// average over the trace (an hour at 3 punts/s is not a storm).
#[derive(Clone, Debug, Default)]
pub struct RateWindow {
    slots: [u64; 10],
    /// The 100 ms slot `slots` ends at (ts / 100 ms).
    slot: u64,
    pub total: u64,
    pub max_per_s: u64,
    pub max_at_ns: u64,
}

impl RateWindow {
    const SLOT_NS: u64 = 100_000_000;

    pub fn add(&mut self, ts: u64) {
        let slot = ts / Self::SLOT_NS;
        if slot > self.slot {
            let gap = (slot - self.slot).min(10);
            for i in 1..=gap {
                self.slots[((self.slot + i) % 10) as usize] = 0;
            }
            self.slot = slot;
        }
        // A late event (reordered within the window) counts in the current slot.
        self.slots[(self.slot % 10) as usize] += 1;
        self.total += 1;
        let sum: u64 = self.slots.iter().sum();
        if sum > self.max_per_s {
            self.max_per_s = sum;
            self.max_at_ns = ts;
        }
    }
}

#[derive(Default)]
pub struct State {
    pub rings: Map<u64, Ring>,
    pub chains: Map<ChainId, Chain>,
    pub next_chain: ChainId,
    pub threads: Map<u32, Thread>,
    pub comms: Map<u32, (u32, String)>,
    /// (tid, tgid, raw comm) of the last event whose comm is already in `comms`:
    /// most events repeat their predecessor's, and then `comms` is not looked at.
    pub(crate) last_comm: Option<(u32, u32, [u8; 16])>,
    pub enters: Map<u32, Enter>,
    pub samples: BTreeMap<(u32, u32), RingSamples>,
    /// io-wq workers created per tgid.
    pub iowq_workers: Map<u32, u64>,
    /// Per process: live io-wq workers, punt rates, IOWQ_MAX_WORKERS.
    pub procs: Map<u32, Process>,
    /// What the fds of processes using io_uring refer to: (tgid, fd) → (type, inode),
    /// from `fd_object` events.
    pub fds: Map<(u32, i32), (FdType, u64)>,
    /// An enter with IORING_ENTER_REGISTERED_RING waits to learn its ring.
    pub(crate) pending_enter_ring: bool,
    /// The completion being applied: whether the kernel saw a regular file
    /// (io_uring_complete args[1]: 0 unknown, 1 no, 2 yes).
    pub(crate) completing_isreg: Option<bool>,
    /// Processes that exited, to forget at the next event.
    pub(crate) forget: Vec<u32>,
    /// The most io-wq workers alive at once in any process that is gone.
    pub max_workers_of_gone: u64,
    /// Summaries of rings that are gone, newest last (at most [`RETIRED_RINGS`]).
    pub retired: VecDeque<Ring>,
    /// Punts per (tgid, opcode, fd).
    pub punts: Map<(u32, u8, i32), u64>,
    pub latency: BTreeMap<u8, Histogram>,
    pub observations: Vec<Observation>,
    pub first_ns: Option<u64>,
    pub last_ns: u64,
    pub events: u64,
    /// Completions slower than this become `SlowCompletion` observations.
    pub slow_ns: u64,
    /// A request released after waiting this long is checked for a wait-for cycle.
    pub cycle_min_ns: u64,
    /// sqpoll-missed-wakeup and sqpoll-idle-spin thresholds (from AnalyzerConfig).
    pub missed_wakeup_ns: u64,
    pub idle_spin_min_ns: u64,
    /// What aggregating mode needs to remember (see aggregate.rs).
    pub agg: super::aggregate::AggState,
}

impl State {
    /// The comm of a ring's owner, live or as it was when the ring retired.
    pub fn ring_comm(&self, ring: &Ring) -> String {
        self.comms
            .get(&ring.tgid)
            .map_or_else(|| ring.owner_comm.clone(), |c| c.1.clone())
    }

    pub fn comm_of(&self, tid: u32) -> String {
        self.comms
            .get(&tid)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    fn ring(&mut self, ctx: u64, tgid: u32) -> &mut Ring {
        ring_entry(&mut self.rings, ctx, tgid)
    }

    fn thread(&mut self, tid: u32, tgid: u32) -> &mut Thread {
        thread_entry(&mut self.threads, tid, tgid)
    }

    /// Ring of `tgid` whose fd is `fd`, when the ring was created during the trace.
    /// The newest ring with that fd: fds are reused after a ring is closed, and no
    /// event says when a ring goes away.
    pub fn ring_by_fd(&self, tgid: u32, fd: u32) -> Option<u64> {
        self.rings
            .values()
            .filter(|r| r.tgid == tgid && r.fd == Some(fd as i32))
            .max_by_key(|r| r.created_ns)
            .map(|r| r.ctx)
    }

    /// Keeps `comms` up to date with the event's (tid, tgid, comm).
    fn note_comm(&mut self, ev: &RawEvent) {
        let key = (ev.pid, ev.tgid, ev.comm);
        if self.last_comm == Some(key) {
            return;
        }
        // What `comm_str` gives, without allocating unless it changed.
        let end = ev
            .comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(ev.comm.len());
        let comm = String::from_utf8_lossy(&ev.comm[..end]);
        match self.comms.get(&ev.pid) {
            Some((t, c)) if *t == ev.tgid && *c == comm => {}
            _ => {
                self.comms.insert(ev.pid, (ev.tgid, comm.into_owned()));
            }
        }
        self.last_comm = Some(key);
    }

    pub fn apply(&mut self, ev: &RawEvent) {
        if !self.forget.is_empty() {
            self.forget_processes();
        }
        self.events += 1;
        self.first_ns.get_or_insert(ev.ts_ns);
        self.last_ns = self.last_ns.max(ev.ts_ns);
        // Events injected by userspace (ring_state, fd_object, process_exit, ...) carry
        // no comm: they must not blank the one the kernel's events gave.
        if ev.pid != 0 && ev.comm[0] != 0 {
            self.note_comm(ev);
        }
        let Some(kind) = EventKind::from_u16(ev.kind) else {
            return;
        };
        use EventKind::*;
        match kind {
            Create => self.on_create(ev),
            Submit => self.on_submit(ev),
            Link => self.on_link(ev),
            FailLink => self.on_fail_link(ev),
            Complete => self.on_complete(ev),
            CqeOverflow => self.on_overflow(ev),
            ReqFailed => self.observations.push(Observation::InvalidSqe(*ev)),
            FileGet => {
                if let Some(r) = self
                    .rings
                    .get_mut(&ev.ctx)
                    .and_then(|r| r.inflight.get_mut(&ev.req))
                {
                    r.issued = true;
                    r.fd = Some(ev.args[0] as i32);
                }
            }
            QueueAsyncWork => {
                self.procs.entry(ev.tgid).or_default().punts.add(ev.ts_ns);
                let ring = self.ring(ev.ctx, ev.tgid);
                ring.punted += 1;
                let mut key = (ev.tgid, ev.opcode, -1);
                if let Some(r) = ring.inflight.get_mut(&ev.req) {
                    r.punted = true;
                    key.2 = r.fd.unwrap_or(-1);
                }
                *self.punts.entry(key).or_default() += 1;
            }
            PollArm => {
                if let Some(r) = self
                    .rings
                    .get_mut(&ev.ctx)
                    .and_then(|r| r.inflight.get_mut(&ev.req))
                {
                    r.poll_armed = true;
                    r.waited_on_poll = true;
                }
            }
            TaskAdd | PollWake => {
                if let Some(r) = self
                    .rings
                    .get_mut(&ev.ctx)
                    .and_then(|r| r.inflight.get_mut(&ev.req))
                {
                    r.poll_armed = false;
                }
            }
            CqringWait => self.on_cqring_wait(ev),
            EnterEnter => self.on_enter(ev),
            EnterExit => self.on_enter_exit(ev),
            SchedSwitch => self.on_switch(ev),
            SchedWaking => {
                let t = self.thread(ev.args[0], 0);
                if t.state != "running" {
                    t.state = "woken";
                    t.state_since_ns = ev.ts_ns;
                }
            }
            TaskNewtask => {
                let t = self.thread(ev.args[0], ev.tgid);
                t.created_ns = Some(ev.ts_ns);
            }
            TaskRename => self.on_rename(ev),
            RingState => self.on_ring_state(ev),
            AggOps | AggLatency => super::aggregate::apply(self, ev),
            Register => {
                if ev.args[0] == REGISTER_IOWQ_MAX_WORKERS && ev.res >= 0 {
                    self.procs
                        .entry(ev.tgid)
                        .or_default()
                        .max_workers_registered = true;
                }
            }
            FdObject => {
                let key = (ev.tgid, ev.args[0] as i32);
                match FdType::from_u32(ev.args[1]) {
                    None | Some(FdType::Closed) => {
                        self.fds.remove(&key);
                    }
                    Some(t) => {
                        self.fds.insert(key, (t, ev.aux));
                    }
                }
            }
            ProcessExit => self.on_process_exit(ev.tgid, ev.ts_ns),
            RingClosed => {
                if let Some(ctx) = self.ring_by_fd(ev.tgid, ev.args[0]) {
                    self.retire_ring(ctx, ev.ts_ns);
                }
            }
            Defer | TaskWorkRun | ShortWrite | LocalWorkRun | ProcessFork => {}
        }
    }

    /// What a file descriptor of `tgid` refers to, when known.
    pub fn fd_object(&self, tgid: u32, fd: i32) -> Option<(FdType, u64)> {
        self.fds.get(&(tgid, fd)).copied()
    }

    /// A ring that is gone: findings about its state are made now (an observation),
    /// then it leaves the state, and a summary stays for the report.
    pub fn retire_ring(&mut self, ctx: u64, ts: u64) {
        let Some(old) = self.rings.remove(&ctx) else {
            return;
        };
        self.chains.retain(|_, c| c.ctx != ctx);
        if let Some(fd) = old.fd {
            self.samples.remove(&(old.tgid, fd as u32));
        }
        let mut summary = old.clone();
        summary.owner_comm = self.comm_of(old.tgid);
        // The summary keeps counts, latency and the last chains (for `top`), not
        // requests.
        summary.inflight = Map::default();
        summary.by_user_data = U64Map::default();
        if self.retired.len() == RETIRED_RINGS {
            self.retired.pop_front();
        }
        self.retired.push_back(summary);
        self.observations
            .push(Observation::RingRetired(Box::new(old), ts));
    }

    /// A process that used io_uring is gone: its rings retire now; its threads, fds
    /// and counters go at the next event, once findings about them have been made.
    fn on_process_exit(&mut self, tgid: u32, ts: u64) {
        let rings: Vec<u64> = self
            .rings
            .values()
            .filter(|r| r.tgid == tgid)
            .map(|r| r.ctx)
            .collect();
        for ctx in rings {
            self.retire_ring(ctx, ts);
        }
        self.observations
            .push(Observation::ProcessRetired { tgid, ts });
        self.forget.push(tgid);
    }

    /// Drops what is left of processes that exited.
    fn forget_processes(&mut self) {
        for tgid in std::mem::take(&mut self.forget) {
            self.forget_process(tgid);
        }
    }

    fn forget_process(&mut self, tgid: u32) {
        self.threads.retain(|_, t| t.tgid != tgid);
        self.comms.retain(|_, (t, _)| *t != tgid);
        self.last_comm = None;
        self.enters.retain(|tid, _| self.comms.contains_key(tid));
        self.fds.retain(|k, _| k.0 != tgid);
        self.samples.retain(|k, _| k.0 != tgid);
        self.iowq_workers.remove(&tgid);
        self.punts.retain(|k, _| k.0 != tgid);
        if let Some(p) = self.procs.remove(&tgid) {
            self.max_workers_of_gone = self.max_workers_of_gone.max(p.workers_max_live);
        }
    }

    /// A ctx address is reused after a ring is freed: a create for a known ctx starts
    /// a new ring. The old one is retired first.
    fn on_create(&mut self, ev: &RawEvent) {
        if self.rings.contains_key(&ev.ctx) {
            self.retire_ring(ev.ctx, ev.ts_ns);
            self.samples.remove(&(ev.tgid, ev.args[0]));
        }
        let ring = self.ring(ev.ctx, ev.tgid);
        ring.tgid = ev.tgid;
        ring.created_ns = ev.ts_ns;
        ring.fd = Some(ev.args[0] as i32);
        ring.sq_entries = Some(ev.args[1]);
        ring.cq_entries = Some(ev.args[2]);
        ring.setup_flags = Some(ev.cflags);
    }

    fn new_chain(&mut self, ctx: u64, r: &Request) -> ChainId {
        let id = self.next_chain;
        self.next_chain += 1;
        let member = Member::of(r);
        self.chains.insert(
            id,
            Chain {
                id,
                ctx,
                tgid: r.tgid,
                tid: r.tid,
                members: vec![member],
                closed: false,
                cut_at_batch_end: false,
                breaker: None,
            },
        );
        id
    }

    /// The request submitted after an open chain got no link event: the batch ended
    /// with the chain unterminated. Close that chain; the request may start a new one.
    fn resolve_pending(&mut self, ctx: u64) {
        let Some(ring) = self.rings.get_mut(&ctx) else {
            return;
        };
        let Some(p) = ring.pending_append.take() else {
            return;
        };
        if let Some(open) = ring.open_chain.take() {
            if let Some(c) = self.chains.get_mut(&open) {
                c.closed = true;
                c.cut_at_batch_end = true;
            }
            self.maybe_finish_chain(open);
        }
        let ring = self.rings.get_mut(&ctx).expect("ring exists");
        if let Some(r) = ring.inflight.get(&p).copied() {
            if r.links() {
                let id = self.new_chain(ctx, &r);
                let ring = self.rings.get_mut(&ctx).expect("ring exists");
                ring.open_chain = Some(id);
                if let Some(x) = ring.inflight.get_mut(&p) {
                    x.chain = Some(id);
                }
            }
        }
    }

    fn on_submit(&mut self, ev: &RawEvent) {
        if super::aggregate::completed_by_overflow(self, ev) {
            return;
        }
        let tgid = ev.tgid;
        // One ring lookup in the common case (no request waiting for a link event).
        let mut ring = ring_entry(&mut self.rings, ev.ctx, tgid);
        if ring.pending_append.is_some() {
            self.resolve_pending(ev.ctx);
            ring = ring_entry(&mut self.rings, ev.ctx, tgid);
        }
        if ev.role == Role::SqPoll as u8 {
            let t = thread_entry(&mut self.threads, ev.pid, tgid);
            t.role = Some(Role::SqPoll);
            t.submits += 1;
            ring.sqpoll_tid = Some(ev.pid);
        }
        ring.submitted += 1;
        match ring.first_submitter {
            None => ring.first_submitter = Some(ev.pid),
            Some(t) if t != ev.pid => ring.several_submitters = true,
            _ => {}
        }
        // A req pointer is reused after completion; a submit of a pointer still in
        // flight means the old identity ended unseen (CQE_SKIP_SUCCESS, lost event).
        let r = match ring.inflight.entry(ev.req) {
            Entry::Occupied(o) => {
                let old = o.into_mut();
                ring.by_user_data.remove(&old.user_data);
                if old.skips_success() {
                    ring.silent_in_flight -= 1;
                }
                old
            }
            Entry::Vacant(v) => v.insert(Request::BLANK),
        };
        // Filled in place: a Request built aside and then copied into the table costs
        // more than the rest of the submit (store forwarding fails on the copy).
        r.ctx = ev.ctx;
        r.req = ev.req;
        r.user_data = ev.user_data;
        r.opcode = ev.opcode;
        r.flags = ev.aux;
        r.submit_ns = ev.ts_ns;
        r.tid = ev.pid;
        r.tgid = tgid;
        r.fd = (ev.args[2] != 0).then_some(ev.args[2] as i32);
        r.issued = false;
        r.poll_armed = false;
        r.waited_on_poll = false;
        r.punted = false;
        r.chain = None;
        r.multishot_cqes = 0;
        r.futex = (matches!(ev.opcode, opcodes::FUTEX_WAIT | opcodes::FUTEX_WAKE) && ev.aux2 != 0)
            .then_some(ev.aux2);
        if r.skips_success() {
            ring.silent_in_flight += 1;
        }
        let starts_chain = r.links().then_some(*r);
        ring.by_user_data.insert(ev.user_data, ev.req);
        let open = ring.open_chain;
        ring.max_in_flight = ring.max_in_flight.max(ring.inflight.len() as u64);
        if open.is_some() {
            ring.pending_append = Some(ev.req);
        } else if let Some(r) = starts_chain {
            let id = self.new_chain(ev.ctx, &r);
            let ring = self.rings.get_mut(&ev.ctx).expect("ring exists");
            ring.open_chain = Some(id);
            if let Some(x) = ring.inflight.get_mut(&ev.req) {
                x.chain = Some(id);
            }
        }
        if self.pending_enter_ring {
            self.learn_enter_ring(ev.pid, ev.ctx);
        }
    }

    /// `target` is the previous member (6.12+) or the chain head (before): either
    /// way it identifies the chain, so both kernel semantics rebuild the same chain.
    fn on_link(&mut self, ev: &RawEvent) {
        let Some(ring) = self.rings.get_mut(&ev.ctx) else {
            return;
        };
        if ring.pending_append == Some(ev.req) {
            ring.pending_append = None;
        }
        let chain_id = ring
            .inflight
            .get(&ev.aux)
            .and_then(|t| t.chain)
            .or(ring.open_chain);
        let Some(id) = chain_id else { return };
        let Some(r) = ring.inflight.get_mut(&ev.req) else {
            return;
        };
        r.chain = Some(id);
        let r = *r;
        let Some(chain) = self.chains.get_mut(&id) else {
            return;
        };
        chain.members.push(Member::of(&r));
        if !r.links() {
            chain.closed = true;
            if ring.open_chain == Some(id) {
                ring.open_chain = None;
            }
        }
    }

    /// fail_link names the failed request (often completed and gone from the in-flight
    /// set by now) and the cancelled follower (still in flight): find the chain by either.
    fn on_fail_link(&mut self, ev: &RawEvent) {
        let Some(ring) = self.rings.get(&ev.ctx) else {
            return;
        };
        let id = ring
            .inflight
            .get(&ev.aux)
            .and_then(|r| r.chain)
            .or_else(|| ring.inflight.get(&ev.req).and_then(|r| r.chain))
            .or_else(|| {
                self.chains
                    .values()
                    .find(|c| c.ctx == ev.ctx && c.index_of(ev.req).is_some())
                    .map(|c| c.id)
            });
        let Some(id) = id else { return };
        if let Some(c) = self.chains.get_mut(&id) {
            if c.breaker.is_none() {
                c.breaker = c.index_of(ev.req);
            }
            if let Some(i) = c.index_of(ev.aux) {
                c.members[i].cancelled = true;
            }
        }
    }

    /// A request's final completion, from the CQ ring or the overflow list.
    fn finish_request(&mut self, ctx: u64, req: u64, res: i32, ts: u64) {
        let Some(mut ring) = self.rings.get_mut(&ctx) else {
            return;
        };
        if ring.pending_append == Some(req) {
            ring.pending_append = None;
            if let Some(id) = ring.open_chain.take() {
                if let Some(c) = self.chains.get_mut(&id) {
                    c.closed = true;
                    c.cut_at_batch_end = true;
                }
                self.maybe_finish_chain(id);
            }
            let Some(again) = self.rings.get_mut(&ctx) else {
                return;
            };
            ring = again;
        }
        let Some(r) = take_request(ring, &mut self.latency, req, ts, self.slow_ns) else {
            return;
        };
        self.finished(ctx, r, res, ts);
    }

    /// What follows a request's final completion, once it left the in-flight set.
    #[inline]
    fn finished(&mut self, ctx: u64, r: Done, res: i32, ts: u64) {
        let req = r.req;
        if res == -105 {
            self.observations.push(Observation::NoBufs {
                ev: RawEvent {
                    ctx,
                    req,
                    user_data: r.user_data,
                    res,
                    ts_ns: ts,
                    pid: r.tid,
                    tgid: r.tgid,
                    ..RawEvent::default()
                },
                opcode: r.opcode,
            });
        }
        let mut start = r.submit_ns;
        // Released after waiting on a wait-for cycle? Judged before the request's
        // result is known to its chain: the graph is the one it waited in.
        let cycle = match &r.whole {
            Some(w) if ts.saturating_sub(w.submit_ns) >= self.cycle_min_ns => {
                super::graph::cycle_through(self, w, ts, self.cycle_min_ns)
            }
            _ => None,
        };
        let mut silent_done = Vec::new();
        let silent = |q: u64| {
            self.rings
                .get(&ctx)
                .and_then(|ring| ring.inflight.get(&q))
                .is_some_and(Request::skips_success)
        };
        if let Some(id) = r.chain {
            if let Some(c) = self.chains.get_mut(&id) {
                if let Some(i) = c.index_of(req) {
                    // A follower cannot start before its predecessors complete.
                    start = c.members[..i]
                        .iter()
                        .filter_map(|m| m.complete_ns)
                        .fold(start, u64::max);
                    c.members[i].res = Some(res);
                    c.members[i].complete_ns = Some(ts);
                    c.members[i].regular_file = self.completing_isreg.take();
                    // Earlier members with no result completed without a CQE
                    // (IOSQE_CQE_SKIP_SUCCESS): a follower runs only after them.
                    for m in &mut c.members[..i] {
                        if m.res.is_none() && silent(m.req) {
                            m.res = Some(0);
                            m.complete_ns = Some(ts);
                            silent_done.push(m.req);
                        }
                    }
                }
            }
        }
        if !silent_done.is_empty() {
            if let Some(ring) = self.rings.get_mut(&ctx) {
                for q in silent_done {
                    if let Some(x) = ring.inflight.remove(&q) {
                        ring.by_user_data.remove_if(x.user_data, q);
                        if x.skips_success() {
                            ring.silent_in_flight -= 1;
                        }
                    }
                }
            }
        }
        if let Some(c) = cycle {
            self.observations.push(Observation::CycleReleased(c));
            if let Some(id) = r.chain {
                self.maybe_finish_chain(id);
            }
            return;
        }
        let slow = self.slow_ns > 0 && ts.saturating_sub(start) >= self.slow_ns;
        if let (true, Some(whole)) = (slow, r.whole) {
            let chain = r.chain.and_then(|id| self.chains.get(&id)).cloned();
            self.observations.push(Observation::SlowCompletion {
                req: *whole,
                chain,
                start_ns: start,
                done_ns: ts,
                res,
            });
        }
        if let Some(id) = r.chain {
            self.maybe_finish_chain(id);
        }
    }

    fn maybe_finish_chain(&mut self, id: ChainId) {
        let done = self
            .chains
            .get(&id)
            .is_some_and(|c| c.closed && c.all_done());
        if done {
            if let Some(c) = self.chains.remove(&id) {
                // Kept per ring for `uringtrace top`'s chain tree.
                if let Some(ring) = self.rings.get_mut(&c.ctx) {
                    if ring.recent_chains.len() == RECENT_CHAINS {
                        ring.recent_chains.pop_front();
                    }
                    ring.recent_chains.push_back(c.clone());
                }
                self.observations.push(Observation::ChainDone(c));
            }
        }
    }

    fn on_complete(&mut self, ev: &RawEvent) {
        self.completing_isreg = match ev.args[1] {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        };
        let ring = ring_entry(&mut self.rings, ev.ctx, ev.tgid);
        ring.completed += 1;
        ring.cq_posted_since += 1;
        if ev.res < 0 {
            ring.errors += 1; // for `uringtrace top`
        }
        // A zero-copy send's notification: from a kernel request of its own, never
        // submitted; the send it belongs to already completed.
        if ev.cflags & CQE_F_NOTIF != 0 {
            ring.notifs_owed = ring.notifs_owed.saturating_sub(1);
            return;
        }
        let more = ev.cflags & CQE_F_MORE != 0;
        // A zero-copy send's own CQE carries F_MORE (a notification follows), but it is
        // the request's final CQE: SEND_ZC is not multishot.
        let zc_final = more
            && ev.req != 0
            && ring
                .inflight
                .get(&ev.req)
                .is_some_and(|r| opcodes::zero_copy_send(r.opcode));
        if zc_final {
            ring.notifs_owed += 1;
            self.finish_request(ev.ctx, ev.req, ev.res, ev.ts_ns);
            return;
        }
        // Before 5.19 io_uring_complete has no req field: a final CQE (no F_MORE) with
        // req 0 completes the in-flight request with that user_data. On newer kernels a
        // req-less final CQE is a MSG_RING delivery from another ring (or task): it
        // matches nothing in flight and is only counted.
        if ev.req == 0 && !more {
            if let Some(req) = ring.by_user_data.get(&ev.user_data).copied() {
                let multishot = ring.inflight.get(&req).map_or(0, |r| r.multishot_cqes);
                if multishot > 0 {
                    let opcode = ring.inflight.get(&req).map_or(0, |r| r.opcode);
                    self.observations.push(Observation::MultishotEnded {
                        ev: *ev,
                        intermediate: multishot,
                        opcode,
                    });
                }
                self.finish_request(ev.ctx, req, ev.res, ev.ts_ns);
            } else {
                ring.msg_ring_deliveries += 1;
            }
            return;
        }
        if ev.req == 0 || more {
            // Multishot intermediate CQE: the request goes on.
            let req = if ev.req != 0 {
                Some(ev.req)
            } else {
                ring.by_user_data.get(&ev.user_data).copied()
            };
            if let Some(r) = req.and_then(|q| ring.inflight.get_mut(&q)) {
                r.multishot_cqes += 1;
            }
            if ev.res == -libc::ENOBUFS {
                let opcode = req
                    .and_then(|q| ring.inflight.get(&q))
                    .map_or(0, |r| r.opcode);
                self.observations
                    .push(Observation::NoBufs { ev: *ev, opcode });
            }
            return;
        }
        if ring.pending_append == Some(ev.req) {
            if let Some(r) = ring.inflight.get(&ev.req) {
                if r.multishot_cqes > 0 {
                    let (intermediate, opcode) = (r.multishot_cqes, r.opcode);
                    self.observations.push(Observation::MultishotEnded {
                        ev: *ev,
                        intermediate,
                        opcode,
                    });
                }
            }
            self.finish_request(ev.ctx, ev.req, ev.res, ev.ts_ns);
            return;
        }
        // The common case, as `finish_request` does it but on the ring at hand.
        let Some(r) = take_request(ring, &mut self.latency, ev.req, ev.ts_ns, self.slow_ns) else {
            return;
        };
        if r.multishot_cqes > 0 {
            self.observations.push(Observation::MultishotEnded {
                ev: *ev,
                intermediate: r.multishot_cqes,
                opcode: r.opcode,
            });
        }
        self.finished(ev.ctx, r, ev.res, ev.ts_ns);
    }

    fn on_overflow(&mut self, ev: &RawEvent) {
        let ring = self.ring(ev.ctx, ev.tgid);
        ring.overflowed += 1;
        ring.completed += 1;
        ring.cq_posted_since += 1;
        if ev.res < 0 {
            ring.errors += 1; // for `uringtrace top`
        }
        ring.first_overflow_ns.get_or_insert(ev.ts_ns);
        ring.last_overflow_ns = ev.ts_ns;
        if ring.overflow_user_data.len() < 16 {
            ring.overflow_user_data.push(ev.user_data);
        }
        let ep = ring.overflow_open.get_or_insert(OverflowEpisode {
            since_ns: ev.ts_ns,
            ..OverflowEpisode::default()
        });
        ep.cqes += 1;
        ep.last_ns = ev.ts_ns;
        if ev.res == -libc::ECANCELED {
            ep.cancelled += 1;
        }
        let dropped = ev.aux == 0;
        if dropped {
            ring.dropped += 1;
        }
        if ev.cflags & CQE_F_NOTIF != 0 {
            ring.notifs_owed = ring.notifs_owed.saturating_sub(1);
            return;
        }
        // Overflowed CQEs carry no req: match the in-flight request by user_data. A
        // CQE with F_MORE is a multishot intermediate (the request goes on), unless it
        // is a zero-copy send's own CQE.
        let req = ring.by_user_data.get(&ev.user_data).copied();
        let more = ev.cflags & CQE_F_MORE != 0;
        let zc = req
            .and_then(|q| ring.inflight.get(&q))
            .is_some_and(|r| opcodes::zero_copy_send(r.opcode));
        if zc && more {
            ring.notifs_owed += 1;
        }
        if req.is_none() && !more {
            self.agg.overflowed_unseen(ev.ctx, ev.user_data);
        }
        if dropped {
            self.observations.push(Observation::DroppedCqe(*ev));
        }
        if more && !zc {
            return;
        }
        if let Some(req) = req {
            self.finish_request(ev.ctx, req, ev.res, ev.ts_ns);
        }
    }

    /// The ring of an enter with IORING_ENTER_REGISTERED_RING, from the first event of
    /// the entering task that names a ring.
    fn learn_enter_ring(&mut self, tid: u32, ctx: u64) {
        if let Some(e) = self.enters.get_mut(&tid) {
            e.ctx.get_or_insert(ctx);
        }
        self.pending_enter_ring = self.enters.values().any(|e| e.ctx.is_none());
    }

    /// The owner entered with GETEVENTS: io_cqring_wait moves overflowed CQEs into the
    /// CQ ring as far as it has room (6.1+). Whether the list emptied shows in the
    /// next fdinfo sample (`CqOverflowList`); until then it is presumed.
    fn overflow_flush_attempt(&mut self, ctx: u64, ts: u64) {
        if let Some(ep) = self
            .rings
            .get_mut(&ctx)
            .and_then(|r| r.overflow_open.as_mut())
        {
            ep.attempt(ts);
        }
    }

    /// An fdinfo sample showed the overflow list empty: the episode ended at the
    /// last GETEVENTS enter (or, without one, by this sample).
    fn overflow_flushed(&mut self, ctx: u64, ts: u64) {
        let Some(ring) = self.rings.get_mut(&ctx) else {
            return;
        };
        let Some(ep) = ring.overflow_open.take() else {
            return;
        };
        // Emptied at the last attempt (or, with none since the last overflow, by this
        // sample: the unhandled stretch runs until here).
        let gap = match ep.presumed_flush() {
            Some(_) => ep.max_gap_ns,
            None => ep.gap_until(ts),
        };
        let ts = ep.presumed_flush().unwrap_or(ts);
        let t = &mut ring.overflow_flushed;
        t.episodes += 1;
        t.cqes += ep.cqes;
        t.cancelled += ep.cancelled;
        t.max_wait_ns = t.max_wait_ns.max(gap);
        t.max_nonempty_ns = t.max_nonempty_ns.max(ts.saturating_sub(ep.since_ns));
        t.first_ns.get_or_insert(ep.since_ns);
        t.last_ns = ts;
    }

    fn on_enter(&mut self, ev: &RawEvent) {
        let mut e = Enter {
            fd: ev.args[0],
            to_submit: ev.args[1],
            min_complete: ev.args[2],
            flags: ev.cflags,
            ts: ev.ts_ns,
            ctx: None,
            unsatisfiable: None,
        };
        let registered = e.flags & ENTER_REGISTERED_RING != 0;
        if !registered {
            e.ctx = self.ring_by_fd(ev.tgid, e.fd);
        }
        self.enters.insert(ev.pid, e);
        if registered {
            self.pending_enter_ring = true;
        }
        if e.flags & ENTER_GETEVENTS != 0 {
            if let Some(ctx) = e.ctx {
                self.overflow_flush_attempt(ctx, ev.ts_ns);
            }
        }
        if e.flags & ENTER_SQ_WAKEUP != 0 {
            if let Some(ctx) = e.ctx {
                self.ring(ctx, ev.tgid).last_sq_wakeup_ns = Some(ev.ts_ns);
            }
            // With a registered ring the fd is an index: every ring of the process may
            // be the one woken (quiet rather than a false missed wakeup).
            for s in self.samples.range_mut((ev.tgid, 0)..=(ev.tgid, u32::MAX)) {
                if registered || s.0 .1 == e.fd {
                    s.1.pending_since_ns = None;
                }
            }
        }
    }

    fn on_enter_exit(&mut self, ev: &RawEvent) {
        let Some(e) = self.enters.remove(&ev.pid) else {
            return;
        };
        if e.ctx.is_none() && self.pending_enter_ring {
            self.pending_enter_ring = self.enters.values().any(|e| e.ctx.is_none());
        }
        // The submit batch of this enter is over: an open chain with a request still
        // waiting for its link event was cut at the batch end.
        let rings: Vec<u64> = self
            .rings
            .values()
            .filter(|r| r.tgid == ev.tgid && r.pending_append.is_some())
            .map(|r| r.ctx)
            .collect();
        for ctx in rings {
            let pending_tid = self.rings[&ctx]
                .pending_append
                .and_then(|p| self.rings[&ctx].inflight.get(&p))
                .map(|r| r.tid);
            if pending_tid == Some(ev.pid) {
                self.resolve_pending(ctx);
            }
        }
        if e.flags & ENTER_GETEVENTS != 0 && e.flags & ENTER_REGISTERED_RING != 0 {
            if let Some(ctx) = e.ctx {
                // A registered-ring enter learns its ring only now.
                self.overflow_flush_attempt(ctx, ev.ts_ns);
            }
        }
        if let Some(wait) = e.unsatisfiable {
            self.observations.push(Observation::UnsatisfiableWait {
                wait,
                until_ns: Some(ev.ts_ns),
            });
        }
    }

    /// A GETEVENTS wait that will sleep. It can be satisfied only if the CQEs it
    /// still needs (min_complete - ready) can arrive: from requests in flight (one
    /// each), owed zero-copy notifications, MSG_RINGs towards the ring, or any number
    /// from an armed multishot request.
    fn on_cqring_wait(&mut self, ev: &RawEvent) {
        if self.pending_enter_ring {
            self.learn_enter_ring(ev.pid, ev.ctx);
        }
        let Some(ring) = self.rings.get(&ev.ctx) else {
            return;
        };
        // Rings whose producers we cannot count: an SQPOLL thread may submit more at
        // any time, another thread may submit while this one waits, other rings post
        // here with MSG_RING; and rings created before the trace (unknown history).
        if ring.fd.is_none()
            || ring.has_sqpoll()
            || ring.several_submitters
            || ring.msg_ring_deliveries > 0
        {
            return;
        }
        let Some(enter) = self.enters.get(&ev.pid).copied() else {
            return;
        };
        // Exact counts when the kernel read them at the wait (ctx->rings CQ head and
        // tail); else what the events tell: in flight exactly, ready at most.
        let (k_in_flight, k_ready) = super::aggregate::wait_counts(ev);
        let in_flight = k_in_flight.unwrap_or_else(|| ring.posting_in_flight());
        let ready = k_ready.unwrap_or_else(|| ring.cq_ready_upper_bound());
        // cqring_wait's min_events is min_complete clamped to the CQ size.
        let min_complete = u64::from(ev.args[0]);
        let need = min_complete.saturating_sub(ready);
        let timed = enter.flags & ENTER_EXT_ARG != 0;
        // An event loop's idle sleep: a timed wait with nothing ready or in flight.
        if need == 0 || (timed && in_flight == 0 && ready == 0) {
            return;
        }
        let producers = in_flight + ring.notifs_owed;
        if need <= producers || self.more_can_arrive(ring) {
            return;
        }
        let wait = UnsatisfiableWait {
            ctx: ev.ctx,
            tid: ev.pid,
            tgid: ev.tgid,
            min_complete,
            ready,
            producers,
            in_flight,
            timed,
            since_ns: ev.ts_ns,
        };
        if let Some(e) = self.enters.get_mut(&ev.pid) {
            e.unsatisfiable = Some(wait);
        }
    }

    /// Whether some request could post without bound, or another ring could post here:
    /// an in-flight request that can be multishot (it may post any number of CQEs),
    /// or a MSG_RING aimed at this ring. Scanned only for a wait that would otherwise
    /// be reported.
    fn more_can_arrive(&self, ring: &Ring) -> bool {
        if ring
            .inflight
            .values()
            .any(|r| opcodes::can_be_multishot(r.opcode))
        {
            return true;
        }
        let Some(fd) = ring.fd else { return false };
        self.rings
            .values()
            .filter(|r| r.tgid == ring.tgid)
            .flat_map(|r| r.inflight.values())
            .any(|r| r.opcode == opcodes::MSG_RING && r.fd == Some(fd))
    }

    fn on_switch(&mut self, ev: &RawEvent) {
        // Switches are streamed for io threads, but the task on the other side can be
        // any task of the host: forget those now and then (bounded memory).
        if self.threads.len() > MAX_THREADS {
            self.threads.retain(|_, t| t.role.is_some());
        }
        let (prev, next, prev_state) = (ev.args[0], ev.args[1], ev.aux);
        let role = Role::from_u8(ev.role);
        let t = self.thread(prev, ev.tgid);
        if role != Some(Role::Submitter) {
            t.role = role;
            t.tgid = ev.tgid;
            t.comm = comm_str(&ev.comm);
        }
        if let Some(start) = t.run_start_ns.take() {
            t.runtime_ns += ev.ts_ns.saturating_sub(start);
        }
        // An io-wq worker's last switch: it exits (idle workers go after 5 s).
        if t.role == Some(Role::IoWorker) && prev_state & EXITING_STATES != 0 {
            let tgid = t.tgid;
            self.threads.remove(&prev);
            if let Some(p) = self.procs.get_mut(&tgid) {
                p.workers_live = p.workers_live.saturating_sub(1);
            }
            let n = self.thread(next, 0);
            n.state = "running";
            n.state_since_ns = ev.ts_ns;
            n.run_start_ns = Some(ev.ts_ns);
            return;
        }
        // prev_state 0 is TASK_RUNNING: preempted, not sleeping.
        t.state = if prev_state == 0 {
            "preempted"
        } else {
            "asleep"
        };
        t.state_since_ns = ev.ts_ns;
        let n = self.thread(next, 0);
        n.state = "running";
        n.state_since_ns = ev.ts_ns;
        n.run_start_ns = Some(ev.ts_ns);
    }

    fn on_rename(&mut self, ev: &RawEvent) {
        let mut comm = [0u8; 16];
        comm[..8].copy_from_slice(&ev.aux.to_ne_bytes());
        comm[8..].copy_from_slice(&ev.aux2.to_ne_bytes());
        let role = Role::from_comm(&comm);
        let tid = if ev.args[0] != 0 { ev.args[0] } else { ev.pid };
        let t = self.thread(tid, ev.tgid);
        t.tgid = ev.tgid;
        t.role = Some(role);
        t.comm = comm_str(&comm);
        if role == Role::IoWorker {
            *self.iowq_workers.entry(ev.tgid).or_default() += 1;
            let p = self.procs.entry(ev.tgid).or_default();
            p.workers_live += 1;
            if p.workers_live > p.workers_max_live {
                p.workers_max_live = p.workers_live;
                p.workers_max_live_ns = ev.ts_ns;
            }
        }
    }

    fn on_ring_state(&mut self, ev: &RawEvent) {
        let (fd, head, tail) = (ev.args[0], ev.args[1], ev.args[2]);
        if ev.aux != 0 {
            let t = self.thread(ev.aux as u32, ev.tgid);
            t.role = Some(Role::SqPoll);
            if let Some(ctx) = self.ring_by_fd(ev.tgid, fd) {
                self.ring(ctx, ev.tgid).sqpoll_tid = Some(ev.aux as u32);
            }
        }
        if let Some(ctx) = self.ring_by_fd(ev.tgid, fd) {
            let ring = self.ring(ctx, ev.tgid);
            ring.cq_ready_sampled = Some(u64::from(ev.args[3]));
            ring.cq_posted_since = 0;
            // The overflow list's length, when the sample has it (opcode 1).
            if ev.opcode == 1 {
                if ev.res == 0 {
                    self.overflow_flushed(ctx, ev.ts_ns);
                } else if let Some(ep) = self
                    .rings
                    .get_mut(&ctx)
                    .and_then(|r| r.overflow_open.as_mut())
                {
                    // Still CQEs in the list: whatever GETEVENTS came did not empty it.
                    ep.presumed_empty = false;
                }
            }
        }
        let submitted = self
            .ring_by_fd(ev.tgid, fd)
            .and_then(|c| self.rings.get(&c))
            .map_or(0, |r| r.submitted);
        let s = self.samples.entry((ev.tgid, fd)).or_default();
        // Another SQPOLL thread behind the same fd: a new ring, a new history.
        if s.first.is_some_and(|f| f.aux != ev.aux) {
            *s = RingSamples::default();
        }
        s.first.get_or_insert(*ev);
        // The idle-spin window: the newest samples spanning at least the minimum.
        s.window.push_back((*ev, submitted));
        while s.window.len() > 2
            && ev.ts_ns.saturating_sub(s.window[1].0.ts_ns) >= self.idle_spin_min_ns
        {
            s.window.pop_front();
        }
        // The kernel consumed SQEs since the last sample: whatever is pending now is
        // new, not waiting (a busy app keeps its SQ ring non-empty at every sample).
        let progressed = s.last.is_some_and(|l| l.args[1] != head);
        s.last = Some(*ev);
        let pending = tail.wrapping_sub(head);
        s.pending_sqes = pending;
        s.max_pending_sqes = s.max_pending_sqes.max(pending);
        if pending == 0 || progressed {
            s.pending_since_ns = (pending != 0).then_some(ev.ts_ns);
            s.missed_reported = false;
        } else if s.pending_since_ns.is_none() {
            s.pending_since_ns = Some(ev.ts_ns);
        }
        // Judged as samples arrive, not at the end: the ring may be gone by then.
        let sq_tid = ev.aux as u32;
        if sq_tid == 0 {
            return;
        }
        let state = self
            .threads
            .get(&sq_tid)
            .map_or("asleep (no scheduler events)", |t| t.state);
        let s = self
            .samples
            .get_mut(&(ev.tgid, fd))
            .expect("inserted above");
        if let Some(since) = s.pending_since_ns {
            let stuck = ev.ts_ns.saturating_sub(since) >= self.missed_wakeup_ns;
            // A preempted thread is runnable: it is late, not missing a wakeup.
            let sleeping = !matches!(state, "running" | "woken" | "preempted");
            if stuck && !s.missed_reported && sleeping {
                s.missed_reported = true;
                let samples = s.clone();
                self.observations.push(Observation::MissedWakeup {
                    tgid: ev.tgid,
                    fd,
                    samples,
                    thread_state: state,
                });
            }
        }
        let s = self
            .samples
            .get_mut(&(ev.tgid, fd))
            .expect("inserted above");
        if !s.spin_reported {
            if let (Some(&(a, sub_a)), Some(&(b, sub_b))) = (s.window.front(), s.window.back()) {
                let wall_us = b.ts_ns.saturating_sub(a.ts_ns) / 1000;
                let total_us = b.aux2.saturating_sub(a.aux2);
                let work_us = b.user_data.saturating_sub(a.user_data);
                // Work is rare: under one submission per 10 ms. A thread kept busy by
                // a slowed-down submitter (a loaded machine) is not idle.
                let submits = sub_b.saturating_sub(sub_a);
                if wall_us >= self.idle_spin_min_ns / 1000
                    && total_us * 2 >= wall_us
                    && work_us * 20 <= total_us
                    && submits * 10_000 < wall_us
                {
                    s.spin_reported = true;
                    let samples = s.clone();
                    self.observations.push(Observation::IdleSpin {
                        tgid: ev.tgid,
                        fd,
                        samples,
                    });
                }
            }
        }
    }
}

fn ring_entry(rings: &mut Map<u64, Ring>, ctx: u64, tgid: u32) -> &mut Ring {
    rings.entry(ctx).or_insert_with(|| Ring {
        ctx,
        tgid,
        ..Ring::default()
    })
}

fn thread_entry(threads: &mut Map<u32, Thread>, tid: u32, tgid: u32) -> &mut Thread {
    threads.entry(tid).or_insert_with(|| Thread {
        tid,
        tgid,
        state: "unknown",
        ..Thread::default()
    })
}

/// Takes a finished request out of its ring's in-flight set and records its latency
/// (globally in `latency`, and per ring for `uringtrace top`). Inlined: a Request
/// returned through memory is read back before its bytes are stored, a stall per event.
#[inline(always)]
fn take_request(
    ring: &mut Ring,
    latency: &mut BTreeMap<u8, Histogram>,
    req: u64,
    ts: u64,
    slow_ns: u64,
) -> Option<Done> {
    // Read in place, then dropped: moving the Request out copies it for nothing.
    let Entry::Occupied(o) = ring.inflight.entry(req) else {
        return None;
    };
    let r = o.get();
    let done = Done {
        req: r.req,
        user_data: r.user_data,
        opcode: r.opcode,
        submit_ns: r.submit_ns,
        tid: r.tid,
        tgid: r.tgid,
        chain: r.chain,
        multishot_cqes: r.multishot_cqes,
        // Slow from its start is slow from its submission (start ≥ submission).
        whole: (slow_ns > 0 && ts.saturating_sub(r.submit_ns) >= slow_ns).then(|| Box::new(*r)),
    };
    if r.skips_success() {
        ring.silent_in_flight -= 1;
    }
    o.remove();
    ring.by_user_data.remove_if(done.user_data, req);
    let ns = ts.saturating_sub(done.submit_ns);
    let b = Histogram::bucket_of(ns);
    record(&mut ring.latency, done.opcode, b, ns);
    ring.latency_all.record_in(b, ns);
    record(latency, done.opcode, b, ns);
    Some(done)
}

/// What follows a final completion needs of the request that left the in-flight set.
struct Done {
    req: u64,
    user_data: u64,
    opcode: u8,
    submit_ns: u64,
    tid: u32,
    tgid: u32,
    chain: Option<ChainId>,
    multishot_cqes: u64,
    /// The whole request, when it may have been slow (for the observation).
    whole: Option<Box<Request>>,
}

/// Records `ns`, whose bucket is `b`, in `opcode`'s histogram.
#[inline(always)]
fn record(hists: &mut BTreeMap<u8, Histogram>, opcode: u8, b: usize, ns: u64) {
    match hists.get_mut(&opcode) {
        Some(h) => h.record_in(b, ns),
        None => hists.entry(opcode).or_default().record_in(b, ns),
    }
}
