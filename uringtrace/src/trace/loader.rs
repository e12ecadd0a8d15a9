//! Loading and attaching the eBPF programs, and draining their ring buffer.

use std::collections::BTreeMap;

use aya::{
    maps::{Array as BpfArray, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, TracePoint},
    Ebpf, EbpfLoader,
};
use thiserror::Error;
use uringtrace_common::{
    aggregate::{self as agg, Inflight, OpAgg, RingAgg},
    Config, Counter, KernelMode, RawEvent, NR_COUNTERS,
};

use super::btf::{Btf, BtfPlan};
use super::privileges::Privileges;
use super::probe::KernelEvents;
use super::tracefs::{Tracefs, TracefsError};

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{0}")]
    Privileges(String),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error("this kernel has no io_uring tracepoints (is CONFIG_IO_URING enabled?)")]
    NoIoUring,
    #[error("mapping the event ring buffer failed: {0}")]
    RingMap(#[source] std::io::Error),
    #[error("loading the eBPF object failed: {0}")]
    Object(#[source] aya::EbpfError),
    #[error("loading program {program} for {tracepoint} failed: {source}")]
    Program {
        program: &'static str,
        tracepoint: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("eBPF map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("reading kernel BTF: {0}")]
    Btf(String),
    #[error("mapping the in-flight table: {0}")]
    Mmap(#[source] std::io::Error),
    #[error("reading the possible CPUs: {0}")]
    Cpus(#[source] std::io::Error),
    #[error("--ring-size must be a power of two of at least 4096 bytes, got {0}")]
    RingSize(u32),
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

/// The BTF plan for this host: None when BTF is absent or unreadable.
pub fn host_btf_plan() -> Option<BtfPlan> {
    Btf::from_sys_fs().ok().map(|b| BtfPlan::from_btf(&b))
}

/// The attach type each kind will use under `plan`.
pub fn attach_type_for(kind: uringtrace_common::EventKind, plan: Option<&BtfPlan>) -> &'static str {
    use uringtrace_common::EventKind::*;
    match (kind, plan) {
        (Complete, Some(p)) if p.complete => "tp_btf",
        (Submit, Some(p)) if p.submit => "tp_btf",
        (EnterEnter | EnterExit, Some(p)) if p.syscalls => "tp_btf",
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
fn btf_program(kind: uringtrace_common::EventKind) -> (&'static str, &'static str) {
    use uringtrace_common::EventKind::*;
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

/// The cqring_wait program that also streams the wait's enter.
fn wait_with_enter<'a>(
    ebpf: &'a mut Ebpf,
    tracepoint: &str,
) -> Result<&'a mut TracePoint, LoadError> {
    ebpf.program_mut(WAIT_WITH_ENTER)
        .ok_or(LoadError::MissingMap(WAIT_WITH_ENTER))?
        .try_into()
        .map_err(|source| LoadError::Program {
            program: WAIT_WITH_ENTER,
            tracepoint: tracepoint.to_string(),
            source,
        })
}

/// Decides where io_uring_enter events come from, and loads the cqring_wait program
/// that reads them at the wait when the syscall is not to be hooked. That program
/// calls bpf_task_pt_regs (5.15+): when the verifier refuses it, the syscall is hooked
/// after all (the kernel's own answer, not a version check).
fn enter_source(
    ebpf: &mut Ebpf,
    opts: &TraceOptions,
    events: &KernelEvents,
    config: &Config,
) -> Result<EnterSource, LoadError> {
    use uringtrace_common::EventKind::CqringWait;
    let has_wait = events.has(CqringWait);
    if opts.syscalls || !has_wait || config.btf.regs_nr.size == 0 {
        return Ok(if opts.syscalls {
            EnterSource::Hooked
        } else {
            EnterSource::HookedNoRegs
        });
    }
    Ok(
        match wait_with_enter(ebpf, "io_uring:io_uring_cqring_wait")?.load() {
            Ok(()) => EnterSource::AtWait,
            Err(_) => EnterSource::HookedNoRegs,
        },
    )
}

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
}

impl KernelCounters {
    pub fn total_dropped(&self) -> u64 {
        self.dropped.iter().sum()
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
    pub tracefs: Tracefs,
    /// The ring buffer's size in bytes.
    pub ring_bytes: u32,
    pub enter_source: EnterSource,
}

static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/uringtrace"));

impl Tracer {
    pub fn load(opts: &TraceOptions) -> Result<Tracer, LoadError> {
        if let Some(msg) = Privileges::current().missing() {
            return Err(LoadError::Privileges(msg));
        }
        if opts.ring_bytes < 4096 || !opts.ring_bytes.is_power_of_two() {
            return Err(LoadError::RingSize(opts.ring_bytes));
        }
        raise_memlock();
        let tracefs = Tracefs::find_or_mount()?;
        let mut events = KernelEvents::resolve(|cat, name| tracefs.format(cat, name).ok());
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

        // Struct offsets are used by the classic programs too (a wait's ready CQEs);
        // only the attach type depends on --attach.
        let btf = Btf::from_sys_fs().ok();
        let full_plan = btf.as_ref().map(BtfPlan::from_btf);
        if let Some(p) = &full_plan {
            config.btf = p.layout;
        }
        let plan = full_plan.filter(|_| opts.btf);

        let mut ebpf = EbpfLoader::new()
            .override_global("CONFIG", &config, true)
            .map_max_entries("EVENTS", opts.ring_bytes)
            .load(EBPF_OBJECT)
            .map_err(LoadError::Object)?;

        let enter_source = enter_source(&mut ebpf, opts, &events, &config)?;
        events.enter_at_wait = enter_source == EnterSource::AtWait;
        let mut attachments = Vec::new();
        let mut aya_btf: Option<aya::Btf> = None;
        for r in &events.resolved {
            let Some(name) = r.name else { continue };
            use uringtrace_common::EventKind::{CqringWait, EnterEnter, EnterExit};
            if enter_source == EnterSource::AtWait && matches!(r.spec.kind, EnterEnter | EnterExit)
            {
                continue;
            }
            if enter_source == EnterSource::AtWait && r.spec.kind == CqringWait {
                // Loaded by enter_source already.
                let prog = wait_with_enter(&mut ebpf, &format!("{}:{name}", r.spec.category))?;
                prog.attach(r.spec.category, name)
                    .map_err(|source| LoadError::Program {
                        program: WAIT_WITH_ENTER,
                        tracepoint: format!("{}:{name}", r.spec.category),
                        source,
                    })?;
                attachments.push(Attachment {
                    kind: r.spec.kind,
                    tracepoint: format!("{}:{name}", r.spec.category),
                    attach_type: "tracepoint",
                });
                // The waits' enters come from the same program.
                attachments.push(Attachment {
                    kind: EnterEnter,
                    tracepoint: format!("{}:{name}", r.spec.category),
                    attach_type: "registers at the wait",
                });
                continue;
            }
            let tracepoint = format!("{}:{}", r.spec.category, name);
            let err = |source| LoadError::Program {
                program: r.spec.program,
                tracepoint: tracepoint.clone(),
                source,
            };
            // io_uring_file_get fires once per request and only adds the request's fd,
            // which the tp_btf submit already reads from io_kiocb: in aggregating mode
            // its classic-tracepoint cost (~200 ns a request, fio page cache, 6.18) buys
            // nothing.
            if opts.mode == KernelMode::Aggregate
                && r.spec.kind == uringtrace_common::EventKind::FileGet
                && attach_type_for(uringtrace_common::EventKind::Submit, plan.as_ref()) == "tp_btf"
            {
                continue;
            }
            let attach_type = attach_type_for(r.spec.kind, plan.as_ref());
            if attach_type == "tp_btf" {
                let (program, raw_tp) = btf_program(r.spec.kind);
                if aya_btf.is_none() {
                    aya_btf =
                        Some(aya::Btf::from_sys_fs().map_err(|e| LoadError::Btf(e.to_string()))?);
                }
                let aya_btf = aya_btf.as_ref().expect("just set");
                let tracepoint = if r.spec.category == "syscalls" {
                    format!("raw_syscalls:{raw_tp} ({name})")
                } else {
                    tracepoint.clone()
                };
                let err = |source| LoadError::Program {
                    program,
                    tracepoint: tracepoint.clone(),
                    source,
                };
                let prog: &mut BtfTracePoint = ebpf
                    .program_mut(program)
                    .ok_or(LoadError::MissingMap(program))?
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
            let prog: &mut TracePoint = ebpf
                .program_mut(r.spec.program)
                .ok_or(LoadError::MissingMap(r.spec.program))?
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

        let ring = RingBuf::try_from(
            ebpf.take_map("EVENTS")
                .ok_or(LoadError::MissingMap("EVENTS"))?,
        )
        .map_err(|source| LoadError::Map {
            name: "EVENTS",
            source,
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
        let map = |source| LoadError::Map {
            name: "TGIDS",
            source,
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
        let map_err = |source| LoadError::Map {
            name: "FILTER_GEN",
            source,
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
        let map_err = |source| LoadError::Map {
            name: "IOTHREADS",
            source,
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
            // A sample that is no event of ours cannot come from our programs; skip
            // it rather than failing the whole trace.
            n += usize::from(comms.decode_into(sample, out));
        });
        n
    }

    /// Compact events whose task's comm had to be read from /proc.
    pub fn comms_looked_up(&self) -> u64 {
        self.comms.unknown
    }

    pub fn counters(&self) -> Result<KernelCounters, LoadError> {
        let map_err = |source| LoadError::Map {
            name: "COUNTERS",
            source,
        };
        let arr: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.ebpf
                .map("COUNTERS")
                .ok_or(LoadError::MissingMap("COUNTERS"))?,
        )
        .map_err(map_err)?;
        let mut c = KernelCounters::default();
        for i in 0..NR_COUNTERS {
            let v: Vec<u64> = arr.get(&i, 0).map_err(map_err)?.iter().copied().collect();
            match i {
                x if x == Counter::Emitted as u32 => c.emitted = v,
                x if x == Counter::Dropped as u32 => c.dropped = v,
                x if x == Counter::Filtered as u32 => c.filtered = v,
                x if x == Counter::ReadErrors as u32 => c.read_errors = v,
                x if x == Counter::Aggregated as u32 => c.aggregated = v,
                _ => c.promoted = v,
            }
        }
        Ok(c)
    }

    /// Aggregating mode: the claimed ring slots, as (slot, entry).
    pub fn ring_aggs(&self) -> Result<Vec<(u32, RingAgg)>, LoadError> {
        let map_err = |source| LoadError::Map {
            name: "RINGS",
            source,
        };
        let arr: BpfArray<_, RingAgg> = BpfArray::try_from(
            self.ebpf
                .map("RINGS")
                .ok_or(LoadError::MissingMap("RINGS"))?,
        )
        .map_err(map_err)?;
        let mut out = Vec::new();
        for i in 0..agg::RING_SLOTS {
            let r = arr.get(&i, 0).map_err(map_err)?;
            if r.ctx != 0 {
                out.push((i, r));
            }
        }
        Ok(out)
    }

    /// Aggregating mode: per-opcode statistics of ring slot `slot` as
    /// (opcode, per-CPU entries that belong to `ctx`).
    pub fn op_aggs(&self, slot: u32, ctx: u64) -> Result<Vec<(u8, Vec<OpAgg>)>, LoadError> {
        let map_err = |source| LoadError::Map {
            name: "OPSTATS",
            source,
        };
        let arr: PerCpuArray<_, OpAgg> = PerCpuArray::try_from(
            self.ebpf
                .map("OPSTATS")
                .ok_or(LoadError::MissingMap("OPSTATS"))?,
        )
        .map_err(map_err)?;
        let mut out = Vec::new();
        for op in 0..agg::OPCODE_SLOTS {
            let per_cpu = arr
                .get(&agg::op_index(slot, op as u8), 0)
                .map_err(map_err)?;
            let mine: Vec<OpAgg> = per_cpu.iter().filter(|e| e.ctx == ctx).copied().collect();
            if !mine.is_empty() {
                out.push((mine[0].opcode as u8, mine));
            }
        }
        Ok(out)
    }

    /// Aggregating mode: the kernel's in-flight table, mapped into our memory.
    pub fn inflight_table(&self) -> Result<InflightTable, LoadError> {
        use std::os::fd::{AsFd as _, AsRawFd as _};
        let Some(aya::maps::Map::Array(data)) = self.ebpf.map("INFLIGHT") else {
            return Err(LoadError::MissingMap("INFLIGHT"));
        };
        let len = agg::INFLIGHT_SLOTS as usize * std::mem::size_of::<Inflight>();
        // SAFETY: mapping a BPF_F_MMAPABLE array of exactly this size; the mapping
        // keeps the map alive until munmap.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                data.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(LoadError::Mmap(std::io::Error::last_os_error()));
        }
        Ok(InflightTable {
            ptr: ptr.cast(),
            len,
        })
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

/// The kernel's in-flight table (aggregating mode), shared with the programs.
pub struct InflightTable {
    ptr: *mut Inflight,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access goes through volatile reads
// and writes of whole fields.
unsafe impl Send for InflightTable {}

impl InflightTable {
    /// Slots holding a request now.
    pub fn used(&self) -> usize {
        (0..agg::INFLIGHT_SLOTS as usize)
            // SAFETY: i is within the mapping; a racy read of one field is fine here.
            .filter(|&i| unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*self.ptr.add(i)).req)) } != 0)
            .count()
    }

    /// Visits every occupied slot with a consistent copy; `f` returns true to mark
    /// the slot streamed (its completion will then be streamed too).
    pub fn scan(&mut self, mut f: impl FnMut(&Inflight) -> bool) {
        for i in 0..agg::INFLIGHT_SLOTS as usize {
            // SAFETY: i is within the mapping; the kernel may write concurrently, so
            // the copy is re-validated by the request pointer.
            unsafe {
                let p = self.ptr.add(i);
                let req = std::ptr::read_volatile(std::ptr::addr_of!((*p).req));
                if req == 0 {
                    continue;
                }
                let copy = std::ptr::read_volatile(p);
                if copy.req != req {
                    continue;
                }
                if f(&copy) && std::ptr::read_volatile(std::ptr::addr_of!((*p).req)) == req {
                    std::ptr::write_volatile(std::ptr::addr_of_mut!((*p).streamed), 1);
                }
            }
        }
    }
}

impl Drop for InflightTable {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what inflight_table mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
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
