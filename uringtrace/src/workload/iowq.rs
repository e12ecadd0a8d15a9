//! io-wq: requests the kernel punts to its worker threads.

use std::fs::{self, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};

use super::{pipe, results_for, splice_to, write_all, Report, Ring, RingOpts};

/// Threads of this process whose name starts with "iou-wrk" (io-wq workers
/// are threads of the submitting process).
fn count_iou_wrk_threads() -> u32 {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("iou-wrk"))
        .count() as u32
}

/// N SPLICEs, each from its own empty pipe into /dev/null. SPLICE is always
/// forced async (REQ_F_FORCE_ASYNC), and neither end is a regular file, so each
/// goes to an unbound io-wq worker that blocks in the pipe read: N requests
/// occupy N iou-wrk threads. After 500 ms one byte is written into every pipe;
/// each splice moves it and completes with res 1.
pub fn iowq_splice(count: u32) -> Result<Report> {
    ensure!(
        (1..=4096).contains(&count),
        "--count must be between 1 and 4096"
    );
    let devnull = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..count)
        .map(|_| pipe())
        .collect::<Result<_>>()
        .context("creating pipes (raise RLIMIT_NOFILE for large --count)")?;
    let mut ring = Ring::new(RingOpts::entries(count.next_power_of_two()))?;

    let sqes: Vec<_> = pipes
        .iter()
        .zip(1u64..)
        .map(|((rd, _), ud)| splice_to(rd.as_raw_fd(), devnull.as_raw_fd(), ud))
        .collect();
    // SAFETY: SPLICE references only fds, which stay open until the end.
    unsafe { ring.push(&sqes)? };
    let submitted = ring
        .uring
        .submit()
        .context("io_uring_enter(submit SPLICEs)")?;

    sleep(Duration::from_millis(500));
    let iou_wrk_threads = count_iou_wrk_threads();
    let mut cqes = Vec::new();
    let completed_before_release = ring.drain(&mut cqes) as u64;

    for (_, wr) in &pipes {
        write_all(wr, b"x")?;
    }
    if !ring.reap(
        count as usize - cqes.len(),
        Duration::from_secs(3),
        &mut cqes,
    )? {
        bail!(
            "only {} of {count} SPLICEs completed after release",
            cqes.len()
        );
    }

    let mut ud: Vec<(u64, i32)> = cqes.iter().map(|c| (c.user_data, c.res)).collect();
    ud.sort_unstable();
    let results: Vec<i32> = ud.iter().map(|&(_, r)| r).collect();
    let mut report = Report::new("iowq-splice").ring(&ring);
    report.as_expected = completed_before_release == 0
        && iou_wrk_threads >= count
        && results.iter().all(|&r| r == 1);
    report.submitted = Some(submitted as u64);
    report.completed = Some(cqes.len() as u64);
    report.completed_before_release = Some(completed_before_release);
    report.released_by_userspace = Some(true);
    report.iou_wrk_threads = Some(iou_wrk_threads);
    report.user_data = Some(ud.iter().map(|&(u, _)| u).collect());
    report.results = Some(results);
    Ok(report)
}

/// One SPLICE (4096 bytes) from an empty pipe into /dev/null. SPLICE is forced
/// async, so it is punted to an io-wq worker, which blocks in the pipe read.
/// A 1.5 s io_uring_enter(GETEVENTS) wait sees no CQE (-ETIME); then userspace
/// writes one byte into the pipe, the splice moves it and completes with res 1.
pub fn stalled_request() -> Result<Report> {
    const STALL: Duration = Duration::from_millis(1500);
    let devnull = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    let (rd, wr) = pipe()?;
    let mut ring = Ring::new(RingOpts::entries(4))?;
    let sqe = splice_to(rd.as_raw_fd(), devnull.as_raw_fd(), 1);
    // SAFETY: SPLICE references only fds, which stay open until the end.
    unsafe { ring.push(&[sqe])? };
    let submitted = ring
        .uring
        .submit()
        .context("io_uring_enter(submit SPLICE)")?;

    let (wait_ret, wait_ms) = ring.wait_with_timeout(1, STALL, "1.5 s timeout")?;
    let iou_wrk_threads = count_iou_wrk_threads();
    let mut cqes = Vec::new();
    let completed_before_release = ring.drain(&mut cqes) as u64;

    write_all(&wr, b"x")?;
    if !ring.reap(1 - cqes.len().min(1), Duration::from_secs(3), &mut cqes)? {
        bail!("SPLICE did not complete after userspace wrote into the pipe");
    }
    let results = results_for(&[1], &cqes)?;
    let mut report = Report::new("stalled-request")
        .ring(&ring)
        .members(vec![1], results, vec![1]);
    report.as_expected &= completed_before_release == 0
        && wait_ret == -i64::from(libc::ETIME)
        && iou_wrk_threads >= 1;
    report.submitted = Some(submitted as u64);
    report.wait_ret = Some(wait_ret);
    report.wait_ms = Some(wait_ms);
    report.iou_wrk_threads = Some(iou_wrk_threads);
    report.completed_before_release = Some(completed_before_release);
    report.released_by_userspace = Some(true);
    report.completed = Some(cqes.len() as u64);
    report.completions = Some(cqes);
    Ok(report)
}
