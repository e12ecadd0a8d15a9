//! io_uring_enter in aggregating mode: held back, and streamed only when the analyzer
//! needs it (a wait, an SQPOLL wakeup, or a chain submitted during it).

use super::*;

/// `IORING_ENTER_GETEVENTS` and `IORING_ENTER_SQ_WAKEUP`.
pub(crate) const ENTER_GETEVENTS: u32 = 1;
pub(crate) const ENTER_SQ_WAKEUP: u32 = 2;

/// io_uring_enter's arguments, as the classic tracepoint names them.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Enter {
    pub(crate) ts: u64,
    pub(crate) argp: u64,
    pub(crate) fd: u32,
    pub(crate) to_submit: u32,
    pub(crate) min_complete: u32,
    pub(crate) flags: u32,
    pub(crate) argsz: u32,
    pub(crate) _pad: u32,
}

impl Enter {
    /// From an event filled from the classic tracepoint's record.
    #[inline(always)]
    pub(crate) fn of_event(ev: &RawEvent) -> Enter {
        Enter {
            ts: ev.ts_ns,
            argp: ev.aux,
            fd: ev.args[0],
            to_submit: ev.args[1],
            min_complete: ev.args[2],
            flags: ev.cflags,
            argsz: ev.args[3],
            _pad: 0,
        }
    }

    /// The analyzer needs an enter that can wait (GETEVENTS with min_complete > 0:
    /// the wait's timeout flag) or that wakes an SQPOLL thread.
    #[inline(always)]
    pub(crate) fn must_stream(&self) -> bool {
        enter_must_stream(self.flags, self.min_complete)
    }

    #[inline(always)]
    pub(crate) fn event(&self, pid_tgid: u64, task: &TaskCache) -> RawEvent {
        let mut ev = base_event(EventKind::EnterEnter, pid_tgid, task, self.ts);
        ev.args = [self.fd, self.to_submit, self.min_complete, self.argsz];
        ev.cflags = self.flags;
        ev.aux = self.argp;
        ev
    }
}

/// io_uring_enter failures that `enter-error` reports: -EINVAL (22), -EBUSY (16),
/// -EEXIST (17), -EBADR (53), -EOWNERDEAD (130). A wait's normal ends (-EINTR,
/// -ETIME, -EAGAIN) are not among them. Aggregating mode streams these exits with
/// their enter; the first compare sends every successful exit on.
#[inline(always)]
pub(crate) fn enter_error_matters(ret: i32) -> bool {
    ret < 0 && matches!(ret, -22 | -16 | -17 | -53 | -130)
}

#[inline(always)]
pub(crate) fn enter_must_stream(flags: u32, min_complete: u32) -> bool {
    flags & ENTER_SQ_WAKEUP != 0 || (flags & ENTER_GETEVENTS != 0 && min_complete > 0)
}

/// io_uring_enter in aggregating mode. An app that submits one request per call
/// (fio's default) made two streamed events per request: at ~300 ns each they cost
/// more than the request (fio page cache, 6.18). The analyzer needs an enter only
/// when [`Enter::must_stream`], or when a chain was submitted in it (the batch end
/// cuts chains); any other enter is held back and dropped at its exit.
#[inline(always)]
pub(crate) fn agg_enter(e: &Enter, pid_tgid: u64, task: &mut TaskCache) {
    let flush = e.flags & ENTER_GETEVENTS != 0 && take_overflow_pending((pid_tgid >> 32) as u32);
    if e.must_stream() || flush {
        stream_enter(e, pid_tgid, task);
    } else {
        hold_enter(e, task);
    }
}

#[inline(always)]
pub(crate) fn stream_enter(e: &Enter, pid_tgid: u64, task: &mut TaskCache) {
    task.submit_streamed = 0;
    task.held = 0;
    task.enter_streamed = 1;
    emit(&e.event(pid_tgid, task));
}

#[inline(always)]
pub(crate) fn hold_enter(e: &Enter, task: &mut TaskCache) {
    task.submit_streamed = 0;
    task.enter_streamed = 0;
    task.held_enter = *e;
    task.held = 1;
}

/// The exit of an io_uring_enter in aggregating mode. `streamed`: the enter was
/// streamed (known from its arguments when the exit can still read them). The clock
/// is read only for an exit that is streamed: most are not.
#[inline(always)]
pub(crate) fn agg_enter_exit(ret: i32, pid_tgid: u64, streamed: bool, task: &mut TaskCache) {
    let exit = |task: &TaskCache| {
        let mut ev = base_event(EventKind::EnterExit, pid_tgid, task, now());
        ev.res = ret;
        ev
    };
    if streamed || task.enter_streamed != 0 {
        emit(&exit(task));
    } else if task.held != 0 && (task.submit_streamed != 0 || enter_error_matters(ret)) {
        let mut held = task.held_enter;
        if held.ts == 0 {
            // Held without a clock reading: just before its exit keeps the order.
            held.ts = now().saturating_sub(1);
        }
        emit(&held.event(pid_tgid, task));
        emit(&exit(task));
    } else {
        count(Counter::Aggregated);
    }
    task.enter_streamed = 0;
    task.held = 0;
    task.submit_streamed = 0;
}

/// A submit of the current enter is streamed: so must the enter be, at its exit. A
/// held enter took no clock reading (most are dropped); one just before this submit
/// keeps the order.
#[inline(always)]
pub(crate) fn submit_streamed(task: &mut TaskCache, submit_ts: u64) {
    task.submit_streamed = 1;
    if task.held != 0 && task.held_enter.ts == 0 {
        task.held_enter.ts = submit_ts.saturating_sub(1);
    }
}
