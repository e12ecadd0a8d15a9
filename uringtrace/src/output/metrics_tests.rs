use super::*;
use crate::analyzer::report::Environment;
use crate::analyzer::synthetic::nop_storm;
use crate::analyzer::{Analyzer, AnalyzerConfig};

/// Two batches of 64 NOPs, each 32 µs from submission to completion.
fn nop_state() -> Analyzer {
    let mut an = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for ev in nop_storm(1 + 2 * 130) {
        an.push(ev);
    }
    an.flush();
    an
}

fn scrape(m: &Metrics) -> Vec<String> {
    m.encode().unwrap().lines().map(str::to_string).collect()
}

fn has(lines: &[String], want: &str) {
    assert!(
        lines.iter().any(|l| l == want),
        "no line {want:?} in\n{}",
        lines.join("\n")
    );
}

#[test]
fn nop_requests_and_latency_are_exact_lines() {
    let an = nop_state();
    let mut m = Metrics::new(10);
    let tool = ToolCounters {
        lost_events: 3,
        bpf_run_ns: Some(1_500_000_000),
    };
    m.set_tool(tool);
    m.update(an.state(), &mut |_| "/test.slice".into());
    let l = scrape(&m);
    let id = r#"comm="uringtrace-work",cgroup="/test.slice""#;
    has(
        &l,
        &format!(r#"uringtrace_requests_total{{{id},opcode="NOP",result="ok"}} 128"#),
    );
    has(
        &l,
        &format!(r#"uringtrace_requests_total{{{id},opcode="NOP",result="error"}} 0"#),
    );
    // 32 µs: below 2^15 ns, above 2^14 ns.
    has(
        &l,
        &format!(
            r#"uringtrace_request_duration_seconds_bucket{{le="0.000016384",{id},opcode="NOP"}} 0"#
        ),
    );
    has(
        &l,
        &format!(
            r#"uringtrace_request_duration_seconds_bucket{{le="0.000032768",{id},opcode="NOP"}} 128"#
        ),
    );
    has(
        &l,
        &format!(
            r#"uringtrace_request_duration_seconds_bucket{{le="+Inf",{id},opcode="NOP"}} 128"#
        ),
    );
    has(
        &l,
        &format!(r#"uringtrace_request_duration_seconds_count{{{id},opcode="NOP"}} 128"#),
    );
    has(&l, &format!(r#"uringtrace_rings{{{id}}} 1"#));
    has(&l, &format!(r#"uringtrace_cq_overflow_total{{{id}}} 0"#));
    has(&l, "uringtrace_lost_events_total 3");
    has(&l, "uringtrace_bpf_run_seconds_total 1.5");
    has(&l, "# TYPE uringtrace_requests counter");
    has(&l, "# TYPE uringtrace_request_duration_seconds histogram");
    has(&l, "# EOF");
    // Never a pid or a ring address.
    assert!(!l.iter().any(|x| x.contains("4242") || x.contains("0xffff")));
}

#[test]
fn counts_survive_the_analyzer_forgetting_a_ring_and_do_not_double() {
    let an = nop_state();
    let mut m = Metrics::new(10);
    let mut cg = |_| "/".to_string();
    m.update(an.state(), &mut cg);
    // The same state again adds nothing; an empty one (ring forgotten) removes nothing.
    m.update(an.state(), &mut cg);
    let empty = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    m.update(empty.state(), &mut cg);
    has(
        &scrape(&m),
        r#"uringtrace_requests_total{comm="uringtrace-work",cgroup="/",opcode="NOP",result="ok"} 128"#,
    );
}

#[test]
fn identities_past_the_cap_share_the_other_series() {
    let an = nop_state();
    let mut m = Metrics::new(0);
    m.update(an.state(), &mut |_| "/x".into());
    let l = scrape(&m);
    has(
        &l,
        r#"uringtrace_requests_total{comm="other",cgroup="other",opcode="NOP",result="ok"} 128"#,
    );
    assert!(!l.iter().any(|x| x.contains("uringtrace-work")));
}

/// A fleet host: processes come and go forever, each with a problem. Through the
/// analyzer's hand-over, every finding is counted exactly once, the analyzer holds
/// only those of live processes, and the metrics' own state stays at its caps.
#[test]
fn findings_of_many_processes_are_counted_exactly_in_bounded_memory() {
    let mut an = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    let mut m = Metrics::new(4);
    let n: u32 = 5000;
    for p in 0..n {
        // Eight programs, two cgroups: identities past the cap of 4 share `other`.
        for e in crate::analyzer::collect::tests::process(p, &format!("db-{}", p % 8), true) {
            an.push(e);
        }
        if p % 50 == 49 {
            an.flush();
            let new = an.take_new_findings();
            let mut cg = |pid: u32| format!("/slice-{}", pid % 2);
            m.add_findings(&new, &mut cg);
            m.update(an.state(), &mut cg);
            assert!(an.findings_kept().retained <= 1);
        }
    }
    let kept = an.findings_kept();
    assert_eq!(kept.handed_over, u64::from(n));
    assert_eq!(kept.released, u64::from(n) - 1);
    let l = scrape(&m);
    let total: u64 = l
        .iter()
        .filter(|x| x.starts_with("uringtrace_findings_total{"))
        .map(|x| x.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, u64::from(n));
    has(
        &l,
        r#"uringtrace_findings_total{comm="other",cgroup="other",rule="invalid-sqe",severity="error"} 2500"#,
    );
    // The metrics' own state: 4 identities, the rings the analyzer still keeps.
    assert_eq!(m.identities.len(), 4);
    assert!(m.rings.len() <= crate::analyzer::state::RETIRED_RINGS + 1);
    assert!(m.totals.findings.len() <= 5);
}

/// Before any io_uring use, every family is there: one zero series without labels.
#[test]
fn every_family_is_there_from_the_first_scrape() {
    let an = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    let mut m = Metrics::new(10);
    m.set_tool(ToolCounters {
        lost_events: 0,
        bpf_run_ns: Some(0),
    });
    m.update(an.state(), &mut |_| "/".into());
    let l = scrape(&m);
    for name in [
        "uringtrace_requests_total 0",
        "uringtrace_request_duration_seconds_count 0",
        "uringtrace_cq_overflow_total 0",
        "uringtrace_cqe_dropped_total 0",
        "uringtrace_iowq_punts_total 0",
        "uringtrace_iowq_workers 0",
        "uringtrace_sqpoll_threads 0",
        "uringtrace_rings 0",
        "uringtrace_findings_total 0",
        "uringtrace_lost_events_total 0",
        "uringtrace_bpf_run_seconds_total 0.0",
    ] {
        has(&l, name);
    }
}

/// Every `uringtrace_*` name in the Grafana dashboard and the alerting rules is a
/// series this encoder writes.
#[test]
fn deploy_files_name_real_metrics() {
    let an = nop_state();
    let mut m = Metrics::new(10);
    let tool = ToolCounters {
        lost_events: 0,
        bpf_run_ns: Some(1),
    };
    m.set_tool(tool);
    m.update(an.state(), &mut |_| "/".into());
    // Families this state leaves empty (written without labels then).
    let id = Identity {
        comm: "c".into(),
        cgroup: "/".into(),
    };
    m.totals.punts.insert((id.clone(), 1), 1);
    m.totals
        .findings
        .insert((id, "cq-overflow".into(), "warning".into()), 1);
    let text = m.encode().unwrap();
    let written: HashSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for (file, body) in [
        (
            "grafana/uringtrace.json",
            include_str!("../../../deploy/grafana/uringtrace.json"),
        ),
        (
            "prometheus/alerts.yml",
            include_str!("../../../deploy/prometheus/alerts.yml"),
        ),
    ] {
        let mut named = 0;
        for (i, _) in body.match_indices("uringtrace_") {
            let name: String = body[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                written.contains(name.as_str()),
                "{file} names {name}, not written:\n{text}"
            );
            named += 1;
        }
        assert!(named >= 5, "{file}: {named} metric names");
    }
}

/// A finding handed over again because its severity rose counts under its new
/// severity; the old severity's count stays (counters never go down), so the
/// severities of one finding add up to the rises it went through, not to 1.
#[test]
fn a_raised_finding_counts_under_each_severity_it_reached() {
    use crate::analyzer::finding::Severity;
    let mut an = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for e in crate::analyzer::collect::tests::process(1, "db", false) {
        an.push(e);
    }
    an.flush();
    let first = an.take_new_findings();
    assert_eq!(first.len(), 1);
    let warning = vec![Finding {
        severity: Severity::Warning,
        ..first[0].clone()
    }];
    let mut m = Metrics::new(4);
    let mut cg = |_| "/s".to_string();
    m.add_findings(&warning, &mut cg);
    m.add_findings(&first, &mut cg);
    let l = scrape(&m);
    let id = r#"comm="db",cgroup="/s",rule="invalid-sqe""#;
    has(
        &l,
        &format!(r#"uringtrace_findings_total{{{id},severity="warning"}} 1"#),
    );
    has(
        &l,
        &format!(r#"uringtrace_findings_total{{{id},severity="error"}} 1"#),
    );
}
