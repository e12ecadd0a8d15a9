//! A sample report, for the tests of the check and of the output formats.

use crate::analyzer::finding::{Evidence, Fact, FactValue, Finding, RequestEvidence, Severity};
use crate::analyzer::report::{Environment, LostEvents, OpLatency, Report, RingSummary};
use crate::analyzer::rules::RuleId;

pub(crate) fn finding(rule: &str, severity: Severity) -> Finding {
    Finding {
        rule: RuleId::from_slug(rule).expect("a known rule"),
        severity,
        pid: 1234,
        comm: "app".into(),
        ring: 0xffff888012345000,
        occurrences: 1,
        message: format!("{rule} happened | with a pipe & <angle> \"quotes\""),
        fix: "do the right thing".into(),
        evidence: Evidence {
            requests: vec![
                RequestEvidence {
                    user_data: 1,
                    opcode: 22,
                    result: Some(-9),
                    role: "breaker".into(),
                    submitted_ns: Some(10),
                    completed_ns: Some(20),
                },
                RequestEvidence {
                    user_data: 2,
                    opcode: 0,
                    result: None,
                    role: "waiting".into(),
                    submitted_ns: Some(11),
                    completed_ns: None,
                },
            ],
            facts: vec![Fact::new("cq_entries", FactValue::Count(4))],
            first_ns: 10,
            last_ns: 20,
        },
        inconclusive: false,
    }
}

pub(crate) fn report() -> Report {
    Report {
        environment: Environment {
            kernel_release: "6.18.44".into(),
            host: "box".into(),
            source: "app.utr".into(),
            io_uring_disabled: String::new(),
            degraded: vec![(
                "cqe-dropped".into(),
                "no io_uring_cqe_overflow before 5.19".into(),
            )],
            tool_version: "0.1.0".into(),
            cpus: 0,
        },
        rings: vec![RingSummary {
            ring: "0xffff888012345000".into(),
            pid: 1234,
            comm: "app".into(),
            fd: Some(3),
            sq_entries: Some(4),
            cq_entries: Some(8),
            setup_flags: "SQPOLL".into(),
            submitted: 17,
            completed: 17,
            overflowed: 13,
            dropped_cqes: 1,
            in_flight: 0,
            max_in_flight: 17,
            punted: 0,
            sqpoll_thread: Some(1240),
            sqpoll_state: Some("asleep".into()),
            iowq_workers: 2,
        }],
        findings: vec![
            finding("multishot-terminated", Severity::Info),
            finding("cq-overflow", Severity::Warning),
            finding("wait-cycle", Severity::Error),
        ],
        latency: vec![OpLatency {
            opcode: "READ".into(),
            count: 100,
            p50_ns: 850,
            p99_ns: 12_345,
            max_ns: 3_000_000,
        }],
        lost_events: LostEvents {
            total: 12,
            per_cpu: vec![10, 0, 0, 2],
            known: true,
        },
        events: 1000,
        duration_ns: 1_500_000_000,
        max_iowq_workers: 2,
    }
}
