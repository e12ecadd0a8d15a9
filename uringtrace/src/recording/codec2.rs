//! Format version 2: self-delimiting records that predict each field from what the
//! file already said (specified in docs/recording-format.md, "Records (version 2)").
//!
//! Encoder and decoder keep the same [`State`]: a table of tasks (tid, tgid, comm, and
//! the cpu/role/ring that task last used), a table of rings (ctx pointer, the last
//! user_data on that ring, and a small set-associative table of recently seen request
//! pointers with the user_data each last carried), and per kind the previous event's
//! kind-specific fields. An event then stores only what differs from the prediction,
//! behind a presence mask: a NOP storm costs about 5.5 bytes per event.
//!
//! Both sides update the state with the same functions ([`State::apply_task`],
//! [`State::apply_ring`], [`state::RingState::insert`], and the tail of
//! [`State::decode_event`] / [`Encoder::encode_event`] which mirror each other), so
//! every field round-trips exactly.
//!
//! The parts: this file holds the record tags and the field layout of an event
//! record (its mask bits and coding modes); `state` the tables both sides keep,
//! `decode` and `encode` the two directions.

use uringtrace_common::COMM_LEN;

mod decode;
mod encode;
mod state;
#[cfg(test)]
mod tests;

pub use decode::DecErr;
pub use encode::Encoder;
pub use state::State;

/// Record tags (first byte of every record). 1..=0xEF: an event of that kind.
pub const TAG_KIND_ESCAPE: u8 = 0x00;
pub const TAG_MAX_KIND: u8 = 0xEF;
pub const TAG_TASK: u8 = 0xF0;
pub const TAG_RING: u8 = 0xF1;
pub const TAG_END: u8 = 0xF2;

/// No event, task or ring record (nor the tag and length of an end record) is longer
/// than this, valid or not: a decoder that has this many bytes in hand (or the rest
/// of the file) never runs out in the middle of one. (The most an event can use, even
/// corrupt, is 163 bytes: 15 varints of at most 10 bytes, the tag, role and opcode
/// bytes, 8 bytes of req, 2 of pad. A task record: 48; a ring record: 19.)
pub const LOOKAHEAD: usize = 256;

/// Task and ring table sizes; when full, the writer reuses entries round-robin.
pub const MAX_TASKS: usize = 1 << 16;
pub const MAX_RINGS: usize = 1 << 10;

/// Request table of each ring: 64 sets of 4 ways, slot = set * 4 + way.
const REQ_SETS_SHIFT: u32 = 64 - 6;
const REQ_WAYS: usize = 4;
const REQ_SLOTS: usize = 256;
const REQ_HASH: u64 = 0x9E37_79B9_7F4A_7C15;

// Event mask bits (a varint: the first byte holds what changes most often).
const REQ_MODE: u32 = 0b11; // bits 0-1
const REQ_NONE: u32 = 0;
const REQ_SLOT: u32 = 1;
const REQ_LITERAL: u32 = 2;
const REQ_LAST: u32 = 3;
const UD_SHIFT: u32 = 2; // bits 2-3
const UD_ZERO: u32 = 0;
const UD_FROM_REQ: u32 = 1;
const UD_DELTA: u32 = 2;
const UD_LAST: u32 = 3;
const M_RES: u32 = 1 << 4;
const M_TASK: u32 = 1 << 5;
const M_RING: u32 = 1 << 6;
const M_CFLAGS: u32 = 1 << 7;
const M_OPCODE: u32 = 1 << 8;
const AUX_SHIFT: u32 = 9; // bits 9-10
const AUX2_SHIFT: u32 = 14; // bits 14-15
const V_SAME: u32 = 0;
const V_VARINT: u32 = 1;
const V_FIXED: u32 = 2;
const V_DELTA: u32 = 3;
/// args[0..3]
const M_ARG: [u32; 4] = [1 << 13, 1 << 11, 1 << 12, 1 << 16];
const M_CPU: u32 = 1 << 17;
const M_ROLE: u32 = 1 << 18;
const M_PAD: u32 = 1 << 19;
const MASK_BITS: u32 = 20;
/// The bits of fields kept per kind.
const KIND_FIELDS: u32 = M_OPCODE
    | M_RES
    | M_CFLAGS
    | 3 << AUX_SHIFT
    | 3 << AUX2_SHIFT
    | M_ARG[0]
    | M_ARG[1]
    | M_ARG[2]
    | M_ARG[3]
    | M_PAD;

/// Kinds that carry no ring: their ring is predicted as 0 (ctx = 0) and they leave
/// the task's predicted ring alone. task_work_run, enter, enter_exit, sched_waking,
/// sched_switch, task_newtask, task_rename, process_fork, ring_state. (Part of the
/// format: never change, only predictions of new kinds may be added in a new version.)
#[inline(always)]
fn ringless(kind: u16) -> bool {
    uringtrace_common::EventKind::ringless_in_format_v2(kind)
}

#[inline(always)]
fn comm_len(comm: &[u8; COMM_LEN]) -> usize {
    // Trailing NULs are implied; anything before them (even after a NUL) is kept.
    COMM_LEN - comm.iter().rev().take_while(|&&b| b == 0).count()
}
