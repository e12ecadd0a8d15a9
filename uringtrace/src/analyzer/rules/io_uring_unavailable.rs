//! `io-uring-unavailable`: metadata, explanation and detector.

use uringtrace_common::view::SetupFailed;
use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, text, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::state::{SetupFailure, State};
use crate::names::result_name;

pub const RULE: Rule = Rule {
    id: RuleId::IoUringUnavailable,
    slug: "io-uring-unavailable",
    severity: Severity::Warning,
    title: "io_uring_setup fails for a process: a sysctl, io_uring_group or a seccomp filter blocks io_uring",
    fix: "allow io_uring where it is wanted (kernel.io_uring_disabled, kernel.io_uring_group, the seccomp profile), or accept the application's slower fallback path",
    needs: &[Need::Event(EventKind::SetupFailed)],
    degraded_reason: "needs io_uring_setup's exit (raw_syscalls:sys_exit or syscalls:sys_exit_io_uring_setup, hooked: --pid or a command)",
    explanation: "\
A process asks for a ring with io_uring_setup and is refused, usually without a word: most
applications and runtimes (libuv, tokio-uring fallbacks, databases) then quietly use their
slower path (a thread pool, epoll). The refusal has four sources:
- kernel.io_uring_disabled (6.6+): 2 refuses everyone with -EPERM; 1 refuses with -EPERM
  unless the task is privileged (CAP_SYS_ADMIN) or in the group kernel.io_uring_group.
- a seccomp filter: Docker's and containerd's default profiles (since 2023), and many
  systemd units (SystemCallFilter=), block the three io_uring syscalls with -EPERM or
  -ENOSYS. /proc/PID/status shows `Seccomp: 2` for a filtered process.
- -ENOSYS with no filter: a kernel built without io_uring (CONFIG_IO_URING=n).
- -ENOMEM before 5.12: the ring is charged to RLIMIT_MEMLOCK (ulimit -l).
-EINVAL and other errors are the application probing flags (it retries without them): not
reported. A process that sets up a ring after a failure had a flag refused: info.

In a trace: the exit of io_uring_setup (syscall 425 on x86_64 and arm64) with an error.
When the event is read, uringtrace reads the sysctls and the process's /proc status (its
Seccomp mode, groups and capabilities) and stores them in the recording, so replay gives
the same answer. Host-wide tracing does not hook syscalls: use --pid or a command.

What to change: sysctl -w kernel.io_uring_disabled=0, or =1 with the application's group
in kernel.io_uring_group; a seccomp profile that allows io_uring_setup, io_uring_enter and
io_uring_register (docker run --security-opt seccomp=PROFILE.json, SystemCallFilter=); a
higher memlock limit before 5.12. Or, if io_uring is blocked on purpose (it bypasses
syscall auditing), make sure the fallback path is fast enough.",
};

/// Why io_uring_setup failed, from its errno and what was read with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// kernel.io_uring_disabled = 2.
    SysctlDisabled,
    /// kernel.io_uring_disabled = 1, not in kernel.io_uring_group, not privileged.
    NotInGroup,
    /// A seccomp filter (Seccomp: 2) returned the errno.
    Seccomp,
    /// -ENOSYS without a filter: the kernel has no io_uring.
    NoKernelSupport,
    /// -ENOSYS or -EPERM, and the process's status could not be read.
    SeccompOrUnknown,
    /// -EPERM that neither the sysctls nor a filter explain (an LSM).
    OtherPerm,
    /// -ENOMEM: RLIMIT_MEMLOCK (before 5.12).
    MemLock,
}

/// The cause of a failed setup with `errno` (positive), or None when the failure is
/// not io_uring being unavailable (flag probing: -EINVAL, -EFAULT, ...).
pub fn cause(errno: i32, c: &SetupFailed) -> Option<Cause> {
    let filtered = c.seccomp == Some(2);
    Some(match errno {
        libc::EPERM => match c.disabled {
            Some(2) => Cause::SysctlDisabled,
            Some(1)
                if !c.has(SetupFailed::IN_GROUP)
                    && !c.has(SetupFailed::CAP_SYS_ADMIN)
                    && c.seccomp.is_some() =>
            {
                Cause::NotInGroup
            }
            _ if filtered => Cause::Seccomp,
            _ if c.seccomp.is_none() => Cause::SeccompOrUnknown,
            _ => Cause::OtherPerm,
        },
        libc::ENOSYS if filtered => Cause::Seccomp,
        libc::ENOSYS if c.seccomp.is_none() => Cause::SeccompOrUnknown,
        libc::ENOSYS => Cause::NoKernelSupport,
        libc::ENOMEM => Cause::MemLock,
        _ => return None,
    })
}

/// What the cause means and how to allow io_uring, in one sentence.
pub fn describe(cause: Cause, c: &SetupFailed) -> String {
    let group = match c.group {
        Some(g) if g >= 0 => format!("group {g}"),
        _ => "no group set".to_string(),
    };
    match cause {
        Cause::SysctlDisabled => "kernel.io_uring_disabled = 2 disables io_uring for every process; allow it with sysctl -w kernel.io_uring_disabled=0 (or =1 plus kernel.io_uring_group)".into(),
        Cause::NotInGroup => format!("kernel.io_uring_disabled = 1 and the process is neither in kernel.io_uring_group ({group}) nor privileged; add its user to that group, or set kernel.io_uring_disabled=0"),
        Cause::Seccomp => "a seccomp filter (Seccomp: 2 in its /proc status; Docker's default profile, a systemd SystemCallFilter=) blocks io_uring_setup; allow io_uring_setup, io_uring_enter and io_uring_register in the profile".into(),
        Cause::NoKernelSupport => "no seccomp filter: the kernel has no io_uring (CONFIG_IO_URING=n)".into(),
        Cause::SeccompOrUnknown => "the process was gone before its status could be read: most likely a seccomp filter (Docker's default profile); allow io_uring_setup, io_uring_enter and io_uring_register in it".into(),
        Cause::OtherPerm => "neither kernel.io_uring_disabled nor a seccomp filter explain it: a security module (an SELinux io_uring rule) refuses it".into(),
        Cause::MemLock => "the ring did not fit in RLIMIT_MEMLOCK (kernels before 5.12 charge rings to it); raise ulimit -l".into(),
    }
}

/// A finding per process and cause, as of the report.
pub fn current(st: &State) -> Vec<Hit> {
    st.setup_failures
        .by_process
        .values()
        .filter_map(|f| on_process(st, f))
        .collect()
}

fn on_process(st: &State, f: &SetupFailure) -> Option<Hit> {
    let c = &f.context;
    let cause = cause(f.errno, c)?;
    let res = -f.errno;
    let then = if f.ring_after {
        "; the process set up a ring afterwards (a flag it asked for was refused)"
    } else {
        "; it has run without io_uring since (its fallback path, if it has one)"
    };
    let msg = format!(
        "io_uring_setup failed with {} for {} (pid {}): {}{then}",
        result_name(res),
        if f.comm.is_empty() {
            "a process"
        } else {
            &f.comm
        },
        f.tgid,
        describe(cause, c)
    );
    let opt = |v: Option<u32>| v.map_or_else(|| "unknown".to_string(), |v| v.to_string());
    let facts = vec![
        text("errno", result_name(res)),
        text("kernel.io_uring_disabled", opt(c.disabled)),
        text(
            "kernel.io_uring_group",
            c.group
                .map_or_else(|| "unknown".to_string(), |g| g.to_string()),
        ),
        text("seccomp", opt(c.seccomp)),
        text("in_io_uring_group", yes(c.has(SetupFailed::IN_GROUP))),
        text("cap_sys_admin", yes(c.has(SetupFailed::CAP_SYS_ADMIN))),
        count("setup_entries", c.entries.into()),
    ];
    let e = Evidence {
        requests: vec![],
        facts,
        first_ns: f.first_ns,
        last_ns: f.last_ns,
    };
    let mut h = hit(st, RuleId::IoUringUnavailable, f.tgid, 0, cause, msg, e);
    h.finding.occurrences = f.count;
    if h.finding.comm.is_empty() {
        h.finding.comm = f.comm.clone();
    }
    if f.ring_after {
        h.finding.severity = Severity::Info;
    }
    Some(h)
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
