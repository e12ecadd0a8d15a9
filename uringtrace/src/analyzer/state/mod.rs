//! The analyzer's model of io_uring: rings, requests in flight, link chains, io
//! threads. Updated one event at a time, in timestamp order. Memory is bounded by what
//! is in flight: completed requests and chains are summarised, then dropped.
//! One file over 600 lines because it is one idea: the model's types, which every
//! handler module (apply, lifecycle, requests, waits, samples, task_work) shares.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};

use uringtrace_common::view::{self, RingState};
use uringtrace_common::{EventKind, EventView, FdType, RawEvent, Role};

mod apply;
mod lifecycle;
mod misuse;
pub use misuse::{Blocker, DrainWait, FixedFailure, IOSQE_IO_DRAIN};
mod names;
pub use names::FdNames;
mod requests;
mod samples;
mod sys;
mod task_work;
pub use task_work::{SqpollHost, TaskWorkEnd, TaskWorkWait};
mod waits;
pub use sys::{SetupFailure, SetupFailures, Unflushed};

use apply::{ring_entry, thread_entry};

use super::index::U64Map;
use super::latency::Histogram;
use super::opcodes;
use crate::display::{comm_str, comm_text};
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

    /// IOSQE_FIXED_FILE (bit 0 of req->flags): `fd` is an index into the ring's
    /// registered files. (io_uring_register shows only counts on 6.18 (opcode,
    /// nr_files, nr_bufs, ret), so slots are never mapped to fds.)
    pub fn fixed_file(&self) -> bool {
        self.flags & crate::names::IOSQE_FIXED_FILE != 0
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
    /// `fd` is a registered file's slot (IOSQE_FIXED_FILE), not an fd.
    pub fixed_file: bool,
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
            fixed_file: r.fixed_file(),
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
    /// `completed` when the last io_uring_enter naming this ring returned.
    pub completed_at_enter_exit: u64,
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
    /// Requests that finished with an error, per opcode (the agent's
    /// `requests_total{result="error"}`).
    pub errors_by_op: BTreeMap<u8, u64>,
    /// Submit-to-final-completion latency of this ring's requests, per opcode.
    pub latency: BTreeMap<u8, Histogram>,
    /// The same over all opcodes of this ring.
    pub latency_all: Histogram,
    /// The last [`RECENT_CHAINS`] link chains that finished on this ring, oldest first.
    pub recent_chains: VecDeque<Chain>,
    /// The owner's comm, kept when the ring retires (its process may be forgotten).
    pub owner_comm: String,
    // --- For the request-misuse rules (state/misuse.rs). ---
    /// IOSQE_IO_DRAIN requests deferred and not yet completed, oldest first.
    pub drains: Vec<DrainWait>,
    /// Registered file table and buffer count, as io_uring_register last reported
    /// them (None: no register call seen for this ring).
    pub files_table: Option<u32>,
    pub bufs_table: Option<u32>,
    /// overflow-not-flushed: CQEs left in the overflow list while the CQ had room.
    pub unflushed: Unflushed,
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
    /// CQEs that went into the list (dropped ones do not).
    pub listed: u64,
    /// The list's length at the last fdinfo sample, and `listed` then.
    pub sampled: Option<(u64, u64)>,
}

impl OverflowEpisode {
    /// An fdinfo sample of the list's length at `ts`. Only a flush shortens the list:
    /// shorter than the last sample plus the CQEs listed since means the application
    /// flushed in between, which counts as a flush attempt at this sample (late by at
    /// most the sampling period). It is how flushes are seen when io_uring_enter is
    /// not hooked and the flushing enter did not sleep (libuv flushes with
    /// min_complete 0).
    pub fn sample(&mut self, len: u64, ts: u64) {
        if let Some((len0, listed0)) = self.sampled {
            if len < len0 + self.listed.saturating_sub(listed0) {
                self.attempt(ts);
            }
        }
        self.sampled = Some((len, self.listed));
        // Still CQEs in the list: whatever GETEVENTS came did not empty it.
        self.presumed_empty = false;
    }

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
    /// When a sched_switch last showed it going to sleep (not preempted, not yielding);
    /// `switched` says whether any sched_switch showed it leaving a CPU at all.
    pub slept_ns: Option<u64>,
    pub switched: bool,
    pub run_start_ns: Option<u64>,
    pub runtime_ns: u64,
    pub submits: u64,
    pub created_ns: Option<u64>,
    /// Time not asleep (running, or runnable and waiting for a CPU), counted for
    /// SQPOLL threads: what a poller wants, however loaded the CPUs are.
    pub awake_since_ns: Option<u64>,
    pub awake_ns: u64,
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
    /// Read at its wait, with no exit to follow (io_uring_enter not hooked): it ends at
    /// the thread's next submit or enter, or its process's exit.
    pub without_exit: bool,
    pub tgid: u32,
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
    /// The ring's `completed_at_enter_exit` when the wait began: CQEs posted since
    /// then may have arrived during the wait though stamped before it.
    pub completed_at_prev_exit: u64,
}

/// One fdinfo sample of a ring (a `ring_state` event): when, and what it showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSample {
    pub ts_ns: u64,
    pub state: RingState,
}

/// Samples of one ring's fdinfo (first and latest), keyed by (tgid, fd).
#[derive(Clone, Debug, Default)]
pub struct RingSamples {
    pub first: Option<RingSample>,
    pub last: Option<RingSample>,
    /// When SQ tail ≠ head was first seen and has stayed so.
    pub pending_since_ns: Option<u64>,
    pub pending_sqes: u32,
    pub max_pending_sqes: u32,
    /// The latest samples, spanning just over the idle-spin window (sliding: a thread
    /// that spins only for its sq_thread_idle after each burst is not judged over the
    /// whole trace, nor over the time before it started).
    /// Each with the ring's submissions counted by then.
    pub window: VecDeque<(RingSample, u64)>,
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
    /// An io_uring_enter failed with an error enter-error reports: its exit, and its
    /// enter when one was seen (ring, flags).
    EnterError {
        exit: RawEvent,
        enter: Option<Enter>,
    },
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
    /// Task work queued to a DEFER_TASKRUN or COOP_TASKRUN ring's owner waited at
    /// least `task_work_stall_ns` before the owner ran it (or the ring went away).
    TaskWorkStalled {
        wait: TaskWorkWait,
        until_ns: u64,
        end: TaskWorkEnd,
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
    /// A request on a registered file or buffer failed (at submit or at issue).
    FixedMisuse(Box<FixedFailure>),
    /// io_uring_short_write, with the ring's only write in flight when there is one.
    ShortWrite {
        ev: RawEvent,
        write: Option<Box<Request>>,
    },
    /// An IOSQE_IO_DRAIN request completed: how long it was held, and by what.
    DrainReleased(Box<DrainWait>),
}

/// Threads remembered before the ones that are no io thread are forgotten.
const MAX_THREADS: usize = 8192;

/// How many gone rings the report still lists.
pub const RETIRED_RINGS: usize = 64;

/// Process-wide io-wq facts.
#[derive(Clone, Debug, Default)]
pub struct Process {
    /// iou-wrk threads created, alive now, and the most alive at once (and when).
    pub workers_created: u64,
    pub workers_live: u64,
    pub workers_max_live: u64,
    pub workers_max_live_ns: u64,
    /// IORING_REGISTER_IOWQ_MAX_WORKERS succeeded: the process caps its workers.
    pub max_workers_registered: bool,
    pub punts: RateWindow,
    /// SQPOLL threads started, alive now, and the most alive at once (and when).
    pub sqpoll_created: u64,
    pub sqpoll_live: u64,
    pub sqpoll_max_live: u64,
    pub sqpoll_max_live_ns: u64,
    pub sqpoll_first_ns: u64,
    /// CPU time of this process's SQPOLL threads that are gone.
    pub sqpoll_runtime_of_gone_ns: u64,
    pub sqpoll_awake_of_gone_ns: u64,
    /// SQPOLL rings created during the trace, and how many of them attached to
    /// another ring's SQ thread (IORING_SETUP_ATTACH_WQ).
    pub sqpoll_rings: u64,
    pub sqpoll_rings_attached: u64,
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
    /// Per process: live io-wq workers, punt rates, IOWQ_MAX_WORKERS.
    pub procs: Map<u32, Process>,
    /// What the fds of processes using io_uring refer to: (tgid, fd) → (type, inode),
    /// from `fd_object` events.
    pub fds: Map<(u32, i32), (FdType, u64)>,
    /// Names of those fds (path, socket addresses, ...), from `fd_name` events; see
    /// [`State::fd_name`]. Bounded like `fds`: dropped at close, change and exit.
    pub(crate) fd_names: FdNames,
    /// An enter with IORING_ENTER_REGISTERED_RING waits to learn its ring.
    pub(crate) pending_enter_ring: bool,
    /// Enters in `enters` read at their wait (no exit event will end them).
    pub(crate) enters_without_exit: usize,
    /// The completion being applied: whether the kernel saw a regular file
    /// (`view::Complete::regular_file`).
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
    /// io-uring-unavailable: failed io_uring_setup calls per process.
    pub setup_failures: SetupFailures,
    /// overflow-not-flushed's threshold (AnalyzerConfig::overflow_flush_ns).
    pub overflow_flush_ns: u64,
    /// Task work waiting for its owner, by (ring, owner tid) (task-work-stalled).
    pub task_work: Map<(u64, u32), TaskWorkWait>,
    /// task-work-stalled threshold (from AnalyzerConfig).
    pub task_work_stall_ns: u64,
    /// SQPOLL threads alive on the host (sqpoll-proliferation).
    pub sqpoll_host: SqpollHost,
    /// CPUs of the traced host (0: unknown), from the environment.
    pub host_cpus: u32,
}
