//! System-level misuse: io_uring_enter failures (`enter-error`), io_uring refused to a
//! process by a seccomp filter (`io-uring-unavailable`), and CQEs left in the overflow
//! list by an SQPOLL program that reaps only from the CQ ring (`overflow-not-flushed`).

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use io_uring::opcode;

use super::{Report, Ring, RingOpts};

/// An IORING_ENTER_* bit no kernel knows (6.18 knows 0x1..0x80).
const ENTER_UNKNOWN_FLAG: u32 = 1 << 31;

/// Raw io_uring_enter without an argument: the return value, or -errno.
fn enter_raw(fd: i32, to_submit: u32, min_complete: u32, flags: u32) -> i64 {
    // SAFETY: no argument pointer is passed (argp NULL, argsz 0); the SQEs the kernel
    // may read were pushed by the caller and reference no memory (NOPs).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            fd as libc::c_uint,
            to_submit as libc::c_uint,
            min_complete as libc::c_uint,
            flags as libc::c_uint,
            std::ptr::null::<libc::c_void>(),
            0usize,
        )
    };
    if ret < 0 {
        -i64::from(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        ret
    }
}

/// Three io_uring_enter calls that submit a NOP to a SINGLE_ISSUER|DEFER_TASKRUN ring
/// from a thread other than its creator (6.1+: -17 EEXIST each), the creator then
/// submitting it (1); and two enters with an unknown flag on a plain ring (-22 EINVAL
/// each). Results in that order: -17, -17, -17, 1, -22, -22. On kernels without
/// DEFER_TASKRUN (before 6.1) the first part is skipped: -22, -22.
pub fn enter_error() -> Result<Report> {
    let mut results = Vec::new();
    let mut expected = Vec::new();
    match Ring::new(RingOpts {
        defer_taskrun: true,
        ..RingOpts::entries(4)
    }) {
        Ok(mut owned) => {
            // SAFETY: a NOP references no memory.
            unsafe { owned.push(&[opcode::Nop::new().build().user_data(1)])? };
            let fd = owned.fd();
            let other = std::thread::Builder::new()
                .name("other-thread".into())
                .spawn(move || (0..3).map(|_| enter_raw(fd, 1, 0, 0)).collect::<Vec<_>>())
                .context("spawning the other thread")?;
            let from_other = other
                .join()
                .map_err(|_| anyhow::anyhow!("the other thread panicked"))?;
            results.extend(from_other.iter().map(|&r| r as i32));
            let own = owned.uring.submit().context("submit from the owner")?;
            results.push(own as i32);
            let mut cqes = Vec::new();
            if !owned.reap(1, Duration::from_secs(2), &mut cqes)? {
                bail!("the owner's NOP did not complete");
            }
            expected.extend([-libc::EEXIST, -libc::EEXIST, -libc::EEXIST, 1]);
        }
        Err(e) => eprintln!("enter-error: no DEFER_TASKRUN here, skipping -EEXIST: {e:#}"),
    }
    let plain = Ring::new(RingOpts::entries(4))?;
    for _ in 0..2 {
        results.push(enter_raw(plain.fd(), 0, 0, ENTER_UNKNOWN_FLAG) as i32);
        expected.push(-libc::EINVAL);
    }
    let mut report = Report::new("enter-error").ring(&plain);
    report.as_expected = results == expected;
    report.results = Some(results);
    report.expected_results = Some(expected);
    Ok(report)
}

/// A child process that installs a seccomp filter refusing io_uring_setup with
/// `errno` (as Docker's default profile does), tries to set up a ring, and falls
/// back to plain read/write on a pipe (16 round trips); it stays on its fallback path
/// for 500 ms before it exits. Result: -38 ENOSYS (or -1 EPERM with `--eperm`).
pub fn io_uring_unavailable(eperm: bool) -> Result<Report> {
    let errno = if eperm { libc::EPERM } else { libc::ENOSYS };
    let (rd, wr) = super::pipe()?;
    // SAFETY: the child runs only async-signal-safe libc calls and exits with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        let code = child(errno);
        let msg = code.to_le_bytes();
        // SAFETY: writes 4 bytes from a live buffer to our pipe, then exits at once.
        unsafe {
            libc::write(wr.as_raw_fd(), msg.as_ptr().cast(), msg.len());
            libc::_exit(0);
        }
    }
    // Our copy of the write end: closed, so that a dead child means end of file.
    drop(wr);
    let mut buf = [0u8; 4];
    // SAFETY: reads at most 4 bytes into a live buffer.
    let n = unsafe { libc::read(rd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if n != 4 {
        bail!("the child reported nothing (status {status:#x})");
    }
    let ret = i32::from_le_bytes(buf);
    let mut report = Report::new("io-uring-unavailable");
    // The process io_uring was refused to.
    report.pid = pid as u32;
    report.results = Some(vec![ret]);
    report.expected_results = Some(vec![-errno]);
    report.completed = Some(16);
    report.as_expected = ret == -errno;
    Ok(report)
}

/// In the child: the filter, the refused setup, the fallback. Returns setup's result
/// (-errno), or a positive code when something else failed.
fn child(errno: i32) -> i32 {
    // cBPF: A = seccomp_data.nr; io_uring_setup ? ERRNO(errno) : ALLOW.
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut filter = [
        ins(LD_W_ABS, 0, 0, 0),
        ins(JEQ_K, 0, 1, libc::SYS_io_uring_setup as u32),
        ins(RET_K, 0, 0, RET_ERRNO | errno as u32),
        ins(RET_K, 0, 0, RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    let mut params = [0u8; 120];
    // SAFETY: prctl with a filter that lives for the call; io_uring_setup with a
    // zeroed io_uring_params of the size the kernel reads (120 bytes).
    let ret = unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return 1;
        }
        if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0 {
            return 2;
        }
        libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr())
    };
    if ret >= 0 {
        return 3;
    }
    let setup = -io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // The fallback path: what the application does without io_uring.
    let Ok((rd, wr)) = super::pipe() else {
        return 4;
    };
    let mut b = [0u8; 64];
    for _ in 0..16 {
        // SAFETY: 64 bytes through our own pipe, from and into a live buffer.
        unsafe {
            libc::write(wr.as_raw_fd(), b.as_ptr().cast(), b.len());
            libc::read(rd.as_raw_fd(), b.as_mut_ptr().cast(), b.len());
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    setup
}

/// An SQPOLL ring (4 SQ, 4 CQ entries, idle 10 ms) gets 12 NOPs, 4 at a time; the program then
/// reaps only from the CQ ring, as SQPOLL programs do, and never enters the kernel
/// for 1.5 s: 4 CQEs land in the ring, 8 wait in the overflow list the whole time
/// (IORING_SQ_CQ_OVERFLOW set). Then one GETEVENTS enter flushes them: 12 CQEs.
pub fn overflow_not_flushed() -> Result<Report> {
    const TOTAL: u64 = 12;
    let mut ring = Ring::new(RingOpts {
        cq_entries: Some(4),
        sqpoll_idle_ms: Some(10),
        ..RingOpts::entries(4)
    })?;
    for first in (1..=TOTAL).step_by(4) {
        let nops: Vec<_> = (first..first + 4)
            .map(|u| opcode::Nop::new().build().user_data(u))
            .collect();
        // SAFETY: NOPs reference no memory. (push waits for the SQ thread to make room.)
        unsafe { ring.push(&nops)? };
        // Wakes the SQ thread if it sleeps (SQ_WAKEUP, no GETEVENTS: no flush).
        ring.uring
            .submit()
            .context("publish NOPs to the SQ thread")?;
    }
    let mut cqes = Vec::new();
    let start = Instant::now();
    let mut overflow_flag = false;
    // Reap from the ring only, never entering: 1.5 s.
    while start.elapsed() < Duration::from_millis(1500) {
        ring.drain(&mut cqes);
        overflow_flag |= ring.uring.submission().cq_overflow();
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen_before_flush = cqes.len() as u64;
    if !ring.reap(
        (TOTAL as usize).saturating_sub(cqes.len()),
        Duration::from_secs(2),
        &mut cqes,
    )? {
        bail!("only {} of {TOTAL} CQEs after the flush", cqes.len());
    }
    let mut report = Report::new("overflow-not-flushed").ring(&ring);
    report.submitted = Some(TOTAL);
    report.completed = Some(cqes.len() as u64);
    report.seen_before_flush = Some(seen_before_flush);
    report.cq_overflow_flag = Some(overflow_flag);
    report.user_data = Some(cqes.iter().map(|c| c.user_data).collect());
    report.as_expected = seen_before_flush == 4 && overflow_flag && cqes.len() as u64 == TOTAL;
    Ok(report)
}
