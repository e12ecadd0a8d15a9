//! Healthy look-alikes: plain, correct io_uring usage as event loops, timer
//! wheels and runtimes do it. Requests wait, time out, get cancelled or skip
//! their CQEs on purpose; the tool's rules must stay quiet on all of it.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use io_uring::{opcode, squeue, squeue::Flags, types, Probe};

use super::{
    leaked_buffer, ms_since, pipe, results_for, timespec, Cqe, Report, Ring, RingOpts, Wait,
};

const ETIME: i32 = -libc::ETIME;
const ECANCELED: i32 = -libc::ECANCELED;

fn nop(ud: u64) -> squeue::Entry {
    opcode::Nop::new().build().user_data(ud)
}

fn is_etime(w: &Wait) -> bool {
    w.ret == i64::from(ETIME)
}

/// Four timer patterns running concurrently on one ring, submitted together:
///
/// - (a) TIMEOUT 1.5 s, count 0 (ud 1): a pure timer; expires with -ETIME (-62).
/// - (b) READ(empty pipe) (ud 2) -IO_LINK-> LINK_TIMEOUT 300 ms (ud 3): the
///   timer fires and cancels the READ: READ -ECANCELED (-125), LINK_TIMEOUT -ETIME.
/// - (c) NOP (ud 4) -IO_LINK-> LINK_TIMEOUT 1 s (ud 5): the NOP finishes first,
///   which disarms its timer: NOP 0, LINK_TIMEOUT -ECANCELED.
/// - (d) POLL_ADD(idle pipe, POLLIN) (ud 6), given up after 1.3 s with
///   POLL_REMOVE (ud 7): POLL_ADD -ECANCELED, POLL_REMOVE 0.
///
/// Between 300 ms and 1.3 s the ring waits with nothing due, as a timer
/// wheel does; the whole scenario takes 1.5 s.
pub fn timers() -> Result<Report> {
    const GIVE_UP_POLL: Duration = Duration::from_millis(1300);
    let start = Instant::now();
    let (read_rd, _read_wr) = pipe()?;
    let (poll_rd, _poll_wr) = pipe()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;

    // The kernel copies timespecs when it prepares the SQE, during submit.
    let ts_a = timespec(Duration::from_millis(1500));
    let ts_b = timespec(Duration::from_millis(300));
    let ts_c = timespec(Duration::from_secs(1));
    let buf = leaked_buffer(64);
    let sqes = [
        opcode::Timeout::new(&ts_a).build().user_data(1),
        opcode::Read::new(
            types::Fd(read_rd.as_raw_fd()),
            buf.as_mut_ptr(),
            buf.len() as u32,
        )
        .build()
        .flags(Flags::IO_LINK)
        .user_data(2),
        opcode::LinkTimeout::new(&ts_b).build().user_data(3),
        opcode::Nop::new()
            .build()
            .flags(Flags::IO_LINK)
            .user_data(4),
        opcode::LinkTimeout::new(&ts_c).build().user_data(5),
        opcode::PollAdd::new(types::Fd(poll_rd.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(6),
    ];
    // SAFETY: the READ buffer is leaked; the timespecs live until after submit.
    unsafe { ring.push(&sqes)? };
    let mut submitted = ring.uring.submit().context("io_uring_enter(timers)")? as u64;

    let mut cqes = Vec::new();
    if !ring.reap(4, Duration::from_secs(2), &mut cqes)? {
        bail!("(b) and (c) did not finish within 2 s: {cqes:?}");
    }
    let idle = ring.timed_wait(
        1,
        GIVE_UP_POLL.saturating_sub(start.elapsed()),
        "nothing due until the poll is given up",
    )?;
    // SAFETY: POLL_REMOVE references no memory.
    unsafe { ring.push(&[opcode::PollRemove::new(6).build().user_data(7)])? };
    submitted += ring.uring.submit().context("io_uring_enter(POLL_REMOVE)")? as u64;
    if !ring.reap(3, Duration::from_secs(2), &mut cqes)? {
        bail!("the poll removal or the 1.5 s TIMEOUT did not finish: {cqes:?}");
    }

    let user_data: Vec<u64> = (1..=7).collect();
    let results = results_for(&user_data, &cqes)?;
    let expected = vec![ETIME, ECANCELED, ETIME, 0, ECANCELED, ECANCELED, 0];
    let mut report = Report::new("timers")
        .ring(&ring)
        .members(user_data, results, expected);
    // The idle wait sees nothing; the TIMEOUT must not come early.
    let elapsed_ms = ms_since(start);
    report.as_expected &= is_etime(&idle) && elapsed_ms >= 1500;
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.waits = Some(vec![idle]);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(elapsed_ms);
    Ok(report)
}

/// An idle event loop (libuv, tokio-uring between events): 6 times, run two
/// NOPs (submitted and reaped in one io_uring_enter(GETEVENTS, min 2)), then
/// sleep in io_uring_enter(GETEVENTS | EXT_ARG, min_complete = 1, 250 ms)
/// with NOTHING in flight. Each sleep ends with -ETIME after 250 ms.
pub fn event_loop() -> Result<Report> {
    const TICKS: u64 = 6;
    const TICK: Duration = Duration::from_millis(250);
    let start = Instant::now();
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let mut cqes = Vec::new();
    let mut waits = Vec::new();
    let mut submitted = 0u64;
    for tick in 0..TICKS {
        // SAFETY: NOPs reference no memory.
        unsafe { ring.push(&[nop(2 * tick + 1), nop(2 * tick + 2)])? };
        submitted += ring
            .uring
            .submit_and_wait(2)
            .context("io_uring_enter(2 NOPs, wait 2)")? as u64;
        ring.drain(&mut cqes);
        waits.push(ring.timed_wait(1, TICK, "idle tick")?);
    }

    let user_data: Vec<u64> = (1..=2 * TICKS).collect();
    let results = results_for(&user_data, &cqes)?;
    let mut report = Report::new("event-loop").ring(&ring).members(
        user_data,
        results,
        vec![0; 2 * TICKS as usize],
    );
    report.as_expected &= waits
        .iter()
        .all(|w| is_etime(w) && w.ms >= TICK.as_millis() as u64 * 9 / 10);
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.waits = Some(waits);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// A ring set up like modern runtimes do, with IORING_SETUP_SINGLE_ISSUER |
/// IORING_SETUP_DEFER_TASKRUN: completions that need task work (here the
/// poll-driven pipe READ) only run inside io_uring_enter(GETEVENTS).
///
/// 1. READ(empty pipe, 64) (ud 1): poll-armed, in flight.
/// 2. NOP, NOP (ud 2, 3) submitted and reaped; the READ stays in flight.
/// 3. A 250 ms timed wait for 1 CQE: -ETIME (the pipe is still empty).
/// 4. WRITE(pipe, 64) (ud 4) from the same task, not linked: completes at once
///    with 64, and the READ's task work runs in the next GETEVENTS: 64.
/// 5. A last 250 ms timed wait with nothing in flight: -ETIME.
pub fn defer_taskrun() -> Result<Report> {
    const WAIT: Duration = Duration::from_millis(250);
    let start = Instant::now();
    let (rd, wr) = pipe()?;
    let mut ring = Ring::new(RingOpts {
        defer_taskrun: true,
        ..RingOpts::entries(8)
    })?;
    let buf = leaked_buffer(64);
    let payload: &'static [u8] = &[b'd'; 64];
    let read = opcode::Read::new(types::Fd(rd.as_raw_fd()), buf.as_mut_ptr(), 64)
        .build()
        .user_data(1);
    // SAFETY: the READ buffer is leaked.
    unsafe { ring.push(&[read])? };
    let mut submitted = ring.uring.submit().context("io_uring_enter(READ)")? as u64;

    // SAFETY: NOPs reference no memory.
    unsafe { ring.push(&[nop(2), nop(3)])? };
    submitted += ring
        .uring
        .submit_and_wait(2)
        .context("io_uring_enter(2 NOPs, wait 2)")? as u64;
    let mut cqes = Vec::new();
    ring.drain(&mut cqes);
    let mut waits = vec![ring.timed_wait(1, WAIT, "READ on an empty pipe")?];
    let completed_before_write = ring.drain(&mut cqes) as u64;

    let write = opcode::Write::new(
        types::Fd(wr.as_raw_fd()),
        payload.as_ptr(),
        payload.len() as u32,
    )
    .build()
    .user_data(4);
    // SAFETY: the WRITE payload is static.
    unsafe { ring.push(&[write])? };
    submitted += ring.uring.submit().context("io_uring_enter(WRITE)")? as u64;
    if !ring.reap(2, Duration::from_secs(2), &mut cqes)? {
        bail!("READ and WRITE did not both complete: {cqes:?}");
    }
    waits.push(ring.timed_wait(1, WAIT, "nothing in flight")?);

    let user_data = vec![1, 2, 3, 4];
    let results = results_for(&user_data, &cqes)?;
    let mut report =
        Report::new("defer-taskrun")
            .ring(&ring)
            .members(user_data, results, vec![64, 0, 0, 64]);
    // Before the WRITE only the two NOPs may have completed.
    report.as_expected &=
        completed_before_write == 0 && buf[..] == payload[..] && waits.iter().all(is_etime);
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.waits = Some(waits);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// IOSQE_CQE_SKIP_SUCCESS, as runtimes use it for fire-and-forget requests:
/// 8 NOPs with the flag (ud 1..8) post no CQE; a plain NOP (ud 9) posts one
/// (0); a READ(fd -1) with the flag (ud 10) fails, and failures are always
/// posted: -EBADF (-9). All 10 go in one io_uring_enter; exactly 2 CQEs
/// arrive, and a last 100 ms wait confirms no third one comes.
pub fn skip_success() -> Result<Report> {
    let start = Instant::now();
    let mut ring = Ring::new(RingOpts::entries(16))?;
    let mut sqes: Vec<_> = (1..=8)
        .map(|ud| {
            opcode::Nop::new()
                .build()
                .flags(Flags::SKIP_SUCCESS)
                .user_data(ud)
        })
        .collect();
    sqes.push(nop(9));
    let buf = leaked_buffer(64);
    sqes.push(
        opcode::Read::new(types::Fd(-1), buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .flags(Flags::SKIP_SUCCESS)
            .user_data(10),
    );
    // SAFETY: NOPs reference no memory; the READ buffer is leaked.
    unsafe { ring.push(&sqes)? };
    let submitted = ring.uring.submit().context("io_uring_enter(10 SQEs)")?;
    let mut cqes = Vec::new();
    if !ring.reap(2, Duration::from_secs(2), &mut cqes)? {
        bail!("expected 2 CQEs, got {cqes:?}");
    }
    let last = ring.timed_wait(1, Duration::from_millis(100), "no third CQE")?;
    ring.drain(&mut cqes);

    let user_data: Vec<u64> = cqes.iter().map(|c| c.user_data).collect();
    let results: Vec<i32> = cqes.iter().map(|c| c.res).collect();
    let mut report =
        Report::new("skip-success")
            .ring(&ring)
            .members(user_data, results, vec![0, -libc::EBADF]);
    report.as_expected &=
        cqes.len() == 2 && cqes[0].user_data == 9 && cqes[1].user_data == 10 && is_etime(&last);
    report.submitted = Some(submitted as u64);
    report.enter_ret = Some(submitted as i64);
    report.completed = Some(cqes.len() as u64);
    report.waits = Some(vec![last]);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

// include/uapi/linux/io_uring.h; the io-uring crate keeps the registered
// index private, and the point here is to show it.
const IORING_REGISTER_RING_FDS: libc::c_uint = 20;
const IORING_UNREGISTER_RING_FDS: libc::c_uint = 21;
const IORING_ENTER_GETEVENTS: libc::c_uint = 1 << 0;
const IORING_ENTER_EXT_ARG: libc::c_uint = 1 << 3;
const IORING_ENTER_REGISTERED_RING: libc::c_uint = 1 << 4;

/// struct io_uring_rsrc_update
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// struct io_uring_getevents_arg
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

fn register_ring_fd(ring_fd: i32, op: libc::c_uint, up: &mut RsrcUpdate) -> io::Result<i64> {
    // SAFETY: `up` is one valid io_uring_rsrc_update the kernel may write to.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd as libc::c_uint,
            op,
            up as *mut RsrcUpdate,
            1 as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// io_uring_enter on a registered ring: `index` is the registered slot, not an fd.
fn enter_registered(
    index: u32,
    to_submit: u32,
    min_complete: u32,
    flags: libc::c_uint,
    arg: Option<&GeteventsArg>,
) -> io::Result<i64> {
    let (argp, argsz) = match arg {
        Some(a) => (
            a as *const GeteventsArg as *const libc::c_void,
            std::mem::size_of::<GeteventsArg>(),
        ),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: `argp` is null or one io_uring_getevents_arg whose timespec
    // pointer is valid for the call; the SQEs were pushed by the caller.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            index as libc::c_uint,
            to_submit as libc::c_uint,
            min_complete as libc::c_uint,
            flags | IORING_ENTER_REGISTERED_RING,
            argp,
            argsz,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// A ring whose fd is registered with IORING_REGISTER_RING_FDS (as liburing's
/// io_uring_register_ring_fd does), so every io_uring_enter passes
/// IORING_ENTER_REGISTERED_RING and the registered index (usually 0, which
/// is also stdin's fd number) instead of the ring fd.
///
/// 5 batches: 10 NOPs submitted and waited for in one enter (returns 10),
/// then a 50 ms wait (GETEVENTS | EXT_ARG, min 1) with nothing in flight
/// (-ETIME). 50 NOPs, all 0. The index is unregistered at the end.
pub fn registered_ring() -> Result<Report> {
    const BATCHES: u64 = 5;
    const BATCH: u64 = 10;
    let start = Instant::now();
    let mut ring = Ring::new(RingOpts::entries(16))?;
    let mut up = RsrcUpdate {
        // -1: let the kernel pick a free slot and write it back.
        offset: u32::MAX,
        resv: 0,
        data: ring.fd() as u64,
    };
    let n = register_ring_fd(ring.fd(), IORING_REGISTER_RING_FDS, &mut up)
        .context("io_uring_register(IORING_REGISTER_RING_FDS) (needs Linux 5.18+)")?;
    ensure!(
        n == 1,
        "IORING_REGISTER_RING_FDS registered {n} rings, not 1"
    );
    let index = up.offset;

    let ts = timespec(Duration::from_millis(50));
    let arg = GeteventsArg {
        sigmask: 0,
        sigmask_sz: 0,
        min_wait_usec: 0,
        ts: &ts as *const types::Timespec as u64,
    };
    let mut cqes = Vec::new();
    let mut waits = Vec::new();
    let mut submitted = 0u64;
    for b in 0..BATCHES {
        let sqes: Vec<_> = (b * BATCH + 1..=(b + 1) * BATCH).map(nop).collect();
        // SAFETY: NOPs reference no memory.
        unsafe { ring.push(&sqes)? };
        let ret = enter_registered(
            index,
            BATCH as u32,
            BATCH as u32,
            IORING_ENTER_GETEVENTS,
            None,
        )
        .context("io_uring_enter(REGISTERED_RING, 10 NOPs, wait 10)")?;
        submitted += ret as u64;
        ring.drain(&mut cqes);

        let t = Instant::now();
        let ret = match enter_registered(
            index,
            0,
            1,
            IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
            Some(&arg),
        ) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => -i64::from(libc::ETIME),
            Err(e) => return Err(e).context("io_uring_enter(REGISTERED_RING, 50 ms wait)"),
        };
        waits.push(Wait {
            ret,
            ms: ms_since(t),
        });
    }
    let mut up = RsrcUpdate {
        offset: index,
        resv: 0,
        data: 0,
    };
    register_ring_fd(ring.fd(), IORING_UNREGISTER_RING_FDS, &mut up)
        .context("io_uring_register(IORING_UNREGISTER_RING_FDS)")?;

    let user_data: Vec<u64> = (1..=BATCHES * BATCH).collect();
    let results = results_for(&user_data, &cqes)?;
    let mut report = Report::new("registered-ring").ring(&ring).members(
        user_data,
        results,
        vec![0; (BATCHES * BATCH) as usize],
    );
    report.as_expected &= submitted == BATCHES * BATCH && waits.iter().all(is_etime);
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.registered_ring_index = Some(index);
    report.waits = Some(waits);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

// futex2 flags (include/uapi/linux/futex.h), as IORING_OP_FUTEX_* take them.
const FUTEX2_SIZE_U32: u32 = 0x02;
const FUTEX2_PRIVATE: u32 = 128;
const FUTEX_BITSET_MATCH_ANY: u64 = 0xffff_ffff;

/// A FUTEX_WAIT linked to a FUTEX_WAKE on a different word, as a runtime
/// hands a signal on: FUTEX_WAIT(A, expect 0) (ud 1) -IO_LINK-> FUTEX_WAKE(B,
/// 1 waiter) (ud 2), futex2 flags SIZE_U32 | PRIVATE. Nothing waits on B and
/// the chain does not wait on itself. After a 300 ms wait (-ETIME), A is set
/// to 1 and a second ring wakes it with IORING_OP_FUTEX_WAKE (ud 3, res 1:
/// one waiter woken); the FUTEX_WAIT completes with 0, then the FUTEX_WAKE on
/// B runs and wakes nobody (res 0). Needs Linux 6.7+.
pub fn futex_pair() -> Result<Report> {
    futex_chain("futex-pair", false, Duration::from_millis(300))
}

/// FUTEX_WAIT on word A linked to the FUTEX_WAKE of the *same* word A: the wake can
/// run only after the wait completes, which only the wake would do (a wait-for cycle,
/// kernel facts section 4). After 1.2 s a second ring wakes A from outside; then both
/// complete (0, 0). Needs Linux 6.7+.
pub fn futex_cycle() -> Result<Report> {
    futex_chain("futex-cycle", true, Duration::from_millis(1200))
}

/// FUTEX_WAIT(A) -> FUTEX_WAKE(A if `same` else B), then A woken from a second ring
/// after `stuck`.
fn futex_chain(name: &'static str, same: bool, stuck: Duration) -> Result<Report> {
    let start = Instant::now();
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let mut probe = Probe::new();
    ring.uring
        .submitter()
        .register_probe(&mut probe)
        .context("IORING_REGISTER_PROBE")?;
    if !probe.is_supported(opcode::FutexWait::CODE) || !probe.is_supported(opcode::FutexWake::CODE)
    {
        bail!("this kernel has no IORING_OP_FUTEX_WAIT/FUTEX_WAKE (added in Linux 6.7)");
    }
    let mut waker = Ring::new(RingOpts::entries(4))?;
    // Leaked: the kernel reads the words while the requests are in flight.
    let words: &'static [AtomicU32; 2] =
        Box::leak(Box::new([AtomicU32::new(0), AtomicU32::new(0)]));
    let (a, b) = (
        words[0].as_ptr().cast_const(),
        words[1].as_ptr().cast_const(),
    );
    let flags = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;
    let sqes = [
        opcode::FutexWait::new(a, 0, FUTEX_BITSET_MATCH_ANY, flags)
            .build()
            .flags(Flags::IO_LINK)
            .user_data(1),
        opcode::FutexWake::new(if same { a } else { b }, 1, FUTEX_BITSET_MATCH_ANY, flags)
            .build()
            .user_data(2),
    ];
    // SAFETY: the futex words are leaked.
    unsafe { ring.push(&sqes)? };
    let submitted = ring
        .uring
        .submit()
        .context("io_uring_enter(FUTEX_WAIT -> FUTEX_WAKE)")?;
    let before = ring.timed_wait(1, stuck, "FUTEX_WAIT on A")?;
    let mut cqes = Vec::new();
    let completed_before_release = ring.drain(&mut cqes) as u64;

    words[0].store(1, Ordering::Release);
    let wake_a = opcode::FutexWake::new(a, 1, FUTEX_BITSET_MATCH_ANY, flags)
        .build()
        .user_data(3);
    // SAFETY: the futex word is leaked.
    unsafe { waker.push(&[wake_a])? };
    waker
        .uring
        .submit()
        .context("io_uring_enter(FUTEX_WAKE A, second ring)")?;
    let mut waker_cqes: Vec<Cqe> = Vec::new();
    if !waker.reap(1, Duration::from_secs(2), &mut waker_cqes)? {
        bail!("FUTEX_WAKE on the second ring did not complete");
    }
    if !ring.reap(2, Duration::from_secs(2), &mut cqes)? {
        bail!("the FUTEX_WAIT -> FUTEX_WAKE chain did not finish: {cqes:?}");
    }

    let user_data = vec![1, 2];
    let results = results_for(&user_data, &cqes)?;
    let mut report = Report::new(name)
        .ring(&ring)
        .members(user_data, results, vec![0, 0]);
    report.as_expected &= completed_before_release == 0
        && is_etime(&before)
        && waker_cqes.len() == 1
        && waker_cqes[0].res == 1;
    report.submitted = Some(submitted as u64);
    report.completed = Some(cqes.len() as u64);
    report.completed_before_release = Some(completed_before_release);
    report.waits = Some(vec![before]);
    report.completions = Some(cqes);
    report.other_ring_fd = Some(waker.fd());
    report.other_ring_completions = Some(waker_cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}
