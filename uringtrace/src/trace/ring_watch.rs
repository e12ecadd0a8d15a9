//! Which rings are gone, so that what the kernel keeps about them is released
//! ([`super::release`]).

use std::time::{Duration, Instant};

use uringtrace_common::RawEvent;

/// A ring seen in the trace (from its create or its submits).
#[derive(Clone, Debug)]
struct KnownRing {
    tgid: u32,
    /// From its create event; unknown for rings created before the trace.
    fd: Option<u32>,
    /// A later ring of the same process got the same fd: this one's fd was closed.
    closed: bool,
    gone_since: Option<Instant>,
}

/// Which rings are gone: their process exited, or their fd was closed. Their slots
/// in the kernel (ring filter, aggregation slot and statistics) are then released, or
/// a long `top` or host-wide session would run out of slots (16) and stream every
/// later ring in full, and a ring address reused by another process would pass the
/// filter as the old ring.
#[derive(Debug, Default)]
pub struct RingWatch {
    rings: std::collections::HashMap<u64, KnownRing>,
}

/// A ring must have been gone this long before it is forgotten: completions of its
/// last requests (cancelled when it closes) are posted by a kernel worker after the
/// close, and pass the filter only while the ring is in it.
pub const FORGET_AFTER: Duration = Duration::from_secs(1);

impl RingWatch {
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    /// A ring found in the kernel's maps (an aggregation slot, the ring filter):
    /// known from now on if it was not, so that it is forgotten once gone even
    /// though no event of it was seen (created before the trace, only counted).
    pub fn learn(&mut self, ctx: u64, tgid: u32) {
        if ctx == 0 {
            return;
        }
        self.rings.entry(ctx).or_insert(KnownRing {
            tgid,
            fd: None,
            closed: false,
            gone_since: None,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// Learns rings from a batch of events.
    pub fn observe(&mut self, events: &[RawEvent], now: Instant) {
        use uringtrace_common::view::{Create, EventView};
        use uringtrace_common::EventKind;
        // Runs of submits to one ring are the rule: one hash lookup per run.
        let mut last_submit_ring = 0;
        for e in events {
            if e.ctx == 0 {
                continue;
            }
            if let Some(Create { fd, .. }) = Create::of(e) {
                // The same fd in the same process: the ring that had it was closed.
                for (ctx, r) in self.rings.iter_mut() {
                    if *ctx != e.ctx && r.tgid == e.tgid && r.fd == Some(fd) && !r.closed {
                        r.closed = true;
                        r.gone_since.get_or_insert(now);
                    }
                }
                // A known address: the ring that lived there is gone, and this one is
                // alive (nothing to forget: the address is in use again).
                self.rings.insert(
                    e.ctx,
                    KnownRing {
                        tgid: e.tgid,
                        fd: Some(fd),
                        closed: false,
                        gone_since: None,
                    },
                );
            } else if e.kind == EventKind::Submit as u16 && e.ctx != last_submit_ring {
                last_submit_ring = e.ctx;
                self.rings.entry(e.ctx).or_insert(KnownRing {
                    tgid: e.tgid,
                    fd: None,
                    closed: false,
                    gone_since: None,
                });
            }
        }
    }

    /// Checks which rings are gone (`alive(tgid, fd)` says whether the process still
    /// exists and, for a known fd, still has an io_uring ring there), and returns
    /// those gone for at least [`FORGET_AFTER`] as (rings, processes that exited),
    /// removing them from the watch. A ring of a process that exited is forgotten with
    /// its process.
    pub fn expired(
        &mut self,
        now: Instant,
        mut alive: impl FnMut(u32, Option<u32>) -> (bool, bool),
    ) -> (Vec<u64>, Vec<u32>) {
        let mut rings = Vec::new();
        let mut dead = Vec::new();
        for (&ctx, r) in self.rings.iter_mut() {
            let (process, fd) = alive(r.tgid, r.fd);
            if process && fd && !r.closed {
                r.gone_since = None;
                continue;
            }
            let since = *r.gone_since.get_or_insert(now);
            if now.duration_since(since) < FORGET_AFTER {
                continue;
            }
            if process {
                rings.push(ctx);
            } else if !dead.contains(&r.tgid) {
                dead.push(r.tgid);
            }
        }
        self.rings
            .retain(|ctx, r| !rings.contains(ctx) && !dead.contains(&r.tgid));
        rings.sort_unstable();
        dead.sort_unstable();
        (rings, dead)
    }
}

/// (the process exists, `fd` is still an io_uring ring in it (true when unknown)).
pub(super) fn ring_alive(tgid: u32, fd: Option<u32>) -> (bool, bool) {
    if !std::path::Path::new(&format!("/proc/{tgid}")).exists() {
        return (false, false);
    }
    let fd_ok = fd.is_none_or(|fd| {
        std::fs::read_link(format!("/proc/{tgid}/fd/{fd}"))
            .is_ok_and(|l| l.as_os_str() == "anon_inode:[io_uring]")
    });
    (true, fd_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uringtrace_common::EventKind;

    fn ev(kind: EventKind, ctx: u64, tgid: u32, fd: u32) -> RawEvent {
        let mut e = RawEvent {
            ctx,
            tgid,
            pid: tgid,
            kind: kind as u16,
            ..RawEvent::default()
        };
        e.args[0] = fd;
        e
    }

    #[test]
    fn rings_are_forgotten_a_while_after_their_process_exits() {
        let t0 = Instant::now();
        let mut w = RingWatch::default();
        w.observe(
            &[
                ev(EventKind::Create, 0xa000, 10, 3),
                ev(EventKind::Submit, 0xa000, 10, 0),
                // A ring created before the trace: known from its submits only.
                ev(EventKind::Submit, 0xb000, 11, 0),
            ],
            t0,
        );
        let all_alive = |_: u32, _: Option<u32>| (true, true);
        assert_eq!(w.expired(t0, all_alive), (vec![], vec![]));
        // Process 10 exits: not forgotten at once (its last completions may still
        // come from a kernel worker), but after FORGET_AFTER.
        let p10_gone = |t: u32, _: Option<u32>| (t != 10, t != 10);
        assert_eq!(w.expired(t0, p10_gone), (vec![], vec![]));
        let later = t0 + FORGET_AFTER;
        assert_eq!(w.expired(later, p10_gone), (vec![], vec![10]));
        // Forgotten once only; the other ring stays.
        assert_eq!(w.expired(later + FORGET_AFTER, p10_gone), (vec![], vec![]));
        assert_eq!(w.rings.len(), 1);
    }

    #[test]
    fn a_closed_ring_fd_is_seen_even_when_a_new_ring_reuses_it() {
        let t0 = Instant::now();
        let mut w = RingWatch::default();
        w.observe(&[ev(EventKind::Create, 0xa000, 10, 3)], t0);
        // fd 3 no longer a ring: gone, the process lives on.
        let closed = |_: u32, fd: Option<u32>| (true, fd != Some(3));
        assert_eq!(w.expired(t0, closed), (vec![], vec![]));
        // Back before the grace ran out (fd check is per sample): not gone.
        assert_eq!(w.expired(t0, |_, _| (true, true)), (vec![], vec![]));
        let later = t0 + FORGET_AFTER;
        assert_eq!(w.expired(later, |_, _| (true, true)), (vec![], vec![]));
        // A new ring gets fd 3 in the same process: the old one was closed, even
        // though fd 3 is a ring again.
        w.observe(&[ev(EventKind::Create, 0xc000, 10, 3)], later);
        assert_eq!(w.expired(later, |_, _| (true, true)), (vec![], vec![]));
        let much_later = later + FORGET_AFTER;
        assert_eq!(
            w.expired(much_later, |_, _| (true, true)),
            (vec![0xa000], vec![])
        );
        assert!(w.rings.contains_key(&0xc000));
    }

    #[test]
    fn rings_found_in_the_kernel_maps_are_forgotten_with_their_process() {
        let t0 = Instant::now();
        let mut w = RingWatch::default();
        // A slot held by a ring created before the trace, seen in no event.
        w.learn(0xd000, 20);
        // Learning a known ring again changes nothing (its create gave its fd).
        w.observe(&[ev(EventKind::Create, 0xe000, 21, 4)], t0);
        w.learn(0xe000, 21);
        assert_eq!(w.rings[&0xe000].fd, Some(4));
        let p20_gone = |t: u32, _: Option<u32>| (t != 20, t != 20);
        assert_eq!(w.expired(t0, p20_gone), (vec![], vec![]));
        assert_eq!(w.expired(t0 + FORGET_AFTER, p20_gone), (vec![], vec![20]));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_reused_ring_address_is_a_new_live_ring() {
        let t0 = Instant::now();
        let mut w = RingWatch::default();
        w.observe(&[ev(EventKind::Create, 0xa000, 10, 3)], t0);
        let p10_gone = |t: u32, _: Option<u32>| (t != 10, t != 10);
        assert_eq!(w.expired(t0, p10_gone), (vec![], vec![]));
        // Process 12 creates a ring at the same address before the grace ran out.
        w.observe(&[ev(EventKind::Create, 0xa000, 12, 5)], t0);
        assert_eq!(w.expired(t0 + FORGET_AFTER, p10_gone), (vec![], vec![]));
        assert_eq!(w.rings[&0xa000].tgid, 12);
    }
}
