//! `enter-error`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, owner, text, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::state::{Enter, State};
use crate::names::result_name;
use uringtrace_common::RawEvent;

pub const RULE: Rule = Rule {
    id: RuleId::EnterError,
    slug: "enter-error",
    severity: Severity::Error,
    title: "io_uring_enter failed: wrong task, backpressure, dropped CQEs, a dead SQPOLL thread or bad flags",
    fix: "submit and wait only from the ring's owner task on SINGLE_ISSUER/DEFER_TASKRUN rings; reap CQEs before submitting more; handle -EBADR and -EOWNERDEAD by rebuilding the ring",
    needs: &[Need::Event(EventKind::EnterExit)],
    degraded_reason: "needs syscalls:sys_exit_io_uring_enter (io_uring_enter hooked: --pid or a command)",
    explanation: "\
io_uring_enter returns an error instead of submitting or waiting when the ring cannot be
used as asked. Each errno has one kernel cause:
- -EEXIST: the ring has IORING_SETUP_SINGLE_ISSUER (6.0+) or DEFER_TASKRUN (6.1+) and the
  calling task is not its submitter task (the creator, or the first task to submit when
  the ring was created disabled). DEFER_TASKRUN also refuses GETEVENTS from other tasks.
- -EBUSY: completion backpressure: CQEs are waiting in the overflow list and the kernel
  refuses more work (on submit 5.5-5.12, from the wait 5.13 to about 6.1; none since 6.6).
- -EBADR: CQEs were dropped (an overflow entry could not be allocated, 5.19+); returned
  once. The set of outstanding requests is no longer known.
- -EOWNERDEAD: the ring's SQPOLL thread is gone (its process exec'd or it was killed);
  nothing submitted to this ring will run.
- -EINVAL: flags this kernel does not know (an IORING_ENTER_* bit newer than the kernel),
  a bad EXT_ARG size, or a wait the ring's setup forbids.
A wait that ends with -EINTR (signal), -ETIME (timeout) or -EAGAIN is normal: not reported.

In a trace: sys_exit_io_uring_enter with one of these results, after its enter (ring fd,
flags). Grouped by ring and errno, with how often and the first and last time. Aggregating
mode streams these exits and their enters. Host-wide (io_uring_enter not hooked) enters
have no exit: not seen.

What to change: -EEXIST: hand work to the owner thread (a queue plus an eventfd or
MSG_RING), or drop SINGLE_ISSUER/DEFER_TASKRUN. -EBUSY: reap all CQEs, keep requests in
flight below cq_entries. -EBADR: cancel and re-issue or rebuild the ring, and fix the
overflow. -EOWNERDEAD: create a new ring after exec. -EINVAL: check the features
(io_uring_params.features) before using newer flags.",
};

/// The errors this rule reports (negative errno). The waits' normal ends are not.
pub fn reported(res: i32) -> bool {
    matches!(
        -res,
        libc::EEXIST | libc::EBUSY | libc::EBADR | libc::EOWNERDEAD | libc::EINVAL
    )
}

/// IORING_SETUP_SINGLE_ISSUER, DEFER_TASKRUN.
const SETUP_SINGLE_ISSUER: u32 = 1 << 12;
const SETUP_DEFER_TASKRUN: u32 = 1 << 13;
/// IORING_ENTER_* bits known to 6.18 (GETEVENTS .. NO_IOWAIT).
const ENTER_KNOWN: u32 = 0xff;

/// One failed enter.
pub fn on_error(st: &State, exit: &RawEvent, enter: Option<&Enter>) -> Hit {
    let errno = -exit.res;
    let ctx = enter.and_then(|e| e.ctx).unwrap_or(0);
    let ring = st.rings.get(&ctx);
    let setup = ring.and_then(|r| r.setup_flags).unwrap_or(0);
    let fd = enter.map_or_else(|| "?".to_string(), |e| e.fd.to_string());
    let flags = enter.map_or(0, |e| e.flags);
    let why = match errno {
        libc::EEXIST => {
            let kind = match (setup & SETUP_DEFER_TASKRUN != 0, setup & SETUP_SINGLE_ISSUER != 0)
            {
                (true, _) => "a DEFER_TASKRUN ring",
                (false, true) => "a SINGLE_ISSUER ring",
                _ => "a SINGLE_ISSUER or DEFER_TASKRUN ring",
            };
            let submitter = ring
                .and_then(|r| r.first_submitter)
                .filter(|t| *t != exit.pid)
                .map(|t| format!(" (its submitter is thread {t})"))
                .unwrap_or_default();
            format!(
                "thread {} is not the submitter task of {kind}{submitter}",
                exit.pid
            )
        }
        libc::EBUSY => {
            "completion backpressure: CQEs wait in the overflow list and the kernel refuses more work until they are reaped".to_string()
        }
        libc::EBADR => {
            "CQEs were dropped (an overflow entry could not be allocated): which requests lost theirs is unknown".to_string()
        }
        libc::EOWNERDEAD => {
            "the ring's SQPOLL thread is gone (its process exec'd, or it was killed): nothing submitted to it will run".to_string()
        }
        _ if flags & !ENTER_KNOWN != 0 => format!(
            "flags {flags:#x} include bits no kernel up to 6.18 knows ({:#x})",
            flags & !ENTER_KNOWN
        ),
        _ => format!(
            "an argument the kernel rejected (flags {flags:#x}: a flag newer than this kernel, a bad EXT_ARG size, or a wait the ring's setup forbids)"
        ),
    };
    let msg = format!(
        "io_uring_enter on ring fd {fd} failed with {}: {why}",
        result_name(exit.res)
    );
    let mut facts = vec![text("errno", result_name(exit.res))];
    if let Some(e) = enter {
        facts.push(count("flags", e.flags.into()));
        facts.push(count("to_submit", e.to_submit.into()));
        facts.push(count("min_complete", e.min_complete.into()));
    }
    facts.push(count("thread", exit.pid.into()));
    let e = Evidence {
        requests: vec![],
        facts,
        first_ns: enter.map_or(exit.ts_ns, |e| e.ts.min(exit.ts_ns)),
        last_ns: exit.ts_ns,
    };
    hit(
        st,
        RuleId::EnterError,
        owner(st, ctx, exit.tgid),
        ctx,
        errno,
        msg,
        e,
    )
}
