//! The analyzer's output: everything `diagnose` and `check` show, as plain data.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::finding::Finding;
use crate::recording::{Drops, ReadStatus};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Environment {
    pub kernel_release: String,
    pub host: String,
    /// "live" or the recording's path.
    pub source: String,
    /// e.g. "0: io_uring allowed for everyone"; empty when unknown (from a file).
    pub io_uring_disabled: String,
    /// (rule, reason) for detectors that cannot fully work on the traced kernel.
    pub degraded: Vec<(String, String)>,
    pub tool_version: String,
    /// CPUs of the traced host (0: unknown), for rules that weigh threads against
    /// CPUs. Not part of the report's JSON (the recording header has it as `ncpus`).
    #[serde(skip)]
    #[schemars(skip)]
    pub cpus: u32,
}

impl Environment {
    /// The environment a recording was made in (`source` = its path).
    pub fn from_header(h: &crate::recording::Header, source: &str) -> Environment {
        Environment {
            kernel_release: h.kernel_release.clone(),
            host: h.host.clone(),
            source: source.to_string(),
            io_uring_disabled: String::new(),
            degraded: h.degraded.clone(),
            tool_version: h.tool_version.clone(),
            cpus: h.ncpus,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RingSummary {
    /// `struct io_ring_ctx *` as hex.
    pub ring: String,
    pub pid: u32,
    pub comm: String,
    /// The ring fd in its owner, when the ring was created during the trace.
    #[schemars(with = "Nullable<i32>")]
    pub fd: Option<i32>,
    #[schemars(with = "Nullable<u32>")]
    pub sq_entries: Option<u32>,
    #[schemars(with = "Nullable<u32>")]
    pub cq_entries: Option<u32>,
    /// IORING_SETUP_* names, e.g. "SQPOLL|ATTACH_WQ".
    pub setup_flags: String,
    pub submitted: u64,
    pub completed: u64,
    /// CQEs that went to the overflow list (each also counts as completed).
    pub overflowed: u64,
    pub dropped_cqes: u64,
    pub in_flight: u64,
    pub max_in_flight: u64,
    pub punted: u64,
    /// SQPOLL thread tid and its last known state ("running", "asleep", "woken").
    #[schemars(with = "Nullable<u32>")]
    pub sqpoll_thread: Option<u32>,
    #[schemars(with = "Nullable<String>")]
    pub sqpoll_state: Option<String>,
    pub iowq_workers: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OpLatency {
    pub opcode: String,
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl OpLatency {
    /// The row of `opcode` from its latencies: the one place the quantiles shown (the
    /// report's table, the check's budgets, the TUI's ring screen) are taken.
    pub fn of(opcode: u8, h: &super::latency::Histogram) -> OpLatency {
        let (p50_ns, p99_ns) = h.p50_p99().unwrap_or_default();
        OpLatency {
            opcode: crate::names::opcode_name(opcode).into_owned(),
            count: h.count(),
            p50_ns,
            p99_ns,
            max_ns: h.max(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LostEvents {
    /// Events lost in the kernel ring buffer.
    pub total: u64,
    pub per_cpu: Vec<u64>,
    /// false when the counters are unknown (a recording that was killed).
    pub known: bool,
}

impl LostEvents {
    /// Losses counted live: the kernel's per-CPU drop counters (index = CPU).
    pub fn counted(per_cpu: &[u64]) -> LostEvents {
        LostEvents {
            total: per_cpu.iter().sum(),
            per_cpu: per_cpu.to_vec(),
            known: true,
        }
    }

    /// Losses stored in a recording. Only its end record holds the final counters:
    /// a recording that did not end cleanly leaves them unknown.
    pub fn recorded(drops: &Drops, status: &ReadStatus) -> LostEvents {
        LostEvents {
            total: drops.total,
            per_cpu: drops.per_cpu.clone(),
            known: *status == ReadStatus::Complete,
        }
    }

    /// A trace whose losses are non-zero or unknown cannot prove absence of problems.
    pub fn inconclusive(&self) -> bool {
        !self.known || self.total > 0
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub environment: Environment,
    pub rings: Vec<RingSummary>,
    pub findings: Vec<Finding>,
    pub latency: Vec<OpLatency>,
    pub lost_events: LostEvents,
    /// Events analysed.
    pub events: u64,
    pub duration_ns: u64,
    /// io-wq workers created during the trace, per process (max over processes).
    pub max_iowq_workers: u64,
}

/// The JSON schema of an `Option<T>` that serde always writes, as `null` when `None`:
/// the property is required and may be null. (schemars makes a plain `Option` field
/// optional, and `#[schemars(required)]` makes it non-null.) Use it as
/// `#[schemars(with = "Nullable<T>")]` on an `Option<T>` field.
pub struct Nullable<T>(std::marker::PhantomData<T>);

impl<T: JsonSchema> JsonSchema for Nullable<T> {
    fn inline_schema() -> bool {
        <Option<T>>::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        <Option<T>>::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        <Option<T>>::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Option<T>>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_losses_are_known_and_summed() {
        let lost = LostEvents::counted(&[0, 3, 4]);
        assert_eq!(lost.total, 7);
        assert_eq!(lost.per_cpu, vec![0, 3, 4]);
        assert!(lost.known);
        assert!(lost.inconclusive());
        assert!(!LostEvents::counted(&[]).inconclusive());
    }

    #[test]
    fn recorded_losses_are_known_only_after_a_clean_end() {
        let drops = Drops {
            per_cpu: vec![1, 2],
            total: 3,
            ..Drops::default()
        };
        let clean = LostEvents::recorded(&drops, &ReadStatus::Complete);
        assert_eq!(
            (clean.total, clean.per_cpu.clone(), clean.known),
            (3, vec![1, 2], true)
        );
        for status in [
            ReadStatus::Unfinished,
            ReadStatus::Truncated { offset: 10 },
            ReadStatus::Failed,
            ReadStatus::Reading,
        ] {
            assert!(!LostEvents::recorded(&drops, &status).known, "{status:?}");
        }
    }
}
