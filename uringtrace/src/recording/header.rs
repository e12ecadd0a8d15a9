//! The self-describing JSON header of a recording.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always "uringtrace-recording".
    pub format: String,
    pub format_version: u32,
    pub tool_version: String,
    pub kernel_release: String,
    pub host: String,
    pub clock: ClockBase,
    /// Tracepoints attached, with their attach type.
    pub tracepoints: Vec<TracepointInfo>,
    /// Catalog entries the kernel does not have.
    #[serde(default)]
    pub missing: Vec<String>,
    /// Detectors degraded on the recording kernel: (rule, reason).
    #[serde(default)]
    pub degraded: Vec<(String, String)>,
    pub filter: Filter,
    pub ring_bytes: u32,
    pub ncpus: u32,
    pub drops: Drops,
    /// false until the recording ends cleanly; a crashed recording keeps false.
    pub finished: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockBase {
    /// Event timestamps are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
    pub source: String,
    pub start_monotonic_ns: u64,
    /// CLOCK_REALTIME at the same instant, to turn event times into wall time.
    pub start_realtime_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracepointInfo {
    pub kind: String,
    pub tracepoint: String,
    pub attach_type: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Empty: the whole host.
    pub pids: Vec<u32>,
    /// The traced command, when run as `record -- CMD`.
    pub command: Vec<String>,
    pub follow_children: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// Ring-buffer drops per CPU (index = CPU).
    pub per_cpu: Vec<u64>,
    pub total: u64,
    /// Events the kernel handed to the ring buffer.
    pub emitted: u64,
    /// Events written to this file.
    pub recorded: u64,
    /// CLOCK_MONOTONIC when recording ended (0: unknown).
    #[serde(default)]
    pub end_monotonic_ns: u64,
}

impl Header {
    pub const FORMAT: &'static str = "uringtrace-recording";
}
