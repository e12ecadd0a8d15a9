//! Loading and attaching the eBPF programs, and draining their ring buffer.
//!
//! Parts: `attach` picks and attaches each event's program, `readout` reads the
//! programs' maps (counters, aggregation tables, the in-flight table).

use std::collections::BTreeMap;

use aya::{
    maps::{Array as BpfArray, HashMap as BpfHashMap, MapData, RingBuf},
    Ebpf, EbpfLoader,
};
use thiserror::Error;
use uringtrace_common::{Config, KernelMode, RawEvent};

use super::privileges::{MissingPrivileges, Privileges};
use super::probe::KernelEvents;
use super::tracefs::{Tracefs, TracefsError};

mod attach;
mod readout;

pub use attach::{attach_type_for, host_btf_plan};
pub use readout::InflightTable;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Privileges(#[from] MissingPrivileges),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error("this kernel has no io_uring tracepoints (is CONFIG_IO_URING enabled?)")]
    NoIoUring,
    // No `#[source]` here: each message already says its cause, with the cause's own
    // causes (`causes`), so that `{}` shows it and anyhow's `{:#}` does not repeat it.
    /// Tracing without tracefs needs the kernel's BTF (and, with --attach tracepoint,
    /// is not possible at all).
    #[error(
        "{tracefs}; without it uringtrace needs {without} (tracing with only CAP_BPF and \
         CAP_PERFMON works where the kernel has BTF). Run as root, or let this user's \
         group read tracefs: mount -o remount,gid=GROUP,mode=0750 {mount}"
    )]
    NeedTracefs {
        tracefs: TracefsError,
        without: &'static str,
        mount: String,
    },
    #[error("mapping the event ring buffer failed: {0}")]
    RingMap(std::io::Error),
    #[error("loading the eBPF object failed: {}", causes(.0))]
    Object(aya::EbpfError),
    #[error("loading program {program} for {tracepoint} failed: {}", causes(.error))]
    Program {
        program: &'static str,
        tracepoint: String,
        error: aya::programs::ProgramError,
    },
    #[error("eBPF map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("eBPF program {0} is missing from the object")]
    MissingProgram(&'static str),
    #[error("eBPF map {name}: {}", causes(.error))]
    Map {
        name: &'static str,
        error: aya::maps::MapError,
    },
    #[error("reading kernel BTF: {}", causes(.0))]
    Btf(aya::BtfError),
    #[error("mapping the in-flight table: {0}")]
    Mmap(std::io::Error),
    #[error("reading the possible CPUs: {0}")]
    Cpus(std::io::Error),
    #[error("--ring-size must be a power of two of at least 4096 bytes, got {0}")]
    RingSize(u32),
}

/// An error and its causes, "a: b: c", each said once (an error whose message already
/// ends with its cause's is not followed by that cause again).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let c = cause.to_string();
        if !text.ends_with(&c) {
            text = format!("{text}: {c}");
        }
        next = cause.source();
    }
    text
}

/// How to trace.
#[derive(Clone, Debug)]
pub struct TraceOptions {
    /// Ring buffer size in bytes (power of two, ≥ page size).
    pub ring_bytes: u32,
    /// Only trace these processes (and their children). Empty: the whole host.
    pub pids: Vec<u32>,
    /// Trace only the given pids (true also when `pids` is empty but a command will
    /// be added with [`Tracer::add_pid`]).
    pub filter: bool,
    /// Use tp_btf for the hot tracepoints when the kernel's BTF allows (default).
    /// false: classic tracepoints everywhere.
    pub btf: bool,
    /// Stream every event, or aggregate fast successful requests in the kernel.
    pub mode: KernelMode,
    /// Aggregating mode: requests slower than this are streamed in full.
    pub slow_ns: u64,
    /// Hook io_uring_enter's entry and exit. Any syscall hook taxes every syscall of
    /// every process on the host (raw_syscalls run a program on each; a per-syscall
    /// tracepoint puts all syscalls on the slow path). false: the enter a wait happens
    /// in is read at io_uring_cqring_wait instead (5.15+; see [`EnterSource`]).
    pub syscalls: bool,
}

/// Where io_uring_enter events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnterSource {
    /// Hooked at entry and exit (every enter, with its result).
    Hooked,
    /// Read from the waiting task's registers at io_uring_cqring_wait: only enters
    /// that sleep, with no exit.
    AtWait,
    /// Asked not to hook, but this kernel cannot read them at the wait
    /// (bpf_task_pt_regs is 5.15+): hooked after all.
    HookedNoRegs,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            ring_bytes: 16 << 20,
            pids: Vec::new(),
            filter: false,
            btf: true,
            mode: KernelMode::Stream,
            slow_ns: DEFAULT_SLOW_NS,
            syscalls: true,
        }
    }
}

/// Aggregating mode streams requests slower than this. Far below every detector's
/// threshold (request-stalled 1 s, wait-cycle, missed wakeups), far above the tens of
/// microseconds of a healthy request.
pub const DEFAULT_SLOW_NS: u64 = 10_000_000;

/// An attached tracepoint, for headers and `doctor`.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub kind: uringtrace_common::EventKind,
    pub tracepoint: String,
    pub attach_type: &'static str,
}

/// Per-CPU counters read from the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub emitted: Vec<u64>,
    pub dropped: Vec<u64>,
    pub filtered: Vec<u64>,
    pub read_errors: Vec<u64>,
    pub aggregated: Vec<u64>,
    pub promoted: Vec<u64>,
    /// Samples read from the ring buffer that were no event (e.g. cut short): lost
    /// like a drop, but on no CPU in particular (the ring buffer is shared).
    pub undecodable: u64,
}

impl KernelCounters {
    /// Events lost: dropped by the kernel (ring buffer full) or unreadable.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.iter().sum::<u64>() + self.undecodable
    }

    /// The losses every view and report shows: per CPU as the kernel counted them,
    /// and in total with the undecodable samples.
    pub fn lost(&self) -> crate::analyzer::report::LostEvents {
        let mut lost = crate::analyzer::report::LostEvents::counted(&self.dropped);
        lost.total = self.total_dropped();
        lost
    }
    pub fn total_emitted(&self) -> u64 {
        self.emitted.iter().sum()
    }
}

/// Most events one [`Tracer::drain`] returns.
pub const DRAIN_MAX: usize = 1 << 16;

/// Loaded and attached programs. Dropping it detaches everything: aya owns each
/// link and program fd, and closing them is what removes them from the kernel.
pub struct Tracer {
    ebpf: Ebpf,
    /// Maps the ring buffer `_ring` owns (unmapped first: fields drop in order).
    reader: super::ring::RingReader,
    _ring: RingBuf<MapData>,
    /// Task comms for compact events.
    comms: super::wire::Comms,
    pub events: KernelEvents,
    pub attachments: Vec<Attachment>,
    /// None when tracing without tracefs (from BTF: [`KernelEvents::without_tracefs`]).
    pub tracefs: Option<Tracefs>,
    /// The ring buffer's size in bytes.
    pub ring_bytes: u32,
    pub enter_source: EnterSource,
}

static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/uringtrace"));

impl Tracer {
    pub fn load(opts: &TraceOptions) -> Result<Tracer, LoadError> {
        Privileges::current().check()?;
        if opts.ring_bytes < 4096 || !opts.ring_bytes.is_power_of_two() {
            return Err(LoadError::RingSize(opts.ring_bytes));
        }
        raise_memlock();
        // Struct offsets are used by the classic programs too (a wait's ready CQEs);
        // only the attach type depends on --attach.
        let mut btf = attach::HostBtf::read();
        let (tracefs, mut events) = resolve_events(opts, btf.as_ref())?;
        events.fdinfo_sq_times = super::fdinfo::has_sq_times();
        if events.io_uring_count() == 0 {
            return Err(LoadError::NoIoUring);
        }

        let mut config = Config::zeroed();
        config.filter_enabled = u32::from(opts.filter || !opts.pids.is_empty());
        config.self_tgid = std::process::id();
        config.mode = opts.mode as u32;
        config.enter_nr = libc::SYS_io_uring_enter as u32;
        config.slow_ns = opts.slow_ns;
        config.enter_from_wait = u32::from(!opts.syscalls);
        for r in events.resolved.iter().filter(|r| r.name.is_some()) {
            config.kinds[r.spec.kind as usize] = r.layout;
        }

        if let Some(b) = &btf {
            config.btf = b.plan.layout;
        }

        // An optional program that fails to load or attach costs only its detectors:
        // the whole object is loaded again without it (what was attached before the
        // failure goes with the dropped `Ebpf`). At most one retry per program.
        let (mut ebpf, enter_source, attachments) = loop {
            let mut ebpf = EbpfLoader::new()
                .override_global("CONFIG", &config, true)
                .map_max_entries("EVENTS", opts.ring_bytes)
                .load(EBPF_OBJECT)
                .map_err(LoadError::Object)?;
            let enter_source = attach::enter_source(&mut ebpf, opts, &events, &config)?;
            events.enter_at_wait = enter_source == EnterSource::AtWait;
            let tp_btf = btf.as_mut().filter(|_| opts.btf);
            match attach::attach_all(&mut ebpf, opts, &events, tp_btf, enter_source) {
                Ok(a) => break (ebpf, enter_source, a),
                Err(LoadError::Program {
                    program,
                    tracepoint,
                    error,
                }) => {
                    let Some(kind) =
                        attach::kind_of_program(&events, program).filter(|k| !REQUIRED.contains(k))
                    else {
                        return Err(LoadError::Program {
                            program,
                            tracepoint,
                            error,
                        });
                    };
                    events.mark_failed(
                        kind,
                        format!("{program} ({tracepoint})"),
                        error_text(&error),
                    );
                }
                Err(e) => return Err(e),
            }
        };

        let ring = RingBuf::try_from(
            ebpf.take_map("EVENTS")
                .ok_or(LoadError::MissingMap("EVENTS"))?,
        )
        .map_err(|error| LoadError::Map {
            name: "EVENTS",
            error,
        })?;
        let reader =
            super::ring::RingReader::new(std::os::fd::AsFd::as_fd(&ring), opts.ring_bytes as usize)
                .map_err(LoadError::RingMap)?;
        let mut tracer = Tracer {
            ebpf,
            reader,
            _ring: ring,
            comms: Default::default(),
            events,
            attachments,
            tracefs,
            ring_bytes: opts.ring_bytes,
            enter_source,
        };
        for &pid in &opts.pids {
            tracer.add_pid(pid)?;
        }
        Ok(tracer)
    }

    /// Adds a process to the filter, and registers its existing io threads (SQPOLL,
    /// io-wq), which were created before tracing started.
    pub fn add_pid(&mut self, pid: u32) -> Result<(), LoadError> {
        let map = |error| LoadError::Map {
            name: "TGIDS",
            error,
        };
        let mut tgids: BpfHashMap<_, u32, u32> = BpfHashMap::try_from(
            self.ebpf
                .map_mut("TGIDS")
                .ok_or(LoadError::MissingMap("TGIDS"))?,
        )
        .map_err(map)?;
        tgids.insert(pid, 1, 0).map_err(map)?;
        self.bump_filter_gen()?;
        self.register_io_threads(Some(pid))
    }

    /// Invalidates the programs' per-CPU task caches (which hold filter verdicts).
    pub(super) fn bump_filter_gen(&mut self) -> Result<(), LoadError> {
        let map_err = |error| LoadError::Map {
            name: "FILTER_GEN",
            error,
        };
        let mut gen: BpfArray<_, u64> = BpfArray::try_from(
            self.ebpf
                .map_mut("FILTER_GEN")
                .ok_or(LoadError::MissingMap("FILTER_GEN"))?,
        )
        .map_err(map_err)?;
        let v = gen.get(&0, 0).map_err(map_err)?;
        gen.set(0, v + 1, 0).map_err(map_err)
    }

    /// Registers io threads already running (of `pid`, or of every process).
    pub fn register_io_threads(&mut self, pid: Option<u32>) -> Result<(), LoadError> {
        let map_err = |error| LoadError::Map {
            name: "IOTHREADS",
            error,
        };
        let mut threads: BpfHashMap<_, u32, u32> = BpfHashMap::try_from(
            self.ebpf
                .map_mut("IOTHREADS")
                .ok_or(LoadError::MissingMap("IOTHREADS"))?,
        )
        .map_err(map_err)?;
        for (tid, tgid) in existing_io_threads(pid) {
            threads.insert(tid, tgid, 0).map_err(map_err)?;
        }
        Ok(())
    }

    /// Moves the events waiting in the ring buffer into `out`, at most
    /// [`DRAIN_MAX`] at a time (bounded batches: the events behind them wait in the
    /// ring, not in memory). Never blocks.
    pub fn drain(&mut self, out: &mut Vec<RawEvent>) -> usize {
        let comms = &mut self.comms;
        let mut n = 0;
        self.reader.drain(DRAIN_MAX, |sample| {
            // A sample that is no event of ours (too short, unknown kind) cannot come
            // from our programs; skip it rather than failing the whole trace, and
            // count it as lost (`Comms::undecodable`, in `counters()`).
            n += usize::from(comms.decode_into(sample, out));
        });
        n
    }

    /// Compact events whose task's comm had to be read from /proc.
    pub fn comms_looked_up(&self) -> u64 {
        self.comms.unknown
    }

    /// A map of the programs, for reading (see [`super::occupancy`]).
    pub(super) fn map(&self, name: &str) -> Option<&aya::maps::Map> {
        self.ebpf.map(name)
    }

    pub(super) fn map_mut(&mut self, name: &str) -> Option<&mut aya::maps::Map> {
        self.ebpf.map_mut(name)
    }

    pub fn attach_types(&self) -> BTreeMap<String, String> {
        self.attachments
            .iter()
            .map(|a| (a.tracepoint.clone(), a.attach_type.to_string()))
            .collect()
    }
}

/// The events of this kernel: from tracefs `format` files when tracefs can be read
/// (or mounted), else from BTF alone (CAP_BPF + CAP_PERFMON without root: tracefs is
/// root's by default).
fn resolve_events(
    opts: &TraceOptions,
    btf: Option<&attach::HostBtf>,
) -> Result<(Option<Tracefs>, KernelEvents), LoadError> {
    let err = match Tracefs::find_or_mount() {
        Ok(t) => {
            let events = KernelEvents::resolve(|cat, name| t.format(cat, name).ok());
            return Ok((Some(t), events));
        }
        Err(e) => e,
    };
    let mount = Tracefs::mount_point()
        .unwrap_or_else(|| "/sys/kernel/tracing".into())
        .display()
        .to_string();
    let need = |without| LoadError::NeedTracefs {
        tracefs: TracefsError::NotReadable(mount.clone().into()),
        without,
        mount: mount.clone(),
    };
    let Some(host) = btf else {
        return Err(match err {
            TracefsError::NotReadable(_) => {
                need("kernel BTF (/sys/kernel/btf/vmlinux), which this kernel lacks")
            }
            other => other.into(),
        });
    };
    if !opts.btf {
        return Err(match err {
            TracefsError::NotReadable(_) => {
                need("raw or BTF tracepoints, which --attach tracepoint rules out")
            }
            other => other.into(),
        });
    }
    let plan = host.plan;
    let events = KernelEvents::resolve_btf(
        host.btf(),
        |k| attach::attach_type_for(k, Some(&plan)) == "tp_btf",
        err.to_string(),
    );
    Ok((None, events))
}

/// Programs without which nothing useful is traced: submissions and completions, and
/// forks (without them `-- CMD` would silently lose the command's children). Their
/// failure fails the load; any other program's failure degrades its detectors.
const REQUIRED: &[uringtrace_common::EventKind] = &[
    uringtrace_common::EventKind::Submit,
    uringtrace_common::EventKind::Complete,
    uringtrace_common::EventKind::ProcessFork,
];

/// One line of a program error and its cause (a verifier log can be thousands of
/// lines: its first line is kept).
fn error_text(e: &aya::programs::ProgramError) -> String {
    let mut s = e.to_string().lines().next().unwrap_or_default().to_string();
    if let Some(src) = std::error::Error::source(e) {
        s.push_str(&format!(": {src}"));
    }
    s
}

/// A delete of a key that is already gone (the kernel or a race removed it) is fine.
pub(super) fn ignore_missing(
    r: Result<(), aya::maps::MapError>,
) -> Result<(), aya::maps::MapError> {
    match r {
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Pre-5.11 kernels charge BPF maps to RLIMIT_MEMLOCK; later ones use memcg and the
/// call may fail without CAP_SYS_RESOURCE, which is harmless there.
fn raise_memlock() {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to a stack struct.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) };
}

/// (tid, tgid) of every io thread (SQPOLL, io-wq) of `pid`, or of all processes.
pub fn existing_io_threads(pid: Option<u32>) -> Vec<(u32, u32)> {
    let pids: Vec<u32> = match pid {
        Some(p) => vec![p],
        None => std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut out = Vec::new();
    for p in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if uringtrace_common::Role::from_comm(comm.trim().as_bytes())
                != uringtrace_common::Role::Submitter
            {
                out.push((tid, p));
            }
        }
    }
    out
}
