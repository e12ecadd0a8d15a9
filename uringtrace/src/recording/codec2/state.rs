//! The tables encoder and decoder both keep (see the parent module): tasks, rings
//! with their request tables, and the previous event's fields per kind.

use uringtrace_common::COMM_LEN;

use super::{REQ_HASH, REQ_SETS_SHIFT, REQ_SLOTS, REQ_WAYS};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskState {
    pub tid: u32,
    pub tgid: u32,
    pub comm: [u8; COMM_LEN],
    /// Predictions for this task's next event.
    pub(super) cpu: u16,
    pub(super) role: u8,
    pub(super) ring: u32,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ReqEntry {
    pub(super) ptr: u64,
    /// user_data of the last event that carried this request (and a user_data).
    pub(super) ud: u64,
}

#[derive(Clone)]
pub struct RingState {
    pub(super) ctx: u64,
    /// user_data of the last event on this ring that carried one.
    pub(super) last_ud: u64,
    /// Slot of the last request seen on this ring.
    pub(super) last_slot: u8,
    /// Next way to replace, per set.
    pub(super) fifo: [u8; REQ_SLOTS / REQ_WAYS],
    pub(super) reqs: Box<[ReqEntry; REQ_SLOTS]>,
}

impl RingState {
    pub(super) fn new(ctx: u64) -> RingState {
        RingState {
            ctx,
            last_ud: 0,
            last_slot: 0,
            fifo: [0; REQ_SLOTS / REQ_WAYS],
            reqs: Box::new([ReqEntry::default(); REQ_SLOTS]),
        }
    }

    #[inline(always)]
    pub(super) fn set_of(ptr: u64) -> usize {
        (ptr.wrapping_mul(REQ_HASH) >> REQ_SETS_SHIFT) as usize
    }

    /// Puts a request not in the table into its set (replacing the oldest way).
    #[inline]
    pub(super) fn insert(&mut self, ptr: u64) -> u8 {
        let set = Self::set_of(ptr);
        let way = self.fifo[set] as usize % REQ_WAYS;
        self.fifo[set] = ((way + 1) % REQ_WAYS) as u8;
        let slot = set * REQ_WAYS + way;
        self.reqs[slot] = ReqEntry { ptr, ud: 0 };
        slot as u8
    }

    #[inline]
    pub(super) fn find(&self, ptr: u64) -> Option<u8> {
        let base = Self::set_of(ptr) * REQ_WAYS;
        (base..base + REQ_WAYS)
            .find(|&s| self.reqs[s].ptr == ptr)
            .map(|s| s as u8)
    }
}

/// The kind-specific fields of the previous event of a kind.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct KindState {
    pub(super) aux: u64,
    pub(super) aux2: u64,
    pub(super) res: i32,
    pub(super) cflags: u32,
    pub(super) args: [u32; 4],
    pub(super) opcode: u8,
    pub(super) pad: [u8; 2],
}

/// What encoder and decoder both know after the same records.
#[derive(Clone)]
pub struct State {
    pub(super) prev_ts: u64,
    /// Task of the previous event (usize::MAX before the first).
    pub(super) cur_task: usize,
    pub(super) tasks: Vec<TaskState>,
    /// rings[0] is ctx 0, always.
    pub(super) rings: Vec<RingState>,
    pub(super) kinds: Box<[KindState; 64]>,
}

impl Default for State {
    fn default() -> Self {
        State {
            prev_ts: 0,
            cur_task: usize::MAX,
            tasks: Vec::new(),
            rings: vec![RingState::new(0)],
            kinds: Box::new([KindState::default(); 64]),
        }
    }
}

impl State {
    /// Task record: (re)defines task `idx`. Its predictions restart from zero.
    pub(super) fn apply_task(&mut self, idx: usize, tid: u32, tgid: u32, comm: [u8; COMM_LEN]) {
        let t = TaskState {
            tid,
            tgid,
            comm,
            ..TaskState::default()
        };
        if idx == self.tasks.len() {
            self.tasks.push(t);
        } else {
            self.tasks[idx] = t;
        }
    }

    /// Ring record: (re)defines ring `idx` (≥ 1); its request table starts empty.
    pub(super) fn apply_ring(&mut self, idx: usize, ctx: u64) {
        if idx == self.rings.len() {
            self.rings.push(RingState::new(ctx));
        } else {
            self.rings[idx] = RingState::new(ctx);
        }
    }
}
