//! `--stats-json FILE`: a run's counts as JSON, for tools that measure uringtrace
//! (`cargo xtask bench`) instead of reading the human summary on stderr.
//!
//! `record` writes events, losses, duration, bytes on disk and the consumer's rate;
//! `diagnose` writes the events it analysed and the losses.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::analyzer::report::Report;
use crate::trace::wire::ConsumerStats;

/// The `--stats-json` option of `record` and `diagnose`.
#[derive(Debug, Default, clap::Args)]
pub struct StatsArgs {
    /// Also write the run's counts (events, lost events, for `record` also bytes on
    /// disk and the consumer's rate) as one JSON object to this file, for scripts
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
}

impl StatsArgs {
    /// Writes `stats` when `--stats-json` was given.
    pub fn write(&self, stats: &RunStats) -> anyhow::Result<()> {
        match &self.stats_json {
            Some(path) => stats.write(path),
            None => Ok(()),
        }
    }
}

/// What a run counted. Field names are the file's format: add, never rename.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Events recorded (`record`) or analysed (`diagnose`).
    pub events: u64,
    /// Events lost in the kernel ring buffer.
    pub lost: u64,
    /// Whether `lost` is known (false for a recording that was cut short).
    pub lost_known: bool,
    /// Tracing time, in seconds (`record`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Size of the recording (`record`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_on_disk: Option<u64>,
    /// The consumer thread alone (`record`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerRun>,
}

/// Events the consumer drained, decoded and handed on, and the CPU time it took.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConsumerRun {
    pub events: u64,
    pub cpu_ns: u64,
    pub events_per_sec: f64,
    /// Compact events whose task name had to be read from /proc.
    pub comms_from_proc: u64,
}

impl ConsumerRun {
    pub fn new(c: &ConsumerStats, comms_from_proc: u64) -> ConsumerRun {
        ConsumerRun {
            events: c.events,
            cpu_ns: c.busy_ns,
            events_per_sec: c.events_per_sec(),
            comms_from_proc,
        }
    }
}

impl RunStats {
    /// What `diagnose` counted: the report's events and losses.
    pub fn of_report(report: &Report) -> RunStats {
        RunStats {
            events: report.events,
            lost: report.lost_events.total,
            lost_known: report.lost_events.known,
            ..RunStats::default()
        }
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self).context("encoding --stats-json")?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_diagnose_shapes() {
        let record = RunStats {
            events: 10,
            lost: 1,
            lost_known: true,
            seconds: Some(2.0),
            bytes_on_disk: Some(55),
            consumer: Some(ConsumerRun::new(
                &ConsumerStats {
                    events: 10,
                    busy_ns: 1_000,
                },
                0,
            )),
        };
        let v = serde_json::to_value(&record).unwrap();
        assert_eq!(v["consumer"]["events_per_sec"], 1e7);
        assert_eq!(v["bytes_on_disk"], 55);
        let diagnose = RunStats {
            events: 3,
            lost_known: true,
            ..RunStats::default()
        };
        let v = serde_json::to_value(&diagnose).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"events": 3, "lost": 0, "lost_known": true})
        );
    }
}
