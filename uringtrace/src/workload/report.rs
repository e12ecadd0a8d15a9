//! What a scenario prints: the kernel's answers, as one JSON line.

use std::os::fd::AsRawFd;

use serde::Serialize;

use super::Ring;

/// One completion as the kernel posted it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cqe {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
}

impl From<&io_uring::cqueue::Entry> for Cqe {
    fn from(e: &io_uring::cqueue::Entry) -> Self {
        Cqe {
            user_data: e.user_data(),
            res: e.result(),
            flags: e.flags(),
        }
    }
}

/// The JSON line a scenario prints. Only the fields meaningful to the
/// scenario are set; the rest are omitted from the output.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub pid: u32,
    /// The ring the scenario's SQEs went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_fd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_entries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cq_entries: Option<u32>,
    /// IORING_SETUP_* flags passed to io_uring_setup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_flags: Option<u32>,
    /// SQ thread idle time requested for SQPOLL rings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_thread_idle_ms: Option<u32>,
    /// The other ring: ATTACH_WQ target (sqpoll-shared-split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_wq_fd: Option<i32>,
    /// SQEs the kernel accepted (as counted by io_uring_enter / the SQ head).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted: Option<u64>,
    /// CQEs reaped from the scenario's ring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
    /// Return value of the io_uring_enter that submitted the SQEs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enter_ret: Option<i64>,
    /// user_data of each member, in submit order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<Vec<u64>>,
    /// CQE res of each member, in submit order (same index as user_data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<i32>>,
    /// What the scenario's design expects `results` to be on Linux 6.18.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_results: Option<Vec<i32>>,
    /// Every CQE, in the order it was reaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completions: Option<Vec<Cqe>>,
    /// CQEs already visible in the CQ ring before any flushing io_uring_enter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_before_flush: Option<u64>,
    /// IORING_SQ_CQ_OVERFLOW as seen before the flush.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cq_overflow_flag: Option<bool>,
    /// The CQ ring's `overflow` counter (CQEs the kernel had to drop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cq_overflow_counter: Option<u32>,
    /// IORING_SQ_NEED_WAKEUP before the interesting step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_wakeup_before: Option<bool>,
    /// IORING_SQ_NEED_WAKEUP after the interesting step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_wakeup_after: Option<bool>,
    /// Submissions that had to wake the SQ thread (IORING_ENTER_SQ_WAKEUP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wakeups: Option<u64>,
    /// SQEs published in the SQ but not consumed by the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_pending: Option<u32>,
    /// SqTotalTime from the ring's fdinfo: CPU time of the SQ thread, in us.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_total_time_us: Option<u64>,
    /// SqWorkTime from the ring's fdinfo: SQ thread time spent doing work, in us.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sq_work_time_us: Option<u64>,
    /// CQEs reaped from the other ring (sqpoll-shared-split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ring_completed: Option<u64>,
    /// Provided-buffer group id and number of buffers (multishot-recv).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buf_group: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffers: Option<u32>,
    /// Threads of this process named iou-wrk-* while the requests were blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iou_wrk_threads: Option<u32>,
    /// CQEs seen before userspace unblocked the requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_before_release: Option<u64>,
    /// Userspace wrote into the pipe(s) to let the stuck requests finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released_by_userspace: Option<bool>,
    /// What the bounded waiting io_uring_enter returned (negative errno).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ret: Option<i64>,
    /// How long that wait took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// Every bounded io_uring_enter(GETEVENTS) wait, in order (event loops).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits: Option<Vec<Wait>>,
    /// Wall time of the whole scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// Index the ring fd was registered at (IORING_REGISTER_RING_FDS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_ring_index: Option<u32>,
    /// Bytes the other end of a socket or pipe received from the ring's requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_received: Option<u64>,
    /// Bursts of SQEs handed to an SQPOLL thread (sqpoll-bursty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bursts: Option<u64>,
    /// A second ring the scenario used (not an ATTACH_WQ target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ring_fd: Option<i32>,
    /// Every CQE reaped from that second ring, in the order it was reaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ring_completions: Option<Vec<Cqe>>,
    /// Whether the kernel behaved as the scenario's design expects.
    pub as_expected: bool,
}

/// One bounded wait: what io_uring_enter returned (negative errno) and how
/// long it took.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Wait {
    pub ret: i64,
    pub ms: u64,
}

impl Report {
    pub(crate) fn new(scenario: &'static str) -> Self {
        Report {
            scenario,
            pid: std::process::id(),
            ..Default::default()
        }
    }

    /// Record which ring the scenario used and how it was set up.
    pub(crate) fn ring(mut self, ring: &Ring) -> Self {
        self.ring_fd = Some(ring.uring.as_raw_fd());
        self.sq_entries = Some(ring.uring.params().sq_entries());
        self.cq_entries = Some(ring.uring.params().cq_entries());
        self.setup_flags = Some(ring.setup_flags);
        self.sq_thread_idle_ms = ring.sq_thread_idle_ms;
        self
    }

    /// Record per-member results in submit order and compare them with the
    /// design; a mismatch is reported, not treated as a failure, because the
    /// JSON (what the kernel actually did) is what the tracer is checked against.
    pub(crate) fn members(
        mut self,
        user_data: Vec<u64>,
        results: Vec<i32>,
        expected: Vec<i32>,
    ) -> Self {
        self.as_expected = results == expected;
        self.user_data = Some(user_data);
        self.results = Some(results);
        self.expected_results = Some(expected);
        self
    }
}
