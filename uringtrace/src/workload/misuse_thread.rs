//! Threads that serve rings badly, and their healthy look-alikes:
//! - SQPOLL rings each with their own poller, versus rings sharing one poller through
//!   IORING_SETUP_ATTACH_WQ, or two pollers (one per NUMA node);
//! - a DEFER_TASKRUN ring whose owner blocks elsewhere while a completion waits for it
//!   to run its task work, versus an owner that computes briefly or waits in
//!   io_uring_enter.

use std::os::fd::{AsRawFd, OwnedFd};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use io_uring::{opcode, squeue, types};

use super::{leaked_buffer, ms_since, pipe, results_for, write_all, Cqe, Report, Ring, RingOpts};

/// The SQPOLL scenarios put one NOP on each ring, then leave the rings idle this long
/// before closing them: every poller spins its sq_thread_idle (500 ms, longer) the
/// whole time, as pollers do after each burst.
const SQPOLL_HOLD: Duration = Duration::from_millis(300);
const SQPOLL_IDLE_MS: u32 = 500;

fn nop(ud: u64) -> squeue::Entry {
    opcode::Nop::new().build().user_data(ud)
}

/// `rings` SQPOLL rings (idle 500 ms); the first `threads` get their own SQ thread,
/// the others attach to the first ring's with IORING_SETUP_ATTACH_WQ. One NOP on every
/// ring (user_data = 100 + ring), reaped; then 300 ms with the pollers spinning.
pub fn sqpoll_rings(name: &'static str, rings: u32, threads: u32) -> Result<Report> {
    let start = Instant::now();
    let mut all: Vec<Ring> = Vec::new();
    for i in 0..rings {
        let attach_wq = (i >= threads).then(|| all[0].fd());
        all.push(Ring::new(RingOpts {
            sqpoll_idle_ms: Some(SQPOLL_IDLE_MS),
            attach_wq,
            ..RingOpts::entries(8)
        })?);
    }
    let (mut submitted, mut completed) = (0u64, 0u64);
    let mut bad = Vec::new();
    for (i, ring) in all.iter_mut().enumerate() {
        // SAFETY: NOPs reference no memory.
        unsafe { ring.push(&[nop(100 + i as u64)])? };
        ring.uring
            .submit()
            .context("submit a NOP to the SQ thread")?;
        submitted += 1;
    }
    for ring in all.iter_mut() {
        let mut cqes = Vec::new();
        if !ring.reap(1, Duration::from_secs(2), &mut cqes)? {
            bail!("a NOP on an SQPOLL ring did not complete within 2 s");
        }
        completed += cqes.len() as u64;
        bad.extend(cqes.into_iter().filter(|c| c.res != 0));
    }
    sleep(SQPOLL_HOLD);
    let mut report = Report::new(name).ring(&all[0]);
    report.submitted = Some(submitted);
    report.completed = Some(completed);
    report.other_ring_fd = all.get(1).map(|r| r.fd());
    report.attach_wq_fd = (rings > threads).then(|| all[0].fd());
    report.elapsed_ms = Some(ms_since(start));
    report.as_expected = bad.is_empty() && submitted == completed;
    Ok(report)
}

/// What the owner of the DEFER_TASKRUN ring does while its READ's data arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Blocks 800 ms in read(2) on another pipe (a blocking call on the event loop).
    Blocked,
    /// Computes for 150 ms, then waits in io_uring_enter (a busy loop iteration).
    Busy,
    /// Waits in io_uring_enter(GETEVENTS) from the start (a healthy event loop).
    Waiting,
}

/// A SINGLE_ISSUER | DEFER_TASKRUN ring: READ of 64 bytes on an empty pipe (ud 1; it
/// arms poll). A helper thread writes the 64 bytes after 50 ms, which queues the
/// READ's completion to the owner's task work (io_uring_task_add). The owner then
/// blocks, computes, or waits as `owner` says, and finally reaps the READ: 64.
/// `completed_before_release` counts CQEs in the CQ ring before the owner's
/// io_uring_enter: 0, since DEFER_TASKRUN work runs only in it.
pub fn task_work(name: &'static str, owner: Owner) -> Result<Report> {
    const DATA_AT: Duration = Duration::from_millis(50);
    const BLOCKED: Duration = Duration::from_millis(800);
    const BUSY: Duration = Duration::from_millis(150);
    let start = Instant::now();
    let (rd, wr) = pipe()?;
    let (block_rd, block_wr) = pipe()?;
    let mut ring = Ring::new(RingOpts {
        defer_taskrun: true,
        ..RingOpts::entries(8)
    })?;
    let buf = leaked_buffer(64);
    let read = opcode::Read::new(types::Fd(rd.as_raw_fd()), buf.as_mut_ptr(), 64)
        .build()
        .user_data(1);
    // SAFETY: the READ buffer is leaked.
    unsafe { ring.push(&[read])? };
    let submitted = ring.uring.submit().context("io_uring_enter(READ)")? as u64;

    let helper = thread::spawn(move || -> Result<()> {
        sleep(DATA_AT);
        write_all(&wr, &[b't'; 64])?;
        if owner == Owner::Blocked {
            sleep(BLOCKED - DATA_AT);
            write_all(&block_wr, b"x")?;
        }
        Ok(())
    });
    let mut cqes: Vec<Cqe> = Vec::new();
    match owner {
        Owner::Blocked => {
            block_in_read(&block_rd)?;
        }
        Owner::Busy => {
            let mut x = 0u64;
            while start.elapsed() < DATA_AT + BUSY {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        Owner::Waiting => {}
    }
    let completed_before = ring.drain(&mut cqes) as u64;
    if !ring.reap(1, Duration::from_secs(2), &mut cqes)? {
        bail!("the READ did not complete: {cqes:?}");
    }
    helper
        .join()
        .map_err(|_| anyhow!("the writer thread panicked"))??;
    let user_data = vec![1];
    let results = results_for(&user_data, &cqes)?;
    let mut report = Report::new(name)
        .ring(&ring)
        .members(user_data, results, vec![64]);
    report.as_expected &=
        buf.iter().all(|b| *b == b't') && (owner == Owner::Waiting || completed_before == 0);
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.completed_before_release = Some(completed_before);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// read(2) of one byte, blocking until the helper writes it.
fn block_in_read(fd: &OwnedFd) -> Result<()> {
    let mut b = [0u8; 1];
    loop {
        // SAFETY: b is a valid 1-byte buffer for the duration of the call.
        let n = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        match n {
            1 => return Ok(()),
            -1 if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => {
                return Err(std::io::Error::last_os_error()).context("read(2) on the blocking pipe")
            }
        }
    }
}
