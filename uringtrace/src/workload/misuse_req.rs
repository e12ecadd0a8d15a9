//! Request misuse: registered files and buffers used wrongly, a write cut short by
//! the file size limit, a drain held behind a slow request; and the healthy
//! look-alikes of each, which the rules must leave alone.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use io_uring::{opcode, squeue, squeue::Flags, types};

use super::{
    leaked_buffer, pipe, results_for, unlinked_temp_file, write_all, Cqe, Report, Ring, RingOpts,
};

/// Submits `sqes` one io_uring_enter each (an SQE rejected at submit stops its batch,
/// so one per enter keeps the rest going), then reaps them all within 2 s.
fn one_by_one(ring: &mut Ring, sqes: &[squeue::Entry]) -> Result<Vec<Cqe>> {
    let mut cqes = Vec::new();
    for sqe in sqes {
        // SAFETY: buffers are leaked, fds outlive the ring's use of them.
        unsafe { ring.push(std::slice::from_ref(sqe))? };
        ring.uring.submit().context("io_uring_enter(submit)")?;
    }
    if !ring.reap(sqes.len(), Duration::from_secs(2), &mut cqes)? {
        bail!(
            "only {} of {} CQEs within 2 s: {cqes:?}",
            cqes.len(),
            sqes.len()
        );
    }
    Ok(cqes)
}

fn report(
    name: &'static str,
    ring: &Ring,
    sqes: &[squeue::Entry],
    cqes: Vec<Cqe>,
    expected: Vec<i32>,
) -> Result<Report> {
    let user_data: Vec<u64> = sqes.iter().map(|e| e.get_user_data()).collect();
    let results = results_for(&user_data, &cqes)?;
    let mut r = Report::new(name)
        .ring(ring)
        .members(user_data, results, expected);
    r.submitted = Some(sqes.len() as u64);
    r.completed = Some(cqes.len() as u64);
    r.completions = Some(cqes);
    Ok(r)
}

fn dev_zero() -> Result<File> {
    File::open("/dev/zero").context("open /dev/zero")
}

fn read_fixed_file(slot: u32, ud: u64) -> squeue::Entry {
    let buf = leaked_buffer(64);
    opcode::Read::new(types::Fixed(slot), buf.as_mut_ptr(), 64)
        .build()
        .user_data(ud)
}

/// A file registered in slot 1 of a 4-entry table (0, 2 and 3 empty): READ on slot 1
/// works; slots 0 and 3 are empty, slot 9 is beyond the table -> 64, -9 x3. Slot 0
/// is the one a submit event without the fd cannot tell from "unknown".
pub fn fixed_file_misuse() -> Result<Report> {
    let zero = dev_zero()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let z = zero.as_raw_fd();
    ring.uring
        .submitter()
        .register_files(&[-1, z, -1, -1])
        .context("IORING_REGISTER_FILES (sparse)")?;
    let sqes = [
        read_fixed_file(1, 1),
        read_fixed_file(0, 2),
        read_fixed_file(9, 3),
        read_fixed_file(3, 4),
    ];
    let cqes = one_by_one(&mut ring, &sqes)?;
    let e = -libc::EBADF;
    report("fixed-file-misuse", &ring, &sqes, cqes, vec![64, e, e, e])
}

/// One registered buffer of 4096 bytes: READ_FIXED of 64 bytes into it works;
/// buf_index 3 is beyond the table; 512 bytes at offset 4000 leave the buffer
/// -> 64, -14, -14.
pub fn fixed_buffer_misuse() -> Result<Report> {
    let zero = dev_zero()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let buf = leaked_buffer(4096);
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the buffer is leaked: it outlives the registration.
    unsafe { ring.uring.submitter().register_buffers(&[iov]) }
        .context("IORING_REGISTER_BUFFERS")?;
    let fd = types::Fd(zero.as_raw_fd());
    let base = buf.as_mut_ptr();
    // SAFETY: offsets inside the 4096-byte allocation.
    let (at_0, at_4000) = unsafe { (base, base.add(4000)) };
    let sqes = [
        opcode::ReadFixed::new(fd, at_0, 64, 0).build().user_data(1),
        opcode::ReadFixed::new(fd, at_0, 64, 3).build().user_data(2),
        opcode::ReadFixed::new(fd, at_4000, 512, 0)
            .build()
            .user_data(3),
    ];
    let cqes = one_by_one(&mut ring, &sqes)?;
    let e = -libc::EFAULT;
    report("fixed-buffer-misuse", &ring, &sqes, cqes, vec![64, e, e])
}

/// Healthy registered files and buffers, and the plain errors next to them: READ on
/// fixed slot 1, READ_FIXED and WRITE_FIXED (to /dev/null) in the registered buffer,
/// a READ on fd -1 (not a fixed file: the application's own fd bug) and a READ into
/// an unmapped address (not a registered buffer) -> 64, 64, 64, -9, -14.
pub fn fixed_ok() -> Result<Report> {
    let zero = dev_zero()?;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let z = zero.as_raw_fd();
    ring.uring
        .submitter()
        .register_files(&[z, z])
        .context("IORING_REGISTER_FILES")?;
    let buf = leaked_buffer(4096);
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the buffer is leaked: it outlives the registration.
    unsafe { ring.uring.submitter().register_buffers(&[iov]) }
        .context("IORING_REGISTER_BUFFERS")?;
    let base = buf.as_mut_ptr();
    let plain = leaked_buffer(64);
    // An address no mapping covers: the copy to it faults.
    let unmapped = 16 as *mut u8;
    let sqes = [
        read_fixed_file(1, 1),
        opcode::ReadFixed::new(types::Fd(z), base, 64, 0)
            .build()
            .user_data(2),
        opcode::WriteFixed::new(types::Fd(null.as_raw_fd()), base, 64, 0)
            .build()
            .user_data(3),
        opcode::Read::new(types::Fd(-1), plain.as_mut_ptr(), 64)
            .build()
            .user_data(4),
        opcode::Read::new(types::Fd(z), unmapped, 64)
            .build()
            .user_data(5),
    ];
    let cqes = one_by_one(&mut ring, &sqes)?;
    report(
        "fixed-ok",
        &ring,
        &sqes,
        cqes,
        vec![64, 64, 64, -libc::EBADF, -libc::EFAULT],
    )
}

fn write_at(fd: RawFd, len: usize, off: u64, ud: u64) -> squeue::Entry {
    let buf = leaked_buffer(len);
    opcode::Write::new(types::Fd(fd), buf.as_ptr(), len as u32)
        .offset(off)
        .build()
        .user_data(ud)
}

/// RLIMIT_FSIZE of 8292 bytes for this process (SIGXFSZ ignored), three WRITEs of
/// 4096 to a temp file at 0, 4096 and 8192: the last crosses the limit and writes
/// 100 bytes -> 4096, 4096, 100. Nothing outside this process is touched.
pub fn short_write() -> Result<Report> {
    const LIMIT: u64 = 8192 + 100;
    let file = unlinked_temp_file("short-write")?;
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on this process; `old` is a valid out-pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_FSIZE, &mut old) != 0 {
            return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_FSIZE)");
        }
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: LIMIT,
            rlim_max: old.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
            return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_FSIZE)");
        }
    }
    let fd = file.as_raw_fd();
    let sqes = [
        write_at(fd, 4096, 0, 1),
        write_at(fd, 4096, 4096, 2),
        write_at(fd, 4096, 8192, 3),
    ];
    let cqes = one_by_one(&mut ring, &sqes);
    // SAFETY: restores the limit read above.
    unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &old) };
    report("short-write", &ring, &sqes, cqes?, vec![4096, 4096, 100])
}

/// Writes that complete in full, and a short write where short is normal: WRITE of
/// 3 x 4096 to a temp file; WRITE of 96 KiB to a non-blocking pipe with 64 KiB of room
/// (a pipe, not a regular file: no io_uring_short_write) -> 4096 x 3, 65536. The pipe is
/// O_NONBLOCK so that every kernel writes what fits (5.10 and 6.1 block a blocking
/// pipe's write in io-wq until a reader comes; 6.18 returns what fit).
pub fn short_write_ok() -> Result<Report> {
    let file = unlinked_temp_file("short-write-ok")?;
    let (rd, wr) = pipe()?;
    // SAFETY: fcntl on a pipe fd this function owns.
    if unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error()).context("fcntl(pipe, O_NONBLOCK)");
    }
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let fd = file.as_raw_fd();
    let sqes = [
        write_at(fd, 4096, 0, 1),
        write_at(fd, 4096, 4096, 2),
        write_at(fd, 4096, 8192, 3),
        write_at(wr.as_raw_fd(), 96 * 1024, 0, 4),
    ];
    let cqes = one_by_one(&mut ring, &sqes)?;
    drop(rd);
    report(
        "short-write-ok",
        &ring,
        &sqes,
        cqes,
        vec![4096, 4096, 4096, 65536],
    )
}

/// READ of an empty pipe, then a NOP with IOSQE_IO_DRAIN: the NOP waits until
/// userspace feeds the pipe 400 ms later -> 64, 0.
pub fn drain_blocked() -> Result<Report> {
    let (rd, wr) = pipe()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let buf = leaked_buffer(64);
    let sqes = [
        opcode::Read::new(types::Fd(rd.as_raw_fd()), buf.as_mut_ptr(), 64)
            .build()
            .user_data(1),
        opcode::Nop::new()
            .build()
            .flags(Flags::IO_DRAIN)
            .user_data(2),
    ];
    // SAFETY: the buffer is leaked; the pipe outlives the ring's use of it.
    unsafe { ring.push(&sqes)? };
    ring.uring
        .submit()
        .context("io_uring_enter(READ, drained NOP)")?;
    let mut cqes = Vec::new();
    ring.reap(2, Duration::from_millis(400), &mut cqes)?;
    let before = cqes.len() as u64;
    write_all(&wr, &[7u8; 64])?;
    if !ring.reap(2 - cqes.len(), Duration::from_secs(2), &mut cqes)? {
        bail!("the drained NOP did not complete: {cqes:?}");
    }
    let mut r = report("drain-blocked", &ring, &sqes, cqes, vec![64, 0])?;
    r.completed_before_release = Some(before);
    r.released_by_userspace = Some(true);
    Ok(r)
}

/// Drains as they are meant to be: a drained NOP on an idle ring; a TIMEOUT of 5 ms
/// then a drained NOP, held 5 ms -> 0, -62, 0.
pub fn drain_ok() -> Result<Report> {
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let ts = Box::leak(Box::new(super::timespec(Duration::from_millis(5))));
    let idle = [opcode::Nop::new()
        .build()
        .flags(Flags::IO_DRAIN)
        .user_data(1)];
    let mut cqes = one_by_one(&mut ring, &idle)?;
    let brief = [
        opcode::Timeout::new(ts).build().user_data(2),
        opcode::Nop::new()
            .build()
            .flags(Flags::IO_DRAIN)
            .user_data(3),
    ];
    // SAFETY: the timespec is leaked.
    unsafe { ring.push(&brief)? };
    ring.uring
        .submit()
        .context("io_uring_enter(TIMEOUT, drained NOP)")?;
    if !ring.reap(2, Duration::from_secs(2), &mut cqes)? {
        bail!("the brief drain did not complete: {cqes:?}");
    }
    let all: Vec<squeue::Entry> = idle.iter().chain(brief.iter()).cloned().collect();
    report("drain-ok", &ring, &all, cqes, vec![0, -libc::ETIME, 0])
}
