//! Stalls: requests and waits that cannot make progress on their own.

use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use io_uring::{opcode, squeue::Flags, types};

use super::{leaked_buffer, pipe, results_for, write_all, Report, Ring, RingOpts};

/// READ(pipe, 64) linked to the WRITE(pipe, "deadlock") that would feed it.
/// The pipe is empty, so the READ is poll-armed, and the WRITE is held back
/// behind it by the link: a self-deadlock. After a 1 s wait that sees nothing,
/// userspace writes 64 bytes so the READ completes in full (a short read would
/// cancel the WRITE), after which the WRITE is issued and both complete.
pub fn pipe_read_before_write() -> Result<Report> {
    let (rd, wr) = pipe()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let buf = leaked_buffer(64);
    let payload: &'static [u8] = b"deadlock";
    let sqes = [
        opcode::Read::new(
            types::Fd(rd.as_raw_fd()),
            buf.as_mut_ptr(),
            buf.len() as u32,
        )
        .build()
        .flags(Flags::IO_LINK)
        .user_data(1),
        opcode::Write::new(
            types::Fd(wr.as_raw_fd()),
            payload.as_ptr(),
            payload.len() as u32,
        )
        .build()
        .user_data(2),
    ];
    // SAFETY: the READ buffer is leaked and the WRITE payload is static.
    unsafe { ring.push(&sqes)? };
    let submitted = ring
        .uring
        .submit()
        .context("io_uring_enter(submit READ -> WRITE)")?;

    let (wait_ret, wait_ms) = ring.wait_with_timeout(1, Duration::from_secs(1), "1 s timeout")?;
    let mut cqes = Vec::new();
    let completed_before_release = ring.drain(&mut cqes) as u64;

    write_all(&wr, &[b'r'; 64])?;
    if !ring.reap(2 - cqes.len().min(2), Duration::from_secs(2), &mut cqes)? {
        bail!("chain did not finish after userspace wrote into the pipe: {cqes:?}");
    }
    let user_data = vec![1, 2];
    let results = results_for(&user_data, &cqes)?;
    let mut report =
        Report::new("pipe-read-before-write")
            .ring(&ring)
            .members(user_data, results, vec![64, 8]);
    report.as_expected &= completed_before_release == 0 && wait_ret == -i64::from(libc::ETIME);
    report.submitted = Some(submitted as u64);
    report.wait_ret = Some(wait_ret);
    report.wait_ms = Some(wait_ms);
    report.completed_before_release = Some(completed_before_release);
    report.released_by_userspace = Some(true);
    report.completed = Some(cqes.len() as u64);
    report.completions = Some(cqes);
    Ok(report)
}

/// Two NOPs are submitted and reaped, then one READ on an empty pipe is left
/// in flight, and io_uring_enter(GETEVENTS, min_complete = 3) waits with a
/// 500 ms EXT_ARG timeout: 3 completions can never arrive, so the kernel
/// returns -ETIME when the timeout expires. A byte written from userspace then
/// lets the READ finish.
pub fn unsatisfiable_wait() -> Result<Report> {
    let (rd, wr) = pipe()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let nops = [
        opcode::Nop::new().build().user_data(1),
        opcode::Nop::new().build().user_data(2),
    ];
    // SAFETY: NOPs reference no memory.
    unsafe { ring.push(&nops)? };
    let mut submitted = ring
        .uring
        .submit_and_wait(2)
        .context("io_uring_enter(submit 2 NOPs, wait 2)")? as u64;
    let mut cqes = Vec::new();
    ring.drain(&mut cqes);

    let buf = leaked_buffer(1);
    let read = opcode::Read::new(types::Fd(rd.as_raw_fd()), buf.as_mut_ptr(), 1)
        .build()
        .user_data(3);
    // SAFETY: the READ buffer is leaked.
    unsafe { ring.push(&[read])? };
    submitted += ring.uring.submit().context("io_uring_enter(submit READ)")? as u64;

    let (wait_ret, wait_ms) =
        ring.wait_with_timeout(3, Duration::from_millis(500), "min_complete=3, 500 ms")?;
    // Only the READ is still in flight; it must not have completed.
    let completed_before_release = ring.drain(&mut cqes) as u64;

    write_all(&wr, b"x")?;
    if !ring.reap(3 - cqes.len().min(3), Duration::from_secs(2), &mut cqes)? {
        bail!("READ did not finish after userspace wrote into the pipe: {cqes:?}");
    }
    let user_data = vec![1, 2, 3];
    let results = results_for(&user_data, &cqes)?;
    let mut report =
        Report::new("unsatisfiable-wait")
            .ring(&ring)
            .members(user_data, results, vec![0, 0, 1]);
    report.as_expected &= wait_ret == -i64::from(libc::ETIME) && completed_before_release == 0;
    report.submitted = Some(submitted);
    report.wait_ret = Some(wait_ret);
    report.wait_ms = Some(wait_ms);
    report.completed_before_release = Some(completed_before_release);
    report.released_by_userspace = Some(true);
    report.completed = Some(cqes.len() as u64);
    report.completions = Some(cqes);
    Ok(report)
}
