//! Stalls: requests and waits that cannot make progress on their own.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use io_uring::{opcode, squeue::Flags, types};

use super::{leaked_buffer, ms_since, pipe, results_for, write_all, Cqe, Report, Ring, RingOpts};

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

/// A wait cycle across two rings in one process. Ring A: POLL_ADD(ring B's
/// fd, POLLIN) (ud 1) -IO_LINK-> MSG_RING(to B, res 100, user_data 11)
/// (ud 2). Ring B: POLL_ADD(ring A's fd, POLLIN) (ud 3) -IO_LINK->
/// MSG_RING(to A, res 200, user_data 12) (ud 4). A ring fd is readable when
/// its CQ holds a CQE; each POLL_ADD waits for a CQE in the other ring that
/// only the other ring's MSG_RING would post, and that MSG_RING is held back
/// behind its own POLL_ADD: neither can progress.
///
/// After 1.2 s stuck (a wait on A sees nothing: -ETIME), userspace breaks
/// the cycle with a NOP on B (ud 5): its CQE makes B readable, so A's POLL_ADD
/// completes (POLLIN, 1) and A's MSG_RING posts into B (0), which makes A
/// readable for B's POLL_ADD (1) and B's MSG_RING (0). `results` are ud 1..4;
/// the posted messages are in `completions` (A) and `other_ring_completions`
/// (B).
pub fn ring_msg_cycle() -> Result<Report> {
    const STUCK: Duration = Duration::from_millis(1200);
    let start = Instant::now();
    let mut ring_a = Ring::new(RingOpts::entries(8))?;
    let mut ring_b = Ring::new(RingOpts::entries(8))?;
    let (fd_a, fd_b) = (ring_a.fd(), ring_b.fd());
    let pollin = libc::POLLIN as u32;
    let chain_a = [
        opcode::PollAdd::new(types::Fd(fd_b), pollin)
            .build()
            .flags(Flags::IO_LINK)
            .user_data(1),
        opcode::MsgRingData::new(types::Fd(fd_b), 100, 11, None)
            .build()
            .user_data(2),
    ];
    let chain_b = [
        opcode::PollAdd::new(types::Fd(fd_a), pollin)
            .build()
            .flags(Flags::IO_LINK)
            .user_data(3),
        opcode::MsgRingData::new(types::Fd(fd_a), 200, 12, None)
            .build()
            .user_data(4),
    ];
    // SAFETY: POLL_ADD and MSG_RING reference only the ring fds, which stay
    // open until both rings are dropped at the end.
    unsafe { ring_a.push(&chain_a)? };
    let mut submitted = ring_a
        .uring
        .submit()
        .context("io_uring_enter(ring A chain)")? as u64;
    // SAFETY: as for chain A: the entries reference memory that outlives the ring.
    unsafe { ring_b.push(&chain_b)? };
    submitted += ring_b
        .uring
        .submit()
        .context("io_uring_enter(ring B chain)")? as u64;

    let stuck = ring_a.timed_wait(1, STUCK, "ring A, cycle")?;
    let (mut cqes_a, mut cqes_b) = (Vec::new(), Vec::new());
    let completed_before_release = (ring_a.drain(&mut cqes_a) + ring_b.drain(&mut cqes_b)) as u64;

    // SAFETY: NOPs reference no memory.
    unsafe { ring_b.push(&[opcode::Nop::new().build().user_data(5)])? };
    submitted += ring_b
        .uring
        .submit()
        .context("io_uring_enter(NOP on ring B)")? as u64;
    // A: its chain and B's message; B: the NOP, A's message, its chain.
    let deadline = Instant::now() + Duration::from_secs(2);
    while (cqes_a.len() < 3 || cqes_b.len() < 4) && Instant::now() < deadline {
        ring_a.reap(
            3 - cqes_a.len().min(3),
            Duration::from_millis(20),
            &mut cqes_a,
        )?;
        ring_b.reap(
            4 - cqes_b.len().min(4),
            Duration::from_millis(20),
            &mut cqes_b,
        )?;
    }
    if cqes_a.len() < 3 || cqes_b.len() < 4 {
        bail!("the cycle did not unwind after the NOP: A {cqes_a:?}, B {cqes_b:?}");
    }

    let user_data = vec![1, 2, 3, 4];
    let mut results = results_for(&[1, 2], &cqes_a)?;
    results.extend(results_for(&[3, 4], &cqes_b)?);
    let posted =
        |cqes: &[Cqe], ud: u64, res: i32| cqes.iter().any(|c| c.user_data == ud && c.res == res);
    let pollin = libc::POLLIN as i32;
    let mut report = Report::new("ring-msg-cycle").ring(&ring_a).members(
        user_data,
        results,
        vec![pollin, 0, pollin, 0],
    );
    report.as_expected &= completed_before_release == 0
        && stuck.ret == -i64::from(libc::ETIME)
        && posted(&cqes_a, 12, 200)
        && posted(&cqes_b, 11, 100)
        && posted(&cqes_b, 5, 0);
    report.submitted = Some(submitted);
    report.completed = Some((cqes_a.len() + cqes_b.len()) as u64);
    report.completed_before_release = Some(completed_before_release);
    report.waits = Some(vec![stuck]);
    report.completions = Some(cqes_a);
    report.other_ring_fd = Some(ring_b.fd());
    report.other_ring_completions = Some(cqes_b);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// The wait that cannot be satisfied, with a CQE already waiting: one NOP
/// (ud 1) is submitted and completes inline, but its CQE is not reaped; with
/// nothing in flight, io_uring_enter(to_submit 0, min_complete = 2,
/// GETEVENTS | EXT_ARG, 1.5 s) waits for a second CQE that cannot come. The
/// kernel sleeps the full 1.5 s and then returns 0, not -ETIME: on timeout
/// io_cqring_wait reports -ETIME only when the CQ ring is empty. The CQE is
/// reaped afterwards.
pub fn timed_unsatisfiable_wait() -> Result<Report> {
    const TIMEOUT: Duration = Duration::from_millis(1500);
    let mut ring = Ring::new(RingOpts::entries(4))?;
    // SAFETY: NOPs reference no memory.
    unsafe { ring.push(&[opcode::Nop::new().build().user_data(1)])? };
    let submitted = ring.uring.submit().context("io_uring_enter(NOP)")?;
    let ready_before = ring.uring.completion().len() as u64;

    let (wait_ret, wait_ms) = ring.wait_with_timeout(2, TIMEOUT, "min_complete=2, 1.5 s")?;
    let mut cqes = Vec::new();
    ring.drain(&mut cqes);
    let user_data = vec![1];
    let results = results_for(&user_data, &cqes)?;
    let mut report =
        Report::new("timed-unsatisfiable-wait")
            .ring(&ring)
            .members(user_data, results, vec![0]);
    report.as_expected &= ready_before == 1
        && cqes.len() == 1
        && wait_ret == 0
        && wait_ms >= TIMEOUT.as_millis() as u64 * 9 / 10;
    report.submitted = Some(submitted as u64);
    report.wait_ret = Some(wait_ret);
    report.wait_ms = Some(wait_ms);
    report.completed = Some(cqes.len() as u64);
    report.completions = Some(cqes);
    Ok(report)
}
