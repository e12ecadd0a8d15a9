//! The arguments of the host-wide commands: `agent` (the long-running exporter) and
//! `inventory` (the same session for --duration).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use uringtrace_common::KernelMode;

use super::{AnalysisArgs, AGGREGATE_RING_BYTES};
use crate::trace::loader::{TraceOptions, DEFAULT_SLOW_NS};
use crate::trace::session::SessionOptions;
use crate::units::parse_duration;

pub(super) const AGENT_HELP: &str =
    "Runs until SIGTERM or SIGINT (or --duration), in the aggregating kernel mode.\n\
Serves GET /metrics (OpenMetrics text: uringtrace_requests_total, \
uringtrace_request_duration_seconds, uringtrace_findings_total, ...; labelled by comm and \
cgroup, never by pid), GET /inventory (what `uringtrace inventory --format json` prints) \
and GET /healthz.";

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Address to serve HTTP on; give 0.0.0.0:9464 to be scraped from other hosts
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,
    /// Write each new finding as a JSON line here (`-`: stdout), and again when its
    /// severity rises: the schema of `diagnose --format json`'s findings plus `host`
    /// and `cgroup`
    #[arg(long, value_name = "PATH|-")]
    pub findings: Option<PathBuf>,
    /// Stop after this long (default: run until SIGTERM or SIGINT)
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

impl AgentArgs {
    /// The whole host, aggregating, without syscall hooks (they would slow every
    /// syscall of the host).
    pub fn session_options(&self) -> SessionOptions {
        SessionOptions {
            trace: TraceOptions {
                ring_bytes: AGGREGATE_RING_BYTES,
                btf: true,
                syscalls: false,
                mode: KernelMode::Aggregate,
                slow_ns: DEFAULT_SLOW_NS.min(self.analysis.stall_ns() / 2),
                ..TraceOptions::default()
            },
            duration: self.duration,
            command: Vec::new(),
            debug_stats: None,
        }
    }
}

pub(super) const INVENTORY_HELP: &str =
    "Traces the whole host for --duration, then lists each program (comm) and \
cgroup that used io_uring: its rings and their setup flags, the opcodes it used, and the \
files and sockets its requests touched (named when first seen). A running agent serves \
the same as JSON at GET /inventory.";

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// How long to watch
    #[arg(short, long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, value_enum, default_value_t = InventoryFormat::Text)]
    pub format: InventoryFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    Text,
    Json,
}

impl InventoryArgs {
    /// The agent's session, for --duration.
    pub fn session_options(&self) -> SessionOptions {
        let mut o = AgentArgs {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            findings: None,
            duration: Some(self.duration),
            analysis: AnalysisArgs {
                stall_threshold: Duration::from_secs(1),
            },
        }
        .session_options();
        o.duration = Some(self.duration);
        o
    }
}
