//! Turning ring-buffer samples into [`RawEvent`]s: compact samples get their task's
//! comm back from what earlier full samples said (see `uringtrace_common::wire`).

use std::collections::HashMap;

use uringtrace_common::wire::{decode_sample, Sample};
use uringtrace_common::{RawEvent, COMM_LEN};

/// Tasks remembered at most; past this the table starts over (a task's comm is then
/// read from /proc once more, or comes with its next full event).
const MAX_TASKS: usize = 1 << 16;

/// The consumer's own throughput: events drained, decoded and handed to the sink,
/// and the CPU time its thread spent on that (polls that found nothing not counted).
/// CPU time, not wall time: on a busy host the consumer is preempted, which says
/// nothing about what it costs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsumerStats {
    pub events: u64,
    pub busy_ns: u64,
}

impl ConsumerStats {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 * 1e9 / self.busy_ns.max(1) as f64
    }
}

/// tid -> comm, as the kernel last sent it.
pub struct Comms {
    by_tid: HashMap<u32, [u8; COMM_LEN], foldhash::fast::RandomState>,
    /// The last task looked up: runs of events of one task are the common case.
    last: Option<(u32, [u8; COMM_LEN])>,
    /// Where a compact event of a task no full event named gets its comm.
    fallback: fn(u32, u32) -> [u8; COMM_LEN],
    /// Compact events of tasks no full event named (comm looked up in /proc).
    pub unknown: u64,
    /// Samples that were no event (too short, unknown kind): lost events, counted
    /// with the ring buffer's drops (`KernelCounters::undecodable`).
    pub undecodable: u64,
}

impl Default for Comms {
    fn default() -> Self {
        Comms::with_fallback(proc_comm)
    }
}

impl Comms {
    pub fn with_fallback(fallback: fn(u32, u32) -> [u8; COMM_LEN]) -> Comms {
        Comms {
            by_tid: HashMap::default(),
            last: None,
            fallback,
            unknown: 0,
            undecodable: 0,
        }
    }

    /// Decodes one sample into `out`. False when it is not one of our events.
    #[inline]
    pub fn decode_into(&mut self, b: &[u8], out: &mut Vec<RawEvent>) -> bool {
        match decode_sample(b) {
            Ok(Sample::Compact(mut ev)) => {
                ev.comm = self.comm_of(ev.pid, ev.tgid);
                out.push(ev);
                true
            }
            Ok(Sample::Full(ev)) => {
                self.learn(ev.pid, &ev.comm);
                out.push(ev);
                true
            }
            Err(_) => {
                self.undecodable += 1;
                false
            }
        }
    }

    /// A full event carries the current task's comm. An all-zero comm (the helper
    /// failed) teaches nothing.
    #[inline]
    fn learn(&mut self, tid: u32, comm: &[u8; COMM_LEN]) {
        if *comm == [0; COMM_LEN] {
            return;
        }
        if self.last.is_some_and(|(t, c)| t == tid && c == *comm) {
            return;
        }
        self.last = Some((tid, *comm));
        self.insert(tid, *comm);
    }

    fn insert(&mut self, tid: u32, comm: [u8; COMM_LEN]) {
        if self.by_tid.len() >= MAX_TASKS && !self.by_tid.contains_key(&tid) {
            self.by_tid.clear();
        }
        self.by_tid.insert(tid, comm);
    }

    #[inline]
    fn comm_of(&mut self, tid: u32, tgid: u32) -> [u8; COMM_LEN] {
        if let Some((t, c)) = self.last {
            if t == tid {
                return c;
            }
        }
        let comm = match self.by_tid.get(&tid) {
            Some(c) => *c,
            None => {
                // The kernel sends a task's comm before its first compact event,
                // except for a submit held back in aggregating mode and streamed
                // later from another task's context.
                self.unknown += 1;
                let c = (self.fallback)(tid, tgid);
                self.insert(tid, c);
                c
            }
        };
        self.last = Some((tid, comm));
        comm
    }
}

/// The comm of a live task, zero when it is gone.
pub fn proc_comm(tid: u32, tgid: u32) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    if let Ok(s) = std::fs::read(format!("/proc/{tgid}/task/{tid}/comm")) {
        let s = s.strip_suffix(b"\n").unwrap_or(&s);
        let n = s.len().min(COMM_LEN - 1);
        comm[..n].copy_from_slice(&s[..n]);
    }
    comm
}

#[cfg(test)]
mod tests {
    use super::*;
    use uringtrace_common::wire::WireEvent;
    use uringtrace_common::EventKind;

    fn comm(s: &str) -> [u8; COMM_LEN] {
        let mut c = [0u8; COMM_LEN];
        c[..s.len()].copy_from_slice(s.as_bytes());
        c
    }

    fn no_proc(_: u32, _: u32) -> [u8; COMM_LEN] {
        comm("from-proc")
    }

    fn full(kind: EventKind, pid: u32, name: &str) -> Vec<u8> {
        RawEvent {
            kind: kind as u16,
            pid,
            tgid: 100,
            comm: comm(name),
            ..RawEvent::default()
        }
        .encode()
        .to_vec()
    }

    fn compact(kind: EventKind, pid: u32) -> Vec<u8> {
        let ev = RawEvent {
            kind: kind as u16,
            pid,
            tgid: 100,
            ..RawEvent::default()
        };
        WireEvent::of(&ev).unwrap().encode().to_vec()
    }

    #[test]
    fn compact_events_take_the_comm_their_task_last_sent() {
        let mut c = Comms::with_fallback(no_proc);
        let mut out = Vec::new();
        let samples = [
            full(EventKind::EnterEnter, 7, "app"),
            compact(EventKind::Submit, 7),
            full(EventKind::Submit, 8, "iou-wrk-7"),
            compact(EventKind::Complete, 8),
            compact(EventKind::Complete, 7),
            // Renamed: the kernel refilled its task cache and sent a full event.
            full(EventKind::Submit, 7, "app-renamed"),
            compact(EventKind::Complete, 7),
            compact(EventKind::Complete, 8),
        ];
        for s in &samples {
            assert!(c.decode_into(s, &mut out));
        }
        let got: Vec<(u32, [u8; COMM_LEN])> = out.iter().map(|e| (e.pid, e.comm)).collect();
        assert_eq!(
            got,
            [
                (7, comm("app")),
                (7, comm("app")),
                (8, comm("iou-wrk-7")),
                (8, comm("iou-wrk-7")),
                (7, comm("app")),
                (7, comm("app-renamed")),
                (7, comm("app-renamed")),
                (8, comm("iou-wrk-7")),
            ]
        );
        assert_eq!(c.unknown, 0);
    }

    #[test]
    fn unknown_tasks_are_looked_up_once() {
        let mut c = Comms::with_fallback(no_proc);
        let mut out = Vec::new();
        for s in [
            compact(EventKind::Submit, 9),
            compact(EventKind::Complete, 9),
            full(EventKind::EnterExit, 9, "late"),
            compact(EventKind::Complete, 9),
        ] {
            assert!(c.decode_into(&s, &mut out));
        }
        let comms: Vec<_> = out.iter().map(|e| e.comm).collect();
        assert_eq!(
            comms,
            [
                comm("from-proc"),
                comm("from-proc"),
                comm("late"),
                comm("late")
            ]
        );
        assert_eq!(c.unknown, 1);
    }

    #[test]
    fn a_zero_comm_teaches_nothing() {
        let mut c = Comms::with_fallback(no_proc);
        let mut out = Vec::new();
        for s in [
            full(EventKind::EnterEnter, 7, "app"),
            full(EventKind::EnterEnter, 7, ""),
            compact(EventKind::Submit, 7),
        ] {
            assert!(c.decode_into(&s, &mut out));
        }
        assert_eq!(out[2].comm, comm("app"));
    }

    #[test]
    fn foreign_samples_are_refused() {
        let mut c = Comms::default();
        let mut out = Vec::new();
        assert!(!c.decode_into(&[0u8; 20], &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn proc_comm_reads_our_own_thread() {
        let me = std::process::id();
        let c = proc_comm(me, me);
        assert_ne!(c, [0; COMM_LEN]);
        assert_eq!(proc_comm(u32::MAX - 1, u32::MAX - 1), [0; COMM_LEN]);
    }
}
