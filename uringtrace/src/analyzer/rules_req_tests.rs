//! The request-misuse rules (fixed-file-misuse, fixed-buffer-misuse, short-write,
//! drain-blocked) on hand-built event sequences, each next to the healthy look-alikes
//! that must stay quiet. Event layouts are those of the 6.18 tracepoints.

use uringtrace_common::{EventKind, RawEvent};

use super::check::Config;
use super::finding::Severity;
use super::opcodes::{NOP, READ, READ_FIXED, SENDMSG_ZC, SEND_ZC, WRITE, WRITE_FIXED};
use super::report::{Environment, Report};
use super::rules::RuleId;
use super::{Analyzer, AnalyzerConfig};
use crate::names::{IOSQE_FIXED_FILE, IOSQE_IO_LINK};

const A: u64 = 0xffff_8880_0000_1000;
const PID: u32 = 100;
const MS: u64 = 1_000_000;
const DRAIN: u64 = 2;
/// IORING_REGISTER_FILES, IORING_REGISTER_BUFFERS.
const REG_FILES: u32 = 2;
const REG_BUFFERS: u32 = 0;

fn ev(kind: EventKind, ts: u64) -> RawEvent {
    RawEvent {
        kind: kind as u16,
        ts_ns: ts,
        pid: PID,
        tgid: PID,
        ctx: A,
        ..RawEvent::default()
    }
}

fn create(ts: u64) -> RawEvent {
    RawEvent {
        args: [3, 8, 16, 0],
        ..ev(EventKind::Create, ts)
    }
}

fn register(ts: u64, opcode: u32, files: u32, bufs: u32) -> RawEvent {
    RawEvent {
        args: [opcode, files, bufs, 0],
        ..ev(EventKind::Register, ts)
    }
}

fn submit(ts: u64, req: u64, op: u8, flags: u64, fd: u32) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        opcode: op,
        aux: flags,
        args: [0, 0, fd, 0],
        ..ev(EventKind::Submit, ts)
    }
}

fn complete(ts: u64, req: u64, res: i32) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        res,
        ..ev(EventKind::Complete, ts)
    }
}

/// io_uring_req_failed: (sqe flags, ioprio, op_flags, buf_index).
fn req_failed(ts: u64, req: u64, op: u8, res: i32, raw: (u32, u32, u32, u32)) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        opcode: op,
        res,
        cflags: raw.0,
        aux2: 0x1000,
        args: [512, raw.2, raw.1, raw.3],
        ..ev(EventKind::ReqFailed, ts)
    }
}

fn defer(ts: u64, req: u64) -> RawEvent {
    RawEvent {
        req,
        user_data: req,
        ..ev(EventKind::Defer, ts)
    }
}

fn short_write(ts: u64, pos: u64, wanted: u64, got: i32) -> RawEvent {
    RawEvent {
        aux: pos,
        aux2: wanted,
        res: got,
        ..ev(EventKind::ShortWrite, ts)
    }
}

fn run(events: &[RawEvent]) -> Report {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for e in events {
        a.push(*e);
    }
    a.finish()
}

/// (rule, message, occurrences) of every finding.
fn found(r: &Report) -> Vec<(&'static str, String, u64)> {
    r.findings
        .iter()
        .map(|f| (f.rule.slug(), f.message.clone(), f.occurrences))
        .collect()
}

fn of(r: &Report, rule: RuleId) -> Vec<(String, u64)> {
    r.findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| (f.message.clone(), f.occurrences))
        .collect()
}

const FIXED: u64 = IOSQE_FIXED_FILE;

#[test]
fn fixed_file_failures_are_grouped_by_cause_and_name_the_slot() {
    let mut v = vec![create(1), register(2, REG_FILES, 4, 0)];
    // Slot 2 (empty) twice, slot 9 (beyond the table) once, slot 1 works.
    for (i, slot, res) in [(1, 2, -9), (2, 9, -9), (3, 1, 64), (4, 3, -9)] {
        v.push(submit(10 * i, i, READ, FIXED, slot));
        v.push(complete(10 * i + 1, i, res));
    }
    let r = run(&v);
    assert_eq!(
        of(&r, RuleId::FixedFileMisuse),
        vec![
            (
                "READ (user_data 0x1) on fixed slot 2 failed with -EBADF: slot 2 of the \
                 4-entry file table is empty (or its file is not open for READ)"
                    .to_string(),
                2
            ),
            (
                "READ (user_data 0x2) on fixed slot 9 failed with -EBADF: slot 9 is beyond \
                 the 4-entry file table"
                    .to_string(),
                1
            ),
        ]
    );
    assert_eq!(r.findings.len(), 2, "{:?}", found(&r));
    assert!(r.findings.iter().all(|f| f.severity == Severity::Error));
}

#[test]
fn fixed_file_with_no_table_or_no_slot_number() {
    // Files never registered on this ring (the register event says 0 files); then a
    // kernel whose submit event has no slot number (classic tracepoint, fd 0).
    let r = run(&[
        create(1),
        register(2, REG_FILES, 0, 0),
        submit(10, 1, WRITE, FIXED, 5),
        complete(11, 1, -9),
    ]);
    assert_eq!(
        of(&r, RuleId::FixedFileMisuse)[0].0,
        "WRITE (user_data 0x1) on fixed slot 5 failed with -EBADF: no files were registered \
         on the ring"
    );
    let r = run(&[
        create(1),
        submit(10, 1, READ, FIXED, 0),
        complete(11, 1, -9),
    ]);
    assert_eq!(
        of(&r, RuleId::FixedFileMisuse)[0].0,
        "READ (user_data 0x1) on fixed slot ? failed with -EBADF: the slot is empty or \
         beyond the table (this kernel's submit event has no slot number)"
    );
}

/// Slot 0 on a kernel whose submit event read the fd (tp_btf, SUBMIT_FD_KNOWN) is
/// slot 0, not "?"; the same event without the bit (classic tracepoint, or a
/// recording from before the bit) still reads as unknown.
#[test]
fn fixed_file_slot_0_is_named_when_the_fd_was_read() {
    let known = |ts, req| RawEvent {
        args: [0, uringtrace_common::view::SUBMIT_FD_KNOWN, 0, 0],
        ..submit(ts, req, READ, FIXED, 0)
    };
    let r = run(&[
        create(1),
        register(2, REG_FILES, 4, 0),
        known(10, 1),
        complete(11, 1, -9),
        submit(20, 2, READ, FIXED, 0),
        complete(21, 2, -9),
    ]);
    let slot_0 = "READ (user_data 0x1) on fixed slot 0 failed with -EBADF: slot 0 of the \
                  4-entry file table is empty (or its file is not open for READ)";
    let unknown = "READ (user_data 0x2) on fixed slot ? failed with -EBADF: the slot is \
                   empty or beyond the table (this kernel's submit event has no slot number)";
    assert_eq!(
        of(&r, RuleId::FixedFileMisuse),
        [(slot_0.to_string(), 1), (unknown.to_string(), 1)]
    );
}

/// A plain -EBADF (fd -1, a closed fd) is the application's own fd bug: not a
/// registered file. Nor are fixed-file requests cancelled by their chain, or that work.
#[test]
fn plain_ebadf_and_healthy_fixed_files_are_not_fixed_file_misuse() {
    let r = run(&[
        create(1),
        register(2, REG_FILES, 4, 0),
        submit(10, 1, READ, 0, 7),
        complete(11, 1, -9),
        submit(20, 2, READ, FIXED | IOSQE_IO_LINK, 1),
        submit(21, 3, WRITE, FIXED, 2),
        complete(22, 2, 64),
        complete(23, 3, 64),
        submit(30, 4, NOP, IOSQE_IO_LINK, 0),
        submit(31, 5, READ, FIXED, 1),
        complete(32, 4, -9),
        complete(33, 5, -125),
    ]);
    assert!(
        of(&r, RuleId::FixedFileMisuse).is_empty(),
        "{:?}",
        found(&r)
    );
}

/// An SQE rejected at submit (5.17-5.18: the file table is checked at init) for its
/// fixed file is this rule, not invalid-sqe; other rejections stay invalid-sqe.
#[test]
fn rejected_fixed_file_sqe_is_fixed_file_misuse_not_invalid_sqe() {
    let r = run(&[
        create(1),
        register(2, REG_FILES, 2, 0),
        req_failed(10, 1, READ, -9, (FIXED as u32, 0, 0, 0)),
        req_failed(20, 2, 250, -22, (0, 0, 0, 0)),
    ]);
    assert_eq!(
        found(&r),
        vec![
            (
                "fixed-file-misuse",
                "READ (user_data 0x1) on fixed slot ? rejected at submit with -EBADF: the \
                 slot is empty or beyond the table (this kernel's submit event has no slot \
                 number)"
                    .to_string(),
                1
            ),
            (
                "invalid-sqe",
                "OP_250 (user_data 0x2) rejected at submit with -EINVAL".to_string(),
                1
            ),
        ]
    );
}

#[test]
fn fixed_buffer_failures_at_issue_and_at_submit() {
    let r = run(&[
        create(1),
        register(2, REG_BUFFERS, 0, 1),
        // At issue (6.18): no buf_index in any event.
        submit(10, 1, READ_FIXED, 0, 4),
        complete(11, 1, -14),
        submit(12, 2, WRITE_FIXED, 0, 4),
        complete(13, 2, -14),
        // At prep: io_uring_req_failed carries buf_index.
        req_failed(20, 3, READ_FIXED, -14, (0, 0, 0, 3)),
        // SEND_ZC with IORING_RECVSEND_FIXED_BUF (ioprio bit 2).
        req_failed(30, 4, SEND_ZC, -14, (0, 4, 0, 0)),
        // SENDMSG_ZC refusing a fixed buffer.
        req_failed(40, 5, SENDMSG_ZC, -22, (0, 4, 0, 0)),
    ]);
    assert_eq!(
        of(&r, RuleId::FixedBufferMisuse),
        vec![
            (
                "READ_FIXED (user_data 0x1) failed with -EFAULT: buf_index beyond the 1 \
                 registered buffers, or the address range outside its buffer"
                    .to_string(),
                1
            ),
            (
                "WRITE_FIXED (user_data 0x2) failed with -EFAULT: buf_index beyond the 1 \
                 registered buffers, or the address range outside its buffer"
                    .to_string(),
                1
            ),
            (
                "READ_FIXED (user_data 0x3) rejected at submit with -EFAULT: buf_index 3 is \
                 beyond the 1 registered buffers"
                    .to_string(),
                1
            ),
            (
                "SEND_ZC (user_data 0x4) rejected at submit with -EFAULT: the address range \
                 is outside registered buffer 0"
                    .to_string(),
                1
            ),
            (
                "SENDMSG_ZC (user_data 0x5) rejected at submit with -EINVAL: the kernel \
                 refused the SQE's registered-buffer use (buf_index 0): not for this opcode, \
                 or bad flags with it"
                    .to_string(),
                1
            ),
        ]
    );
    assert!(of(&r, RuleId::InvalidSqe).is_empty());
}

/// A plain READ into a bad address (-EFAULT, no registered buffer), READ_FIXED's
/// -EINVAL (O_DIRECT alignment looks the same), and a SEND_ZC rejected without a fixed
/// buffer are not fixed-buffer-misuse.
#[test]
fn plain_efault_and_o_direct_einval_are_not_fixed_buffer_misuse() {
    let r = run(&[
        create(1),
        register(2, REG_BUFFERS, 0, 1),
        submit(10, 1, READ, 0, 4),
        complete(11, 1, -14),
        submit(12, 2, READ_FIXED, 0, 4),
        complete(13, 2, -22),
        submit(14, 3, READ_FIXED, 0, 4),
        complete(15, 3, 4096),
        req_failed(20, 4, SEND_ZC, -22, (0, 0, 0, 0)),
    ]);
    assert!(
        of(&r, RuleId::FixedBufferMisuse).is_empty(),
        "{:?}",
        found(&r)
    );
    assert_eq!(of(&r, RuleId::InvalidSqe).len(), 1);
}

#[test]
fn short_write_names_the_only_write_in_flight() {
    let r = run(&[
        create(1),
        submit(10, 1, WRITE, 0, 5),
        short_write(11, 8192, 4096, 100),
        complete(12, 1, 100),
    ]);
    assert_eq!(
        of(&r, RuleId::ShortWrite),
        vec![(
            "WRITE (user_data 0x1) wrote 100 of 4096 bytes at offset 8192 (short: no space, \
             quota or file size limit)"
                .to_string(),
            1
        )]
    );
    // Two writes in flight: the event does not say which; one finding per ring.
    let r = run(&[
        create(1),
        submit(10, 1, WRITE, 0, 5),
        submit(10, 2, WRITE, 0, 6),
        short_write(11, 0, 4096, 0),
        short_write(12, 4096, 4096, 10),
        complete(13, 1, 0),
        complete(14, 2, 10),
    ]);
    assert_eq!(
        of(&r, RuleId::ShortWrite),
        vec![(
            "a regular-file write wrote 0 of 4096 bytes at offset 0 (short: no space, quota \
             or file size limit)"
                .to_string(),
            2
        )]
    );
}

/// Short results the kernel does not call short writes: a pipe or socket write that
/// wrote what fit, a read at end of file. Only io_uring_short_write counts.
#[test]
fn short_pipe_writes_and_short_reads_are_not_short_write() {
    let r = run(&[
        create(1),
        submit(10, 1, WRITE, 0, 5),
        complete(11, 1, 65536),
        submit(12, 2, READ, 0, 6),
        complete(13, 2, 10),
    ]);
    assert!(of(&r, RuleId::ShortWrite).is_empty(), "{:?}", found(&r));
}

#[test]
fn drain_held_behind_a_slow_request_names_it() {
    let r = run(&[
        create(1),
        submit(10, 1, READ, 0, 5),
        submit(11, 2, NOP, DRAIN, 0),
        defer(12, 2),
        // Followers wait behind the drain and are deferred too.
        submit(13, 3, NOP, 0, 0),
        defer(14, 3),
        complete(12 + 300 * MS, 1, 64),
        complete(12 + 300 * MS + 5, 2, 0),
        complete(12 + 300 * MS + 6, 3, 0),
    ]);
    assert_eq!(
        of(&r, RuleId::DrainBlocked),
        vec![(
            "NOP (user_data 0x2) with IOSQE_IO_DRAIN waited 300.0 ms behind 1 earlier \
             request: READ (user_data 0x1)"
                .to_string(),
            1
        )]
    );
    let f = &r.findings[0];
    assert_eq!(f.severity, Severity::Warning);
    let facts: Vec<String> = f
        .evidence
        .facts
        .iter()
        .map(|x| format!("{}={:?}", x.name, x.value))
        .collect();
    assert!(
        facts.contains(&"deferred_behind_it=Count(1)".to_string()),
        "{facts:?}"
    );
    assert_eq!(f.evidence.requests.len(), 2);
}

#[test]
fn drain_still_waiting_at_the_end_of_the_trace() {
    let r = run(&[
        create(1),
        submit(10, 1, READ, 0, 5),
        submit(10, 2, READ, 0, 6),
        submit(11, 3, NOP, DRAIN, 0),
        defer(12, 3),
        complete(100 * MS, 2, 64),
        submit(500 * MS, 9, NOP, 0, 0),
    ]);
    assert_eq!(
        of(&r, RuleId::DrainBlocked),
        vec![(
            "NOP (user_data 0x3) with IOSQE_IO_DRAIN has waited 500.0 ms behind 2 earlier \
             requests: READ (user_data 0x1), still in flight, READ (user_data 0x2)"
                .to_string(),
            1
        )]
    );
}

/// A drain deferred for a moment behind fast requests, and a drain on an idle ring
/// (no io_uring_defer at all), are what drain is for.
#[test]
fn brief_and_idle_drains_are_quiet() {
    let r = run(&[
        create(1),
        submit(10, 1, NOP, DRAIN, 0),
        complete(11, 1, 0),
        submit(20, 2, WRITE, 0, 5),
        submit(21, 3, NOP, DRAIN, 0),
        defer(22, 3),
        complete(22 + 5 * MS, 2, 4096),
        complete(22 + 5 * MS + 3, 3, 0),
        // Deferred behind a request that completed before the defer was seen.
        submit(100 * MS, 4, NOP, 0, 0),
        submit(100 * MS + 1, 5, NOP, DRAIN, 0),
        complete(100 * MS + 2, 4, 0),
        defer(100 * MS + 3, 5),
        complete(900 * MS, 5, 0),
    ]);
    assert!(of(&r, RuleId::DrainBlocked).is_empty(), "{:?}", found(&r));
}

/// A READ (fd 5) submitted, then `op` on `fd` with IOSQE_IO_DRAIN deferred behind
/// it, then `tail`.
fn drain_behind_a_read(op: u8, fd: u32, tail: &[RawEvent]) -> Report {
    let mut v = vec![
        create(1),
        submit(10, 1, READ, 0, 5),
        submit(11, 2, op, DRAIN, fd),
        defer(12, 2),
    ];
    v.extend_from_slice(tail);
    run(&v)
}

/// `r`'s findings of `rule` are exactly `want` (one occurrence).
fn assert_one(r: &Report, rule: RuleId, want: &str) {
    assert_eq!(of(r, rule), [(want.to_string(), 1)], "{:?}", found(r));
}

/// One finding per cause: a drain held 1.5 s behind a slow READ is drain-blocked's,
/// not also request-stalled's (it never ran before its release); the READ that held
/// it stalled on its own and is still request-stalled's. Completed and in flight.
#[test]
fn a_drain_held_past_the_stall_threshold_is_only_drain_blocked() {
    let done = drain_behind_a_read(
        NOP,
        0,
        &[complete(1500 * MS, 1, 64), complete(1500 * MS + 5, 2, 0)],
    );
    assert_eq!(
        of(&done, RuleId::DrainBlocked).len(),
        1,
        "{:?}",
        found(&done)
    );
    assert_one(
        &done,
        RuleId::RequestStalled,
        "READ (user_data 0x1) took 1500.0 ms (threshold 1000.0 ms)",
    );
    let waiting = drain_behind_a_read(WRITE, 6, &[submit(1500 * MS, 9, NOP, 0, 0)]);
    assert_eq!(
        of(&waiting, RuleId::DrainBlocked).len(),
        1,
        "{:?}",
        found(&waiting)
    );
    assert_one(
        &waiting,
        RuleId::RequestStalled,
        "READ (user_data 0x1) in flight for 1500.0 ms (threshold 1000.0 ms)",
    );
}

/// A drain released after 300 ms that then takes 1.2 s itself has two causes: the
/// wait (drain-blocked) and its own execution (request-stalled, timed from release).
#[test]
fn a_drain_that_stalls_after_its_release_is_also_request_stalled() {
    let released = complete(300 * MS, 1, 64);
    for (end, stalled) in [
        (
            complete(1500 * MS, 2, 64),
            "WRITE (user_data 0x2) took 1200.0 ms (threshold 1000.0 ms)",
        ),
        (
            submit(1500 * MS, 9, NOP, 0, 0),
            "WRITE (user_data 0x2) in flight for 1200.0 ms (threshold 1000.0 ms)",
        ),
    ] {
        let r = drain_behind_a_read(WRITE, 6, &[released, end]);
        assert_one(
            &r,
            RuleId::DrainBlocked,
            "WRITE (user_data 0x2) with IOSQE_IO_DRAIN waited 300.0 ms behind 1 earlier \
             request: READ (user_data 0x1)",
        );
        assert_one(&r, RuleId::RequestStalled, stalled);
    }
}

#[test]
fn check_config_takes_the_new_rules() {
    let c = Config::parse(
        "[rules]\ndisable = [\"short-write\"]\n[rules.severity]\nfixed-file-misuse = \
         \"warning\"\ndrain-blocked = \"error\"\nfixed-buffer-misuse = \"info\"\n",
    )
    .expect("valid");
    assert!(c.disabled.contains(&RuleId::ShortWrite));
    assert_eq!(
        c.severity.get(&RuleId::DrainBlocked),
        Some(&Severity::Error)
    );
    assert_eq!(
        c.severity.get(&RuleId::FixedFileMisuse),
        Some(&Severity::Warning)
    );
    assert_eq!(
        c.severity.get(&RuleId::FixedBufferMisuse),
        Some(&Severity::Info)
    );
}
