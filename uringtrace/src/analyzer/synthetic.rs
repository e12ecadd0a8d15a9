//! Synthetic event streams, for measuring the analyzer without a recording (the
//! `analyzer_bench` example, the ignored speed test) and for tests that need many
//! events.

use uringtrace_common::view::{self, EventView};
use uringtrace_common::{EventKind, RawEvent};

use crate::names::ENTER_GETEVENTS;

/// The ring of [`nop_storm`].
pub const NOP_STORM_CTX: u64 = 0xffff_8881_0b7d_7800;
const PID: u32 = 4242;
/// Requests per io_uring_enter, as `uringtrace-workload nop` does.
const BATCH: u64 = 64;

/// A NOP storm like `uringtrace-workload nop` records: one ring, then per batch an
/// enter (submit 64, wait for 64), 64 submits, 64 completions and the enter's exit.
/// Request pointers are recycled from a small pool, as the kernel's slab does.
/// Timestamps rise by 0.5 µs per event, in order. Yields exactly `n` events.
pub fn nop_storm(n: u64) -> NopStorm {
    let mut base = RawEvent {
        ctx: NOP_STORM_CTX,
        pid: PID,
        tgid: PID,
        ..RawEvent::default()
    };
    base.comm[..15].copy_from_slice(b"uringtrace-work");
    NopStorm { next: 0, n, base }
}

/// The iterator of [`nop_storm`]. (A named type: a closure capturing the event
/// template trips a rustc 1.95 ICE on `RawEvent::comm`'s array length.)
pub struct NopStorm {
    next: u64,
    n: u64,
    base: RawEvent,
}

impl Iterator for NopStorm {
    type Item = RawEvent;

    fn next(&mut self) -> Option<RawEvent> {
        if self.next >= self.n {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let mut ev = self.base;
        ev.ts_ns = 1_000_000 + i * 500;
        if i == 0 {
            let create = view::Create {
                fd: 3,
                sq_entries: BATCH as u32,
                cq_entries: 2 * BATCH as u32,
                flags: 0,
                cgroup_id: 0,
            };
            return Some(create.into_raw(ev));
        }
        // Per batch: enter, BATCH submits, BATCH completions, exit.
        let j = i - 1;
        let (batch, k) = (j / (2 * BATCH + 2), j % (2 * BATCH + 2));
        let slot = |m: u64| 0xffff_8881_4b6c_e000 + ((batch % 2) * BATCH + m) * 0x100;
        let user_data = |m: u64| batch * BATCH + m + 1;
        match k {
            0 => {
                let enter = view::Enter {
                    fd: 3,
                    to_submit: BATCH as u32,
                    min_complete: BATCH as u32,
                    flags: ENTER_GETEVENTS,
                    ..view::Enter::default()
                };
                ev = enter.into_raw(ev);
            }
            k if k <= BATCH => {
                ev.kind = EventKind::Submit as u16;
                ev.req = slot(k - 1);
                ev.user_data = user_data(k - 1);
            }
            k if k <= 2 * BATCH => {
                ev.kind = EventKind::Complete as u16;
                ev.req = slot(k - 1 - BATCH);
                ev.user_data = user_data(k - 1 - BATCH);
            }
            _ => {
                ev.kind = EventKind::EnterExit as u16;
                ev.res = BATCH as i32;
            }
        }
        Some(ev)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.n - self.next) as usize;
        (left, Some(left))
    }
}

/// Peak resident memory of this process (VmHWM), in KiB; 0 when unknown.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
