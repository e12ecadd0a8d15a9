//! Which tracepoints exist on this kernel, their layouts, and what that means for the
//! detectors. Pure functions over `format` files, so any kernel can be simulated.

use std::collections::BTreeMap;

use serde::Serialize;
use uringtrace_common::{EventKind, KindLayout, Slot};

use super::catalog::{layout_for, TracepointSpec, CATALOG};
use super::format::Format;

/// One catalog entry resolved against the running (or a simulated) kernel.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub spec: &'static TracepointSpec,
    /// The tracepoint name found, None when the kernel has none of the candidates.
    pub name: Option<&'static str>,
    pub format: Option<Format>,
    pub layout: KindLayout,
}

impl Resolved {
    pub fn has_slot(&self, slot: Slot) -> bool {
        self.layout.fields[slot as usize].size != 0
    }
}

/// The set of resolved tracepoints for one kernel.
#[derive(Clone, Debug, Default)]
pub struct KernelEvents {
    pub resolved: Vec<Resolved>,
}

impl KernelEvents {
    /// `lookup(category, name)` returns the format of a tracepoint, or None if absent.
    pub fn resolve(mut lookup: impl FnMut(&str, &str) -> Option<Format>) -> KernelEvents {
        let resolved = CATALOG
            .iter()
            .map(|spec| {
                for name in spec.names {
                    if let Some(format) = lookup(spec.category, name) {
                        let layout = layout_for(spec, &format);
                        return Resolved {
                            spec,
                            name: Some(name),
                            format: Some(format),
                            layout,
                        };
                    }
                }
                Resolved {
                    spec,
                    name: None,
                    format: None,
                    layout: KindLayout::default(),
                }
            })
            .collect();
        KernelEvents { resolved }
    }

    pub fn get(&self, kind: EventKind) -> Option<&Resolved> {
        self.resolved
            .iter()
            .find(|r| r.spec.kind == kind && r.name.is_some())
    }

    pub fn has(&self, kind: EventKind) -> bool {
        self.get(kind).is_some()
    }

    fn has_slot(&self, kind: EventKind, slot: Slot) -> bool {
        self.get(kind).is_some_and(|r| r.has_slot(slot))
    }

    /// io_uring tracepoints present (the "17 on 6.18").
    pub fn io_uring_count(&self) -> usize {
        self.resolved
            .iter()
            .filter(|r| r.spec.category == "io_uring" && r.name.is_some())
            .count()
    }

    /// Detectors that cannot work fully on this kernel, with the reason.
    pub fn degraded(&self) -> Vec<Degraded> {
        use EventKind::*;
        let mut out = Vec::new();
        let mut need = |rule: &'static str, ok: bool, why: &str| {
            if !ok {
                out.push(Degraded {
                    rule,
                    reason: why.to_string(),
                });
            }
        };
        let overflow = self.has(CqeOverflow);
        need(
            "cq-overflow",
            overflow,
            "no io_uring_cqe_overflow tracepoint (added in 5.19)",
        );
        need(
            "cqe-dropped",
            self.has_slot(CqeOverflow, Slot::Aux),
            "no io_uring_cqe_overflow.ocqe field (added in 5.19)",
        );
        need(
            "sqpoll-missed-wakeup",
            self.has(EnterEnter) && self.has(SchedWaking) && self.has(Submit),
            "needs syscalls:sys_enter_io_uring_enter, sched:sched_waking and io_uring submit",
        );
        need(
            "sqpoll-idle-spin",
            self.has_slot(TaskWorkRun, Slot::Arg0) && self.has(SchedSwitch),
            "needs io_uring_task_work_run with `count` (6.0+) and sched:sched_switch",
        );
        let reqs = self.has_slot(Submit, Slot::Req) && self.has_slot(Complete, Slot::Req);
        need(
            "link-chain-broken",
            reqs && self.has(Link) && self.has_slot(FailLink, Slot::UserData),
            "needs req pointers in submit/complete (5.10.162+/5.15+) and fail_link with user_data (5.18+)",
        );
        need(
            "sqpoll-chain-split",
            reqs && self.has(Link),
            "needs req pointers in submit and complete, and io_uring_link",
        );
        need(
            "invalid-sqe",
            self.has(ReqFailed),
            "no io_uring_req_failed tracepoint (added in 5.17)",
        );
        need(
            "wait-cycle",
            self.has(PollArm) && self.has_slot(FileGet, Slot::Req),
            "needs io_uring_poll_arm and io_uring_file_get with req (5.19+)",
        );
        need(
            "unsatisfiable-wait",
            self.has(EnterEnter) && self.has(CqringWait),
            "needs syscalls:sys_enter_io_uring_enter and io_uring_cqring_wait",
        );
        need(
            "request-stalled",
            reqs,
            "needs req pointers in submit and complete (5.19+ for complete)",
        );
        need(
            "multishot-terminated",
            self.has_slot(Complete, Slot::Req),
            "io_uring_complete has no req pointer before 5.19: intermediate and final CQEs look alike",
        );
        need(
            "buffer-exhausted",
            self.has(Complete),
            "no io_uring_complete tracepoint",
        );
        need(
            "iowq-punt-storm",
            self.has(QueueAsyncWork) && self.has(TaskNewtask),
            "needs io_uring_queue_async_work and task:task_newtask",
        );
        out
    }

    /// Tracepoint name → attach type, for recording headers and `doctor`.
    pub fn attached_names(&self) -> BTreeMap<String, String> {
        self.resolved
            .iter()
            .filter_map(|r| {
                r.name.map(|n| {
                    (
                        format!("{}:{}", r.spec.category, n),
                        "tracepoint".to_string(),
                    )
                })
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Degraded {
    pub rule: &'static str,
    pub reason: String,
}
