//! A live tracing session: the tracer, an optional traced command, and the stop
//! conditions (duration, Ctrl-C/SIGTERM, the command exiting).

use std::io;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use uringtrace_common::RawEvent;

use super::aggregate::Poller;
use super::fdinfo;
use super::loader::{KernelCounters, LoadError, TraceOptions, Tracer};
use super::occupancy::{DebugStats, SessionSizes};
use super::ring_watch::ring_alive;
pub use super::ring_watch::{RingWatch, FORGET_AFTER};
use super::sweep::Sweeper;
use uringtrace_common::KernelMode;

#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Load(#[from] LoadError),
    // Not `source`: thiserror would chain the raw errno text after ours.
    #[error("cannot start {command:?}: {}", describe_spawn_error(error))]
    Spawn { command: String, error: io::Error },
    #[error("installing the signal handler failed: {0}")]
    Signal(io::Error),
    #[error("creating the --debug-stats file: {0}")]
    DebugStats(io::Error),
}

/// Words, not errno numbers, for why a command could not start.
fn describe_spawn_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no such command (check the name and PATH)".into(),
        Some(libc::EACCES) => "permission denied (is it executable?)".into(),
        Some(libc::ENOEXEC) => "not an executable format".into(),
        _ => e.kind().to_string(),
    }
}

#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    pub trace: TraceOptions,
    pub duration: Option<Duration>,
    /// Run and trace this command (and its children) until it exits.
    pub command: Vec<String>,
    /// Write map occupancy and session sizes here every few seconds (hidden
    /// `--debug-stats`; see [`super::occupancy`]).
    pub debug_stats: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Duration,
    Signal,
    CommandExited(Option<i32>),
    /// The sink asked to stop (e.g. a TUI quit key).
    Sink,
}

/// What the sink wants after a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

pub struct Session {
    pub tracer: Tracer,
    child: Option<TracedChild>,
    stop: Arc<AtomicBool>,
    started: Instant,
    duration: Option<Duration>,
    /// Processes seen using io_uring: their rings are sampled from fdinfo.
    ring_owners: std::collections::BTreeSet<u32>,
    /// What their fds refer to, which rings closed, which processes exited.
    fds: fdinfo::FdWatch,
    /// Owners of rings with task work waiting for them: their state from /proc.
    owners: super::owner_state::OwnerWatch,
    /// Aggregating mode: reads the kernel's statistics into the stream.
    aggregates: Option<Poller>,
    /// Rings seen in the trace, forgotten in the kernel once they are gone.
    rings: RingWatch,
    debug_stats: Option<DebugStats>,
    /// Removes kernel map entries of gone tasks and rings no event retires.
    sweeper: Sweeper,
    /// Events drained so far.
    events: u64,
    /// What the consumer loop did (events it handled, time it spent on them).
    pub consumer: super::wire::ConsumerStats,
}

/// After the traced command exits, keep draining this long: io-wq and task_work
/// completions of its last requests can land just after the exit is seen.
const EXIT_GRACE: Duration = Duration::from_millis(100);
const POLL_INTERVAL: Duration = Duration::from_millis(4);
/// A drain that found only a few events naps briefly before the next: reading right
/// behind the producers costs a cross-CPU cache miss per event (the lines were just
/// written), while a batch that has built up for a millisecond streams (2-vCPU VM,
/// 6.18: ~130 ns an event chasing the producer, ~40 ns in batches). A millisecond at
/// 10 M events/s is 640 KiB of a 64 MiB ring.
const SMALL_BATCH: usize = 4096;
const BATCH_NAP: Duration = Duration::from_millis(1);
/// How often ring state is sampled from fdinfo (SQ head/tail: needed to see SQEs
/// that an SQPOLL thread never picked up).
const FDINFO_INTERVAL: Duration = Duration::from_millis(100);

impl Session {
    pub fn start(opts: &SessionOptions) -> Result<Session, SessionError> {
        let mut trace = opts.trace.clone();
        trace.filter |= !opts.command.is_empty();
        let mut tracer = Tracer::load(&trace)?;
        if !trace.filter {
            // Host-wide: io threads that already exist must be known for sched events.
            tracer.register_io_threads(None)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(SessionError::Signal)?;
        }
        let child = if opts.command.is_empty() {
            None
        } else {
            Some(spawn_traced(&opts.command, &mut tracer)?)
        };
        let ring_owners = child
            .as_ref()
            .map(|c: &TracedChild| c.id())
            .into_iter()
            .chain(opts.trace.pids.iter().copied())
            .collect();
        let aggregates = match trace.mode {
            KernelMode::Aggregate => Some(Poller::new(&tracer, trace.slow_ns)?),
            _ => None,
        };
        let debug_stats = match &opts.debug_stats {
            Some(p) => Some(DebugStats::create(p).map_err(SessionError::DebugStats)?),
            None => None,
        };
        Ok(Session {
            debug_stats,
            sweeper: Sweeper::default(),
            events: 0,
            tracer,
            child,
            stop,
            started: Instant::now(),
            duration: opts.duration,
            ring_owners,
            fds: fdinfo::FdWatch::default(),
            owners: Default::default(),
            aggregates,
            rings: RingWatch::default(),
            consumer: Default::default(),
        })
    }

    pub fn child_pid(&self) -> Option<u32> {
        self.child.as_ref().map(TracedChild::id)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A handle that stops [`Session::run`] when set (e.g. from another thread).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Streams events to `sink` in batches until a stop condition holds.
    pub fn run(
        &mut self,
        mut sink: impl FnMut(&[RawEvent], &Tracer) -> io::Result<Flow>,
    ) -> io::Result<StopReason> {
        let mut batch = Vec::with_capacity(4096);
        let mut exited: Option<(Instant, Option<i32>)> = None;
        let mut last_sample = Instant::now();
        let mut last_aggregate = Instant::now();
        loop {
            batch.clear();
            let t0 = crate::system::thread_cpu_ns();
            let n = self.tracer.drain(&mut batch);
            self.events += n as u64;
            self.retire_reused_slots(&mut batch)?;
            super::availability::annotate(&mut batch);
            let mut last_owner = 0;
            for e in &batch {
                // Runs of one process's events are the rule: one hash lookup per run.
                if uringtrace_common::EventKind::is_io_uring(e.kind)
                    && e.tgid != 0
                    && e.tgid != last_owner
                {
                    last_owner = e.tgid;
                    self.ring_owners.insert(e.tgid);
                }
            }
            self.fds.observe(&mut batch);
            self.owners.observe(&batch);
            self.rings.observe(&batch, Instant::now());
            if last_sample.elapsed() >= FDINFO_INTERVAL {
                last_sample = Instant::now();
                if self.sweeper.due() {
                    self.sweeper
                        .sweep(&mut self.tracer, &mut self.rings, Instant::now())
                        .map_err(io::Error::other)?;
                }
                self.forget_gone_rings(&mut batch)?;
                let now = crate::system::monotonic_ns();
                batch.extend(self.fds.sample(&mut self.ring_owners, now));
                batch.extend(self.owners.sample(now));
            }
            if last_aggregate.elapsed() >= Poller::INTERVAL {
                last_aggregate = Instant::now();
                self.poll_aggregates(&mut batch)?;
            }
            let flow = sink(&batch, &self.tracer)?;
            if n > 0 {
                self.consumer.events += n as u64;
                self.consumer.busy_ns += crate::system::thread_cpu_ns().saturating_sub(t0);
            }
            if flow == Flow::Stop {
                return Ok(StopReason::Sink);
            }
            self.write_debug_stats()?;
            if self.stop.load(Ordering::Relaxed) {
                self.final_drain(&mut sink)?;
                return Ok(StopReason::Signal);
            }
            if self.duration.is_some_and(|d| self.started.elapsed() >= d) {
                self.final_drain(&mut sink)?;
                return Ok(StopReason::Duration);
            }
            if let Some(child) = self.child.as_mut() {
                if exited.is_none() {
                    if let Some(code) = child.try_wait()? {
                        exited = Some((Instant::now(), Some(code)));
                    }
                }
            }
            if let Some((at, code)) = exited {
                if at.elapsed() >= EXIT_GRACE {
                    self.final_drain(&mut sink)?;
                    return Ok(StopReason::CommandExited(code));
                }
            }
            if n == 0 {
                std::thread::sleep(POLL_INTERVAL);
            } else if n < SMALL_BATCH {
                std::thread::sleep(BATCH_NAP);
            }
        }
    }

    /// Drains what is already in the ring buffer. Bounded in time: on a busy host-wide
    /// trace events never stop arriving, and stopping must not wait for a quiet moment.
    fn final_drain(
        &mut self,
        sink: &mut impl FnMut(&[RawEvent], &Tracer) -> io::Result<Flow>,
    ) -> io::Result<()> {
        let mut batch = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.tracer.drain(&mut batch) > 0 && Instant::now() < deadline {
            super::availability::annotate(&mut batch);
            self.fds.observe(&mut batch);
            sink(&batch, &self.tracer)?;
            batch.clear();
        }
        // What the kernel counted and still holds, after the last events.
        if let Some(p) = self.aggregates.as_mut() {
            p.poll_final(&self.tracer, crate::system::monotonic_ns(), &mut batch)
                .map_err(io::Error::other)?;
        }
        if !batch.is_empty() {
            sink(&batch, &self.tracer)?;
        }
        Ok(())
    }

    /// Releases the kernel's slots of rings that are gone (see [`RingWatch`]).
    fn forget_gone_rings(&mut self, out: &mut Vec<RawEvent>) -> io::Result<()> {
        let (rings, dead) = self.rings.expired(Instant::now(), ring_alive);
        if rings.is_empty() && dead.is_empty() {
            return Ok(());
        }
        let done = match self.aggregates.as_mut() {
            Some(p) => p.forget(
                &mut self.tracer,
                &rings,
                &dead,
                crate::system::monotonic_ns(),
                out,
            ),
            None => dead
                .iter()
                .try_for_each(|&t| self.tracer.forget_process(t).map(drop))
                .and_then(|()| {
                    rings
                        .iter()
                        .try_for_each(|&c| self.tracer.forget_ring(c).map(drop))
                }),
        };
        done.map_err(io::Error::other)
    }

    /// Rings created at the address of a ring that still holds an aggregation slot:
    /// the old ring's statistics are put into the batch just before the create, and
    /// the slot is freed (see [`Poller::retire_reused`]).
    fn retire_reused_slots(&mut self, batch: &mut Vec<RawEvent>) -> io::Result<()> {
        use uringtrace_common::EventKind;
        let Some(p) = self.aggregates.as_mut() else {
            return Ok(());
        };
        let create = EventKind::Create as u16;
        if !batch.iter().any(|e| e.kind == create) {
            return Ok(());
        }
        let mut out = Vec::with_capacity(batch.len());
        for e in batch.drain(..) {
            if e.kind == create && self.tracer.slot_retired(e.ctx).map_err(io::Error::other)? {
                p.retire_reused(&mut self.tracer, e.ctx, e.ts_ns.saturating_sub(1), &mut out)
                    .map_err(io::Error::other)?;
            }
            out.push(e);
        }
        *batch = out;
        Ok(())
    }

    fn write_debug_stats(&mut self) -> io::Result<()> {
        let Some(out) = self.debug_stats.as_mut().filter(|d| d.due()) else {
            return Ok(());
        };
        let (inflight, deltas) = match &self.aggregates {
            Some(p) => {
                let (i, d) = p.sizes();
                (Some(i), d)
            }
            None => (None, 0),
        };
        let sizes = SessionSizes {
            ring_watch: self.rings.len(),
            ring_owners: self.ring_owners.len(),
            fds_known: self.fds.len(),
            deltas,
        };
        out.write(
            &self.tracer,
            self.started.elapsed(),
            self.events,
            inflight,
            &sizes,
        )
    }

    fn poll_aggregates(&mut self, out: &mut Vec<RawEvent>) -> io::Result<()> {
        if let Some(p) = self.aggregates.as_mut() {
            p.poll(&self.tracer, crate::system::monotonic_ns(), out)
                .map_err(io::Error::other)?;
        }
        Ok(())
    }

    pub fn counters(&self) -> Result<KernelCounters, LoadError> {
        self.tracer.counters()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Never leave the traced command running behind us when we stop early.
        if let Some(child) = self.child.as_mut() {
            child.kill_and_wait();
        }
    }
}

/// A traced command we forked ourselves (std's `Command::spawn` waits for exec, which
/// cannot work with a child that waits for our go-ahead before exec).
pub struct TracedChild {
    pid: libc::pid_t,
    status: Option<i32>,
}

impl TracedChild {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Non-blocking: Some(exit code) once the command has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<i32>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        let mut st = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(self.pid, &mut st, libc::WNOHANG) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if r == 0 {
            return Ok(None);
        }
        let code = if libc::WIFEXITED(st) {
            libc::WEXITSTATUS(st)
        } else {
            128 + libc::WTERMSIG(st)
        };
        self.status = Some(code);
        Ok(self.status)
    }

    fn kill_and_wait(&mut self) {
        if let Ok(None) = self.try_wait() {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGTERM);
                let mut st = 0;
                libc::waitpid(self.pid, &mut st, 0);
            }
        }
    }
}

fn pipe() -> io::Result<(i32, i32)> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// Starts `command` held at a gate, adds its pid to the filter, then opens the gate,
/// so not one of its io_uring calls happens before the filter knows it (as with
/// `perf record -- CMD`). Exec failures (no such command) come back as errors.
fn spawn_traced(command: &[String], tracer: &mut Tracer) -> Result<TracedChild, SessionError> {
    use std::ffi::CString;
    let spawn_err = |error| SessionError::Spawn {
        command: command.join(" "),
        error,
    };
    let argv: Vec<CString> = command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|e| spawn_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let (gate_r, gate_w) = pipe().map_err(spawn_err)?;
    let (err_r, err_w) = pipe().map_err(spawn_err)?;
    // SAFETY: the child only calls async-signal-safe functions (close, read, execvp,
    // write, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(spawn_err(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: in the forked child; see the fork above: only async-signal-safe
        // calls on fds and buffers that were valid before the fork.
        unsafe {
            libc::close(gate_w);
            libc::close(err_r);
            let mut b = 0u8;
            while libc::read(gate_r, (&mut b as *mut u8).cast(), 1) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
            libc::execvp(argv_ptrs[0], argv_ptrs.as_ptr());
            let errno = *libc::__errno_location();
            libc::write(err_w, (&errno as *const i32).cast(), 4);
            libc::_exit(127);
        }
    }
    // SAFETY: closing the child's ends in the parent.
    unsafe {
        libc::close(gate_r);
        libc::close(err_w);
    }
    let mut child = TracedChild { pid, status: None };
    let added = tracer.add_pid(pid as u32);
    // Open the gate whatever happened: a child must never hang on us.
    // SAFETY: one byte from a valid buffer, then close our fd.
    unsafe {
        libc::write(gate_w, [1u8].as_ptr().cast(), 1);
        libc::close(gate_w);
    }
    let mut errno = 0i32;
    // SAFETY: reading at most 4 bytes into an i32; EOF (0) means exec succeeded.
    let n = unsafe { libc::read(err_r, (&mut errno as *mut i32).cast(), 4) };
    // SAFETY: err_r is our own pipe end, closed once.
    unsafe { libc::close(err_r) };
    if n == 4 {
        let _ = child.try_wait();
        // SAFETY: reaping our own child; a null status pointer is allowed.
        let _ = unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        return Err(spawn_err(io::Error::from_raw_os_error(errno)));
    }
    if let Err(e) = added {
        child.kill_and_wait();
        return Err(e.into());
    }
    Ok(child)
}
