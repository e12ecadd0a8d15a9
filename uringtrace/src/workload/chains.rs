//! Healthy link chains: copy loops, read-until-EOF loops and cancellations
//! that programs do on purpose. Chains here wait on slow inputs or end early
//! for ordinary reasons; none of it is a bug.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use io_uring::{opcode, squeue::Flags, types};

use super::{
    leaked_buffer, ms_since, pipe, results_for, unlinked_temp_file, write_all, Report, Ring,
    RingOpts,
};

const ECANCELED: i32 = -libc::ECANCELED;

/// A file copy and a slow pipe relay, all as READ -IO_LINK-> WRITE pairs
/// submitted in one io_uring_enter:
///
/// - 8 pairs (ud 1..16): READ(source file, 64 KiB at offset i * 64 KiB) ->
///   WRITE(destination file, same buffer and offset). Both regular files,
///   512 KiB in all: every member returns 65536.
/// - READ(pipe 1, 64) (ud 17) -> WRITE(pipe 2, 64) (ud 18). Pipe 1 is fed by a
///   thread only after 1.3 s: the READ waits that long (a slow input feeding
///   an output on another object, normal), then both return 64.
///
/// The destination file and pipe 2 are checked against what went in.
pub fn file_copy_chain() -> Result<Report> {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 8;
    const SLOW: Duration = Duration::from_millis(1300);
    const RELAYED: &[u8; 64] = &[b'p'; 64];
    let start = Instant::now();
    let mut src = unlinked_temp_file("copy-src")?;
    let dst = unlinked_temp_file("copy-dst")?;
    let data: Vec<u8> = (0..CHUNK * CHUNKS).map(|i| (i % 251) as u8).collect();
    src.write_all(&data).context("fill the source file")?;
    let (in_rd, in_wr) = pipe()?;
    let (out_rd, out_wr) = pipe()?;
    let mut ring = Ring::new(RingOpts::entries(32))?;

    let bufs = leaked_buffer(CHUNK * CHUNKS);
    let mut sqes = Vec::new();
    for (i, buf) in bufs.chunks_mut(CHUNK).enumerate() {
        let off = (i * CHUNK) as u64;
        let ud = 2 * i as u64 + 1;
        sqes.push(
            opcode::Read::new(types::Fd(src.as_raw_fd()), buf.as_mut_ptr(), CHUNK as u32)
                .offset(off)
                .build()
                .flags(Flags::IO_LINK)
                .user_data(ud),
        );
        sqes.push(
            opcode::Write::new(types::Fd(dst.as_raw_fd()), buf.as_ptr(), CHUNK as u32)
                .offset(off)
                .build()
                .user_data(ud + 1),
        );
    }
    let relay = leaked_buffer(RELAYED.len());
    sqes.push(
        opcode::Read::new(
            types::Fd(in_rd.as_raw_fd()),
            relay.as_mut_ptr(),
            relay.len() as u32,
        )
        .build()
        .flags(Flags::IO_LINK)
        .user_data(17),
    );
    sqes.push(
        opcode::Write::new(
            types::Fd(out_wr.as_raw_fd()),
            relay.as_ptr(),
            relay.len() as u32,
        )
        .build()
        .user_data(18),
    );
    // SAFETY: every buffer is leaked; the fds outlive the ring.
    unsafe { ring.push(&sqes)? };
    let submitted = ring
        .uring
        .submit()
        .context("io_uring_enter(9 READ -> WRITE pairs)")?;

    let wait = thread::scope(|s| -> Result<_> {
        let feeder = s.spawn(|| {
            sleep(SLOW);
            write_all(&in_wr, RELAYED)
        });
        let wait = ring.timed_wait(sqes.len(), Duration::from_secs(4), "copy and relay")?;
        feeder
            .join()
            .map_err(|_| anyhow!("feeder thread panicked"))??;
        Ok(wait)
    })?;
    let mut cqes = Vec::new();
    if !ring.reap(sqes.len(), Duration::from_secs(2), &mut cqes)? {
        bail!(
            "only {} of {} members completed: {cqes:?}",
            cqes.len(),
            sqes.len()
        );
    }

    let mut copied = vec![0u8; data.len()];
    dst.read_exact_at(&mut copied, 0)
        .context("read back the destination file")?;
    let mut relayed = [0u8; 64];
    // SAFETY: relayed is a valid buffer of its length; the pipe holds 64 bytes.
    let n = unsafe { libc::read(out_rd.as_raw_fd(), relayed.as_mut_ptr().cast(), 64) };

    let user_data: Vec<u64> = (1..=sqes.len() as u64).collect();
    let results = results_for(&user_data, &cqes)?;
    let mut expected = vec![CHUNK as i32; 2 * CHUNKS];
    expected.extend([RELAYED.len() as i32; 2]);
    let mut report = Report::new("file-copy-chain")
        .ring(&ring)
        .members(user_data, results, expected);
    report.as_expected &= copied == data
        && n == 64
        && relayed == *RELAYED
        && wait.ms >= SLOW.as_millis() as u64 * 9 / 10;
    report.submitted = Some(submitted as u64);
    report.completed = Some(cqes.len() as u64);
    report.waits = Some(vec![wait]);
    report.peer_received = Some(copied.len() as u64 + n.max(0) as u64);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// A read-until-EOF loop with links, one pair per step, each pair submitted
/// and reaped before the next: READ(file, 4096 at the current offset) ->
/// WRITE(/dev/null, 4096) over a 10,000-byte regular file.
///
/// Pairs 1 and 2 (ud 1..4) move 4096 each. Pair 3 (ud 5, 6) reads the last
/// 1808 bytes: a short read, which breaks the link, so its WRITE is cancelled
/// (-ECANCELED) and the loop stops. A last, unlinked READ at offset 10000
/// (ud 7) confirms EOF with 0.
pub fn read_eof_chain() -> Result<Report> {
    const SIZE: usize = 10_000;
    const BLOCK: usize = 4096;
    let start = Instant::now();
    let mut file = unlinked_temp_file("eof")?;
    file.write_all(&[b'e'; SIZE]).context("fill the file")?;
    let devnull = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let buf = leaked_buffer(BLOCK).as_mut_ptr();
    let read = |ud: u64, offset: u64| {
        opcode::Read::new(types::Fd(file.as_raw_fd()), buf, BLOCK as u32)
            .offset(offset)
            .build()
            .user_data(ud)
    };

    let mut cqes = Vec::new();
    let (mut offset, mut ud, mut submitted) = (0u64, 1u64, 0u64);
    loop {
        let pair = [
            read(ud, offset).flags(Flags::IO_LINK),
            opcode::Write::new(types::Fd(devnull.as_raw_fd()), buf, BLOCK as u32)
                .build()
                .user_data(ud + 1),
        ];
        // SAFETY: the buffer is leaked; the fds outlive the ring.
        unsafe { ring.push(&pair)? };
        submitted += ring
            .uring
            .submit()
            .context("io_uring_enter(READ -> WRITE)")? as u64;
        if !ring.reap(2, Duration::from_secs(2), &mut cqes)? {
            bail!("READ -> WRITE pair {ud} did not finish: {cqes:?}");
        }
        let got = results_for(&[ud], &cqes)?[0];
        ud += 2;
        if got <= 0 {
            break;
        }
        offset += got as u64;
        if got < BLOCK as i32 {
            break;
        }
    }
    // SAFETY: the buffer is leaked.
    unsafe { ring.push(&[read(ud, offset)])? };
    submitted += ring.uring.submit().context("io_uring_enter(READ at EOF)")? as u64;
    if !ring.reap(1, Duration::from_secs(2), &mut cqes)? {
        bail!("READ at EOF did not finish");
    }

    let user_data: Vec<u64> = (1..=ud).collect();
    let results = results_for(&user_data, &cqes)?;
    let b = BLOCK as i32;
    let tail = (SIZE % BLOCK) as i32;
    let mut report = Report::new("read-eof-chain").ring(&ring).members(
        user_data,
        results,
        vec![b, b, b, b, tail, ECANCELED, 0],
    );
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// A request given up on purpose, as a timeout in the application does:
/// READ(empty pipe) (ud 1) -IO_LINK-> NOP (ud 2); after a 200 ms wait that
/// sees nothing (-ETIME), ASYNC_CANCEL(user_data 1) (ud 3) cancels the READ
/// (-ECANCELED), which cancels the NOP behind it (-ECANCELED); the
/// ASYNC_CANCEL itself returns 0 (one request found).
pub fn intended_cancel() -> Result<Report> {
    let start = Instant::now();
    let (rd, _wr) = pipe()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let buf = leaked_buffer(64);
    let sqes = [
        opcode::Read::new(
            types::Fd(rd.as_raw_fd()),
            buf.as_mut_ptr(),
            buf.len() as u32,
        )
        .build()
        .flags(Flags::IO_LINK)
        .user_data(1),
        opcode::Nop::new().build().user_data(2),
    ];
    // SAFETY: the READ buffer is leaked.
    unsafe { ring.push(&sqes)? };
    let mut submitted = ring.uring.submit().context("io_uring_enter(READ -> NOP)")? as u64;
    let wait = ring.timed_wait(1, Duration::from_millis(200), "READ on an empty pipe")?;
    let mut cqes = Vec::new();
    let completed_before_release = ring.drain(&mut cqes) as u64;

    // SAFETY: ASYNC_CANCEL references no memory.
    unsafe { ring.push(&[opcode::AsyncCancel::new(1).build().user_data(3)])? };
    submitted += ring
        .uring
        .submit()
        .context("io_uring_enter(ASYNC_CANCEL)")? as u64;
    if !ring.reap(3, Duration::from_secs(2), &mut cqes)? {
        bail!("the cancellation did not finish the chain: {cqes:?}");
    }

    let user_data = vec![1, 2, 3];
    let results = results_for(&user_data, &cqes)?;
    let mut report = Report::new("intended-cancel").ring(&ring).members(
        user_data,
        results,
        vec![ECANCELED, ECANCELED, 0],
    );
    report.as_expected &= completed_before_release == 0 && wait.ret == -i64::from(libc::ETIME);
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.completed_before_release = Some(completed_before_release);
    report.waits = Some(vec![wait]);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}
