//! NOP storm: ops/s untraced, under `diagnose` (aggregate), `record`, the floor
//! (attached, empty programs) and bpftrace. NOPs make the tracer's per-request cost
//! the whole story: the kernel's own work per op is ~60 ns here.

use super::*;

impl Bench {
    pub(super) fn nop(&self) -> anyhow::Result<Vec<Row>> {
        let group = format!(
            "NOP storm, {} NOPs, batch {BATCH}",
            si(self.plan.nops as f64)
        );
        let all = [
            (Tracer::Untraced, None),
            (Tracer::Aggregate, Some(Target::AtLeast(0.31))),
            // An unpaced storm outruns record's consumer (see the rate part):
            // what counts is that every event is kept.
            (Tracer::Record, Some(Target::NoLoss)),
            (Tracer::Floor, None),
            (Tracer::Bpftrace, None),
        ];
        // Warm-up: binaries and page tables in memory before anything is timed.
        self.nop_once(Tracer::Untraced).context("warm-up run")?;
        let mut rows = self.compare(Part::Nop, &group, &all, Unit::OpsPerSec, |t| {
            self.nop_once(t)
        })?;
        if !self.modes.aggregate {
            rows[1]
                .notes
                .push_str("; this uringtrace has no --kernel-mode: diagnose's default mode");
        }
        Ok(rows)
    }

    pub(super) fn nop_once(&self, tracer: Tracer) -> anyhow::Result<Sample> {
        let cmd = self.workload(self.plan.nops, None);
        let run = self.traced(tracer, &cmd, Duration::from_secs(600))?;
        let w = parse_workload(&run.out.stderr)
            .context("uringtrace-workload printed no `nop-storm: ...` line")?;
        ensure!(
            w.completed == self.plan.nops,
            "uringtrace-workload completed {} of {} NOPs",
            w.completed,
            self.plan.nops
        );
        if tracer == Tracer::Bpftrace {
            let timed = run.events.unwrap_or(0);
            ensure!(
                timed == self.plan.nops,
                "bpftrace's histogram has {timed} samples for {} NOPs",
                self.plan.nops
            );
        }
        Ok(Sample::new(w.ops_per_sec, &run))
    }
}
