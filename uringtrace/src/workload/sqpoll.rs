//! SQPOLL rings: a kernel thread consumes the SQ, so submission needs no
//! syscall unless the thread has gone idle and set IORING_SQ_NEED_WAKEUP.

use std::fs;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use io_uring::{opcode, squeue, squeue::Flags, types};

use super::{leaked_buffer, ms_since, results_for, Cqe, Report, Ring, RingOpts};

fn nops(uds: impl IntoIterator<Item = u64>) -> Vec<squeue::Entry> {
    uds.into_iter()
        .map(|ud| opcode::Nop::new().build().user_data(ud))
        .collect()
}

/// Whether the SQ thread is asleep and needs IORING_ENTER_SQ_WAKEUP.
fn need_wakeup(ring: &mut Ring) -> bool {
    ring.uring.submission().need_wakeup()
}

/// N NOPs on an SQPOLL ring (idle 50 ms), with a 200 ms pause halfway. Before
/// the pause the thread is polling and submit() makes no syscall; after it the
/// thread has slept and submit() must enter with IORING_ENTER_SQ_WAKEUP.
/// The very first submit also finds the thread asleep (see below).
pub fn sqpoll_ok(count: u32) -> Result<Report> {
    const IDLE_MS: u32 = 50;
    let mut ring = Ring::new(RingOpts {
        sqpoll_idle_ms: Some(IDLE_MS),
        ..RingOpts::entries(32)
    })?;
    let cap = u64::from(ring.uring.params().sq_entries());
    let count = u64::from(count);
    let half = count / 2;
    // A fresh SQ thread with an empty SQ parks at once (its idle timer starts
    // out expired), racing with our first submit. Let it park so the first
    // submit always needs a wakeup too: wakeups is then exactly 2.
    sleep(Duration::from_millis(20));

    let mut cqes = Vec::new();
    let (mut submitted, mut wakeups) = (0u64, 0u64);
    let mut need_wakeup_after_pause = None;
    while submitted < count {
        if submitted == half && need_wakeup_after_pause.is_none() {
            sleep(Duration::from_millis(200));
            need_wakeup_after_pause = Some(need_wakeup(&mut ring));
        }
        // Stop each chunk at the midpoint so the pause falls exactly there.
        let end = if submitted < half { half } else { count };
        let n = cap.min(end - submitted);
        // SAFETY: NOPs reference no memory.
        unsafe { ring.push(&nops(submitted + 1..=submitted + n))? };
        wakeups += u64::from(need_wakeup(&mut ring));
        ring.uring
            .submit()
            .context("submit NOPs to the SQ thread")?;
        if !ring.reap(n as usize, Duration::from_secs(2), &mut cqes)? {
            bail!(
                "SQ thread completed only {} of {} NOPs",
                cqes.len(),
                submitted + n
            );
        }
        submitted += n;
    }

    let mut report = Report::new("sqpoll-ok").ring(&ring);
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.wakeups = Some(wakeups);
    report.need_wakeup_after = need_wakeup_after_pause;
    report.as_expected = cqes.len() as u64 == count
        && cqes.iter().all(|c| c.res == 0)
        && (count < 2 || (need_wakeup_after_pause == Some(true) && wakeups == 2));
    Ok(report)
}

/// The classic SQPOLL bug: the thread is asleep (NEED_WAKEUP set), userspace
/// publishes SQEs by moving the SQ tail but never calls io_uring_enter. The
/// kernel never looks at the SQ, so nothing is consumed and nothing completes.
/// Closing the ring at exit discards the never-consumed SQEs.
pub fn sqpoll_missed_wakeup() -> Result<Report> {
    const IDLE_MS: u32 = 10;
    let mut ring = Ring::new(RingOpts {
        sqpoll_idle_ms: Some(IDLE_MS),
        ..RingOpts::entries(8)
    })?;
    sleep(Duration::from_millis(100));
    let need_wakeup_before = need_wakeup(&mut ring);

    // SAFETY: NOPs reference no memory. push() publishes the tail; the
    // deliberate omission is the io_uring_enter(SQ_WAKEUP) that should follow.
    unsafe { ring.push(&nops(1..=4))? };

    let mut cqes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        ring.drain(&mut cqes);
        sleep(Duration::from_millis(10));
    }
    let (need_wakeup_after, sq_pending) = {
        let mut sq = ring.uring.submission();
        sq.sync();
        (sq.need_wakeup(), sq.len() as u32)
    };

    let mut report = Report::new("sqpoll-missed-wakeup").ring(&ring);
    report.submitted = Some(0);
    report.completed = Some(cqes.len() as u64);
    report.need_wakeup_before = Some(need_wakeup_before);
    report.need_wakeup_after = Some(need_wakeup_after);
    report.sq_pending = Some(sq_pending);
    report.as_expected =
        cqes.is_empty() && need_wakeup_before && need_wakeup_after && sq_pending == 4;
    report.completions = Some(cqes);
    Ok(report)
}

/// Two SQPOLL rings sharing one SQ thread (ring B attached to A with
/// IORING_SETUP_ATTACH_WQ). With more than one ring on the thread, it takes
/// at most 8 SQEs per ring per loop (IORING_SQPOLL_CAP_ENTRIES_VALUE), so a
/// 12-member link chain on B is cut after member 8: the first batch ends with
/// an open chain that is issued as-is, and members 9..12 form a new chain.
/// Member 1 fails (-EBADF), cancelling 2..8, while 9..12 run and succeed.
pub fn sqpoll_shared_split() -> Result<Report> {
    const IDLE_MS: u32 = 1000;
    let mut ring_a = Ring::new(RingOpts {
        sqpoll_idle_ms: Some(IDLE_MS),
        ..RingOpts::entries(16)
    })?;
    let mut ring_b = Ring::new(RingOpts {
        sqpoll_idle_ms: Some(IDLE_MS),
        attach_wq: Some(ring_a.fd()),
        ..RingOpts::entries(16)
    })?;

    let buf = leaked_buffer(64);
    let mut chain = vec![
        opcode::Read::new(types::Fd(-1), buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .flags(Flags::IO_LINK)
            .user_data(1),
    ];
    for ud in 2..=12u64 {
        let flags = if ud < 12 {
            Flags::IO_LINK
        } else {
            Flags::empty()
        };
        chain.push(opcode::Nop::new().build().flags(flags).user_data(ud));
    }
    let user_data: Vec<u64> = (1..=12).collect();

    // Keep ring A busy on the same thread; its NOPs use distinct user_data.
    // SAFETY: NOPs reference no memory; the READ buffer is leaked.
    unsafe { ring_a.push(&nops(101..=104))? };
    // All 12 SQEs become visible with a single tail store, so the split comes
    // from the thread's per-ring cap, not from userspace publishing late.
    // SAFETY: as for ring A: NOPs and the leaked READ buffer.
    unsafe { ring_b.push(&chain)? };
    ring_a.uring.submit().context("submit to ring A")?;
    ring_b.uring.submit().context("submit chain to ring B")?;

    let mut cqes: Vec<Cqe> = Vec::new();
    let all_b = ring_b.reap(chain.len(), Duration::from_secs(2), &mut cqes)?;
    let mut cqes_a = Vec::new();
    ring_a.reap(4, Duration::from_secs(1), &mut cqes_a)?;
    if !all_b {
        bail!(
            "only {} of 12 chain members completed on ring B: {cqes:?}",
            cqes.len()
        );
    }
    let results = results_for(&user_data, &cqes)?;

    let ecanceled = -libc::ECANCELED;
    let mut expected = vec![-libc::EBADF];
    expected.extend([ecanceled; 7]);
    expected.extend([0; 4]);
    let mut report = Report::new("sqpoll-shared-split")
        .ring(&ring_b)
        .members(user_data, results, expected);
    report.attach_wq_fd = Some(ring_a.fd());
    report.completed = Some(cqes.len() as u64);
    report.completions = Some(cqes);
    report.other_ring_completed = Some(cqes_a.len() as u64);
    Ok(report)
}

/// `SqTotalTime` and `SqWorkTime` (microseconds) from /proc/self/fdinfo of the
/// ring; the kernel prints them since 6.9. fdinfo only reports SQ thread data
/// when it gets the ring lock with a trylock, so retry briefly before giving up.
fn sq_times(ring: &Ring) -> (Option<u64>, Option<u64>) {
    let path = format!("/proc/self/fdinfo/{}", ring.fd());
    let field = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let mut times = (None, None);
    for _ in 0..10 {
        if let Ok(text) = fs::read_to_string(&path) {
            times = (field(&text, "SqTotalTime"), field(&text, "SqWorkTime"));
            if times.0.is_some_and(|t| t > 0) {
                break;
            }
        }
        sleep(Duration::from_millis(10));
    }
    times
}

/// An SQPOLL ring with a 3 s idle period. One NOP is submitted (waking the
/// thread, which parks at once when created) and reaped; then userspace does
/// nothing for 1.5 s. Having just found work, the SQ thread keeps polling the
/// empty SQ until its idle period runs out, so it burns CPU for the whole
/// 1.5 s without doing anything: fdinfo's SqTotalTime grows to about 1.5 s
/// while SqWorkTime stays near 0, and NEED_WAKEUP is still clear at the end.
pub fn sqpoll_idle_spin() -> Result<Report> {
    const IDLE_MS: u32 = 3000;
    const PAUSE: Duration = Duration::from_millis(1500);
    let mut ring = Ring::new(RingOpts {
        sqpoll_idle_ms: Some(IDLE_MS),
        ..RingOpts::entries(8)
    })?;
    // Let the fresh SQ thread park (see sqpoll_ok), so the one submit below
    // always wakes it and its idle timer restarts from that NOP.
    sleep(Duration::from_millis(20));
    let need_wakeup_before = need_wakeup(&mut ring);

    // SAFETY: NOPs reference no memory.
    unsafe { ring.push(&nops([1]))? };
    let wakeups = u64::from(need_wakeup(&mut ring));
    ring.uring.submit().context("submit NOP to the SQ thread")?;
    let mut cqes = Vec::new();
    if !ring.reap(1, Duration::from_secs(2), &mut cqes)? {
        bail!("SQ thread did not complete the NOP within 2 s");
    }

    sleep(PAUSE);
    let need_wakeup_after = need_wakeup(&mut ring);
    let (sq_total_time_us, sq_work_time_us) = sq_times(&ring);

    let results = results_for(&[1], &cqes)?;
    let mut report = Report::new("sqpoll-idle-spin")
        .ring(&ring)
        .members(vec![1], results, vec![0]);
    // Spinning means most of the pause was SQ thread CPU time (allow for a
    // busy machine), and almost none of it was work.
    let pause_us = PAUSE.as_micros() as u64;
    report.as_expected &= !need_wakeup_after
        && matches!(
            (sq_total_time_us, sq_work_time_us),
            (Some(total), Some(work)) if total >= pause_us / 2 && work * 10 <= total
        );
    report.submitted = Some(1);
    report.completed = Some(cqes.len() as u64);
    report.wakeups = Some(wakeups);
    report.need_wakeup_before = Some(need_wakeup_before);
    report.need_wakeup_after = Some(need_wakeup_after);
    report.sq_total_time_us = sq_total_time_us;
    report.sq_work_time_us = sq_work_time_us;
    report.completions = Some(cqes);
    Ok(report)
}

/// `count` chains of 4 linked NOPs with user_data from `first` on.
fn nop_chains(first: u64, count: u64) -> Vec<squeue::Entry> {
    (0..4 * count)
        .map(|i| {
            let flags = if i % 4 < 3 {
                Flags::IO_LINK
            } else {
                Flags::empty()
            };
            opcode::Nop::new().build().flags(flags).user_data(first + i)
        })
        .collect()
}

/// The healthy counterpart of sqpoll-shared-split: two SQPOLL rings sharing
/// one SQ thread (B attached to A with IORING_SETUP_ATTACH_WQ), each given 3
/// chains of 4 linked NOPs per round (one tail store of 12 SQEs), 2 rounds,
/// reaped after each round. The shared thread still takes at most 8 SQEs per
/// ring per loop, but 8 is a chain boundary (and so is every batch end after
/// it), so no chain is ever cut: all 48 NOPs return 0.
///
/// `user_data`/`results` list ring A's members (1..=24), then ring B's (101..=124).
pub fn sqpoll_short_chains() -> Result<Report> {
    const IDLE_MS: u32 = 100;
    const CHAINS: u64 = 3;
    const ROUNDS: u64 = 2;
    let start = Instant::now();
    let mut ring_a = Ring::new(RingOpts {
        sqpoll_idle_ms: Some(IDLE_MS),
        ..RingOpts::entries(16)
    })?;
    let mut ring_b = Ring::new(RingOpts {
        sqpoll_idle_ms: Some(IDLE_MS),
        attach_wq: Some(ring_a.fd()),
        ..RingOpts::entries(16)
    })?;

    let per_round = 4 * CHAINS;
    let (mut cqes_a, mut cqes_b) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let base = round * per_round;
        // SAFETY: NOPs reference no memory.
        unsafe { ring_a.push(&nop_chains(1 + base, CHAINS))? };
        // SAFETY: NOPs reference no memory.
        unsafe { ring_b.push(&nop_chains(101 + base, CHAINS))? };
        ring_a.uring.submit().context("submit chains to ring A")?;
        ring_b.uring.submit().context("submit chains to ring B")?;
        let all_a = ring_a.reap(per_round as usize, Duration::from_secs(2), &mut cqes_a)?;
        let all_b = ring_b.reap(per_round as usize, Duration::from_secs(2), &mut cqes_b)?;
        if !all_a || !all_b {
            bail!(
                "round {round}: ring A completed {}, ring B {} of {per_round} each",
                cqes_a.len(),
                cqes_b.len()
            );
        }
    }

    let total = ROUNDS * per_round;
    let uds_a: Vec<u64> = (1..=total).collect();
    let uds_b: Vec<u64> = (101..101 + total).collect();
    let mut results = results_for(&uds_a, &cqes_a)?;
    results.extend(results_for(&uds_b, &cqes_b)?);
    let user_data = uds_a.into_iter().chain(uds_b).collect();
    let mut report = Report::new("sqpoll-short-chains").ring(&ring_b).members(
        user_data,
        results,
        vec![0; 2 * total as usize],
    );
    report.attach_wq_fd = Some(ring_a.fd());
    report.submitted = Some(2 * total);
    report.completed = Some((cqes_a.len() + cqes_b.len()) as u64);
    report.other_ring_completed = Some(cqes_a.len() as u64);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// A well-tuned SQPOLL ring under bursty load: sq_thread_idle 5 ms, and a
/// burst of 16 NOPs every 20 ms for 1.5 s (75 bursts, 1200 NOPs), each
/// burst reaped before the next. Between bursts the thread polls the empty
/// SQ for its idle time, sets IORING_SQ_NEED_WAKEUP and sleeps; the io-uring
/// crate's submit() sees the flag and enters with IORING_ENTER_SQ_WAKEUP.
/// `wakeups` counts the bursts that found the thread asleep (all of them,
/// unless the machine is so loaded that the thread had not yet parked).
///
/// The kernel keeps sq_thread_idle in jiffies, rounded up, and parks only
/// once jiffies is past the deadline: at HZ=250, 5 ms becomes 8-12 ms of
/// polling per burst, so SqTotalTime ends near half of the 1.5 s while
/// SqWorkTime stays around 1 ms. That is the price of SQPOLL, not a spin bug.
pub fn sqpoll_bursty() -> Result<Report> {
    const IDLE_MS: u32 = 5;
    const BURST: u64 = 16;
    const PERIOD: Duration = Duration::from_millis(20);
    const BURSTS: u64 = 75;
    let mut ring = Ring::new(RingOpts {
        sqpoll_idle_ms: Some(IDLE_MS),
        ..RingOpts::entries(16)
    })?;
    // Let the fresh SQ thread park (see sqpoll_ok).
    sleep(Duration::from_millis(20));

    let start = Instant::now();
    let mut cqes = Vec::new();
    let mut wakeups = 0u64;
    for k in 0..BURSTS {
        if let Some(ahead) = (PERIOD * k as u32).checked_sub(start.elapsed()) {
            sleep(ahead);
        }
        // SAFETY: NOPs reference no memory.
        unsafe { ring.push(&nops(k * BURST + 1..=(k + 1) * BURST))? };
        wakeups += u64::from(need_wakeup(&mut ring));
        ring.uring
            .submit()
            .context("submit a burst to the SQ thread")?;
        if !ring.reap(BURST as usize, Duration::from_secs(2), &mut cqes)? {
            bail!("burst {k}: SQ thread completed {} NOPs in all", cqes.len());
        }
    }
    let elapsed_ms = ms_since(start);
    sleep(Duration::from_millis(4 * u64::from(IDLE_MS)));
    let need_wakeup_after = need_wakeup(&mut ring);
    let (sq_total_time_us, sq_work_time_us) = sq_times(&ring);

    let total = BURSTS * BURST;
    let in_order = cqes.iter().map(|c| c.user_data).eq(1..=total);
    let mut report = Report::new("sqpoll-bursty").ring(&ring);
    report.as_expected =
        in_order && cqes.iter().all(|c| c.res == 0) && wakeups >= BURSTS / 2 && need_wakeup_after;
    report.submitted = Some(total);
    report.completed = Some(cqes.len() as u64);
    report.bursts = Some(BURSTS);
    report.wakeups = Some(wakeups);
    report.need_wakeup_after = Some(need_wakeup_after);
    report.sq_total_time_us = sq_total_time_us;
    report.sq_work_time_us = sq_work_time_us;
    report.elapsed_ms = Some(elapsed_ms);
    Ok(report)
}
