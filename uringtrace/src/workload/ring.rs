//! Building rings and SQEs, and reading back what the kernel answered.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use io_uring::{squeue, types, IoUring};

use super::{Cqe, Wait};

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
fn neg_errno(e: &io::Error) -> i64 {
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
