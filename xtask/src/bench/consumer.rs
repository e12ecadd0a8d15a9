//! `record` on an unpaced NOP storm: whether it keeps up with the kernel (lost
//! events), what its consumer alone sustains, and the bytes per event on disk.
//!
//! The consumer's rate is what `record` reports itself: events drained from the ring
//! buffer, decoded and encoded to the file, divided by the CPU time the consumer
//! thread spent on them (polls that found nothing excluded; CPU time, so that other
//! load on the host does not count). It is measured on real kernel events at the rate
//! the kernel produces them, wire format and ring-buffer reading included, which a
//! replay of captured bytes would leave out.

use super::*;

impl Bench {
    pub(super) fn consumer(&self) -> Vec<Row> {
        let group = format!(
            "record, unpaced NOP storm, {} NOPs",
            si(self.plan.nops as f64)
        );
        let mut runs = Vec::new();
        let mut error = None;
        for round in 1..=self.plan.rounds {
            match self.consumer_once() {
                Ok(r) => {
                    progress(&format!(
                        "{group} round {round}/{}: consumer {} events/s, {} lost, {:.1} B/event",
                        self.plan.rounds,
                        si(r.consumer_rate),
                        r.lost,
                        r.bytes_per_event
                    ));
                    runs.push(r);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let rows = [
            (
                "record consumer, events/s",
                Unit::EventsPerSec,
                Target::AtLeast(10e6),
                runs.iter().map(|r| r.consumer_rate).collect::<Vec<_>>(),
            ),
            (
                "lost events",
                Unit::Events,
                Target::AtMost(0.0),
                runs.iter().map(|r| r.lost as f64).collect(),
            ),
            (
                "bytes per event on disk",
                Unit::BytesPerEvent,
                Target::AtMost(8.0),
                runs.iter().map(|r| r.bytes_per_event).collect(),
            ),
        ];
        rows.into_iter()
            .map(|(what, unit, target, values)| {
                let row = Row::new(Part::Rate, &group, what, unit);
                match (&error, values.is_empty()) {
                    (Some(e), _) => row.failed(e),
                    (None, true) => row.failed(&anyhow::anyhow!("no rounds")),
                    (None, false) => {
                        // Lost events: the worst round counts.
                        let v = match unit {
                            Unit::Events => values.iter().copied().fold(0.0, f64::max),
                            _ => median(&values),
                        };
                        let mut row = row.value(v, Some(target)).notes(format!(
                            "rounds: {}",
                            values
                                .iter()
                                .map(|v| unit.show(*v))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                        row.rounds = values;
                        row
                    }
                }
            })
            .collect()
    }

    fn consumer_once(&self) -> anyhow::Result<ConsumerRun> {
        let cmd = self.workload(self.plan.nops, None);
        let run = self.traced(Tracer::Record, &cmd, Duration::from_secs(600))?;
        let stats = run.stats.context(NO_STATS_JSON)?;
        let consumer = stats
            .consumer
            .context("uringtrace record's --stats-json has no consumer")?;
        let bytes = stats
            .bytes_on_disk
            .context("uringtrace record's --stats-json has no bytes_on_disk")?;
        Ok(ConsumerRun {
            consumer_rate: consumer.events_per_sec,
            lost: stats.lost,
            bytes_per_event: bytes as f64 / stats.events.max(1) as f64,
        })
    }
}

struct ConsumerRun {
    consumer_rate: f64,
    lost: u64,
    bytes_per_event: f64,
}
