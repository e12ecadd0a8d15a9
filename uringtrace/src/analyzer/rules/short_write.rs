//! `short-write`: metadata, explanation and detector.

use uringtrace_common::view::{self, EventView};
use uringtrace_common::{EventKind, RawEvent};

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, int, owner, req_ev, text, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::state::{Request, State};
use crate::names::opcode_name;

pub const RULE: Rule = Rule {
    id: RuleId::ShortWrite,
    slug: "short-write",
    severity: Severity::Warning,
    title: "a write to a regular file or block device completed short",
    fix: "treat a WRITE result below the length asked as an error: check free space, quotas and RLIMIT_FSIZE, and resubmit or fail the rest",
    needs: &[Need::Event(EventKind::ShortWrite)],
    degraded_reason: "no io_uring_short_write tracepoint (added in 6.0)",
    explanation: "\
A write to a regular file or block device normally writes everything asked or fails.
It writes less when the file system runs out of space (ENOSPC) or quota (EDQUOT), or
the write crosses the file size limit (RLIMIT_FSIZE: EFBIG and SIGXFSZ, or the
file system's maximum). io_uring then retries the rest; when the retry fails the CQE
carries the bytes written so far as a positive result, not the error.
Applications that compare the result with 0 treat it as success and lose the tail.

In a trace: io_uring_short_write (6.0+) with the file position, the bytes wanted and
the bytes written, from the task that issued the write (an io-wq worker when the write
was punted), then a CQE smaller than the length asked. The event names the ring but not
the request: uringtrace names the ring's write in flight when it is the only one.
Short writes on pipes and sockets are normal and never emit this event. Before 6.0 the
detector is degraded.

Typical causes: a full file system or a tmpfs at its size= limit; a user or project
quota; a process started with a low RLIMIT_FSIZE (ulimit -f, a systemd LimitFSIZE=,
a container runtime default); a file system's maximum file size.

What to change: check every write's result against its length; on a short result,
resubmit the rest (which then fails with the real errno) or report an error; free
space or raise the limit; preallocate with fallocate to find out early.",
};

/// One short write on a ring: one finding per ring, counting them.
pub fn on_short(st: &State, ev: &RawEvent, write: Option<&Request>) -> Hit {
    let w = view::ShortWrite::read(ev);
    let got = u64::try_from(w.got).unwrap_or(0);
    let what = match write {
        Some(r) => {
            let file = st
                .fd_label(r.tgid, r.fd, r.fixed_file())
                .map_or(String::new(), |f| format!(" to {f}"));
            format!(
                "{} (user_data {:#x}){file}",
                opcode_name(r.opcode),
                r.user_data
            )
        }
        None => "a regular-file write".to_string(),
    };
    let msg = format!(
        "{what} wrote {got} of {} bytes at offset {} (short: no space, quota or file size limit)",
        w.wanted, w.pos
    );
    let mut facts = vec![
        count("wanted", w.wanted),
        count("written", got),
        int("offset", i64::try_from(w.pos).unwrap_or(i64::MAX)),
    ];
    let mut requests = Vec::new();
    if let Some(r) = write {
        requests.push(req_ev(
            r.user_data,
            r.opcode,
            None,
            "short write",
            Some(r.submit_ns),
            None,
        ));
        if let Some(f) = st.fd_label(r.tgid, r.fd, r.fixed_file()) {
            facts.push(text("file", f));
        }
    }
    let e = Evidence {
        requests,
        facts,
        first_ns: ev.ts_ns,
        last_ns: ev.ts_ns,
    };
    hit(
        st,
        RuleId::ShortWrite,
        owner(st, ev.ctx, ev.tgid),
        ev.ctx,
        (),
        msg,
        e,
    )
}
