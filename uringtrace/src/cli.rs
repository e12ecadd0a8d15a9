//! Command-line interface (clap): the arguments, and the one place where the options
//! several commands share become the library's options ([`TraceArgs::session_options`],
//! [`AnalysisArgs::analyzer_config`]). The work is in `commands`.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use uringtrace_common::KernelMode;

use crate::analyzer::AnalyzerConfig;
use crate::trace::loader::{TraceOptions, DEFAULT_SLOW_NS};
use crate::trace::session::SessionOptions;
use crate::units::{parse_duration, parse_size};

mod fleet;
mod shell;
pub use fleet::{AgentArgs, InventoryArgs, InventoryFormat};
use fleet::{AGENT_HELP, INVENTORY_HELP};
use shell::COMPLETIONS_HELP;
pub use shell::{CompletionsArgs, ManPagesArgs};

/// Streaming every event: the consumer may be descheduled for tens of milliseconds
/// on a busy host, and at 6 M events/s (64 bytes each in the ring for submits and
/// completions, 112 for the rest) 16 MiB lasts only 45 ms; 64 MiB lasts 175 ms.
pub const STREAM_RING_BYTES: u32 = 64 << 20;
/// Aggregating mode streams a few events per io_uring_enter.
pub const AGGREGATE_RING_BYTES: u32 = 16 << 20;

#[derive(Debug, Parser)]
#[command(
    name = "uringtrace",
    version,
    about = "See what io_uring is really doing on this host, and what is wrong with it",
    long_about = "uringtrace attaches eBPF programs to the kernel's io_uring tracepoints (plus \
io_uring_enter and the scheduler events of io_uring's kernel threads) and follows every \
request from submission to completion.\n\n\
Tracing needs root, or CAP_BPF and CAP_PERFMON. Reading recordings needs nothing.",
    after_help = "Examples:\n  \
sudo uringtrace doctor                          # what works on this host, and why\n  \
sudo uringtrace record -o app.utr -- ./app      # trace a command and its children\n  \
sudo uringtrace record -o host.utr --duration 10s\n  \
uringtrace dump app.utr | less                  # read a recording, anywhere"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record io_uring events to a file (the whole host, some pids, or a command)
    #[command(
        after_help = "Stops at the end of --duration, on Ctrl-C or SIGTERM, or when CMD exits.\n\
The file is written as events arrive: a recording cut short still reads back up to its\n\
last complete event. Ring-buffer drops are counted per CPU and stored in the file.\n\n\
Examples:\n  \
uringtrace record -o out.utr -- fio job.fio\n  \
uringtrace record -o out.utr --pid 1234 --pid 5678 --duration 30s\n  \
uringtrace record -o out.utr --ring-size 64M --duration 5s"
    )]
    Record(RecordArgs),
    /// Print a recording as readable lines or JSON lines
    #[command(
        after_help = "Text lines show opcode, error and flag names (READ, -ECANCELED, IO_LINK).\n\
JSON lines carry every raw field plus the same names, one event per line."
    )]
    Dump(DumpArgs),
    /// Show what works on this host and why: kernel, BTF, tracefs, tracepoints, privileges
    Doctor(DoctorArgs),
    /// Trace (or replay a recording) and report what is wrong, with evidence and fixes
    #[command(
        after_help = "Without --input, traces the host, the given pids, or CMD (until it exits),
then prints: environment, rings found, findings with evidence and fixes, per-opcode
latency (p50/p99/max) and lost events.

Examples:
  uringtrace diagnose -- ./server --port 8080
  uringtrace diagnose --duration 30s --pid 1234 --format markdown -o report.md
  uringtrace diagnose --input app.utr --format json"
    )]
    Diagnose(DiagnoseArgs),
    /// Check recordings in CI: exit 0 clean, 1 findings, 2 tool error or inconclusive
    #[command(
        after_help = "A trace that lost events in the kernel ring buffer (or whose recording did
not end cleanly) cannot prove the absence of problems: it is inconclusive (exit 2)
unless it also has failing findings (exit 1).

Config (uringtrace.toml):
  fail_on = \"warning\"                 # lowest severity that fails
  [rules]
  disable = [\"multishot-terminated\"]
  [rules.severity]
  request-stalled = \"error\"
  [budgets]
  max_in_flight = 256                 # per ring
  max_iowq_workers = 32               # per process
  [budgets.p99_latency]
  READ = \"2ms\"

Example:
  uringtrace record -o app.utr -- ./app && uringtrace check app.utr --format junit > report.xml"
    )]
    Check(CheckArgs),
    /// List the rules uringtrace checks
    Rules(RulesArgs),
    /// Explain a rule: the kernel mechanism, how it shows up, and the fix
    Explain(ExplainArgs),
    /// Live view of io_uring rings and findings in the terminal (or replay a recording)
    #[command(
        after_help = "Traces the host, the given pids, or CMD, and shows one row per ring (rates,
in flight, latency, errors, overflows, io-wq punts), the findings so far, and on
Enter a ring's per-opcode latency, occupancy, SQPOLL thread, link chains and oldest
requests. `?` lists the keys. --replay plays a recording through the same screens.

Examples:
  sudo uringtrace top
  sudo uringtrace top --pid 1234
  sudo uringtrace top -- ./server --port 8080
  uringtrace top --replay app.utr --speed 10

Headless (--format): the same table and findings on stdout, for scripts:
  sudo uringtrace top --once --format json -- ./server   # one document when it exits
  sudo uringtrace top --interval 1s --count 10 --format json | jq .rings
  uringtrace top --replay app.utr --once --format text   # the recording's end state
  uringtrace top --replay app.utr --interval 500ms --format json   # trace time"
    )]
    Top(TopArgs),
    /// Print the JSON schema of a JSON output, to validate it or generate types from it
    #[command(after_help = SCHEMA_HELP)]
    Schema(SchemaArgs),
    /// Trace the whole host until stopped and serve Prometheus metrics (/metrics, /healthz)
    #[command(after_help = AGENT_HELP)]
    Agent(AgentArgs),
    /// Which programs and cgroups use io_uring: rings, setup flags, opcodes, files
    #[command(after_help = INVENTORY_HELP)]
    Inventory(InventoryArgs),
    /// Convert a recording to a Perfetto trace (open it in ui.perfetto.dev)
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Write uringtrace.1 and one page per subcommand into DIR (`cargo xtask man`)
    #[command(hide = true)]
    ManPages(ManPagesArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Diagnose this recording instead of tracing
    #[arg(short, long, value_name = "FILE", conflicts_with_all = ["pids", "command", "duration"])]
    pub input: Option<PathBuf>,
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Write the report here instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    #[command(flatten)]
    pub kernel: KernelModeArgs,
    /// No progress messages on stderr
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub stats: crate::stats::StatsArgs,
    #[command(flatten)]
    pub perfetto: PerfettoArgs,
}

// Options of the commands that analyse (`diagnose`, `check`, `top`). No doc comment:
// clap would take it for the command's about text.
#[derive(Debug, Args)]
pub struct AnalysisArgs {
    /// A request in flight this long with nothing explaining it is reported
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub stall_threshold: Duration,
}

#[derive(Debug, Args)]
pub struct KernelModeArgs {
    /// What the kernel programs send up: `aggregate` counts fast successful requests
    /// in per-CPU maps (latency histograms included) and streams only what the
    /// detectors need — failures, links, overflows, waits, io-wq and SQPOLL activity,
    /// requests slower than 10 ms — at a fraction of the cost; `stream` sends every
    /// event (what `record` does). Both give the same findings
    #[arg(long, value_enum, default_value_t = KernelModeArg::Aggregate)]
    pub kernel_mode: KernelModeArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KernelModeArg {
    Aggregate,
    Stream,
    /// Attach the hot-path programs but return at once: the cost floor (benchmarks).
    #[value(hide = true)]
    Floor,
}

impl From<KernelModeArg> for KernelMode {
    fn from(m: KernelModeArg) -> Self {
        match m {
            KernelModeArg::Aggregate => KernelMode::Aggregate,
            KernelModeArg::Stream => KernelMode::Stream,
            KernelModeArg::Floor => KernelMode::Floor,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Recordings made by `uringtrace record`
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Rules, severities and budgets (TOML); see below
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(short, long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[arg(short, long, value_enum, default_value_t = DoctorFormat::Text)]
    pub format: DoctorFormat,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A rule slug, e.g. link-chain-broken (see `uringtrace rules`)
    pub rule: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Replay this recording instead of tracing (no root needed)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pids", "command", "duration"])]
    pub replay: Option<PathBuf>,
    /// Replay speed: a factor of the recorded time (1, 10, 0.5) or `max`
    #[arg(long, value_name = "X", default_value = "1", value_parser = crate::tui::app::Speed::parse)]
    pub speed: crate::tui::app::Speed,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    #[command(flatten)]
    pub kernel: KernelModeArgs,
    /// Headless: print snapshots of the ring table and findings on stdout instead of
    /// drawing the screen (no terminal needed). `json`: one JSON document per line
    /// (`uringtrace schema top`); `text`: the table as plain text. Alone, one snapshot
    /// per second until the input ends
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<TopFormat>,
    /// Headless: print one snapshot, of the state when the input ends: the end of the
    /// recording with --replay, the command's exit with -- CMD, --duration, or Ctrl-C;
    /// host-wide or --pid without --duration, after one --interval (default 1s)
    #[arg(long, requires = "format", conflicts_with = "count")]
    pub once: bool,
    /// Headless: a snapshot every DURATION of trace time (wall time live, the
    /// recording's timestamps with --replay, read as fast as the file reads).
    /// Default 1s
    #[arg(long, value_name = "DURATION", requires = "format", value_parser = parse_interval)]
    pub interval: Option<Duration>,
    /// Headless: stop after N snapshots (or earlier, with a last one, when the input ends)
    #[arg(long, value_name = "N", requires = "interval",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// What headless `top` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TopFormat {
    /// One JSON document per line (JSON lines)
    Json,
    /// The ring table and findings as aligned plain text, a blank line between snapshots
    Text,
}

/// `--interval`: a duration above zero.
fn parse_interval(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("the interval must be longer than 0".into()),
        d => Ok(d),
    }
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Stop after this long (e.g. 10s, 500ms, 2m)
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Trace only this process (and children it forks); repeat for several
    #[arg(short, long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Kernel ring-buffer size (power of two); raise it if drops are reported.
    /// Default: 64M for `record` (every event: ~150 ms of a 4 M events/s stream),
    /// 16M for `diagnose` and `top` (aggregating mode streams a few events per batch)
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub ring_size: Option<u32>,
    /// How to attach: `auto` uses tp_btf for the per-request tracepoints (submit,
    /// complete, file_get, task_add, and io_uring_enter through raw_syscalls) when
    /// the kernel's BTF allows, classic tracepoints for the rest;
    /// `tracepoint` uses classic tracepoints everywhere (slower; for comparison)
    #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
    pub attach: AttachMode,
    /// Whether to hook io_uring_enter's entry and exit. A syscall hook slows every
    /// syscall of every process on the host, traced or not (about +20-50 % for a
    /// syscall-bound program). `auto`: hook only when tracing given pids or a
    /// command; host-wide, the enter a wait happens in is read at
    /// io_uring_cqring_wait instead (5.15+), which loses enters that do not sleep
    /// (see `uringtrace doctor`). `on`/`off` force it.
    #[arg(long, value_enum, default_value_t = SyscallHooks::Auto, value_name = "WHEN")]
    pub syscall_hooks: SyscallHooks,
    /// Every 2 s, append kernel map occupancy and session sizes as a JSON line to
    /// this file (`cargo xtask soak`)
    #[arg(long, value_name = "FILE", hide = true)]
    pub debug_stats: Option<PathBuf>,
    /// Run this command and trace it and its children until it exits
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

impl TraceArgs {
    /// The session these options ask for, streaming every event (what `record` does).
    pub fn session_options(&self) -> SessionOptions {
        SessionOptions {
            trace: TraceOptions {
                ring_bytes: self.ring_size.unwrap_or(STREAM_RING_BYTES),
                pids: self.pids.clone(),
                filter: !self.pids.is_empty(),
                btf: self.attach == AttachMode::Auto,
                syscalls: self
                    .syscall_hooks
                    .hook(!self.pids.is_empty() || !self.command.is_empty()),
                ..TraceOptions::default()
            },
            duration: self.duration,
            command: self.command.clone(),
            debug_stats: self.debug_stats.clone(),
        }
    }

    /// The session for `diagnose` and `top`, in the kernel mode asked for.
    pub fn analysis_session_options(
        &self,
        kernel: &KernelModeArgs,
        analysis: &AnalysisArgs,
    ) -> SessionOptions {
        let mut o = self.session_options();
        o.trace.mode = kernel.kernel_mode.into();
        if self.ring_size.is_none() && o.trace.mode != KernelMode::Stream {
            o.trace.ring_bytes = AGGREGATE_RING_BYTES;
        }
        // Held-back requests must reach the analyzer well before any detector would
        // judge them.
        o.trace.slow_ns = DEFAULT_SLOW_NS.min(analysis.stall_ns() / 2);
        o
    }
}

impl AnalysisArgs {
    fn stall_ns(&self) -> u64 {
        u64::try_from(self.stall_threshold.as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn analyzer_config(&self) -> AnalyzerConfig {
        AnalyzerConfig {
            stall_ns: self.stall_ns(),
            ..AnalyzerConfig::default()
        }
    }
}

/// Colour only on a terminal, and never when NO_COLOR is set.
pub fn use_color(to_file: bool) -> bool {
    !to_file && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SyscallHooks {
    Auto,
    On,
    Off,
}

impl SyscallHooks {
    /// Whether to hook, given whether tracing is limited to pids or a command.
    pub fn hook(self, filtered: bool) -> bool {
        match self {
            SyscallHooks::Auto => filtered,
            SyscallHooks::On => true,
            SyscallHooks::Off => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AttachMode {
    Auto,
    Tracepoint,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Output file. An existing file is replaced, keeping its owner and mode; a large
    /// one is deleted in the background while recording, since truncating it first
    /// could take a second while the traced command's events pile up
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// No progress line on stderr
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub stats: crate::stats::StatsArgs,
    #[command(flatten)]
    pub perfetto: PerfettoArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    Text,
    Jsonl,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// A recording made by `uringtrace record`
    pub file: PathBuf,
    #[arg(short, long, value_enum, default_value_t = DumpFormat::Text)]
    pub format: DumpFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[arg(short, long, value_enum, default_value_t = DoctorFormat::Text)]
    pub format: DoctorFormat,
}

const SCHEMA_HELP: &str =
    "Schemas are JSON Schema draft 2020-12, generated from the types that print the
output, so they always match this build. Copies are in docs/schemas/ in the source tree.

Documents:
  diagnose  diagnose --format json: environment, rings, findings (with evidence),
            per-opcode latency, lost events
  check     check --format json: the run's verdict and, per file, its verdict, the
            judged findings and lost events
  dump      dump --format jsonl: ONE line (one event); validate each line on its own
  top       top --format json: ONE line (one snapshot: rings table and findings);
            with --interval, validate each line on its own

Validate, e.g. with check-jsonschema (pip install check-jsonschema):
  uringtrace schema diagnose > diagnose.schema.json
  uringtrace diagnose --input app.utr --format json > report.json
  check-jsonschema --schemafile diagnose.schema.json report.json";

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which output's schema
    #[arg(value_enum)]
    pub document: SchemaDocument,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaDocument {
    /// `diagnose --format json`
    Diagnose,
    /// `check --format json`
    Check,
    /// One line of `dump --format jsonl`
    Dump,
    /// One line of `top --format json`
    Top,
}

const EXPORT_HELP: &str =
    "Writes the protobuf TrackEvent format. Open the file at https://ui.perfetto.dev
(\"Open trace file\", or drag it onto the page); nothing is uploaded.

What you see:
  a process track per traced process, with a track per thread (application threads,
    iou-sqp-* SQPOLL threads, iou-wrk-* io-wq workers): io_uring_enter calls as slices
    (args: min_complete, to_submit, flags), io-wq punts and their CQEs as instants
  under each process, a group per ring (\"io_uring 0x...\"): counters (in flight, CQ
    ready, SQ pending, from the fdinfo samples), CQ overflow instants, findings, and
    \"requests #N\" lanes: one slice per request, named by opcode (args: user_data,
    result, flags, fd); a cancelled chain follower is named \"OP (cancelled)\"
  flows (arrows): submit -> io-wq punt -> completion, chain member -> next member,
    MSG_RING sender -> the CQE it posted in the target ring
  a \"lost events\" counter: events the kernel ring buffer dropped

The file streams: memory holds only the requests in flight, whatever the length.

Examples:
  uringtrace export app.utr -o app.pftrace
  uringtrace record -o app.utr --perfetto app.pftrace -- ./app
  uringtrace diagnose --perfetto app.pftrace -- ./app";

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A recording made by `uringtrace record`
    pub file: PathBuf,
    /// The Perfetto trace to write (.pftrace). An existing file is replaced, keeping
    /// its owner and mode; a large one is deleted in the background while the export
    /// runs, since truncating it first could take a second
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// No summary line on stderr
    #[arg(short, long)]
    pub quiet: bool,
}

// `--perfetto` of `diagnose` and `record`. No doc comment: clap would take it for help.
#[derive(Debug, Args)]
pub struct PerfettoArgs {
    /// Also write a Perfetto trace (see `uringtrace export --help`) of the events seen
    #[arg(long, value_name = "OUT")]
    pub perfetto: Option<PathBuf>,
}

#[cfg(test)]
#[path = "cli/tests.rs"]
mod tests;
