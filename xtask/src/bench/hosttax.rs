//! Host tax: what `diagnose` tracing the whole host costs the processes it does
//! not trace. Two fixed amounts of work that time themselves: `dd bs=1` (two
//! syscalls a byte: the cost of anything hooked on every syscall) and a pipe
//! ping-pong between two processes pinned to one CPU (two wake-ups and context
//! switches a round trip: the cost of the scheduler tracepoints' programs).
//! uringtrace runs in the background and the work starts once it says it is
//! tracing; bpftrace (`-c`) starts its command once its probes are attached.

use std::process::Child;

use super::*;

/// What `diagnose` prints (without -q) once its programs are attached host-wide.
const READY: &str = "tracing the whole host";
/// After READY: the tracer's start-up work (first scans, first polls) settles,
/// so the runs measure its steady cost.
const SETTLE: Duration = Duration::from_millis(250);
/// Longest wait for the tracer to attach, and to write its report once stopped.
const TRACER_WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
enum Work {
    Syscalls,
    Switches,
}

impl Bench {
    pub(super) fn host_tax(&self) -> anyhow::Result<Vec<Row>> {
        let all = [
            (Tracer::Untraced, None),
            (Tracer::Host, Some(Target::AtMost(0.03))),
            (Tracer::HostTracepoint, None),
            (Tracer::BpftraceCount, None),
        ];
        let mut rows = Vec::new();
        for work in [Work::Syscalls, Work::Switches] {
            let group = self.tax_group(work);
            let result = self.tax_command(work).and_then(|cmd| {
                // Warm-up: binaries and page tables in memory before anything is timed.
                self.tax_once(Tracer::Untraced, work, &cmd)
                    .context("warm-up run")?;
                self.compare(Part::HostTax, &group, &all, Unit::Seconds, |t| {
                    self.tax_once(t, work, &cmd)
                })
            });
            match result {
                Ok(r) => rows.extend(r),
                Err(e) => {
                    progress(&format!("{group} failed: {e:#}"));
                    rows.push(
                        Row::new(Part::HostTax, &group, "(all variants)", Unit::Tax).failed(&e),
                    );
                }
            }
        }
        Ok(rows)
    }

    fn tax_group(&self, work: Work) -> String {
        match work {
            Work::Syscalls => format!(
                "host tax, syscalls: dd bs=1 count={}M (2 syscalls a byte)",
                self.plan.tax_dd_bytes >> 20
            ),
            Work::Switches => format!(
                "host tax, context switches: pipe ping-pong, {} round trips on one CPU",
                si(self.plan.tax_round_trips as f64)
            ),
        }
    }

    fn tax_command(&self, work: Work) -> anyhow::Result<Vec<OsString>> {
        Ok(match work {
            // LC_ALL=C: dd's summary line is parsed.
            Work::Syscalls => [
                "env",
                "LC_ALL=C",
                "dd",
                "if=/dev/zero",
                "of=/dev/null",
                "bs=1",
                &format!("count={}", self.plan.tax_dd_bytes),
            ]
            .map(OsString::from)
            .to_vec(),
            Work::Switches => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                // Not CPU 0, where most interrupts land, when there is a choice.
                let cpu = if cpus > 1 { "1" } else { "0" };
                let xtask = std::env::current_exe().context("finding the xtask binary")?;
                let mut cmd = vec![xtask.into_os_string()];
                cmd.extend(
                    [
                        "bench-pingpong",
                        "--round-trips",
                        &self.plan.tax_round_trips.to_string(),
                        "--cpu",
                        cpu,
                    ]
                    .map(OsString::from),
                );
                cmd
            }
        })
    }

    /// One timed run of `work`: its seconds, as the work itself measured them.
    fn tax_once(&self, tracer: Tracer, work: Work, cmd: &[OsString]) -> anyhow::Result<Sample> {
        let run = self.traced(tracer, cmd, Duration::from_secs(300))?;
        let stderr = &run.out.stderr;
        let secs = match work {
            Work::Syscalls => {
                let (bytes, secs) = dd_copied(stderr).context("dd printed no `copied` line")?;
                ensure!(
                    bytes == self.plan.tax_dd_bytes,
                    "dd copied {bytes} of {} bytes",
                    self.plan.tax_dd_bytes
                );
                secs
            }
            Work::Switches => {
                let (n, secs) =
                    pingpong_secs(stderr).context("the ping-pong printed no summary line")?;
                ensure!(
                    n == self.plan.tax_round_trips,
                    "the ping-pong did {n} round trips"
                );
                secs
            }
        };
        Ok(Sample::new(secs, &run))
    }

    /// `target` run untraced while `ut diagnose` traces the whole host: started
    /// first, the command once it is tracing, stopped with SIGINT (its Ctrl-C)
    /// after the command, its report read for events and losses.
    pub(super) fn host_traced(
        &self,
        ut: &Path,
        modes: &KernelModes,
        tracer: Tracer,
        target: &[OsString],
        timeout: Duration,
    ) -> anyhow::Result<Traced> {
        let report = self.work.join("host-report.json");
        let log = self.work.join("host-tracer.txt");
        let stats = StatsFile::new(&self.work, modes);
        let _ = fs::remove_file(&report);
        let outside = self.quiet();
        let mut c = Command::new(ut);
        c.args(["diagnose", "--format", "json", "-o"])
            .arg(&report)
            .args(stats.args());
        if modes.aggregate {
            c.args(["--kernel-mode", "aggregate"]);
        }
        if tracer == Tracer::HostTracepoint {
            c.args(["--attach", "tracepoint"]);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).with_context(|| format!("creating {}", log.display()))?);
        let child = c
            .spawn()
            .with_context(|| format!("starting {}", ut.display()))?;
        let mut bg = Background { child, log };
        bg.wait_ready()?;
        std::thread::sleep(SETTLE);
        let mut cmd = Command::new(&target[0]);
        cmd.args(&target[1..]);
        let out = execute(&tool_name(&target[0]), &mut cmd, timeout, &self.work);
        let stopped = bg.stop();
        let mut out = out?;
        stopped?;
        (out.busy_before, out.other_tracer) = outside;
        let stats = stats.read("uringtrace diagnose")?;
        Ok(Traced::with_stats(out, stats))
    }
}

/// The background tracer; killed if dropped while still running.
struct Background {
    child: Child,
    log: PathBuf,
}

impl Background {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        while !self.log().contains(READY) {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "uringtrace diagnose exited ({status}) before tracing: {}",
                    error_summary(&self.log())
                );
            }
            ensure!(
                start.elapsed() < TRACER_WAIT,
                "uringtrace diagnose did not say `{READY}` within {} s",
                TRACER_WAIT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) of our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(
                    status.success(),
                    "uringtrace diagnose failed ({status}): {}",
                    error_summary(&self.log())
                );
                return Ok(());
            }
            ensure!(
                start.elapsed() < TRACER_WAIT,
                "uringtrace diagnose did not exit within {} s of SIGINT",
                TRACER_WAIT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
