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
        let (events, bytes) =
            record_size(&run.out.stderr).context("uringtrace record printed no summary line")?;
        Ok(ConsumerRun {
            consumer_rate: record_consumer_rate(&run.out.stderr).context(
                "uringtrace record printed no `consumer:` line (a build from before it had one)",
            )?,
            lost: run.lost.unwrap_or(u64::MAX),
            bytes_per_event: bytes / events.max(1) as f64,
        })
    }
}

struct ConsumerRun {
    consumer_rate: f64,
    lost: u64,
    bytes_per_event: f64,
}

/// `uringtrace: consumer: N events decoded and encoded in Xs of CPU (R events/s); ...`
fn record_consumer_rate(stderr: &str) -> Option<f64> {
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with("uringtrace: consumer: "))?;
    let (_, rest) = line.split_once(" of CPU (")?;
    rest.split(' ').next()?.parse().ok()
}

/// (events, bytes/event × events) from `uringtrace: N events in ...; S on disk (B bytes/event)`.
fn record_size(stderr: &str) -> Option<(u64, f64)> {
    let (events, _) = record_counts(stderr)?;
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with("uringtrace: ") && l.contains(" bytes/event)"))?;
    let (head, _) = line.rsplit_once(" bytes/event)")?;
    let per_event: f64 = head.rsplit('(').next()?.parse().ok()?;
    Some((events, per_event * events as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "\
uringtrace: 10156281 events in 2.54s (3999994/s), 0 lost in the ring buffer; 53.0 MiB on disk (5.5 bytes/event)
uringtrace: consumer: 10156251 events decoded and encoded in 0.395s of CPU (25722238 events/s); 0 task names read from /proc
";

    #[test]
    fn parses_records_summary() {
        assert_eq!(record_consumer_rate(OUT), Some(25722238.0));
        let (events, bytes) = record_size(OUT).unwrap();
        assert_eq!(events, 10156281);
        assert!((bytes / events as f64 - 5.5).abs() < 1e-9);
        assert_eq!(record_consumer_rate("uringtrace: 1 events in"), None);
    }
}
