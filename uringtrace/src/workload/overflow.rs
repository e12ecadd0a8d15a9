//! CQ overflow: more completions than the CQ ring can hold.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use io_uring::opcode;

use super::{Report, Ring, RingOpts};

const TOTAL: u64 = 17;
const RING_SIZE: u32 = 4;

/// 17 NOPs on a ring with a 4-entry SQ and a 4-entry CQ, submitted in batches
/// of 4 with plain submit() and no reaping. NOPs complete inline, so the first
/// 4 CQEs fill the CQ ring and the kernel (IORING_FEAT_NODROP) parks the other
/// 13 on its overflow list and sets IORING_SQ_CQ_OVERFLOW. They only reach the
/// CQ ring when an io_uring_enter(GETEVENTS) finds free slots, so reaping all
/// 17 takes several drain + enter rounds.
pub fn cq_overflow() -> Result<Report> {
    let mut ring = Ring::new(RingOpts {
        cq_entries: Some(RING_SIZE),
        ..RingOpts::entries(RING_SIZE)
    })?;

    let mut submitted = 0u64;
    let mut ud = 1u64;
    while ud <= TOTAL {
        let batch: Vec<_> = (ud..=TOTAL.min(ud + u64::from(RING_SIZE) - 1))
            .map(|u| opcode::Nop::new().build().user_data(u))
            .collect();
        ud += batch.len() as u64;
        // SAFETY: NOPs reference no memory.
        unsafe { ring.push(&batch)? };
        // Without reaping, any GETEVENTS this enter carries finds no CQ space
        // to flush into, so the overflow list keeps growing.
        submitted += ring.uring.submit().context("io_uring_enter(submit NOPs)")? as u64;
    }
    if submitted != TOTAL {
        bail!("kernel accepted {submitted} of {TOTAL} NOPs");
    }

    let seen_before_flush = ring.uring.completion().len() as u64;
    let cq_overflow_flag = ring.uring.submission().cq_overflow();

    // The application is busy elsewhere for 1.5 s: the CQEs wait in the overflow list
    // that long (an overflow flushed at once is the application's design, libuv's).
    std::thread::sleep(Duration::from_millis(1500));
    let mut cqes = Vec::new();
    if !ring.reap(TOTAL as usize, Duration::from_secs(2), &mut cqes)? {
        bail!(
            "only {} of {TOTAL} CQEs reaped after flushing: {cqes:?}",
            cqes.len()
        );
    }
    let cq_overflow_counter = ring.uring.completion().overflow();

    let user_data: Vec<u64> = cqes.iter().map(|c| c.user_data).collect();
    let results: Vec<i32> = cqes.iter().map(|c| c.res).collect();
    let in_order = user_data.iter().copied().eq(1..=TOTAL);

    let mut report = Report::new("cq-overflow").ring(&ring);
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.seen_before_flush = Some(seen_before_flush);
    report.cq_overflow_flag = Some(cq_overflow_flag);
    report.cq_overflow_counter = Some(cq_overflow_counter);
    // Reported in reaping order: the overflow list is FIFO, so it is 1..=17.
    report.user_data = Some(user_data);
    report.as_expected = in_order
        && results.iter().all(|&r| r == 0)
        && seen_before_flush == u64::from(RING_SIZE)
        && cq_overflow_flag
        && cq_overflow_counter == 0;
    report.results = Some(results);
    Ok(report)
}

/// CQ overflow handled the way libuv does: a ring with 8 SQ and 16 CQ
/// entries gets 64 NOPs in flight at once, submitted in 8 batches of 8
/// without reaping in between. The first 16 CQEs fill the CQ ring, the other
/// 48 go to the overflow list and IORING_SQ_CQ_OVERFLOW is set. Right after
/// submitting, the app checks the flag, sees it, and reaps: drain the CQ,
/// enter with GETEVENTS to flush more, until all 64 are in. 3 rounds.
///
/// Nothing is dropped (IORING_FEAT_NODROP), so the ring's overflow counter
/// stays 0; `seen_before_flush` sums the CQEs visible before each round's
/// first flush (16 per round), `cq_overflow_flag` is whether every round saw
/// the flag.
pub fn overflow_flushed() -> Result<Report> {
    const ROUNDS: u64 = 3;
    const PER_ROUND: u64 = 64;
    const SQ: u32 = 8;
    const CQ: u32 = 16;
    let start = std::time::Instant::now();
    let mut ring = Ring::new(RingOpts {
        cq_entries: Some(CQ),
        ..RingOpts::entries(SQ)
    })?;

    let mut cqes = Vec::new();
    let (mut submitted, mut seen_before_flush, mut flag_every_round) = (0u64, 0u64, true);
    for round in 0..ROUNDS {
        let first = round * PER_ROUND + 1;
        for batch in (first..first + PER_ROUND).step_by(SQ as usize) {
            let sqes: Vec<_> = (batch..batch + u64::from(SQ))
                .map(|u| opcode::Nop::new().build().user_data(u))
                .collect();
            // SAFETY: NOPs reference no memory.
            unsafe { ring.push(&sqes)? };
            submitted += ring.uring.submit().context("io_uring_enter(submit NOPs)")? as u64;
        }
        seen_before_flush += ring.uring.completion().len() as u64;
        flag_every_round &= ring.uring.submission().cq_overflow();
        let want = PER_ROUND as usize;
        if !ring.reap(want, Duration::from_secs(2), &mut cqes)? {
            bail!("round {round}: only {} CQEs reaped in all", cqes.len());
        }
    }
    let cq_overflow_counter = ring.uring.completion().overflow();

    let total = ROUNDS * PER_ROUND;
    let in_order = cqes.iter().map(|c| c.user_data).eq(1..=total);
    let mut report = Report::new("overflow-flushed").ring(&ring);
    report.as_expected = in_order
        && cqes.iter().all(|c| c.res == 0)
        && seen_before_flush == ROUNDS * u64::from(CQ)
        && flag_every_round
        && cq_overflow_counter == 0;
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.seen_before_flush = Some(seen_before_flush);
    report.cq_overflow_flag = Some(flag_every_round);
    report.cq_overflow_counter = Some(cq_overflow_counter);
    report.elapsed_ms = Some(super::ms_since(start));
    Ok(report)
}
