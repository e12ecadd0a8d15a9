//! `uringtrace agent`'s `/metrics`: analyzer state turned into Prometheus/OpenMetrics
//! text, encoded by the `prometheus-client` crate.
//!
//! The analyzer keeps what its detectors need, and forgets processes that exit and
//! all but the newest retired rings: its numbers can go down. Prometheus counters
//! must not. So [`Metrics::update`] takes the growth of each source (a ring, a
//! process's punts) since the previous update and adds it to its series: what a
//! forgotten ring counted stays counted. A ring is told apart by (address, creation
//! time), so a new ring at a freed ring's address starts from zero.
//!
//! Series are labelled by workload identity (`comm`, `cgroup`), never by pid, ring
//! address or user_data, and at most [`Metrics::new`]'s `max_identities` identities
//! get their own series: later ones share `comm="other",cgroup="other"`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::analyzer::finding::Finding;
use crate::analyzer::latency::Histogram;
use crate::analyzer::state::{State, RETIRED_RINGS};
use crate::names::opcode_name;

/// Label value of the series that takes identities past the cap.
pub const OTHER: &str = "other";
/// Histogram `le` bounds: 2^LE_FIRST ns (~1 µs) to 2^LE_LAST ns (~8.6 s), then +Inf.
/// The analyzer's log-linear buckets (32 per power of two) nest in these exactly.
const LE_FIRST: u32 = 10;
const LE_LAST: u32 = 33;
const LE_BOUNDS: usize = (LE_LAST - LE_FIRST + 1) as usize;

/// Workload identity of a process.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct Identity {
    pub comm: String,
    pub cgroup: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    comm: String,
    cgroup: String,
    opcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    comm: String,
    cgroup: String,
    opcode: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    comm: String,
    cgroup: String,
    rule: String,
    severity: String,
}

/// Collapsed latency counts: one per power-of-two bound, then +Inf; and their sum.
#[derive(Clone, Debug, Default, PartialEq)]
struct Collapsed {
    counts: [u64; LE_BOUNDS + 1],
    /// Seconds, from each bucket's low edge (the analyzer keeps no exact sum): low by
    /// at most ~3 %.
    sum_s: f64,
}

impl Collapsed {
    fn of(h: &Histogram) -> Collapsed {
        let mut c = Collapsed::default();
        for (low, n) in h.buckets() {
            // The smallest k with low < 2^k: the bucket's values are all below 2^k
            // (buckets never straddle a power of two).
            let k = 64 - low.leading_zeros();
            let i = k.saturating_sub(LE_FIRST) as usize;
            c.counts[i.min(LE_BOUNDS)] += n;
            c.sum_s += low as f64 * n as f64 / 1e9;
        }
        c
    }

    /// Adds `now - before` (a ring's growth; `before` is zero for a new ring).
    fn add_growth(&mut self, now: &Collapsed, before: Option<&Collapsed>) {
        for (i, n) in now.counts.iter().enumerate() {
            self.counts[i] += n - before.map_or(0, |b| b.counts[i].min(*n));
        }
        self.sum_s += (now.sum_s - before.map_or(0.0, |b| b.sum_s)).max(0.0);
    }
}

/// A histogram series whose buckets are set from outside (prometheus-client's own
/// histogram only observes one value at a time).
#[derive(Debug, Default)]
struct BucketHistogram(Mutex<Collapsed>);

impl EncodeMetric for BucketHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let c = self.0.lock().map_err(|_| fmt::Error)?;
        let mut buckets: Vec<(f64, u64)> = (LE_FIRST..=LE_LAST)
            .map(|k| ((1u64 << k) as f64 / 1e9, c.counts[(k - LE_FIRST) as usize]))
            .collect();
        buckets.push((f64::INFINITY, c.counts[LE_BOUNDS]));
        let count = c.counts.iter().sum();
        encoder.encode_histogram::<NoLabelSet>(c.sum_s, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl TypedMetric for BucketHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

/// What one ring had counted at the previous update.
#[derive(Clone, Debug, Default)]
struct RingSeen {
    /// opcode → (completed, failed, latencies)
    ops: BTreeMap<u8, (u64, u64, Collapsed)>,
    overflowed: u64,
    dropped: u64,
}

/// Cumulative series, per identity.
#[derive(Default)]
struct Totals {
    requests: BTreeMap<(Identity, u8), (u64, u64)>,
    latency: BTreeMap<(Identity, u8), Collapsed>,
    overflowed: BTreeMap<Identity, u64>,
    dropped: BTreeMap<Identity, u64>,
    punts: BTreeMap<(Identity, u8), u64>,
    findings: BTreeMap<(Identity, String, String), u64>,
}

/// The gauges and counters that are not per identity, as of an update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolCounters {
    /// Events the kernel ring buffer lost.
    pub lost_events: u64,
    /// CPU time spent in the tracer's BPF programs; None when the kernel does not
    /// count it (BPF statistics off and not switchable).
    pub bpf_run_ns: Option<u64>,
}

pub struct Metrics {
    max_identities: usize,
    identities: HashSet<Identity>,
    rings: HashMap<(u64, u64), RingSeen>,
    punts_seen: HashMap<(u32, u8, i32), u64>,
    totals: Totals,
    /// Gauges: live rings, io-wq workers, SQPOLL threads per identity.
    gauges: BTreeMap<Identity, (u64, u64, u64)>,
    tool: ToolCounters,
}

impl Metrics {
    pub fn new(max_identities: usize) -> Metrics {
        Metrics {
            max_identities,
            identities: HashSet::new(),
            rings: HashMap::new(),
            punts_seen: HashMap::new(),
            totals: Totals::default(),
            gauges: BTreeMap::new(),
            tool: ToolCounters::default(),
        }
    }

    /// The identity series of `id`: itself while under the cap (or already known).
    fn capped(&mut self, id: Identity) -> Identity {
        if self.identities.contains(&id) {
            return id;
        }
        if self.identities.len() < self.max_identities {
            self.identities.insert(id.clone());
            return id;
        }
        Identity {
            comm: OTHER.into(),
            cgroup: OTHER.into(),
        }
    }

    /// Counts findings as the analyzer hands them over
    /// ([`crate::analyzer::Analyzer::take_new_findings`]): each once, and once more
    /// under each higher severity it rises to (the lower severity's count stays:
    /// counters never go down).
    pub fn add_findings(&mut self, new: &[Finding], cgroup_of: &mut dyn FnMut(u32) -> String) {
        for f in new {
            let id = self.capped(Identity {
                comm: f.comm.clone(),
                cgroup: cgroup_of(f.pid),
            });
            *self
                .totals
                .findings
                .entry((id, f.rule.to_string(), f.severity.name().to_string()))
                .or_default() += 1;
        }
    }

    /// The tool's own counters, as of now.
    pub fn set_tool(&mut self, tool: ToolCounters) {
        self.tool = tool;
    }

    /// Whether rings retired since the previous update fill half of what the analyzer
    /// keeps of them: update now, or the oldest are forgotten before they are counted.
    pub fn behind(&self, st: &State) -> bool {
        st.retired
            .get(RETIRED_RINGS / 2)
            .is_some_and(|r| !self.rings.contains_key(&(r.ctx, r.created_ns)))
    }

    /// Takes in the growth since the previous update; `cgroup_of` names a process's
    /// cgroup. Call it often enough that no ring retires and is forgotten by the
    /// analyzer in between ([`Metrics::behind`]).
    pub fn update(&mut self, st: &State, cgroup_of: &mut dyn FnMut(u32) -> String) {
        let mut ident = |m: &mut Metrics, tgid: u32, comm: String| {
            let id = Identity {
                comm,
                cgroup: cgroup_of(tgid),
            };
            m.capped(id)
        };
        let mut gauges: BTreeMap<Identity, (u64, u64, u64)> = BTreeMap::new();
        let rings = st.rings.values().map(|r| (r, st.ring_comm(r), true));
        let retired = st.retired.iter().map(|r| (r, r.owner_comm.clone(), false));
        for (r, comm, live) in rings.chain(retired) {
            let id = ident(self, r.tgid, comm);
            if live && crate::analyzer::ring_is_shown(r) {
                gauges.entry(id.clone()).or_default().0 += 1;
            }
            let now = RingSeen {
                ops: r
                    .latency
                    .iter()
                    .map(|(op, h)| {
                        let failed = r.errors_by_op.get(op).copied().unwrap_or(0);
                        (*op, (h.count(), failed, Collapsed::of(h)))
                    })
                    .collect(),
                overflowed: r.overflowed,
                dropped: r.dropped,
            };
            let before = self.rings.get(&(r.ctx, r.created_ns));
            let t = &mut self.totals;
            for (op, (done, failed, lat)) in &now.ops {
                let b = before.and_then(|b| b.ops.get(op));
                let e = t.requests.entry((id.clone(), *op)).or_default();
                let (done0, failed0) = b.map_or((0, 0), |b| (b.0, b.1));
                let failed_growth = failed.saturating_sub(failed0);
                e.0 += done.saturating_sub(done0).saturating_sub(failed_growth);
                e.1 += failed_growth;
                t.latency
                    .entry((id.clone(), *op))
                    .or_default()
                    .add_growth(lat, b.map(|b| &b.2));
            }
            *t.overflowed.entry(id.clone()).or_default() +=
                now.overflowed - before.map_or(0, |b| b.overflowed.min(now.overflowed));
            *t.dropped.entry(id).or_default() +=
                now.dropped - before.map_or(0, |b| b.dropped.min(now.dropped));
            self.rings.insert((r.ctx, r.created_ns), now);
        }
        // Rings neither live nor among the retired the analyzer keeps are forgotten
        // here too: their counts are in the totals already.
        let kept: HashSet<(u64, u64)> = st
            .rings
            .values()
            .chain(st.retired.iter())
            .map(|r| (r.ctx, r.created_ns))
            .collect();
        self.rings.retain(|k, _| kept.contains(k));
        for (tgid, p) in st.procs.iter() {
            let id = ident(self, *tgid, st.comm_of(*tgid));
            let g = gauges.entry(id).or_default();
            g.1 += p.workers_live;
            g.2 += p.sqpoll_live;
        }
        for (key @ (tgid, op, _fd), n) in st.punts.iter() {
            let before = self.punts_seen.insert(*key, *n).unwrap_or(0);
            let id = ident(self, *tgid, st.comm_of(*tgid));
            // Below what was seen: the process is a new one with the same pid.
            let growth = if *n >= before { n - before } else { *n };
            *self.totals.punts.entry((id, *op)).or_default() += growth;
        }
        self.punts_seen.retain(|k, _| st.punts.contains_key(k));
        self.gauges = gauges;
    }

    /// The OpenMetrics text of every series.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut reg = Registry::with_prefix("uringtrace");
        let t = &self.totals;
        let op = |id: &Identity, o: u8| OpLabels {
            comm: id.comm.clone(),
            cgroup: id.cgroup.clone(),
            opcode: opcode_name(o).into_owned(),
        };

        let requests = Family::<ResultLabels, Counter>::default();
        for ((id, o), (ok, failed)) in &t.requests {
            for (result, n) in [("ok", ok), ("error", failed)] {
                let l = op(id, *o);
                requests
                    .get_or_create(&ResultLabels {
                        comm: l.comm,
                        cgroup: l.cgroup,
                        opcode: l.opcode,
                        result,
                    })
                    .inc_by(*n);
            }
        }
        register(
            &mut reg,
            "requests",
            "io_uring requests completed, by opcode and result (error: res < 0)",
            requests,
            t.requests.is_empty(),
        );

        let latency = Family::<OpLabels, BucketHistogram>::default();
        for ((id, o), c) in &t.latency {
            if let Ok(mut m) = latency.get_or_create(&op(id, *o)).0.lock() {
                *m = c.clone();
            }
        }
        let help = "Submission to completion of io_uring requests, by opcode";
        if t.latency.is_empty() {
            reg.register("request_duration_seconds", help, BucketHistogram::default());
        } else {
            reg.register("request_duration_seconds", help, latency);
        }

        counter_family(
            &mut reg,
            "cq_overflow",
            "Completions that went to the CQ overflow list",
            &t.overflowed,
        );
        counter_family(
            &mut reg,
            "cqe_dropped",
            "Completions the kernel dropped (overflow list allocation failed)",
            &t.dropped,
        );

        let punts = Family::<OpLabels, Counter>::default();
        for ((id, o), n) in &t.punts {
            punts.get_or_create(&op(id, *o)).inc_by(*n);
        }
        register(
            &mut reg,
            "iowq_punts",
            "Requests punted to io-wq worker threads, by opcode",
            punts,
            t.punts.is_empty(),
        );

        for (name, help, pick) in [
            (
                "rings",
                "io_uring instances alive",
                (|g: &(u64, u64, u64)| g.0) as fn(&(u64, u64, u64)) -> u64,
            ),
            ("iowq_workers", "io-wq worker threads alive", |g| g.1),
            ("sqpoll_threads", "SQPOLL threads alive", |g| g.2),
        ] {
            let fam = Family::<Identity, Gauge>::default();
            for (id, g) in &self.gauges {
                fam.get_or_create(id)
                    .set(i64::try_from(pick(g)).unwrap_or(i64::MAX));
            }
            if self.gauges.is_empty() {
                reg.register(name, help, Gauge::<i64>::default());
            } else {
                reg.register(name, help, fam);
            }
        }

        let findings = Family::<FindingLabels, Counter>::default();
        for ((id, rule, severity), n) in &t.findings {
            findings
                .get_or_create(&FindingLabels {
                    comm: id.comm.clone(),
                    cgroup: id.cgroup.clone(),
                    rule: rule.clone(),
                    severity: severity.clone(),
                })
                .inc_by(*n);
        }
        register(
            &mut reg,
            "findings",
            "Findings reported, by rule; one that rose in severity counts once under each severity it reached",
            findings,
            t.findings.is_empty(),
        );

        let lost: Counter = Counter::default();
        lost.inc_by(self.tool.lost_events);
        reg.register(
            "lost_events",
            "Events lost in the kernel ring buffer (findings may be inconclusive)",
            lost,
        );
        if let Some(ns) = self.tool.bpf_run_ns {
            let run: Counter<f64> = Counter::default();
            run.inc_by(ns as f64 / 1e9);
            reg.register(
                "bpf_run_seconds",
                "CPU time the kernel spent in uringtrace's own BPF programs",
                run,
            );
        }

        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg)?;
        Ok(out)
    }
}

fn counter_family(reg: &mut Registry, name: &str, help: &str, by: &BTreeMap<Identity, u64>) {
    let fam = Family::<Identity, Counter>::default();
    for (id, n) in by {
        fam.get_or_create(id).inc_by(*n);
    }
    register(reg, name, help, fam, by.is_empty());
}

/// A counter family, or while it has no series a single zero series without labels:
/// prometheus-client writes nothing for a family without series, and a family that
/// exists from the first scrape on is what dashboards and alert rules expect
/// (`absent()` tells a missing agent from a quiet host).
fn register<L>(reg: &mut Registry, name: &str, help: &str, fam: Family<L, Counter>, empty: bool)
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + fmt::Debug + Send + Sync + 'static,
{
    if empty {
        reg.register(name, help, Counter::<u64>::default());
    } else {
        reg.register(name, help, fam);
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
