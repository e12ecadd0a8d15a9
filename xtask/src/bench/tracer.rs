//! The variants a workload runs under: untraced, uringtrace's modes (with the
//! command, or on the whole host), bpftrace, and the `--baseline` binary's twins.

use super::*;

/// What runs the measured command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tracer {
    Untraced,
    /// `uringtrace diagnose --kernel-mode aggregate`
    Aggregate,
    /// `uringtrace record` to a file: every event streamed
    Record,
    /// `uringtrace diagnose --kernel-mode floor`: programs attached, returning at once
    Floor,
    /// bpftrace's submit -> complete latency histogram
    Bpftrace,
    /// `uringtrace diagnose` on the whole host, started before the command
    Host,
    /// The same with `--attach tracepoint`
    HostTracepoint,
    /// bpftrace counting every io_uring tracepoint on the whole host
    BpftraceCount,
    /// A variant run with the `--baseline` binary
    Baseline(Base),
}

/// The variants that get a `--baseline` twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Base {
    Aggregate,
    Record,
    Host,
}

impl Base {
    pub(super) fn of(tracer: Tracer) -> Option<Base> {
        match tracer {
            Tracer::Aggregate => Some(Base::Aggregate),
            Tracer::Record => Some(Base::Record),
            Tracer::Host => Some(Base::Host),
            _ => None,
        }
    }

    pub(super) fn tracer(self) -> Tracer {
        match self {
            Base::Aggregate => Tracer::Aggregate,
            Base::Record => Tracer::Record,
            Base::Host => Tracer::Host,
        }
    }
}

impl Tracer {
    pub(super) fn label(self) -> &'static str {
        match self {
            Tracer::Untraced => "untraced",
            Tracer::Aggregate => "uringtrace diagnose -- CMD, aggregate",
            Tracer::Record => "uringtrace record (streams every event)",
            Tracer::Floor => "uringtrace floor (attached, empty programs)",
            Tracer::Bpftrace => "bpftrace latency histogram",
            Tracer::Host => "uringtrace diagnose, whole host",
            Tracer::HostTracepoint => "uringtrace diagnose, whole host, --attach tracepoint",
            Tracer::BpftraceCount => "bpftrace counting io_uring tracepoints",
            Tracer::Baseline(Base::Aggregate) => "uringtrace (baseline) diagnose -- CMD, aggregate",
            Tracer::Baseline(Base::Record) => "uringtrace (baseline) record",
            Tracer::Baseline(Base::Host) => "uringtrace (baseline) diagnose, whole host",
        }
    }

    /// The tool named in errors.
    pub(super) fn tool(self) -> &'static str {
        match self {
            Tracer::Untraced => "",
            Tracer::Aggregate | Tracer::Floor | Tracer::Host | Tracer::HostTracepoint => {
                "uringtrace diagnose"
            }
            Tracer::Record => "uringtrace record",
            Tracer::Bpftrace | Tracer::BpftraceCount => "bpftrace",
            Tracer::Baseline(_) => "uringtrace (baseline)",
        }
    }
}

impl Bench {
    /// Runs `target` under `tracer` and returns the tracer's event and loss counts.
    pub(super) fn traced(
        &self,
        tracer: Tracer,
        target: &[OsString],
        timeout: Duration,
    ) -> anyhow::Result<Traced> {
        let (ut, modes, tracer) = match (tracer, &self.baseline) {
            (Tracer::Baseline(b), Some(base)) => (base.path.as_path(), &base.modes, b.tracer()),
            (Tracer::Baseline(_), None) => bail!("no --baseline binary given"),
            (t, _) => (self.ut.as_path(), &self.modes, t),
        };
        if matches!(tracer, Tracer::Host | Tracer::HostTracepoint) {
            return self.host_traced(ut, modes, tracer, target, timeout);
        }
        let report = self.work.join("report.json");
        let stream = self.work.join("stream.utr");
        let stats = StatsFile::new(&self.work, modes);
        let _ = fs::remove_file(&report);
        let mut cmd = match tracer {
            Tracer::Untraced => {
                let mut c = Command::new(&target[0]);
                c.args(&target[1..]);
                c
            }
            Tracer::Aggregate | Tracer::Floor => {
                let mut c = Command::new(ut);
                c.args(["diagnose", "-q", "--format", "json", "-o"])
                    .arg(&report);
                if let Some(mode) = kernel_mode(modes, tracer) {
                    c.args(["--kernel-mode", mode]);
                }
                c.args(stats.args()).arg("--").args(target);
                c
            }
            Tracer::Record => {
                let mut c = Command::new(ut);
                c.args(["record", "-q", "-o"])
                    .arg(&stream)
                    .args(stats.args())
                    .arg("--")
                    .args(target);
                c
            }
            Tracer::Bpftrace | Tracer::BpftraceCount => {
                let script = match tracer {
                    Tracer::Bpftrace => BPFTRACE_SCRIPT,
                    _ => BPFTRACE_COUNT,
                };
                let mut c = Command::new("bpftrace");
                c.args(["-e", script, "-c", &bpftrace_command(target)]);
                c
            }
            Tracer::Host | Tracer::HostTracepoint | Tracer::Baseline(_) => {
                bail!("{tracer:?} is not run with the command")
            }
        };
        let tool = match tracer {
            Tracer::Untraced => tool_name(&target[0]),
            t => t.tool().to_string(),
        };
        let out = self.run_tool(&tool, &mut cmd, timeout)?;
        Ok(match tracer {
            Tracer::Aggregate => {
                let stats = stats.read(&tool)?;
                Traced::with_stats(out, stats)
            }
            Tracer::Record => {
                let _ = fs::remove_file(&stream);
                let stats = stats.read(&tool)?;
                Traced::with_stats(out, stats)
            }
            // Requests bpftrace timed (one histogram sample each).
            Tracer::Bpftrace => {
                let timed = hist_samples(&out.stdout);
                Traced::new(out, Some(timed), None)
            }
            Tracer::BpftraceCount => {
                let hits = map_counts(&out.stdout);
                Traced::new(out, Some(hits), None)
            }
            Tracer::Untraced
            | Tracer::Floor
            | Tracer::Host
            | Tracer::HostTracepoint
            | Tracer::Baseline(_) => Traced::new(out, None, None),
        })
    }

    /// Why a variant cannot run here, if it cannot.
    pub(super) fn unavailable(&self, tracer: Tracer) -> Option<String> {
        match tracer {
            Tracer::Floor if !self.modes.floor => {
                Some("this uringtrace has no `diagnose --kernel-mode floor`".into())
            }
            Tracer::HostTracepoint if !self.modes.attach_tracepoint => {
                Some("this uringtrace has no `--attach tracepoint`".into())
            }
            Tracer::Bpftrace | Tracer::BpftraceCount => self.bpftrace.clone().err(),
            _ => None,
        }
    }
}

/// Where a uringtrace run writes its `--stats-json`, when that uringtrace has it.
pub(super) struct StatsFile {
    path: Option<PathBuf>,
}

impl StatsFile {
    /// A fresh file under `work` (any earlier one removed), or none for a uringtrace
    /// from before `--stats-json`.
    pub(super) fn new(work: &Path, modes: &KernelModes) -> StatsFile {
        let path = modes.stats_json.then(|| work.join("stats.json"));
        if let Some(p) = &path {
            let _ = fs::remove_file(p);
        }
        StatsFile { path }
    }

    pub(super) fn args(&self) -> Vec<OsString> {
        match &self.path {
            Some(p) => vec!["--stats-json".into(), p.clone().into()],
            None => Vec::new(),
        }
    }

    /// What the run wrote (None without `--stats-json`).
    pub(super) fn read(&self, tool: &str) -> anyhow::Result<Option<RunStats>> {
        self.path
            .as_deref()
            .map(|p| read_stats(p, tool))
            .transpose()
    }
}

/// The error for a part that needs `--stats-json` of a uringtrace that lacks it.
pub(super) const NO_STATS_JSON: &str =
    "this uringtrace has no `--stats-json` (a build from before it)";

fn kernel_mode(modes: &KernelModes, tracer: Tracer) -> Option<&'static str> {
    match tracer {
        Tracer::Aggregate if modes.aggregate => Some("aggregate"),
        Tracer::Floor => Some("floor"),
        _ => None,
    }
}

/// `target` as bpftrace's `-c` string. bpftrace wants a path naming one binary:
/// a bare `fio` matches both /usr/bin/fio and /bin/fio on a merged-/usr system.
fn bpftrace_command(target: &[OsString]) -> String {
    let mut words: Vec<String> = target
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(first) = words.first_mut().filter(|w| !w.contains('/')) {
        let found = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(&*first))
                .find(|p| p.is_file())
        });
        if let Some(p) = found {
            *first = p.to_string_lossy().into_owned();
        }
    }
    words.join(" ")
}
