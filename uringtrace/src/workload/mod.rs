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
mod lifecycle;
mod misuse_req;
mod misuse_sys;
mod misuse_thread;
mod multishot;
mod net;
mod os;
mod overflow;
mod report;
mod ring;
mod sqpoll;

use anyhow::{bail, Context as _, Result};

pub(crate) use os::{
    eventfd, leaked_buffer, ms_since, pipe, tcp_pair, unlinked_temp_file, write_all,
};
pub use report::{Cqe, Report, Wait};
pub(crate) use ring::{results_for, splice_to, timespec, Ring, RingOpts};

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
  many-broken-chains      300 x (NOP -> READ(fd -1) -> NOP) -> 0, -9, -125 each
  fork-exec               3 NOPs; fork: the child runs chain-broken-error on its own ring, execs
                          nop-storm --count 40 (comm `exe`) and exits; then 5 NOPs -> 3 lines

Request misuse, and their look-alikes (not part of `all`)
  fixed-file-misuse       4-slot table, files in 0-1: READ on slot 1, 2, 9, 3 -> 64, -9 x3
  fixed-buffer-misuse     1 buffer of 4 KiB: READ_FIXED ok, buf_index 3, range past its end
                          -> 64, -14, -14
  fixed-ok                READ on fixed slot 1, READ_FIXED, WRITE_FIXED, READ(fd -1), READ
                          into an unmapped address -> 64, 64, 64, -9, -14
  short-write             RLIMIT_FSIZE 8292: 3 WRITEs of 4 KiB to a file -> 4096, 4096, 100
  short-write-ok          3 WRITEs of 4 KiB to a file, 96 KiB to a pipe -> 4096 x3, 65536
  drain-blocked           READ(empty pipe), NOP with IO_DRAIN; pipe fed at 400 ms -> 64, 0
  drain-ok                drained NOP on an idle ring; TIMEOUT 5 ms, drained NOP -> 0, -62, 0
  enter-error             enter from a non-owner thread on a DEFER_TASKRUN ring x3, enter with
                          an unknown flag x2 -> -17 EEXIST x3, 1, -22 EINVAL x2
  io-uring-unavailable    a child under a seccomp filter: io_uring_setup -> -38 ENOSYS
                          (--eperm: -1 EPERM), then its fallback path (read/write)
  overflow-not-flushed    SQPOLL ring, 12 NOPs, 4-entry CQ reaped from the ring only for
                          1.5 s -> 4 CQEs, 8 wait in the overflow list; 12 after a flush

SQPOLL threads and task work (not part of `all`)
  sqpoll-many-threads     12 SQPOLL rings, a thread each (idle 500 ms), a NOP, 300 ms -> 0
  task-work-stalled       DEFER_TASKRUN READ(pipe) fed at 50 ms; owner blocks 800 ms in read(2)
                          -> 0 CQEs until the owner enters, then 64
Healthy look-alikes of those
  sqpoll-attached         4 SQPOLL rings sharing one SQ thread (ATTACH_WQ), as above -> all 0
  sqpoll-two-threads      2 SQPOLL rings, one SQ thread each (one per NUMA node) -> all 0
  task-work-busy-owner    as task-work-stalled, the owner computes 150 ms instead -> 64
  task-work-waiting-owner as task-work-stalled, the owner waits in io_uring_enter -> 64";

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
    /// A child forked mid-trace uses its own ring, execs another scenario and exits
    ForkExec,
    /// READs on registered-file slots that are empty or beyond the table (-EBADF)
    FixedFileMisuse,
    /// READ_FIXED with a buf_index beyond the registered buffers, and a range past one
    FixedBufferMisuse,
    /// Registered files and buffers used right, next to plain -EBADF and -EFAULT
    FixedOk,
    /// A WRITE to a regular file cut short by RLIMIT_FSIZE (this process only)
    ShortWrite,
    /// Full writes to a file, and a short write to a pipe (normal for pipes)
    ShortWriteOk,
    /// A NOP with IOSQE_IO_DRAIN held 400 ms behind a READ of an empty pipe
    DrainBlocked,
    /// A drain on an idle ring, and one held 5 ms behind a TIMEOUT
    DrainOk,
    /// io_uring_enter from a thread that is not a DEFER_TASKRUN ring's owner (-EEXIST), and with an unknown flag (-EINVAL)
    EnterError,
    /// A child under a seccomp filter is refused io_uring_setup and falls back to read/write
    IoUringUnavailable {
        /// The filter returns EPERM instead of ENOSYS.
        #[arg(long)]
        eperm: bool,
    },
    /// An SQPOLL program reaps only from the CQ ring and never enters: CQEs wait in the overflow list
    OverflowNotFlushed,
    /// nop-storm through stalled-request, in order, with default options
    All,
    /// 12 SQPOLL rings, each with its own SQ thread spinning 300 ms after a NOP
    SqpollManyThreads,
    /// 4 SQPOLL rings sharing one SQ thread through ATTACH_WQ, spinning 300 ms
    SqpollAttached,
    /// 2 SQPOLL rings with a thread each (one per NUMA node), spinning 300 ms
    SqpollTwoThreads,
    /// DEFER_TASKRUN READ whose data arrives while the owner blocks 800 ms in read(2)
    TaskWorkStalled,
    /// DEFER_TASKRUN READ whose data arrives while the owner computes for 150 ms
    TaskWorkBusyOwner,
    /// DEFER_TASKRUN READ whose data arrives while the owner waits in io_uring_enter
    TaskWorkWaitingOwner,
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
            Scenario::ForkExec => "fork-exec",
            Scenario::FixedFileMisuse => "fixed-file-misuse",
            Scenario::FixedBufferMisuse => "fixed-buffer-misuse",
            Scenario::FixedOk => "fixed-ok",
            Scenario::ShortWrite => "short-write",
            Scenario::ShortWriteOk => "short-write-ok",
            Scenario::DrainBlocked => "drain-blocked",
            Scenario::DrainOk => "drain-ok",
            Scenario::EnterError => "enter-error",
            Scenario::IoUringUnavailable { .. } => "io-uring-unavailable",
            Scenario::OverflowNotFlushed => "overflow-not-flushed",
            Scenario::SqpollManyThreads => "sqpoll-many-threads",
            Scenario::SqpollAttached => "sqpoll-attached",
            Scenario::SqpollTwoThreads => "sqpoll-two-threads",
            Scenario::TaskWorkStalled => "task-work-stalled",
            Scenario::TaskWorkBusyOwner => "task-work-busy-owner",
            Scenario::TaskWorkWaitingOwner => "task-work-waiting-owner",
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
        Scenario::ForkExec => lifecycle::fork_exec(),
        Scenario::FixedFileMisuse => misuse_req::fixed_file_misuse(),
        Scenario::FixedBufferMisuse => misuse_req::fixed_buffer_misuse(),
        Scenario::FixedOk => misuse_req::fixed_ok(),
        Scenario::ShortWrite => misuse_req::short_write(),
        Scenario::ShortWriteOk => misuse_req::short_write_ok(),
        Scenario::DrainBlocked => misuse_req::drain_blocked(),
        Scenario::DrainOk => misuse_req::drain_ok(),
        Scenario::EnterError => misuse_sys::enter_error(),
        Scenario::IoUringUnavailable { eperm } => misuse_sys::io_uring_unavailable(eperm),
        Scenario::OverflowNotFlushed => misuse_sys::overflow_not_flushed(),
        Scenario::SqpollManyThreads => misuse_thread::sqpoll_rings(name, 12, 12),
        Scenario::SqpollAttached => misuse_thread::sqpoll_rings(name, 4, 1),
        Scenario::SqpollTwoThreads => misuse_thread::sqpoll_rings(name, 2, 2),
        Scenario::TaskWorkStalled => misuse_thread::task_work(name, misuse_thread::Owner::Blocked),
        Scenario::TaskWorkBusyOwner => misuse_thread::task_work(name, misuse_thread::Owner::Busy),
        Scenario::TaskWorkWaitingOwner => {
            misuse_thread::task_work(name, misuse_thread::Owner::Waiting)
        }
    };
    report.with_context(|| format!("scenario {name} failed"))
}
