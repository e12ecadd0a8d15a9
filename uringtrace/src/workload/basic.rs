//! NOP load, link chains and an invalid SQE: requests that complete inline
//! during io_uring_enter, so their CQEs are deterministic.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use io_uring::{opcode, squeue, squeue::Flags, types};

use super::{leaked_buffer, pipe, results_for, write_all, Report, Ring, RingOpts};

const EBADF: i32 = -libc::EBADF;
const ECANCELED: i32 = -libc::ECANCELED;
const EINVAL: i32 = -libc::EINVAL;

/// Holds submissions to `rate` NOPs per second: batch k may start once the
/// NOPs before it are due. Deadlines are absolute from the start, so a late
/// wake-up is caught up by the next batches and the mean rate stays exact.
struct Pacer {
    start: Instant,
    rate: u64,
}

impl Pacer {
    fn new(rate: u64) -> Pacer {
        // Sleeps of tens of microseconds: the default 50 us timer slack would
        // make every wake-up late. Best effort; pacing works without it.
        // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only this thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong) };
        Pacer {
            start: Instant::now(),
            rate,
        }
    }

    /// Sleeps until `done` NOPs are due.
    fn wait_for(&self, done: u64) {
        let due =
            Duration::from_nanos((u128::from(done) * 1_000_000_000 / u128::from(self.rate)) as u64);
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// N NOPs in batches of `batch`; each io_uring_enter submits a batch and waits
/// for all of it, so SQ and CQ never overflow and counts are exact. With
/// `rate`, batches are paced to that many NOPs per second.
pub fn nop_storm(
    count: u64,
    batch: u32,
    entries: u32,
    rate: Option<u64>,
    linger: u64,
    mut rename: Option<&str>,
) -> Result<Report> {
    ensure!(batch >= 1, "--batch must be at least 1");
    ensure!(
        batch <= entries,
        "--batch ({batch}) must not exceed --entries ({entries})"
    );
    let mut ring = Ring::new(RingOpts::entries(entries))?;
    // The kernel rounds the SQ up to a power of two; only that is guaranteed free.
    let batch = u64::from(batch.min(ring.uring.params().sq_entries()));

    let start = Instant::now();
    let pacer = rate.map(Pacer::new);
    let (mut submitted, mut completed, mut failed, mut out_of_order) = (0u64, 0u64, 0u64, 0u64);
    let mut next_ud = 1u64;
    let mut expect_ud = 1u64;
    while submitted < count {
        let n = batch.min(count - submitted);
        if let Some(pacer) = &pacer {
            pacer.wait_for(submitted);
        }
        {
            let mut sq = ring.uring.submission();
            for _ in 0..n {
                let sqe = opcode::Nop::new().build().user_data(next_ud);
                // SAFETY: NOP references no memory. The SQ is empty here
                // (every batch is fully consumed) and n <= its capacity.
                unsafe { sq.push(&sqe) }.context("submission queue unexpectedly full")?;
                next_ud += 1;
            }
        }
        let accepted =
            ring.uring
                .submit_and_wait(n as usize)
                .context("io_uring_enter(submit NOPs, wait for the batch)")? as u64;
        ensure!(accepted == n, "kernel accepted {accepted} of {n} NOPs");
        submitted += n;
        for cqe in ring.uring.completion() {
            completed += 1;
            failed += u64::from(cqe.result() != 0);
            // NOPs complete inline in submit order; anything else is a surprise.
            out_of_order += u64::from(cqe.user_data() != expect_ud);
            expect_ud += 1;
        }
        if submitted >= count / 2 {
            if let Some(name) = rename.take() {
                set_thread_name(name)?;
            }
        }
    }
    let mut rest = Vec::new();
    if completed < count {
        ring.reap(
            (count - completed) as usize,
            Duration::from_secs(2),
            &mut rest,
        )?;
        completed += rest.len() as u64;
        failed += rest.iter().filter(|c| c.res != 0).count() as u64;
    }
    let elapsed = start.elapsed();
    eprintln!(
        "nop-storm: {submitted} submitted, {completed} completed in {:.3} s ({:.0} ops/s, batch {batch}{})",
        elapsed.as_secs_f64(),
        completed as f64 / elapsed.as_secs_f64(),
        rate.map(|r| format!(", paced to {r}/s")).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(linger));
    if failed > 0 || out_of_order > 0 {
        eprintln!("nop-storm: {failed} NOPs with res != 0, {out_of_order} completed out of order");
    }
    ensure!(
        completed == count,
        "only {completed} of {count} NOPs completed within the deadline"
    );

    let mut report = Report::new("nop-storm").ring(&ring);
    report.submitted = Some(submitted);
    report.completed = Some(completed);
    report.as_expected = failed == 0 && out_of_order == 0;
    Ok(report)
}

/// Submit `sqes` (user_data 1..=n, already set) in one io_uring_enter and
/// collect every member's CQE. All members of these chains complete inline
/// or promptly, so a missing CQE is a failure.
fn run_chain(name: &'static str, sqes: Vec<squeue::Entry>, expected: Vec<i32>) -> Result<Report> {
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let user_data: Vec<u64> = sqes.iter().map(|e| e.get_user_data()).collect();
    // SAFETY: buffers referenced by the SQEs are leaked (see leaked_buffer),
    // fds are owned by the caller and outlive this call.
    unsafe { ring.push(&sqes)? };
    let accepted = ring
        .uring
        .submit()
        .context("io_uring_enter(submit chain)")?;

    let mut cqes = Vec::new();
    if !ring.reap(sqes.len(), Duration::from_secs(2), &mut cqes)? {
        bail!(
            "only {} of {} chain members completed within 2 s: {cqes:?}",
            cqes.len(),
            sqes.len()
        );
    }
    let results = results_for(&user_data, &cqes)?;

    let mut report = Report::new(name)
        .ring(&ring)
        .members(user_data, results, expected);
    report.submitted = Some(accepted as u64);
    report.enter_ret = Some(accepted as i64);
    report.completed = Some(cqes.len() as u64);
    report.completions = Some(cqes);
    Ok(report)
}

fn nop(ud: u64, flags: Flags) -> squeue::Entry {
    opcode::Nop::new().build().flags(flags).user_data(ud)
}

/// READ on fd -1: not a fixed file, so the kernel's file lookup at issue
/// time fails with -EBADF.
fn read_bad_fd(ud: u64, flags: Flags) -> squeue::Entry {
    let buf = leaked_buffer(64);
    opcode::Read::new(types::Fd(-1), buf.as_mut_ptr(), buf.len() as u32)
        .build()
        .flags(flags)
        .user_data(ud)
}

pub fn chain_ok() -> Result<Report> {
    let link = Flags::IO_LINK;
    let sqes = vec![
        nop(1, link),
        nop(2, link),
        nop(3, link),
        nop(4, Flags::empty()),
    ];
    run_chain("chain-ok", sqes, vec![0, 0, 0, 0])
}

/// A failing member fails its normal link: every later member is completed
/// with -ECANCELED without being issued.
pub fn chain_broken_error() -> Result<Report> {
    let link = Flags::IO_LINK;
    let sqes = vec![
        nop(1, link),
        read_bad_fd(2, link),
        nop(3, link),
        nop(4, Flags::empty()),
    ];
    run_chain(
        "chain-broken-error",
        sqes,
        vec![0, EBADF, ECANCELED, ECANCELED],
    )
}

/// For reads, a result shorter than requested counts as a failure that
/// breaks a normal link, even though res itself is positive.
pub fn chain_broken_short() -> Result<Report> {
    let (rd, wr) = pipe()?;
    write_all(&wr, b"0123456789")?;
    let buf = leaked_buffer(4096);
    let sqes = vec![
        opcode::Read::new(
            types::Fd(rd.as_raw_fd()),
            buf.as_mut_ptr(),
            buf.len() as u32,
        )
        .build()
        .flags(Flags::IO_LINK)
        .user_data(1),
        nop(2, Flags::empty()),
    ];
    run_chain("chain-broken-short", sqes, vec![10, ECANCELED])
}

/// IOSQE_IO_HARDLINK keeps the chain going past a failing member.
pub fn chain_hardlink() -> Result<Report> {
    let hard = Flags::IO_HARDLINK;
    let sqes = vec![nop(1, hard), read_bad_fd(2, hard), nop(3, Flags::empty())];
    run_chain("chain-hardlink", sqes, vec![0, EBADF, 0])
}

/// One SQE whose opcode (250) is past IORING_OP_LAST. The kernel rejects it in
/// io_init_req (tracepoint io_uring_req_failed) and still posts a CQE with
/// -EINVAL; io_uring_enter counts it as consumed and returns 1.
///
/// The io-uring crate only builds valid opcodes and keeps the SQE field
/// private, so a NOP is built and its first byte (the `opcode` field of
/// struct io_uring_sqe) is patched through its 64-byte representation.
pub fn invalid_sqe() -> Result<Report> {
    const BOGUS_OPCODE: u8 = 250;
    let nop = opcode::Nop::new().build().user_data(1);
    // SAFETY: squeue::Entry is #[repr(C)] around the 64-byte io_uring_sqe,
    // which is plain integers, so any byte pattern is a valid value.
    let mut bytes: [u8; 64] = unsafe { std::mem::transmute(nop) };
    bytes[0] = BOGUS_OPCODE;
    // SAFETY: as above, any 64 bytes are a valid io_uring_sqe.
    let sqe: squeue::Entry = unsafe { std::mem::transmute(bytes) };
    debug_assert_eq!(sqe.get_opcode(), u32::from(BOGUS_OPCODE));
    run_chain("invalid-sqe", vec![sqe], vec![EINVAL])
}

/// 300 identical broken chains on one ring: NOP -> READ(fd -1) -> NOP with
/// IOSQE_IO_LINK, user_data 3k+1..3k+3 for chain k. Each READ fails with
/// -EBADF and cancels the NOP behind it: 0, -9, -125, 300 times. Chains go in
/// batches of 42 whole chains (126 SQEs) per io_uring_enter, each batch
/// reaped before the next. Only user_data/results are reported (no
/// `completions`), to keep the line short.
pub fn many_broken_chains() -> Result<Report> {
    const CHAINS: u64 = 300;
    const PER_BATCH: u64 = 42;
    let mut ring = Ring::new(RingOpts::entries(128))?;
    let link = Flags::IO_LINK;
    let mut cqes = Vec::new();
    let mut submitted = 0u64;
    let mut chain = 0u64;
    while chain < CHAINS {
        let n = PER_BATCH.min(CHAINS - chain);
        let sqes: Vec<_> = (chain..chain + n)
            .flat_map(|k| {
                [
                    nop(3 * k + 1, link),
                    read_bad_fd(3 * k + 2, link),
                    nop(3 * k + 3, Flags::empty()),
                ]
            })
            .collect();
        // SAFETY: NOPs reference no memory; READ buffers are leaked.
        unsafe { ring.push(&sqes)? };
        submitted += ring
            .uring
            .submit()
            .context("io_uring_enter(batch of broken chains)")? as u64;
        if !ring.reap(sqes.len(), Duration::from_secs(2), &mut cqes)? {
            bail!("only {} CQEs after chain {}", cqes.len(), chain + n);
        }
        chain += n;
    }
    let user_data: Vec<u64> = (1..=3 * CHAINS).collect();
    let results = results_for(&user_data, &cqes)?;
    let expected = (0..CHAINS).flat_map(|_| [0, EBADF, ECANCELED]).collect();
    let mut report = Report::new("many-broken-chains")
        .ring(&ring)
        .members(user_data, results, expected);
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    Ok(report)
}

/// prctl(PR_SET_NAME): the kernel keeps the first 15 bytes.
fn set_thread_name(name: &str) -> Result<()> {
    let c = std::ffi::CString::new(name).context("--rename: a NUL in the name")?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string that outlives the call.
    let r = unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) };
    ensure!(
        r == 0,
        "prctl(PR_SET_NAME): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}
