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
