//! Findings handed over to a long-running consumer: each once, and the analyzer's
//! memory bounded however many processes come and go.

use uringtrace_common::{EventKind, RawEvent};

use super::{MAX_FINDINGS, MAX_RETAINED};
use crate::analyzer::report::Environment;
use crate::analyzer::{Analyzer, AnalyzerConfig};

/// Process `p` (pid 1000 + p, named `comm`) creates a ring and submits an SQE with an
/// unknown opcode (one invalid-sqe finding); it exits when `exits`. Also used by the
/// agent's metrics tests.
pub(crate) fn process(p: u32, comm: &str, exits: bool) -> Vec<RawEvent> {
    let pid = 1000 + p;
    let ctx = 0xffff_8880_1000_0000 + u64::from(p) * 0x1000;
    let mut c = [0u8; 16];
    c[..comm.len()].copy_from_slice(comm.as_bytes());
    let t = 1_000_000 + u64::from(p) * 1000;
    let ev = |kind: EventKind, ts: u64| RawEvent {
        kind: kind as u16,
        ts_ns: ts,
        pid,
        tgid: pid,
        ctx,
        comm: c,
        ..RawEvent::default()
    };
    let mut v = vec![
        RawEvent {
            args: [3, 8, 16, 0],
            ..ev(EventKind::Create, t + 1)
        },
        RawEvent {
            req: 0x100,
            user_data: 1,
            opcode: 250,
            res: -libc::EINVAL,
            ..ev(EventKind::ReqFailed, t + 2)
        },
    ];
    if exits {
        // Injected by userspace: no comm, no ring.
        v.push(RawEvent {
            comm: [0; 16],
            ctx: 0,
            pid: 0,
            ..ev(EventKind::ProcessExit, t + 3)
        });
    }
    v
}

/// Feeds `n` processes, taking new findings every 10; returns the analyzer and the
/// number of findings handed over.
fn feed(n: u32, comm: impl Fn(u32) -> String, exits: bool) -> (Analyzer, u64, usize) {
    let mut an = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    let (mut taken, mut most_held) = (0u64, 0usize);
    for p in 0..n {
        for ev in process(p, &comm(p), exits) {
            an.push(ev);
        }
        if p % 10 == 9 {
            an.flush();
            let new = an.take_new_findings();
            assert!(new.iter().all(|f| f.rule == "invalid-sqe"), "{new:#?}");
            taken += new.len() as u64;
            most_held = most_held.max(an.findings_kept().retained);
        }
    }
    an.flush();
    taken += an.take_new_findings().len() as u64;
    (an, taken, most_held)
}

/// Processes that come and go, each with one problem: each finding is handed over
/// once (the totals are exact, far past MAX_FINDINGS, where `report` would fold them
/// per program name), and the analyzer holds only those of live processes.
#[test]
fn findings_of_exited_processes_are_handed_over_once_and_let_go() {
    let n = 3 * MAX_RETAINED as u32;
    let (an, taken, most_held) = feed(n, |_| "app".into(), true);
    assert_eq!(taken, u64::from(n));
    let kept = an.findings_kept();
    assert_eq!(kept.handed_over, u64::from(n));
    // The last process's exit is applied, its state goes at the next event.
    assert_eq!(kept.retained, 1);
    assert_eq!(kept.released, u64::from(n) - 1);
    assert_eq!(kept.evicted, 0);
    assert!(most_held <= 10, "held {most_held}");
    // Nothing was folded per program name: every finding names its process.
    assert!(an.report().findings.iter().all(|f| f.pid != 0));
}

/// Processes that never exit (or whose exit is never seen), each under a name of its
/// own: past MAX_FINDINGS they are folded per name, past MAX_RETAINED the oldest
/// handed-over ones are let go. Held findings stay at the cap; every finding was still
/// handed over exactly once.
#[test]
fn findings_of_live_processes_stay_at_the_cap() {
    let n = MAX_RETAINED as u32 + 952;
    let (an, taken, most_held) = feed(n, |p| format!("app{p}"), false);
    assert_eq!(taken, u64::from(n));
    let kept = an.findings_kept();
    assert_eq!(kept.retained, MAX_RETAINED);
    assert_eq!(kept.evicted, u64::from(n) - MAX_RETAINED as u64);
    assert_eq!(kept.released, 0);
    assert!(most_held <= MAX_RETAINED, "held {most_held}");
    let r = an.report();
    assert_eq!(r.findings.len(), MAX_RETAINED);
    assert!(r.findings.iter().filter(|f| f.pid == 0).count() >= MAX_RETAINED - MAX_FINDINGS);
}

/// A one-shot consumer that never takes sees what it always saw.
#[test]
fn report_is_unchanged_without_takes() {
    let mut an = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for p in 0..20 {
        for ev in process(p, "app", true) {
            an.push(ev);
        }
    }
    let r = an.finish();
    assert_eq!(r.findings.len(), 20);
    assert!(r.findings.iter().all(|f| f.rule == "invalid-sqe"));
}

/// A cause handed over as a warning that later proves an error (a wait cycle whose
/// owners then all sleep in untimed waits, seen again as the same ongoing cause) is
/// handed over again, once, with its new severity and the occurrences so far; a later
/// milder hit changes nothing.
#[test]
fn a_finding_whose_severity_rises_is_handed_over_again_once() {
    use super::Findings;
    use crate::analyzer::detect::hit;
    use crate::analyzer::finding::{Evidence, Severity};
    use crate::analyzer::rules::RuleId;

    // A live process (pid 1001), or its findings would be let go at each take.
    let mut an = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for ev in process(1, "db", false) {
        an.push(ev);
    }
    an.flush();
    let st = an.state();
    let at = |sev: Severity| {
        let mut h = hit(
            st,
            RuleId::WaitCycle,
            1001,
            0xabc,
            7u8,
            "cycle".into(),
            Evidence {
                requests: vec![],
                facts: vec![],
                first_ns: 0,
                last_ns: 0,
            },
        );
        h.finding.severity = sev;
        h
    };
    let sev = |v: &[crate::analyzer::finding::Finding]| -> Vec<(Severity, u64)> {
        v.iter().map(|f| (f.severity, f.occurrences)).collect()
    };
    let mut f = Findings::default();
    f.add(at(Severity::Warning), st);
    assert_eq!(sev(&f.take_new(st, false)), [(Severity::Warning, 1)]);
    f.add_ongoing(at(Severity::Warning), st);
    assert!(f.take_new(st, false).is_empty(), "no rise, nothing new");
    f.add_ongoing(at(Severity::Error), st);
    assert_eq!(sev(&f.take_new(st, false)), [(Severity::Error, 1)]);
    assert!(
        f.take_new(st, false).is_empty(),
        "handed over once per rise"
    );
    // A new occurrence counted by `add` with a lower severity keeps the worst.
    f.add(at(Severity::Info), st);
    assert!(f.take_new(st, false).is_empty());
    let kept = f.kept();
    assert_eq!((kept.handed_over, kept.raised), (1, 1));
}
