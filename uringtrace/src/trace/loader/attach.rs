//! Choosing each event's program and attach type (tp_btf or classic tracepoint),
//! and loading and attaching them.

use aya::{
    programs::{BtfTracePoint, RawTracePoint, TracePoint},
    Ebpf,
};
use uringtrace_common::{Config, EventKind, KernelMode};

use super::{Attachment, EnterSource, LoadError, TraceOptions};
use crate::trace::btf::{Btf, BtfPlan};
use crate::trace::catalog::raw_program;
use crate::trace::probe::KernelEvents;

/// The BTF plan for this host: None when BTF is absent or unreadable.
pub fn host_btf_plan() -> Option<BtfPlan> {
    HostBtf::read().map(|b| b.plan)
}

/// The kernel's BTF, read from /sys/kernel/btf/vmlinux once per load. Our reader
/// gives the struct offsets and prototypes; the tp_btf loads need aya's own parse
/// (for the `btf_trace_*` type ids), made from the same bytes when the first
/// tp_btf program is loaded. aya's `EbpfLoader::new` parses the file once more for
/// its relocations (aya 0.14 has no way to hand it a parsed one before that).
pub(super) struct HostBtf {
    ours: Btf,
    pub(super) plan: BtfPlan,
    aya: Option<aya::Btf>,
}

impl HostBtf {
    /// None when the kernel has no BTF or it cannot be read.
    pub(super) fn read() -> Option<HostBtf> {
        let ours = Btf::from_sys_fs().ok()?;
        Some(HostBtf {
            plan: BtfPlan::from_btf(&ours),
            ours,
            aya: None,
        })
    }

    /// Our parse of the kernel's BTF.
    pub(super) fn btf(&self) -> &Btf {
        &self.ours
    }

    fn aya(&mut self) -> Result<&aya::Btf, LoadError> {
        let btf = match self.aya.take() {
            Some(b) => b,
            None => aya::Btf::parse(self.ours.bytes(), aya::Endianness::default())
                .map_err(LoadError::Btf)?,
        };
        Ok(self.aya.insert(btf))
    }
}

/// The attach type each kind will use under `plan`.
pub fn attach_type_for(kind: EventKind, plan: Option<&BtfPlan>) -> &'static str {
    use EventKind::*;
    match (kind, plan) {
        (Complete, Some(p)) if p.complete => "tp_btf",
        (Submit, Some(p)) if p.submit => "tp_btf",
        (EnterEnter | EnterExit | SetupFailed, Some(p)) if p.syscalls => "tp_btf",
        (FileGet, Some(p)) if p.file_get => "tp_btf",
        (TaskAdd, Some(p)) if p.task_add => "tp_btf",
        (SchedWaking, Some(p)) if p.sched_waking => "tp_btf",
        (SchedSwitch, Some(p)) if p.sched_switch => "tp_btf",
        _ => "tracepoint",
    }
}

/// The tp_btf program and raw tracepoint that replace the classic tracepoint of
/// `kind`. io_uring_enter's per-syscall tracepoints build a perf trace record before
/// the program runs (~300 ns an event with the program, fio page cache, 6.18); the
/// raw_syscalls ones hand over the registers, and the program returns at once for
/// every other syscall.
fn btf_program(kind: EventKind) -> (&'static str, &'static str) {
    use EventKind::*;
    match kind {
        Complete => ("btf_complete", "io_uring_complete"),
        EnterEnter => ("btf_sys_enter", "sys_enter"),
        EnterExit => ("btf_sys_exit", "sys_exit"),
        FileGet => ("btf_file_get", "io_uring_file_get"),
        TaskAdd => ("btf_task_add", "io_uring_task_add"),
        SchedWaking => ("btf_sched_waking", "sched_waking"),
        SchedSwitch => ("btf_sched_switch", "sched_switch"),
        _ => ("btf_submit", "io_uring_submit_req"),
    }
}

/// The cqring_wait program that also streams the wait's io_uring_enter.
const WAIT_WITH_ENTER: &str = "tp_cqring_wait_enter";
/// Its raw tracepoint twin (no tracefs).
const RAW_WAIT_WITH_ENTER: &str = "raw_cqring_wait_enter";

/// The cqring_wait program that also streams the wait's enter: classic, or raw when
/// cqring_wait was resolved from BTF.
enum WaitProgram<'a> {
    Classic(&'a mut TracePoint),
    Raw(&'a mut RawTracePoint),
}

fn wait_with_enter<'a>(
    ebpf: &'a mut Ebpf,
    raw: bool,
    tracepoint: &str,
) -> Result<(WaitProgram<'a>, &'static str), LoadError> {
    let program = if raw {
        RAW_WAIT_WITH_ENTER
    } else {
        WAIT_WITH_ENTER
    };
    let err = |error| LoadError::Program {
        program,
        tracepoint: tracepoint.to_string(),
        error,
    };
    let prog = ebpf
        .program_mut(program)
        .ok_or(LoadError::MissingProgram(program))?;
    Ok((
        if raw {
            WaitProgram::Raw(prog.try_into().map_err(err)?)
        } else {
            WaitProgram::Classic(prog.try_into().map_err(err)?)
        },
        program,
    ))
}

fn is_raw(events: &KernelEvents, kind: EventKind) -> bool {
    events.get(kind).is_some_and(|r| r.raw)
}

/// Decides where io_uring_enter events come from, and loads the cqring_wait program
/// that reads them at the wait when the syscall is not to be hooked. That program
/// calls bpf_task_pt_regs (5.15+): when the verifier refuses it, the syscall is hooked
/// after all (the kernel's own answer, not a version check).
pub(super) fn enter_source(
    ebpf: &mut Ebpf,
    opts: &TraceOptions,
    events: &KernelEvents,
    config: &Config,
) -> Result<EnterSource, LoadError> {
    let has_wait = events.has(EventKind::CqringWait);
    if opts.syscalls || !has_wait || config.btf.regs_nr.size == 0 {
        return Ok(if opts.syscalls {
            EnterSource::Hooked
        } else {
            EnterSource::HookedNoRegs
        });
    }
    let raw = is_raw(events, EventKind::CqringWait);
    let loaded = match wait_with_enter(ebpf, raw, "io_uring:io_uring_cqring_wait")?.0 {
        WaitProgram::Classic(p) => p.load(),
        WaitProgram::Raw(p) => p.load(),
    };
    Ok(match loaded {
        Ok(()) => EnterSource::AtWait,
        Err(_) => EnterSource::HookedNoRegs,
    })
}

/// Loads and attaches the program of every event the kernel has. `tp_btf`: the
/// host's BTF when tp_btf programs are wanted (its plan says which).
pub(super) fn attach_all(
    ebpf: &mut Ebpf,
    opts: &TraceOptions,
    events: &KernelEvents,
    mut tp_btf: Option<&mut HostBtf>,
    enter_source: EnterSource,
) -> Result<Vec<Attachment>, LoadError> {
    use EventKind::{CqringWait, EnterEnter, EnterExit, FileGet, SetupFailed, Submit};
    let plan = tp_btf.as_deref().map(|b| b.plan);
    let plan = plan.as_ref();
    let mut attachments = Vec::new();
    for r in &events.resolved {
        let Some(name) = r.name else { continue };
        let tracepoint = format!("{}:{}", r.spec.category, name);
        injected_failure(r.spec.program, name, &tracepoint)?;
        if enter_source == EnterSource::AtWait
            && matches!(r.spec.kind, EnterEnter | EnterExit | SetupFailed)
        {
            continue;
        }
        if r.spec.kind == SetupFailed && attach_type_for(SetupFailed, plan) == "tp_btf" {
            // btf_sys_exit sees io_uring_setup's exit too (one compare more).
            attachments.push(Attachment {
                kind: SetupFailed,
                tracepoint: format!("raw_syscalls:sys_exit ({name})"),
                attach_type: "tp_btf",
            });
            continue;
        }
        if enter_source == EnterSource::AtWait && r.spec.kind == CqringWait {
            // Loaded by enter_source already.
            let (prog, program) = wait_with_enter(ebpf, r.raw, &tracepoint)?;
            let attached = match prog {
                WaitProgram::Classic(p) => p.attach(r.spec.category, name).map(drop),
                WaitProgram::Raw(p) => p.attach(name).map(drop),
            };
            attached.map_err(|error| LoadError::Program {
                program,
                tracepoint: tracepoint.clone(),
                error,
            })?;
            attachments.push(Attachment {
                kind: r.spec.kind,
                tracepoint: tracepoint.clone(),
                attach_type: if r.raw { "raw_tp" } else { "tracepoint" },
            });
            // The waits' enters come from the same program.
            attachments.push(Attachment {
                kind: EnterEnter,
                tracepoint,
                attach_type: "registers at the wait",
            });
            continue;
        }
        // io_uring_file_get fires once per request and only adds the request's fd,
        // which the tp_btf submit already reads from io_kiocb: in aggregating mode
        // its classic-tracepoint cost (~200 ns a request, fio page cache, 6.18) buys
        // nothing.
        if opts.mode == KernelMode::Aggregate
            && r.spec.kind == FileGet
            && attach_type_for(Submit, plan) == "tp_btf"
        {
            continue;
        }
        if let (true, Some(program)) = (r.raw, raw_program(r.spec.kind)) {
            // Laid out from BTF, attached by name: no tracefs.
            let err = |error| LoadError::Program {
                program,
                tracepoint: tracepoint.clone(),
                error,
            };
            let prog: &mut RawTracePoint = ebpf
                .program_mut(program)
                .ok_or(LoadError::MissingProgram(program))?
                .try_into()
                .map_err(err)?;
            prog.load().map_err(err)?;
            prog.attach(name).map_err(err)?;
            attachments.push(Attachment {
                kind: r.spec.kind,
                tracepoint,
                attach_type: "raw_tp",
            });
            continue;
        }
        let attach_type = attach_type_for(r.spec.kind, plan);
        if let (Some(host), "tp_btf") = (tp_btf.as_deref_mut(), attach_type) {
            let (program, raw_tp) = btf_program(r.spec.kind);
            let aya_btf = host.aya()?;
            let tracepoint = if r.spec.category == "syscalls" {
                format!("raw_syscalls:{raw_tp} ({name})")
            } else {
                tracepoint
            };
            let err = |error| LoadError::Program {
                program,
                tracepoint: tracepoint.clone(),
                error,
            };
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(program)
                .ok_or(LoadError::MissingProgram(program))?
                .try_into()
                .map_err(err)?;
            prog.load(raw_tp, aya_btf).map_err(err)?;
            prog.attach().map_err(err)?;
            attachments.push(Attachment {
                kind: r.spec.kind,
                tracepoint,
                attach_type,
            });
            continue;
        }
        let err = |error| LoadError::Program {
            program: r.spec.program,
            tracepoint: tracepoint.clone(),
            error,
        };
        let prog: &mut TracePoint = ebpf
            .program_mut(r.spec.program)
            .ok_or(LoadError::MissingProgram(r.spec.program))?
            .try_into()
            .map_err(err)?;
        prog.load().map_err(err)?;
        prog.attach(r.spec.category, name).map_err(err)?;
        attachments.push(Attachment {
            kind: r.spec.kind,
            tracepoint,
            attach_type: "tracepoint",
        });
    }
    Ok(attachments)
}

/// Names a program or tracepoint that the loader treats as failed to load, for the
/// tests of how an optional program's failure degrades (tests/faults_root.rs). Not a
/// user option: a test cannot make a real verifier refuse a program on demand.
pub const FAIL_PROGRAM_ENV: &str = "URINGTRACE_TEST_FAIL_PROGRAM";

/// The simulated failure of [`FAIL_PROGRAM_ENV`], when it names this program
/// (`tp_queue_async_work`) or tracepoint (`io_uring_queue_async_work`).
fn injected_failure(program: &'static str, name: &str, tracepoint: &str) -> Result<(), LoadError> {
    let Some(wanted) = std::env::var_os(FAIL_PROGRAM_ENV) else {
        return Ok(());
    };
    if wanted != program && wanted != name {
        return Ok(());
    }
    Err(LoadError::Program {
        program,
        tracepoint: tracepoint.to_string(),
        error: aya::sys::SyscallError {
            call: "simulated by URINGTRACE_TEST_FAIL_PROGRAM",
            io_error: std::io::Error::from_raw_os_error(libc::EINVAL),
        }
        .into(),
    })
}

/// The event kind a program (classic or tp_btf) handles.
pub(super) fn kind_of_program(events: &KernelEvents, program: &str) -> Option<EventKind> {
    match program {
        WAIT_WITH_ENTER => return Some(EventKind::CqringWait),
        "btf_submit" => return Some(EventKind::Submit),
        _ => {}
    }
    events.resolved.iter().map(|r| r.spec.kind).find(|&k| {
        events
            .resolved
            .iter()
            .any(|r| r.spec.kind == k && r.spec.program == program)
            || (k != EventKind::Submit && btf_program(k).0 == program)
    })
}
