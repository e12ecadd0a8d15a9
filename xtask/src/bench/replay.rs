//! Analyzer replay (events/s on one CPU and peak memory, at ~10 M and ~100 M events:
//! memory must not grow with the trace) and recording size in bytes per event.

use super::*;

/// NOPs per second for recordings that must be complete: ~3 M events/s.
const RECORD_PACE: u64 = 1_500_000;

impl Bench {
    pub(super) fn replay(&self) -> anyhow::Result<Vec<Row>> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Not CPU 0, where most interrupts land, when there is a choice.
        let cpu = if cpus > 1 { "1" } else { "0" };
        // The export runs the analyzer and the encoder on a thread each: two CPUs.
        let export_cpus = if cpus > 1 { "0,1" } else { "0" };
        let mut rows = Vec::new();
        for nops in self.plan.replay_nops {
            let group = format!("analyzer replay, {} NOPs recorded", si(nops as f64));
            let speed = Row::new(
                Part::Replay,
                &group,
                "replay (diagnose --input, 1 CPU)",
                Unit::EventsPerSec,
            );
            let mem = Row::new(
                Part::Replay,
                &group,
                "replay peak memory (max RSS)",
                Unit::Bytes,
            );
            let export = Row::new(
                Part::Replay,
                &group,
                "Perfetto export (export -o, 2 CPUs) vs replay",
                Unit::EventsPerSec,
            );
            match self.record_and_replay(nops, cpu, export_cpus) {
                Ok(r) => {
                    let mut notes =
                        format!("{} events in {:.2} s", si(r.events as f64), r.wall_secs);
                    if r.busy_before >= QUIET {
                        notes.push_str("; began under outside CPU load");
                    }
                    let mut speed = speed
                        .value(r.events as f64 / r.wall_secs, Some(Target::AtLeast(10e6)))
                        .notes(notes.clone());
                    speed.data = serde_json::to_value(&r)?;
                    rows.push(speed);
                    rows.push(mem.value(r.max_rss_bytes as f64, None).notes(notes));
                    // The bar: an export is at least as fast as replay (wall
                    // time; replay is one thread, the export two).
                    let replay_rate = r.events as f64 / r.wall_secs;
                    rows.push(
                        export
                            .value(
                                r.events as f64 / r.export_wall_secs,
                                Some(Target::AtLeast(replay_rate)),
                            )
                            .notes(format!(
                                "export {:.2} s vs replay {:.2} s; {:.0} MiB written, {} max RSS{}",
                                r.export_wall_secs,
                                r.wall_secs,
                                r.export_bytes as f64 / (1 << 20) as f64,
                                Unit::Bytes.show(r.export_max_rss_bytes as f64),
                                // Its two threads need both CPUs: under outside load
                                // its wall time says little (README, Export to Perfetto).
                                if r.busy_before >= QUIET {
                                    "; began under outside CPU load"
                                } else {
                                    ""
                                }
                            )),
                    );
                }
                Err(e) => {
                    progress(&format!("replay failed: {e:#}"));
                    rows.push(speed.failed(&e));
                    rows.push(mem.failed(&e));
                    rows.push(export.failed(&e));
                }
            }
        }
        Ok(rows)
    }

    /// Records `nops` NOPs, replays the recording pinned to `cpu`, exports it pinned to
    /// `export_cpus`, deletes it.
    pub(super) fn record_and_replay(
        &self,
        nops: u64,
        cpu: &str,
        export_cpus: &str,
    ) -> anyhow::Result<Replay> {
        let file = self.work.join(format!("replay-{nops}.utr"));
        let result = self.record_complete(&file, nops).and_then(|rec| {
            progress(&format!(
                "replay: {} events recorded; replaying on CPU {cpu}",
                si(rec.events as f64)
            ));
            let (events, out) = self.replay_once(&file, cpu)?;
            let (export, export_bytes) = self.export_once(&file, export_cpus)?;
            Ok(Replay {
                export_wall_secs: export.wall.as_secs_f64(),
                export_max_rss_bytes: export.max_rss_bytes,
                export_bytes,
                recording: rec,
                events,
                wall_secs: out.wall.as_secs_f64(),
                max_rss_bytes: out.max_rss_bytes,
                busy_before: out.busy_before,
            })
        });
        let _ = fs::remove_file(&file);
        result
    }

    /// A recording of `nops` NOPs with every event: a replay of a lossy one
    /// would measure requests left in flight. An unpaced NOP storm makes ~6 M
    /// events/s under `record`, more than its consumer drains on one CPU (~4-5 M,
    /// see the rate part), so the NOPs are paced from the start, and lower again
    /// when events are still lost. Dirty pages of an earlier attempt are written
    /// back first: that writeback stalled the consumer into losses.
    pub(super) fn record_complete(&self, file: &Path, nops: u64) -> anyhow::Result<Recording> {
        let mut rate = Some(RECORD_PACE);
        for _ in 0..3 {
            // SAFETY: sync(2) takes no arguments and cannot fail.
            unsafe { libc::sync() };
            progress(&format!(
                "replay: recording {} NOPs{} to {}",
                si(nops as f64),
                rate.map(|r| format!(" at {}/s", si(r as f64)))
                    .unwrap_or_default(),
                file.display()
            ));
            let rec = self.record_to(file, nops, rate, &["--ring-size", "64M"])?;
            if rec.lost == 0 {
                return Ok(rec);
            }
            let kept = rec.events as f64 / (rec.events + rec.lost) as f64;
            rate = Some((rec.ops_per_sec * kept * 0.8) as u64);
        }
        bail!(
            "uringtrace record lost events in each of 3 attempts, the last paced to {}/s",
            si(rate.unwrap_or(0) as f64)
        )
    }

    /// Records `nops` NOPs (paced to `rate`) into `file`.
    pub(super) fn record_to(
        &self,
        file: &Path,
        nops: u64,
        rate: Option<u64>,
        extra: &[&str],
    ) -> anyhow::Result<Recording> {
        ensure!(self.modes.stats_json, NO_STATS_JSON);
        let stats = StatsFile::new(&self.work, &self.modes);
        let mut cmd = Command::new(&self.ut);
        cmd.args(["record", "-q"])
            .args(extra)
            .arg("-o")
            .arg(file)
            .args(stats.args())
            .arg("--");
        cmd.args(self.workload(nops, rate));
        let out = self.run_tool("uringtrace record", &mut cmd, Duration::from_secs(3600))?;
        let stats = stats.read("uringtrace record")?.context(NO_STATS_JSON)?;
        let (events, lost) = (stats.events, stats.lost);
        let w = parse_workload(&out.stderr)
            .context("uringtrace-workload printed no `nop-storm: ...` line")?;
        if lost > 0 {
            progress(&format!(
                "{lost} events lost while recording {}",
                file.display()
            ));
        }
        let bytes = fs::metadata(file)
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        Ok(Recording {
            events,
            lost,
            bytes,
            ops_per_sec: w.ops_per_sec,
            paced: rate,
        })
    }

    /// `taskset -c CPU uringtrace diagnose --input FILE`: (events in the report, the run).
    pub(super) fn replay_once(&self, file: &Path, cpu: &str) -> anyhow::Result<(u64, Finished)> {
        ensure!(self.modes.stats_json, NO_STATS_JSON);
        let report = self.work.join("replay-report.json");
        let stats = StatsFile::new(&self.work, &self.modes);
        let _ = fs::remove_file(&report);
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", cpu]).arg(&self.ut);
        cmd.args(["diagnose", "-q", "--format", "json", "-o"])
            .arg(&report)
            .args(stats.args());
        cmd.arg("--input").arg(file);
        let out = self.run_tool(
            "uringtrace diagnose --input",
            &mut cmd,
            Duration::from_secs(3600),
        )?;
        let stats = stats.read("uringtrace diagnose")?.context(NO_STATS_JSON)?;
        Ok((stats.events, out))
    }

    /// `taskset -c CPUS uringtrace export FILE -o OUT`: (the run, bytes written).
    pub(super) fn export_once(&self, file: &Path, cpus: &str) -> anyhow::Result<(Finished, u64)> {
        let out_file = self.work.join("replay-export.pftrace");
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", cpus]).arg(&self.ut);
        cmd.args(["export", "-q", "-o"]).arg(&out_file).arg(file);
        let out = self.run_tool("uringtrace export", &mut cmd, Duration::from_secs(3600))?;
        let bytes = fs::metadata(&out_file).map_or(0, |m| m.len());
        let _ = fs::remove_file(&out_file);
        Ok((out, bytes))
    }
}

impl Bench {
    pub(super) fn size(&self) -> anyhow::Result<Vec<Row>> {
        let nops = self.plan.nops;
        let file = self.work.join("size.utr");
        let result = self.record_complete(&file, nops);
        let _ = fs::remove_file(&file);
        let rec = result?;
        ensure!(rec.events > 0, "uringtrace record recorded no events");
        let group = format!("recording, {} NOPs", si(nops as f64));
        let mut notes = format!(
            "{:.0} MiB for {} events",
            rec.bytes as f64 / (1 << 20) as f64,
            si(rec.events as f64)
        );
        if rec.lost > 0 {
            let _ = write!(notes, "; {} lost", rec.lost);
        }
        let what = "bytes per event on disk";
        let mut row = Row::new(Part::Size, &group, what, Unit::BytesPerEvent)
            .value(
                rec.bytes as f64 / rec.events as f64,
                Some(Target::AtMost(16.0)),
            )
            .notes(notes);
        row.data = serde_json::to_value(&rec)?;
        Ok(vec![row])
    }
}

/// What `uringtrace record` made of a NOP storm.
#[derive(Debug, Serialize)]
pub(super) struct Recording {
    pub(super) events: u64,
    pub(super) lost: u64,
    pub(super) bytes: u64,
    /// The workload's own rate while recorded.
    pub(super) ops_per_sec: f64,
    /// The rate it was paced to, if it was.
    pub(super) paced: Option<u64>,
}

/// One analyzer replay of a recording.
#[derive(Debug, Serialize)]
pub(super) struct Replay {
    pub(super) recording: Recording,
    /// Events the analyzer reports.
    pub(super) events: u64,
    pub(super) wall_secs: f64,
    pub(super) max_rss_bytes: u64,
    pub(super) busy_before: f64,
    pub(super) export_wall_secs: f64,
    pub(super) export_max_rss_bytes: u64,
    pub(super) export_bytes: u64,
}
