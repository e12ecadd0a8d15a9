//! The highest event rate `record` streams with zero lost events at its default
//! ring size: a paced NOP storm, doubling the rate, then bisecting.

use super::*;

impl Bench {
    pub(super) fn rate(&self) -> anyhow::Result<Vec<Row>> {
        const START: u64 = 250_000;
        const MIN: u64 = 10_000;
        const CAP: u64 = 64_000_000;
        let group = "record, default 64 MiB ring, paced NOP storm";
        let what = "highest rate with 0 lost events";
        let (mut lo, mut hi): (Option<Probe>, Option<u64>) = (None, None);
        let mut probes = Vec::new();
        while probes.len() < 16 {
            let next = match (&lo, hi) {
                (None, None) => START,
                (Some(l), None) if l.rate >= CAP => break,
                (Some(l), None) => l.rate * 2,
                (None, Some(h)) if h <= MIN => break,
                (None, Some(h)) => h / 2,
                (Some(l), Some(h)) if h as f64 / l.rate as f64 <= 1.1 => break,
                (Some(l), Some(h)) => ((l.rate as f64 * h as f64).sqrt() as u64).max(l.rate + 1),
            };
            let p = self.probe(next)?;
            progress(&format!(
                "rate {}/s NOPs: achieved {}/s, {} events/s, {} lost -> {}",
                si(next as f64),
                si(p.achieved),
                si(p.events_per_sec),
                p.lost,
                if p.ok { "sustained" } else { "not sustained" }
            ));
            probes.push(p.clone());
            if p.ok {
                lo = Some(p);
            } else {
                hi = Some(next);
            }
        }
        let row = Row::new(Part::Rate, group, what, Unit::EventsPerSec);
        let mut row = match &lo {
            Some(l) => row.value(l.events_per_sec, None).notes(format!(
                "{} NOPs/s for {:.0} s; {} probes",
                si(l.achieved),
                self.plan.rate_probe_secs,
                probes.len()
            )),
            None => row.failed(&anyhow::anyhow!(
                "no rate down to {} NOPs/s streamed without drops",
                si(MIN as f64)
            )),
        };
        row.data = json!({ "probes": probes });
        Ok(vec![row])
    }

    pub(super) fn probe(&self, rate: u64) -> anyhow::Result<Probe> {
        let nops = ((rate as f64 * self.plan.rate_probe_secs) as u64).max(6_400);
        let cmd = self.workload(nops, Some(rate));
        let run = self.traced(Tracer::Record, &cmd, Duration::from_secs(600))?;
        let w = parse_workload(&run.out.stderr)
            .context("uringtrace-workload printed no `nop-storm: ...` line")?;
        let stats = run.stats.as_ref().context(NO_STATS_JSON)?;
        let (events, lost) = (stats.events, stats.lost);
        Ok(Probe {
            rate,
            achieved: w.ops_per_sec,
            events,
            events_per_sec: events as f64 / w.secs,
            lost,
            ok: lost == 0 && w.ops_per_sec >= 0.95 * rate as f64,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub(super) struct Probe {
    pub(super) rate: u64,
    pub(super) achieved: f64,
    pub(super) events: u64,
    pub(super) events_per_sec: f64,
    pub(super) lost: u64,
    pub(super) ok: bool,
}
