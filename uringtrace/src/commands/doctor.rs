use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{DoctorArgs, DoctorFormat};
use crate::system::{self, IoUringDisabled};
use crate::trace::loader::{EnterSource, TraceOptions, Tracer};
use crate::trace::privileges::Privileges;
use crate::trace::probe::{Degraded, KernelEvents};
use crate::trace::tracefs::Tracefs;

#[derive(Debug, Serialize)]
pub struct TracepointRow {
    pub kind: String,
    pub tracepoint: Option<String>,
    /// Candidate names when missing.
    pub wanted: String,
    pub attach_type: Option<String>,
    /// The kernel has it, but attaching it needs tracefs, which this process cannot
    /// use (its prototype is not one uringtrace can read from BTF).
    pub needs_tracefs: bool,
}

#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub kernel_release: String,
    pub btf: bool,
    pub tracefs: Result<String, String>,
    pub tracefs_mounted_by_uringtrace: bool,
    /// Tracepoints that need tracefs, which this process cannot use (empty when
    /// tracefs works, or when every event attaches from BTF without it).
    pub tracefs_needed_for: Vec<String>,
    /// Events resolved from BTF because tracefs could not be used.
    pub tracepoints_from_btf: bool,
    pub privileges: Privileges,
    pub privileges_missing: Option<String>,
    pub io_uring_disabled: IoUringDisabled,
    pub io_uring_disabled_meaning: String,
    pub io_uring_setup: Result<(), String>,
    pub io_uring_availability: crate::trace::availability::SelfCheck,
    pub io_uring_tracepoints: usize,
    pub tracepoints: Vec<TracepointRow>,
    pub ebpf_load: Result<String, String>,
    /// Where io_uring_enter events come from host-wide and with --pid or a command.
    pub io_uring_enter: String,
    /// Host-wide: "registers at the wait" (not hooked) or "hooked"; None when the
    /// programs were not loaded.
    pub enter_host_wide: Option<&'static str>,
    pub degraded: Vec<Degraded>,
    /// What host-wide tracing loses by not hooking io_uring_enter.
    pub host_wide_precision: Vec<Degraded>,
}

/// Builds the tracepoint table and degraded list from resolved events (pure).
pub fn tracepoint_rows(
    events: &KernelEvents,
    plan: Option<&crate::trace::btf::BtfPlan>,
) -> Vec<TracepointRow> {
    events
        .resolved
        .iter()
        .map(|r| TracepointRow {
            kind: r.spec.kind.name().into(),
            tracepoint: r.name.map(|n| format!("{}:{n}", r.spec.category)),
            wanted: format!("{}:{}", r.spec.category, r.spec.names.join(" | ")),
            attach_type: r.name.map(|_| {
                if events.has_failed(r.spec.kind) {
                    "failed to load or attach".into()
                } else if r.raw {
                    "raw_tp".into()
                } else {
                    crate::trace::loader::attach_type_for(r.spec.kind, plan).into()
                }
            }),
            needs_tracefs: events.need_tracefs.iter().any(|(k, _)| *k == r.spec.kind),
        })
        .collect()
}

pub fn gather() -> DoctorReport {
    let privileges = Privileges::current();
    let privileges_missing = privileges.missing();
    let (tracefs, mounted) = if privileges_missing.is_none() {
        match Tracefs::find_or_mount() {
            Ok(t) => {
                let m = t_mounted(&t);
                (Ok(t), m)
            }
            Err(e) => (Err(e.to_string()), false),
        }
    } else {
        match Tracefs::find() {
            Some(root) => (Ok(Tracefs::at(root)), false),
            None => match Tracefs::mount_point() {
                Some(p) => (
                    Err(crate::trace::tracefs::TracefsError::NotReadable(p).to_string()),
                    false,
                ),
                None => (
                    Err("not mounted (uringtrace mounts it when run as root)".into()),
                    false,
                ),
            },
        }
    };
    let plan = crate::trace::loader::host_btf_plan();
    // As the loader does: from tracefs, else from BTF alone (no root needed to read
    // it), so that a missing privilege is never reported as a kernel without events.
    let mut events = match (&tracefs, crate::trace::btf::Btf::from_sys_fs()) {
        (Ok(t), _) => KernelEvents::resolve(|c, n| t.format(c, n).ok()),
        (Err(e), Ok(btf)) => KernelEvents::resolve_btf(
            &btf,
            |k| crate::trace::loader::attach_type_for(k, plan.as_ref()) == "tp_btf",
            e.clone(),
        ),
        (Err(_), Err(_)) => KernelEvents::default(),
    };
    events.fdinfo_sq_times = crate::trace::fdinfo::has_sq_times();
    // Loaded twice: as host-wide tracing does (io_uring_enter not hooked) and as
    // tracing a command does (hooked), so both sets of programs pass the verifier.
    let mut io_uring_enter = "unknown (the eBPF programs were not loaded)".to_string();
    let mut host_wide_precision = Vec::new();
    let mut enter_host_wide = None;
    let ebpf_load = if let Some(m) = &privileges_missing {
        Err(m.clone())
    } else {
        let load = |syscalls| {
            Tracer::load(&TraceOptions {
                filter: true,
                syscalls,
                ..TraceOptions::default()
            })
        };
        match load(false).and_then(|host| Ok((host, load(true)?))) {
            Ok((host, cmd)) => {
                io_uring_enter = enter_source_text(host.enter_source);
                enter_host_wide = Some(match host.enter_source {
                    EnterSource::AtWait => "registers at the wait",
                    EnterSource::Hooked | EnterSource::HookedNoRegs => "hooked",
                });
                host_wide_precision = host
                    .events
                    .degraded()
                    .into_iter()
                    .filter(|d| {
                        d.reason.starts_with("less precise") || d.reason.starts_with("not seen")
                    })
                    .collect();
                // An optional program that failed (in either load) degrades its
                // detectors (listed below).
                for f in host.events.failed.iter().chain(&cmd.events.failed) {
                    if !events.has_failed(f.kind) {
                        events.failed.push(f.clone());
                    }
                }
                let failed: Vec<String> = events.failed.iter().map(|f| f.program.clone()).collect();
                Ok(format!(
                    "loaded and attached {} programs (host-wide) and {} (a command), then detached them{}",
                    host.attachments.len(),
                    cmd.attachments.len(),
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!("; failed to load or attach: {}", failed.join(", "))
                    }
                ))
            }
            Err(e) => Err(format!("{e:#}")),
        }
    };
    let disabled = IoUringDisabled::read();
    DoctorReport {
        kernel_release: system::kernel_release(),
        btf: system::has_btf(),
        tracefs: tracefs
            .as_ref()
            .map(|t| t.root.display().to_string())
            .map_err(Clone::clone),
        tracefs_mounted_by_uringtrace: mounted,
        tracefs_needed_for: events
            .need_tracefs
            .iter()
            .map(|(_, tp)| tp.clone())
            .collect(),
        tracepoints_from_btf: events.without_tracefs.is_some(),
        privileges,
        privileges_missing,
        io_uring_disabled_meaning: disabled.explain(),
        io_uring_disabled: disabled,
        io_uring_setup: system::probe_io_uring(),
        io_uring_availability: crate::trace::availability::SelfCheck::run(),
        io_uring_tracepoints: events.io_uring_count()
            + events
                .need_tracefs
                .iter()
                .filter(|(_, tp)| tp.starts_with("io_uring:"))
                .count(),
        tracepoints: tracepoint_rows(&events, plan.as_ref()),
        ebpf_load,
        io_uring_enter,
        enter_host_wide,
        degraded: events.degraded(),
        host_wide_precision,
    }
}

fn enter_source_text(s: EnterSource) -> String {
    match s {
        EnterSource::AtWait => "host-wide: not hooked (no program on the host's syscalls); \
            a wait's io_uring_enter is read at io_uring_cqring_wait. \
            With --pid or a command: hooked at entry and exit (--syscall-hooks changes this)"
            .into(),
        EnterSource::Hooked | EnterSource::HookedNoRegs => "hooked at entry and exit even \
            host-wide: this kernel refused bpf_task_pt_regs (5.15+), needed to read a \
            wait's io_uring_enter at io_uring_cqring_wait; every syscall of the host pays for \
            the hook while tracing"
            .into(),
    }
}

fn t_mounted(t: &Tracefs) -> bool {
    t.mounted_by_us
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok  "
    } else {
        "FAIL"
    }
}

pub fn render_text(r: &DoctorReport) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(format!("[{}] kernel {}", mark(true), r.kernel_release));
    line(format!(
        "[{}] BTF: {}",
        mark(r.btf),
        if r.btf {
            "/sys/kernel/btf/vmlinux present"
        } else {
            "absent (only classic tracepoints can be used)"
        }
    ));
    match &r.tracefs {
        Ok(p) => line(format!(
            "[{}] tracefs at {p}{}",
            mark(true),
            if r.tracefs_mounted_by_uringtrace {
                " (was not mounted: mounted it now)"
            } else {
                ""
            }
        )),
        Err(e) if r.tracepoints_from_btf && r.tracefs_needed_for.is_empty() => line(format!(
            "[{}] tracefs: {e}\n       not needed: every tracepoint attaches from BTF (raw_tp, tp_btf)",
            mark(true)
        )),
        Err(e) => line(format!(
            "[{}] tracefs: {e}\n       needed for {}: run as root, or let this user's group \
             read it: mount -o remount,gid=GROUP,mode=0750 /sys/kernel/tracing",
            mark(false),
            if r.tracefs_needed_for.is_empty() {
                "every tracepoint (this kernel has no BTF)".to_string()
            } else {
                r.tracefs_needed_for.join(", ")
            }
        )),
    }
    let p = &r.privileges;
    line(format!(
        "[{}] privileges: euid {}, CAP_SYS_ADMIN {}, CAP_BPF {}, CAP_PERFMON {}{}",
        mark(r.privileges_missing.is_none()),
        p.euid,
        yn(p.cap_sys_admin),
        yn(p.cap_bpf),
        yn(p.cap_perfmon),
        r.privileges_missing
            .as_deref()
            .map(|m| format!("\n       {m}"))
            .unwrap_or_default()
    ));
    line(fdinfo_line(p));
    line(format!(
        "[{}] kernel.io_uring_disabled: {}",
        mark(!matches!(r.io_uring_disabled, IoUringDisabled::Value(2))),
        r.io_uring_disabled_meaning
    ));
    match &r.io_uring_setup {
        Ok(()) => line(format!(
            "[{}] io_uring_setup works for this process",
            mark(true)
        )),
        Err(e) => line(format!("[{}] {e}", mark(false))),
    }
    line(r.io_uring_availability.line(mark));
    match &r.ebpf_load {
        Ok(m) => line(format!("[{}] eBPF: {m}", mark(true))),
        Err(e) => line(format!("[{}] eBPF: {e}", mark(false))),
    }
    line(format!("       io_uring_enter: {}", r.io_uring_enter));
    line(String::new());
    line(format!(
        "Tracepoints ({} io_uring tracepoints on this kernel{}):",
        r.io_uring_tracepoints,
        if r.tracepoints_from_btf {
            ", from its BTF: tracefs is not readable"
        } else {
            ""
        }
    ));
    for t in &r.tracepoints {
        match (&t.tracepoint, &t.attach_type) {
            (Some(tp), Some(at)) => line(format!("  {:<17} {:<45} {at}", t.kind, tp)),
            _ if t.needs_tracefs => {
                line(format!("  {:<17} {:<45} needs tracefs", t.kind, t.wanted))
            }
            _ => line(format!("  {:<17} {:<45} missing", t.kind, t.wanted)),
        }
    }
    line(String::new());
    if r.degraded.is_empty() {
        line("Detectors: all fully supported on this kernel".into());
    } else {
        line("Detectors degraded on this kernel:".into());
        for d in &r.degraded {
            line(format!("  {:<22} {}", d.rule, d.reason));
        }
    }
    if !r.host_wide_precision.is_empty() {
        line("Host-wide (io_uring_enter not hooked), less precise or not seen:".into());
        for d in &r.host_wide_precision {
            let why = d.reason.split_once(": ").map_or(d.reason.as_str(), |x| x.1);
            line(format!("  {:<22} {why}", d.rule));
        }
    }
    s
}

/// /proc/PID/fdinfo of a ring (its overflow list and SQ/CQ occupancy): another user's
/// needs ptrace read access (CAP_SYS_PTRACE) and, for the 0500 fd and fdinfo
/// directories and 0400 files, CAP_DAC_READ_SEARCH (6.18: either alone gives nothing).
fn fdinfo_line(p: &Privileges) -> String {
    if p.euid == 0 || (p.cap_sys_ptrace && p.cap_dac_read_search) {
        "[ok  ] /proc/PID/fdinfo: readable for every process".into()
    } else {
        format!(
            "[note] /proc/PID/fdinfo: readable only for processes of uid {}: rings of other \
             users get no ring-state samples (overflow backlog, SQ/CQ occupancy); grant \
             CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH for them (setcap \
             cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search+ep)",
            p.euid
        )
    }
}

fn yn(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let report = gather();
    match args.format {
        DoctorFormat::Text => print!("{}", render_text(&report)),
        DoctorFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    let ok = report.privileges_missing.is_none()
        && report.ebpf_load.is_ok()
        && report.io_uring_tracepoints > 0;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
