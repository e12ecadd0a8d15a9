//! Deterministic io_uring scenarios for exercising the tracer.
//!
//! Every scenario builds its own ring, issues an exact, documented sequence of
//! SQEs, and returns a [`Report`] describing what the kernel answered. The
//! scenarios never block indefinitely: every wait carries a timeout, and the
//! deliberately stuck ones just close their ring after a bounded wait.

mod basic;
mod chains;
mod deadlock;
mod healthy;
mod iowq;
mod multishot;
mod net;
mod overflow;
mod sqpoll;

use std::fs::{File, OpenOptions};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use io_uring::{squeue, types, IoUring};
use serde::Serialize;

/// One line per scenario, shown by `uringtrace-workload --help`.
pub const ABOUT: &str = "\
Trigger exact, deterministic io_uring work for uringtrace tests, demos and benchmarks.
Each scenario uses its own ring, exits within seconds and prints ONE JSON line (scenario,
pid, ring_fd, per-member user_data/results in submit order, ...); diagnostics go to stderr.

Scenarios: what they do -> what the kernel is expected to answer
  nop-storm               N NOPs in batches -> N submissions, N completions, all res 0
  chain-ok                4 linked NOPs -> 0, 0, 0, 0
  chain-broken-error      NOP, READ(fd -1), NOP, NOP linked -> 0, -9 EBADF, -125 x2 ECANCELED
  chain-broken-short      READ 4096 of a 10-byte pipe, linked NOP -> 10, -125 (short read)
  chain-hardlink          NOP, READ(fd -1), NOP hard-linked -> 0, -9, 0 (error doesn't cancel)
  invalid-sqe             SQE with opcode 250 -> io_uring_req_failed, res -22 EINVAL
  cq-overflow             17 NOPs, 4-entry CQ, not reaped for 1.5 s -> 13 overflow; 17 after flush
  sqpoll-ok               SQPOLL NOPs with a 200 ms gap -> thread sleeps, woken, all complete
  sqpoll-missed-wakeup    SQEs published to a sleeping SQ thread, no enter -> nothing completes
  sqpoll-shared-split     12-link chain, shared SQ thread -> cut at 8: -9, -125 x7, 0 x4
  multishot-recv          RECV_MULTISHOT, 2 ring buffers, 3 msgs -> 16 MORE, 16 MORE, -105 end
  iowq-splice             N SPLICEs from empty pipes -> N iou-wrk workers block; res 1 each
  pipe-read-before-write  READ linked before the WRITE feeding it -> stalls until userspace writes
  unsatisfiable-wait      enter(min_complete=3), 1 stuck request -> -62 ETIME after 500 ms
  sqpoll-idle-spin        SQPOLL idle 3 s, one NOP then 1.5 s idle -> thread spins with no work
  stalled-request         one SPLICE blocked in io-wq for 1.5 s, then released -> res 1
  all                     every scenario above in sequence, one JSON line each

Healthy look-alikes: correct usage the rules must stay quiet on (not part of `all`)
  idle-server             ACCEPT; then RECV, POLL_ADD(eventfd), ACCEPT idle 1.5 s -> fd, 16, 1, fd
  timers                  TIMEOUT 1.5 s; READ -> LINK_TIMEOUT 300 ms; NOP -> LINK_TIMEOUT 1 s;
                          POLL_ADD, POLL_REMOVE at 1.3 s -> -62; -125, -62; 0, -125; -125, 0
  event-loop              6 x (2 NOPs; enter(GETEVENTS, 250 ms), nothing in flight -> -62)
  defer-taskrun           SINGLE_ISSUER|DEFER_TASKRUN: READ(pipe), NOPs, WRITE -> 64, 0, 0, 64
  sqpoll-short-chains     2 rings sharing an SQ thread, chains of 4 NOPs (never cut) -> all 0
  sqpoll-bursty           SQPOLL idle 5 ms, 16 NOPs every 20 ms, 1.5 s -> woken per burst, all 0
  send-zc                 4 SEND_ZC of 4 KiB on TCP -> 4096 with F_MORE, then 0 with F_NOTIF, each
  skip-success            8 NOPs with CQE_SKIP_SUCCESS, NOP, READ(fd -1) skip -> 2 CQEs: 0, -9
  registered-ring         50 NOPs, waits via IORING_ENTER_REGISTERED_RING -> all 0, waits -62
  keepalive-chain         RECV -> SEND on TCP, the request comes 1.3 s later -> 64, 128
  file-copy-chain         8 x READ 64 KiB -> WRITE(file); READ(pipe fed at 1.3 s) -> WRITE(pipe)
                          -> 65536 x 16, 64, 64
  read-eof-chain          READ 4096 -> WRITE(/dev/null) over a 10000-byte file, READ at EOF
                          -> 4096 x 4, 1808, -125, 0
  chain-reset             RECV -> SEND, peer resets -> -104, -125; then 2 x SEND -> NOP on a
                          reset connection -> -104, -125, -32 EPIPE, -125
  intended-cancel         READ(empty pipe) -> NOP, ASYNC_CANCEL after 200 ms -> -125, -125, 0
  overflow-flushed        3 x 64 NOPs on an 8/16 ring, overflow flushed at once -> 192, all 0
  futex-pair              FUTEX_WAIT(A) -> FUTEX_WAKE(B); a 2nd ring wakes A at 300 ms -> 0, 0
  futex-cycle             FUTEX_WAIT(A) -> FUTEX_WAKE(A): stuck until a 2nd ring wakes A at 1.2 s

More pathologies (not part of `all`)
  ring-msg-cycle          rings A, B: POLL_ADD(other ring) -> MSG_RING(other ring) each; stuck
                          1.2 s, a NOP on B unwinds it -> 1, 0, 1, 0
  timed-unsatisfiable-wait  1 CQE unreaped, enter(min_complete=2, 1.5 s) -> sleeps 1.5 s, ret 0
  many-broken-chains      300 x (NOP -> READ(fd -1) -> NOP) -> 0, -9, -125 each";

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// Submit N NOPs in batches, reaping after each batch (benchmark load)
    NopStorm {
        /// Number of NOPs to submit (user_data 1..=N).
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// NOPs per io_uring_enter; must not exceed --entries.
        #[arg(long, default_value_t = 64)]
        batch: u32,
        /// Submission queue size (the CQ is twice as large).
        #[arg(long, default_value_t = 64)]
        entries: u32,
        /// Pace the NOPs to this many per second (each batch waits for its
        /// turn); default: as fast as possible.
        #[arg(long, value_name = "OPS_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
        rate: Option<u64>,
        /// Keep the ring open this many seconds after the last completion (the
        /// counts are on stderr by then; the JSON line comes at exit). For soaks:
        /// a ring still alive when the trace ends is in its report.
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        linger: u64,
        /// Halfway through (after the batch that reaches N/2), rename the thread to
        /// NAME (prctl PR_SET_NAME): a tracer must show the new comm from then on.
        #[arg(long, value_name = "NAME")]
        rename: Option<String>,
    },
    /// 4 NOPs linked with IOSQE_IO_LINK; all succeed
    ChainOk,
    /// NOP -> READ(bad fd) -> NOP -> NOP; the error cancels the rest of the chain
    ChainBrokenError,
    /// READ(pipe, 4096) with only 10 bytes available -> NOP; the short read breaks the link
    ChainBrokenShort,
    /// NOP -> READ(bad fd) -> NOP with IOSQE_IO_HARDLINK; the error does not cancel
    ChainHardlink,
    /// One SQE with opcode 250; the kernel fails it at submission with -EINVAL
    InvalidSqe,
    /// 17 NOPs on a 4/4 ring without reaping; CQEs overflow, then are flushed
    CqOverflow,
    /// SQPOLL ring that goes idle midway and is woken with IORING_ENTER_SQ_WAKEUP
    SqpollOk {
        /// Number of NOPs to submit (user_data 1..=N).
        #[arg(long, default_value_t = 100)]
        count: u32,
    },
    /// SQEs published to a sleeping SQPOLL thread without a wakeup; nothing completes
    SqpollMissedWakeup,
    /// A 12-member chain on a ring sharing its SQ thread (ATTACH_WQ) is split at 8
    SqpollSharedSplit,
    /// Multishot RECV with a provided buffer ring of 2 buffers; the 3rd message hits ENOBUFS
    MultishotRecv,
    /// N blocking SPLICEs from empty pipes occupy N io-wq workers until released
    IowqSplice {
        /// Number of pipes / SPLICE requests.
        #[arg(long, default_value_t = 64)]
        count: u32,
    },
    /// READ linked before the WRITE that would satisfy it; stalls until userspace writes
    PipeReadBeforeWrite,
    /// Wait for 3 completions while only 1 request (that cannot finish) is in flight
    UnsatisfiableWait,
    /// SQPOLL ring (idle 3 s) with one NOP, then 1.5 s without work while the thread spins
    SqpollIdleSpin,
    /// One SPLICE from an empty pipe, blocked in io-wq for 1.5 s, then released
    StalledRequest,
    /// Healthy server: ACCEPT, then RECV, POLL_ADD(eventfd) and ACCEPT idle for 1.5 s
    IdleServer,
    /// TIMEOUT, LINK_TIMEOUT (fired and disarmed) and POLL_REMOVE, concurrently on one ring
    Timers,
    /// An idle event loop: timed waits with nothing in flight, NOPs in between
    EventLoop,
    /// SINGLE_ISSUER | DEFER_TASKRUN ring: pipe READ and WRITE, NOPs, timed waits
    DeferTaskrun,
    /// Two rings sharing an SQ thread, each with chains of 4 linked NOPs (never split)
    SqpollShortChains,
    /// SQPOLL ring (idle 5 ms) fed bursts of 16 NOPs every 20 ms for 1.5 s
    SqpollBursty,
    /// 4 SEND_ZC over TCP loopback, each posting a result CQE and a notification
    SendZc,
    /// NOPs with IOSQE_CQE_SKIP_SUCCESS post no CQE; a failing one does
    SkipSuccess,
    /// NOPs and waits through a registered ring fd (IORING_ENTER_REGISTERED_RING)
    RegisteredRing,
    /// RECV -> SEND on one TCP connection; the client sends its request after 1.3 s
    KeepaliveChain,
    /// READ -> WRITE file copy chains, and a slow pipe READ -> WRITE to another pipe
    FileCopyChain,
    /// READ -> WRITE pairs until EOF: the short last READ cancels its WRITE
    ReadEofChain,
    /// RECV -> SEND on a connection the peer resets; SEND -> NOP after the reset
    ChainReset,
    /// READ(empty pipe) -> NOP cancelled on purpose with ASYNC_CANCEL after 200 ms
    IntendedCancel,
    /// 64 NOPs on an 8/16 ring overflow the CQ; the app flushes at once (3 rounds)
    OverflowFlushed,
    /// FUTEX_WAIT(A) -> FUTEX_WAKE(B); a second ring wakes A after 300 ms (Linux 6.7+)
    FutexPair,
    /// FUTEX_WAIT(A) -> FUTEX_WAKE(A): a wait-for cycle until a second ring wakes A (6.7+)
    FutexCycle,
    /// Rings A and B each POLL_ADD the other's fd, linked to a MSG_RING to it: a cycle
    RingMsgCycle,
    /// One CQE ready, nothing in flight, enter(min_complete=2, 1.5 s timeout)
    TimedUnsatisfiableWait,
    /// 300 chains NOP -> READ(bad fd) -> NOP, each broken by the READ
    ManyBrokenChains,
    /// nop-storm through stalled-request, in order, with default options
    All,
}

impl Scenario {
    /// The scenario's subcommand name, also used as the `scenario` field.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::NopStorm { .. } => "nop-storm",
            Scenario::ChainOk => "chain-ok",
            Scenario::ChainBrokenError => "chain-broken-error",
            Scenario::ChainBrokenShort => "chain-broken-short",
            Scenario::ChainHardlink => "chain-hardlink",
            Scenario::InvalidSqe => "invalid-sqe",
            Scenario::CqOverflow => "cq-overflow",
            Scenario::SqpollOk { .. } => "sqpoll-ok",
            Scenario::SqpollMissedWakeup => "sqpoll-missed-wakeup",
            Scenario::SqpollSharedSplit => "sqpoll-shared-split",
            Scenario::MultishotRecv => "multishot-recv",
            Scenario::IowqSplice { .. } => "iowq-splice",
            Scenario::PipeReadBeforeWrite => "pipe-read-before-write",
            Scenario::UnsatisfiableWait => "unsatisfiable-wait",
            Scenario::SqpollIdleSpin => "sqpoll-idle-spin",
            Scenario::StalledRequest => "stalled-request",
            Scenario::All => "all",
            Scenario::IdleServer => "idle-server",
            Scenario::Timers => "timers",
            Scenario::EventLoop => "event-loop",
            Scenario::DeferTaskrun => "defer-taskrun",
            Scenario::SqpollShortChains => "sqpoll-short-chains",
            Scenario::SqpollBursty => "sqpoll-bursty",
            Scenario::SendZc => "send-zc",
            Scenario::SkipSuccess => "skip-success",
            Scenario::RegisteredRing => "registered-ring",
            Scenario::KeepaliveChain => "keepalive-chain",
            Scenario::FileCopyChain => "file-copy-chain",
            Scenario::ReadEofChain => "read-eof-chain",
            Scenario::ChainReset => "chain-reset",
            Scenario::IntendedCancel => "intended-cancel",
            Scenario::OverflowFlushed => "overflow-flushed",
            Scenario::FutexPair => "futex-pair",
            Scenario::FutexCycle => "futex-cycle",
            Scenario::RingMsgCycle => "ring-msg-cycle",
            Scenario::TimedUnsatisfiableWait => "timed-unsatisfiable-wait",
            Scenario::ManyBrokenChains => "many-broken-chains",
        }
    }

    /// The concrete scenarios to run: `all` expands to the original scenarios
    /// with their default options (the healthy look-alikes and the newer
    /// pathologies are run one by one); anything else is itself.
    pub fn expand(&self) -> Vec<Scenario> {
        match self {
            Scenario::All => vec![
                Scenario::NopStorm {
                    count: 1000,
                    batch: 64,
                    entries: 64,
                    rate: None,
                    linger: 0,
                    rename: None,
                },
                Scenario::ChainOk,
                Scenario::ChainBrokenError,
                Scenario::ChainBrokenShort,
                Scenario::ChainHardlink,
                Scenario::InvalidSqe,
                Scenario::CqOverflow,
                Scenario::SqpollOk { count: 100 },
                Scenario::SqpollMissedWakeup,
                Scenario::SqpollSharedSplit,
                Scenario::MultishotRecv,
                Scenario::IowqSplice { count: 64 },
                Scenario::PipeReadBeforeWrite,
                Scenario::UnsatisfiableWait,
                Scenario::SqpollIdleSpin,
                Scenario::StalledRequest,
            ],
            other => vec![other.clone()],
        }
    }
}

/// Run one concrete scenario. `all` must be expanded first with
/// [`Scenario::expand`], since it produces one report per scenario.
pub fn run(scenario: &Scenario) -> Result<Report> {
    let name = scenario.name();
    let report = match *scenario {
        Scenario::NopStorm {
            count,
            batch,
            entries,
            rate,
            linger,
            ref rename,
        } => basic::nop_storm(count, batch, entries, rate, linger, rename.as_deref()),
        Scenario::ChainOk => basic::chain_ok(),
        Scenario::ChainBrokenError => basic::chain_broken_error(),
        Scenario::ChainBrokenShort => basic::chain_broken_short(),
        Scenario::ChainHardlink => basic::chain_hardlink(),
        Scenario::InvalidSqe => basic::invalid_sqe(),
        Scenario::CqOverflow => overflow::cq_overflow(),
        Scenario::SqpollOk { count } => sqpoll::sqpoll_ok(count),
        Scenario::SqpollMissedWakeup => sqpoll::sqpoll_missed_wakeup(),
        Scenario::SqpollSharedSplit => sqpoll::sqpoll_shared_split(),
        Scenario::MultishotRecv => multishot::multishot_recv(),
        Scenario::IowqSplice { count } => iowq::iowq_splice(count),
        Scenario::PipeReadBeforeWrite => deadlock::pipe_read_before_write(),
        Scenario::UnsatisfiableWait => deadlock::unsatisfiable_wait(),
        Scenario::SqpollIdleSpin => sqpoll::sqpoll_idle_spin(),
        Scenario::StalledRequest => iowq::stalled_request(),
        Scenario::All => bail!("`all` is a list of scenarios; expand it before running"),
        Scenario::IdleServer => net::idle_server(),
        Scenario::Timers => healthy::timers(),
        Scenario::EventLoop => healthy::event_loop(),
        Scenario::DeferTaskrun => healthy::defer_taskrun(),
        Scenario::SqpollShortChains => sqpoll::sqpoll_short_chains(),
        Scenario::SqpollBursty => sqpoll::sqpoll_bursty(),
        Scenario::SendZc => net::send_zc(),
        Scenario::SkipSuccess => healthy::skip_success(),
        Scenario::RegisteredRing => healthy::registered_ring(),
        Scenario::KeepaliveChain => net::keepalive_chain(),
        Scenario::FileCopyChain => chains::file_copy_chain(),
        Scenario::ReadEofChain => chains::read_eof_chain(),
        Scenario::ChainReset => net::chain_reset(),
        Scenario::IntendedCancel => chains::intended_cancel(),
        Scenario::OverflowFlushed => overflow::overflow_flushed(),
        Scenario::FutexPair => healthy::futex_pair(),
        Scenario::FutexCycle => healthy::futex_cycle(),
        Scenario::RingMsgCycle => deadlock::ring_msg_cycle(),
        Scenario::TimedUnsatisfiableWait => deadlock::timed_unsatisfiable_wait(),
        Scenario::ManyBrokenChains => basic::many_broken_chains(),
    };
    report.with_context(|| format!("scenario {name} failed"))
}

/// One completion as the kernel posted it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cqe {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
}

impl From<&io_uring::cqueue::Entry> for Cqe {
    fn from(e: &io_uring::cqueue::Entry) -> Self {
        Cqe {
            user_data: e.user_data(),
            res: e.result(),
            flags: e.flags(),
        }
    }
}

/// The JSON line a scenario prints. Only the fields meaningful to the
/// scenario are set; the rest are omitted from the output.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub pid: u32,
    /// The ring the scenario's SQEs went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_fd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_entries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cq_entries: Option<u32>,
    /// IORING_SETUP_* flags passed to io_uring_setup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_flags: Option<u32>,
    /// SQ thread idle time requested for SQPOLL rings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_thread_idle_ms: Option<u32>,
    /// The other ring: ATTACH_WQ target (sqpoll-shared-split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_wq_fd: Option<i32>,
    /// SQEs the kernel accepted (as counted by io_uring_enter / the SQ head).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted: Option<u64>,
    /// CQEs reaped from the scenario's ring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
    /// Return value of the io_uring_enter that submitted the SQEs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enter_ret: Option<i64>,
    /// user_data of each member, in submit order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<Vec<u64>>,
    /// CQE res of each member, in submit order (same index as user_data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<i32>>,
    /// What the scenario's design expects `results` to be on Linux 6.18.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_results: Option<Vec<i32>>,
    /// Every CQE, in the order it was reaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completions: Option<Vec<Cqe>>,
    /// CQEs already visible in the CQ ring before any flushing io_uring_enter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_before_flush: Option<u64>,
    /// IORING_SQ_CQ_OVERFLOW as seen before the flush.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cq_overflow_flag: Option<bool>,
    /// The CQ ring's `overflow` counter (CQEs the kernel had to drop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cq_overflow_counter: Option<u32>,
    /// IORING_SQ_NEED_WAKEUP before the interesting step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_wakeup_before: Option<bool>,
    /// IORING_SQ_NEED_WAKEUP after the interesting step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_wakeup_after: Option<bool>,
    /// Submissions that had to wake the SQ thread (IORING_ENTER_SQ_WAKEUP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wakeups: Option<u64>,
    /// SQEs published in the SQ but not consumed by the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_pending: Option<u32>,
    /// SqTotalTime from the ring's fdinfo: CPU time of the SQ thread, in us.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_total_time_us: Option<u64>,
    /// SqWorkTime from the ring's fdinfo: SQ thread time spent doing work, in us.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_work_time_us: Option<u64>,
    /// CQEs reaped from the other ring (sqpoll-shared-split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ring_completed: Option<u64>,
    /// Provided-buffer group id and number of buffers (multishot-recv).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buf_group: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffers: Option<u32>,
    /// Threads of this process named iou-wrk-* while the requests were blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iou_wrk_threads: Option<u32>,
    /// CQEs seen before userspace unblocked the requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_before_release: Option<u64>,
    /// Userspace wrote into the pipe(s) to let the stuck requests finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released_by_userspace: Option<bool>,
    /// What the bounded waiting io_uring_enter returned (negative errno).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ret: Option<i64>,
    /// How long that wait took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// Every bounded io_uring_enter(GETEVENTS) wait, in order (event loops).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits: Option<Vec<Wait>>,
    /// Wall time of the whole scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// Index the ring fd was registered at (IORING_REGISTER_RING_FDS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_ring_index: Option<u32>,
    /// Bytes the other end of a socket or pipe received from the ring's requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_received: Option<u64>,
    /// Bursts of SQEs handed to an SQPOLL thread (sqpoll-bursty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bursts: Option<u64>,
    /// A second ring the scenario used (not an ATTACH_WQ target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ring_fd: Option<i32>,
    /// Every CQE reaped from that second ring, in the order it was reaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ring_completions: Option<Vec<Cqe>>,
    /// Whether the kernel behaved as the scenario's design expects.
    pub as_expected: bool,
}

/// One bounded wait: what io_uring_enter returned (negative errno) and how
/// long it took.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Wait {
    pub ret: i64,
    pub ms: u64,
}

impl Report {
    pub(crate) fn new(scenario: &'static str) -> Self {
        Report {
            scenario,
            pid: std::process::id(),
            ..Default::default()
        }
    }

    /// Record which ring the scenario used and how it was set up.
    pub(crate) fn ring(mut self, ring: &Ring) -> Self {
        self.ring_fd = Some(ring.uring.as_raw_fd());
        self.sq_entries = Some(ring.uring.params().sq_entries());
        self.cq_entries = Some(ring.uring.params().cq_entries());
        self.setup_flags = Some(ring.setup_flags);
        self.sq_thread_idle_ms = ring.sq_thread_idle_ms;
        self
    }

    /// Record per-member results in submit order and compare them with the
    /// design; a mismatch is reported, not treated as a failure, because the
    /// JSON (what the kernel actually did) is what the tracer is checked against.
    pub(crate) fn members(
        mut self,
        user_data: Vec<u64>,
        results: Vec<i32>,
        expected: Vec<i32>,
    ) -> Self {
        self.as_expected = results == expected;
        self.user_data = Some(user_data);
        self.results = Some(results);
        self.expected_results = Some(expected);
        self
    }
}

// IORING_SETUP_* values from include/uapi/linux/io_uring.h, only to report
// what was asked of io_uring_setup (the io-uring crate keeps its own private).
const IORING_SETUP_SQPOLL: u32 = 1 << 1;
const IORING_SETUP_CQSIZE: u32 = 1 << 3;
const IORING_SETUP_ATTACH_WQ: u32 = 1 << 5;
const IORING_SETUP_SINGLE_ISSUER: u32 = 1 << 12;
const IORING_SETUP_DEFER_TASKRUN: u32 = 1 << 13;

/// How to build a ring.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RingOpts {
    pub sq_entries: u32,
    pub cq_entries: Option<u32>,
    pub sqpoll_idle_ms: Option<u32>,
    pub attach_wq: Option<RawFd>,
    /// IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (the kernel
    /// requires the first for the second).
    pub defer_taskrun: bool,
}

impl RingOpts {
    pub fn entries(sq_entries: u32) -> Self {
        RingOpts {
            sq_entries,
            ..Default::default()
        }
    }
}

/// A ring plus the setup parameters worth reporting.
pub(crate) struct Ring {
    pub uring: IoUring,
    pub setup_flags: u32,
    pub sq_thread_idle_ms: Option<u32>,
}

impl Ring {
    pub fn new(opts: RingOpts) -> Result<Ring> {
        let mut builder = IoUring::builder();
        let mut setup_flags = 0;
        if let Some(cq) = opts.cq_entries {
            builder.setup_cqsize(cq);
            setup_flags |= IORING_SETUP_CQSIZE;
        }
        if let Some(idle) = opts.sqpoll_idle_ms {
            builder.setup_sqpoll(idle);
            setup_flags |= IORING_SETUP_SQPOLL;
        }
        if let Some(fd) = opts.attach_wq {
            builder.setup_attach_wq(fd);
            setup_flags |= IORING_SETUP_ATTACH_WQ;
        }
        if opts.defer_taskrun {
            builder.setup_single_issuer().setup_defer_taskrun();
            setup_flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        }
        let uring = builder
            .build(opts.sq_entries)
            .map_err(|e| setup_error(e, &opts))?;
        Ok(Ring {
            uring,
            setup_flags,
            sq_thread_idle_ms: opts.sqpoll_idle_ms,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.uring.as_raw_fd()
    }

    /// io_uring_enter(GETEVENTS, min_complete = `want`) bounded by `timeout`.
    /// Returns the kernel's return value (-ETIME on timeout) and how long it took.
    pub fn wait_with_timeout(
        &mut self,
        want: usize,
        timeout: Duration,
        what: &str,
    ) -> Result<(i64, u64)> {
        let ts = timespec(timeout);
        let start = Instant::now();
        let wait = self
            .uring
            .submitter()
            .submit_with_args(want, &types::SubmitArgs::new().timespec(&ts));
        let wait_ms = start.elapsed().as_millis() as u64;
        let ret = match wait {
            Ok(n) => n as i64,
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => neg_errno(&e),
            Err(e) => return Err(e).context(format!("io_uring_enter(GETEVENTS, {what})")),
        };
        Ok((ret, wait_ms))
    }

    /// [`Ring::wait_with_timeout`], recorded as a [`Wait`].
    pub fn timed_wait(&mut self, want: usize, timeout: Duration, what: &str) -> Result<Wait> {
        let (ret, ms) = self.wait_with_timeout(want, timeout, what)?;
        Ok(Wait { ret, ms })
    }

    /// Queue SQEs and publish the SQ tail, without entering the kernel.
    ///
    /// Safety: every buffer and fd the entries point to must stay valid until
    /// their CQEs are reaped or the ring is closed (see [`leaked_buffer`]).
    pub unsafe fn push(&mut self, entries: &[squeue::Entry]) -> Result<()> {
        // An SQPOLL thread posts the CQEs of a batch before it publishes the new SQ head
        // (io_commit_sqring runs after the batch): with every CQE reaped, the SQ can
        // still look full for a moment, longer when the thread is preempted under load.
        // Wait for the head, yielding the CPU to the thread (sched_yield is not an
        // io_uring event: nothing here shows up in a trace).
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut sq = self.uring.submission();
        while sq.capacity() - sq.len() < entries.len() && Instant::now() < deadline {
            std::thread::yield_now();
            sq.sync();
        }
        let free = sq.capacity() - sq.len();
        sq.push_multiple(entries)
            .map_err(|_| anyhow!("submission queue full: {} SQEs, {free} free", entries.len()))?;
        // Dropping `sq` stores the new tail: all entries become visible at once.
        Ok(())
    }

    /// Take every CQE currently in the CQ ring, without entering the kernel.
    pub fn drain(&mut self, out: &mut Vec<Cqe>) -> usize {
        let before = out.len();
        out.extend(self.uring.completion().map(|e| Cqe::from(&e)));
        out.len() - before
    }

    /// Reap until `out` has grown by `want` CQEs or `timeout` passes; returns
    /// whether all arrived. Waits go through io_uring_enter(GETEVENTS) with an
    /// EXT_ARG timeout, which also flushes the CQ overflow list and wakes a
    /// sleeping SQ thread, so a stuck kernel can never hang the workload.
    pub fn reap(&mut self, want: usize, timeout: Duration, out: &mut Vec<Cqe>) -> Result<bool> {
        let target = out.len() + want;
        let deadline = Instant::now() + timeout;
        loop {
            self.drain(out);
            if out.len() >= target {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            // Never wait for more than the CQ ring can hold: overflowed CQEs
            // only move into the ring as space frees up.
            let cq_cap = self.uring.params().cq_entries() as usize;
            let wait_for = (target - out.len()).min(cq_cap);
            let ts = timespec((deadline - now).min(Duration::from_millis(100)));
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.uring.submitter().submit_with_args(wait_for, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(e).context("io_uring_enter(GETEVENTS) while reaping"),
            }
        }
    }
}

fn setup_error(e: io::Error, opts: &RingOpts) -> anyhow::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) => {
            "io_uring is disabled or blocked here (kernel.io_uring_disabled sysctl, seccomp, or container policy)"
        }
        Some(libc::ENOSYS) => "this kernel has no io_uring support",
        Some(libc::ENOMEM) => "not enough locked memory for the ring (RLIMIT_MEMLOCK)",
        Some(libc::EINVAL) => "the kernel rejected these ring parameters",
        _ => "io_uring_setup failed",
    };
    anyhow!(e).context(format!("io_uring_setup({opts:?}): {hint}"))
}

/// SPLICE of 4096 bytes from a pipe's read end to `out`.
pub(crate) fn splice_to(rd: RawFd, out: RawFd, user_data: u64) -> squeue::Entry {
    // Offsets -1: use the file position, as for pipes the kernel requires.
    io_uring::opcode::Splice::new(types::Fd(rd), -1, types::Fd(out), -1, 4096)
        .build()
        .user_data(user_data)
}

pub(crate) fn timespec(d: Duration) -> types::Timespec {
    types::Timespec::new()
        .sec(d.as_secs())
        .nsec(d.subsec_nanos())
}

/// The negated errno of an io_uring_enter failure, as the kernel returned it.
pub(crate) fn neg_errno(e: &io::Error) -> i64 {
    -i64::from(e.raw_os_error().unwrap_or(0))
}

/// Results of `user_data` members in the given order; a member that never
/// completed is an error, since chain scenarios must complete in full.
pub(crate) fn results_for(user_data: &[u64], cqes: &[Cqe]) -> Result<Vec<i32>> {
    user_data
        .iter()
        .map(|ud| {
            cqes.iter()
                .find(|c| c.user_data == *ud)
                .map(|c| c.res)
                .ok_or_else(|| anyhow!("no CQE for user_data {ud} (got {cqes:?})"))
        })
        .collect()
}

/// A buffer the kernel may write into. Leaked on purpose: if a scenario bails
/// while a request is in flight, the kernel may still own the memory after the
/// ring is closed, and the process is short-lived anyway.
pub(crate) fn leaked_buffer(len: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; len].into_boxed_slice())
}

/// A pipe as (read end, write end), close-on-exec.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// write(2) all of `data` to `fd` from userspace.
pub(crate) fn write_all(fd: &OwnedFd, data: &[u8]) -> Result<()> {
    let mut done = 0;
    while done < data.len() {
        let rest = &data[done..];
        // SAFETY: rest is a valid, initialised slice for the duration of the call.
        let n = unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err).with_context(|| format!("write to fd {}", fd.as_raw_fd()));
        }
        done += n as usize;
    }
    Ok(())
}

/// A connected TCP pair on 127.0.0.1 as (client, server end). The connect
/// completes through the listen backlog, so no thread is needed.
pub(crate) fn tcp_pair() -> Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind a TCP listener on 127.0.0.1")?;
    let addr = listener.local_addr().context("listener address")?;
    let client = TcpStream::connect(addr).context("connect to the loopback listener")?;
    let (server, _) = listener
        .accept()
        .context("accept the loopback connection")?;
    Ok((client, server))
}

/// An eventfd with counter 0, close-on-exec.
pub(crate) fn eventfd() -> Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("eventfd");
    }
    // SAFETY: eventfd succeeded, so fd is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new, empty regular file in the temp directory, unlinked at once: it is
/// gone when the returned handle is dropped, even if the scenario bails.
pub(crate) fn unlinked_temp_file(tag: &str) -> Result<File> {
    let path =
        std::env::temp_dir().join(format!("uringtrace-workload-{}-{tag}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    std::fs::remove_file(&path).with_context(|| format!("unlink {}", path.display()))?;
    Ok(file)
}

/// Milliseconds since `start`.
pub(crate) fn ms_since(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}
