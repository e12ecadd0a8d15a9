//! What the owner of a DEFER_TASKRUN or COOP_TASKRUN ring is doing while completions
//! wait for it to run its task work (`task-work-stalled`). No kernel program follows
//! ordinary tasks' context switches (they return after one compare for anything but
//! io threads), so userspace reads the owner's state from /proc once the work has
//! waited [`SAMPLE_AFTER_NS`], and puts it into the stream as a `task_state` event:
//! a recording then tells the same story as the live trace.

use std::collections::HashMap;
use std::fs;

use uringtrace_common::view::{Create, EventView, TaskState};
use uringtrace_common::{EventKind, RawEvent};

/// Half the analyzer's task-work threshold (500 ms): a wait that is going to be
/// reported has had its owner sampled by then, with the 100 ms sampling period.
pub const SAMPLE_AFTER_NS: u64 = 250_000_000;

/// IORING_SETUP_SQPOLL, COOP_TASKRUN (5.19), DEFER_TASKRUN (6.1).
const SETUP_SQPOLL: u32 = 1 << 1;
const SETUP_COOP_TASKRUN: u32 = 1 << 8;
const SETUP_DEFER_TASKRUN: u32 = 1 << 13;

/// Watched rings and waits are bounded: past this many, the oldest state is dropped
/// (a host with that many such rings loses owner states, not memory).
const MAX_WATCHED: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct WatchedRing {
    tgid: u32,
    /// The task the ring's work goes to: its creator (a SINGLE_ISSUER ring's
    /// submitter task is set at creation), then the latest submitter.
    owner: u32,
}

#[derive(Clone, Copy, Debug)]
struct Waiting {
    tgid: u32,
    since_ns: u64,
    sampled: bool,
}

/// Rings whose task work waits for their owner, and their owners' pending work.
#[derive(Debug, Default)]
pub struct OwnerWatch {
    rings: HashMap<u64, WatchedRing>,
    /// (ring, owner tid) → the wait.
    waiting: HashMap<(u64, u32), Waiting>,
}

impl OwnerWatch {
    /// Follows a batch of events: rings created with DEFER_TASKRUN or COOP_TASKRUN,
    /// work queued to their owners (task_add), and the work running (local_work_run,
    /// task_work_run, or a completion posted by the owner).
    pub fn observe(&mut self, batch: &[RawEvent]) {
        for e in batch {
            match EventKind::from_u16(e.kind) {
                Some(EventKind::Create) => {
                    let flags = Create::read(e).flags;
                    let watched = flags & SETUP_SQPOLL == 0
                        && flags & (SETUP_DEFER_TASKRUN | SETUP_COOP_TASKRUN) != 0;
                    self.rings.remove(&e.ctx);
                    if watched {
                        if self.rings.len() >= MAX_WATCHED {
                            self.rings.clear();
                        }
                        self.rings.insert(
                            e.ctx,
                            WatchedRing {
                                tgid: e.tgid,
                                owner: e.pid,
                            },
                        );
                    }
                }
                Some(EventKind::Submit) if !self.rings.is_empty() => {
                    if let Some(r) = self.rings.get_mut(&e.ctx) {
                        r.owner = e.pid;
                    }
                }
                Some(EventKind::TaskAdd) if !self.rings.is_empty() => {
                    if let Some(r) = self.rings.get(&e.ctx) {
                        if self.waiting.len() >= MAX_WATCHED {
                            self.waiting.clear();
                        }
                        self.waiting.entry((e.ctx, r.owner)).or_insert(Waiting {
                            tgid: r.tgid,
                            since_ns: e.ts_ns,
                            sampled: false,
                        });
                    }
                }
                Some(EventKind::LocalWorkRun) => self.waiting.retain(|k, _| k.0 != e.ctx),
                Some(EventKind::TaskWorkRun) => self.waiting.retain(|k, _| k.1 != e.pid),
                Some(EventKind::Complete) if !self.waiting.is_empty() => {
                    self.waiting.remove(&(e.ctx, e.pid));
                }
                Some(EventKind::ProcessExit) => {
                    self.rings.retain(|_, r| r.tgid != e.tgid);
                    self.waiting.retain(|_, w| w.tgid != e.tgid);
                }
                _ => {}
            }
        }
    }

    /// `task_state` events for owners whose work has waited at least
    /// [`SAMPLE_AFTER_NS`] and who were not sampled in this wait yet.
    pub fn sample(&mut self, now_ns: u64) -> Vec<RawEvent> {
        let mut out = Vec::new();
        for (&(_, tid), w) in self.waiting.iter_mut() {
            if w.sampled || now_ns.saturating_sub(w.since_ns) < SAMPLE_AFTER_NS {
                continue;
            }
            w.sampled = true;
            if let Some(s) = read_task_state(w.tgid, tid) {
                let base = RawEvent {
                    ts_ns: now_ns,
                    pid: tid,
                    tgid: w.tgid,
                    ..RawEvent::default()
                };
                out.push(s.into_raw(base));
            }
        }
        out
    }
}

/// A thread's state from /proc: `stat`'s state letter, the syscall it is in, and
/// its wchan. None when the thread is gone.
pub fn read_task_state(tgid: u32, tid: u32) -> Option<TaskState> {
    let dir = format!("/proc/{tgid}/task/{tid}");
    let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
    let syscall = fs::read_to_string(format!("{dir}/syscall")).unwrap_or_default();
    let wchan = fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default();
    Some(parse_task_state(tid, &stat, &syscall, &wchan))
}

/// Parses what [`read_task_state`] read. The comm in `stat` is in parentheses and may
/// hold spaces and parentheses itself: the state follows the last `)`. `syscall` is
/// "running" in userspace, "-1 ..." when not in a syscall, else "NR args...". wchan
/// is "0" when the task is running.
pub fn parse_task_state(tid: u32, stat: &str, syscall: &str, wchan: &str) -> TaskState {
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .and_then(|s| s.bytes().next())
        .unwrap_or(b'?');
    let syscall = syscall
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(-1);
    let mut w = [0u8; 16];
    let name = wchan.trim();
    if name != "0" {
        let n = name.len().min(16);
        w[..n].copy_from_slice(&name.as_bytes()[..n]);
    }
    TaskState {
        tid,
        state,
        syscall,
        wchan: w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_thread_blocked_in_read() {
        let s = parse_task_state(
            42,
            "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0",
            "0 0x5 0x7ffd 0x1 0x0 0x0 0x0 0x7ffd 0x7f00\n",
            "pipe_read",
        );
        assert_eq!((s.tid, s.state, s.syscall), (42, b'S', 0));
        assert_eq!(&s.wchan[..9], b"pipe_read");
        let r = parse_task_state(42, "42 (x) R 1", "running\n", "0");
        assert_eq!((r.state, r.syscall, r.wchan), (b'R', -1, [0; 16]));
        let long = parse_task_state(1, "1 (x) D", "", "a_very_long_kernel_function_name");
        assert_eq!(&long.wchan, b"a_very_long_kern");
    }

    #[test]
    fn samples_an_owner_once_its_work_has_waited() {
        let mut w = OwnerWatch::default();
        let create = Create {
            fd: 3,
            sq_entries: 8,
            cq_entries: 16,
            flags: SETUP_DEFER_TASKRUN | (1 << 12),
            cgroup_id: 0,
        }
        .into_raw(RawEvent {
            ctx: 0xabc,
            pid: std::process::id(),
            tgid: std::process::id(),
            ..RawEvent::default()
        });
        let add = RawEvent {
            kind: EventKind::TaskAdd as u16,
            ctx: 0xabc,
            ts_ns: 1_000,
            pid: 9,
            tgid: 9,
            ..RawEvent::default()
        };
        w.observe(&[create, add]);
        assert!(w.sample(1_000 + SAMPLE_AFTER_NS - 1).is_empty());
        // This test's own process stands for the owner: it is running.
        let got = w.sample(1_000 + SAMPLE_AFTER_NS);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, EventKind::TaskState as u16);
        assert_eq!(TaskState::read(&got[0]).tid, std::process::id());
        assert!(w.sample(u64::MAX).is_empty(), "sampled once per wait");
        // The work ran: nothing left to sample.
        let run = RawEvent {
            kind: EventKind::LocalWorkRun as u16,
            ctx: 0xabc,
            ..RawEvent::default()
        };
        w.observe(&[add, run]);
        assert!(w.sample(u64::MAX).is_empty());
    }
}
