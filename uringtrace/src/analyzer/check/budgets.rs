//! Budgets: limits from the config that the report's figures must keep, as findings of
//! the budget-* rules.

use std::collections::BTreeMap;

use super::Budgets;
use crate::analyzer::finding::{Evidence, Fact, FactValue, Finding};
use crate::analyzer::report::Report;
use crate::analyzer::rules::RuleId;
use crate::units::human_ns;

/// The findings of every budget the report exceeds; `inconclusive` when its events were
/// lost, like the analyzer's own findings.
pub(super) fn findings(b: &Budgets, report: &Report, inconclusive: bool) -> Vec<Finding> {
    let mut out = latency_budget(b, report);
    out.extend(in_flight_budget(b, report));
    out.extend(iowq_budget(b, report));
    for f in &mut out {
        f.inconclusive = inconclusive;
    }
    out
}

fn budget_finding(rule: RuleId, message: String, facts: Vec<Fact>) -> Finding {
    Finding {
        rule,
        severity: rule.rule().severity,
        pid: 0,
        comm: String::new(),
        ring: 0,
        message,
        fix: rule.rule().fix.into(),
        occurrences: 1,
        evidence: Evidence {
            requests: vec![],
            facts,
            first_ns: 0,
            last_ns: 0,
        },
        inconclusive: false,
    }
}

fn fact(name: &str, value: FactValue) -> Fact {
    Fact::new(name, value)
}

fn latency_budget(b: &Budgets, report: &Report) -> Vec<Finding> {
    let over = report.latency.iter().filter_map(|l| {
        let budget = *b.p99_latency_ns.get(&l.opcode.to_ascii_uppercase())?;
        (l.p99_ns > budget).then_some((l, budget))
    });
    over.map(|(l, budget)| {
        let message = format!(
            "{} p99 latency is {}, above the budget of {} ({} requests)",
            l.opcode,
            human_ns(l.p99_ns),
            human_ns(budget),
            l.count
        );
        let facts = vec![
            fact("opcode", FactValue::Text(l.opcode.clone())),
            fact("p99", FactValue::Ns(l.p99_ns)),
            fact("budget", FactValue::Ns(budget)),
            fact("p50", FactValue::Ns(l.p50_ns)),
            fact("max", FactValue::Ns(l.max_ns)),
            fact("requests", FactValue::Count(l.count)),
        ];
        budget_finding(RuleId::BudgetP99Latency, message, facts)
    })
    .collect()
}

fn in_flight_budget(b: &Budgets, report: &Report) -> Vec<Finding> {
    let Some(max) = b.max_in_flight else {
        return vec![];
    };
    let over = report.rings.iter().filter(|r| r.max_in_flight > max);
    over.map(|r| {
        let message = format!(
            "ring {} had {} requests in flight at peak, above the budget of {max}",
            r.ring, r.max_in_flight
        );
        let mut facts = vec![
            fact("max_in_flight", FactValue::Count(r.max_in_flight)),
            fact("budget", FactValue::Count(max)),
        ];
        if let Some(cq) = r.cq_entries {
            facts.push(fact("cq_entries", FactValue::Count(cq.into())));
        }
        let mut f = budget_finding(RuleId::BudgetInFlight, message, facts);
        let ring = u64::from_str_radix(r.ring.trim_start_matches("0x"), 16).unwrap_or(0);
        (f.pid, f.comm, f.ring) = (r.pid, r.comm.clone(), ring);
        f
    })
    .collect()
}

/// Workers are counted per process; rings only carry their owner's count, so one
/// finding per process. A count seen for no ring's process still fails, unattributed.
fn iowq_budget(b: &Budgets, report: &Report) -> Vec<Finding> {
    let Some(max) = b.max_iowq_workers else {
        return vec![];
    };
    let mut per_pid: BTreeMap<u32, (&str, u64)> = BTreeMap::new();
    for r in &report.rings {
        let e = per_pid.entry(r.pid).or_insert((r.comm.as_str(), 0));
        e.1 = e.1.max(r.iowq_workers);
    }
    let mut out: Vec<Finding> = per_pid
        .into_iter()
        .filter(|(_, (_, n))| *n > max)
        .map(|(pid, (comm, n))| iowq_finding(Some((pid, comm)), n, max))
        .collect();
    if out.is_empty() && report.max_iowq_workers > max {
        out.push(iowq_finding(None, report.max_iowq_workers, max));
    }
    out
}

fn iowq_finding(owner: Option<(u32, &str)>, n: u64, max: u64) -> Finding {
    let whose = match owner {
        Some((pid, comm)) => format!("process {pid} ({comm})"),
        None => "a process".to_string(),
    };
    let message = format!("{whose} had {n} io-wq workers alive at once, above the budget of {max}");
    let facts = vec![
        fact("iowq_workers", FactValue::Count(n)),
        fact("budget", FactValue::Count(max)),
    ];
    let mut f = budget_finding(RuleId::BudgetIowqWorkers, message, facts);
    if let Some((pid, comm)) = owner {
        (f.pid, f.comm) = (pid, comm.to_string());
    }
    f
}
