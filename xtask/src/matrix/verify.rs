//! Host-side checks of one guest's results: what `doctor` found, and for every
//! scenario the recording's events and diagnosis.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{sh, KernelResult, AGGREGATE_SCENARIOS, NOPS, SCENARIOS};

/// What the matrix reads of `uringtrace doctor --format json`.
#[derive(Deserialize)]
struct Doctor {
    /// `{"Ok": "..."}` or `{"Err": "..."}`.
    ebpf_load: Result<String, String>,
    #[serde(default)]
    io_uring_tracepoints: u64,
    enter_host_wide: Option<String>,
    #[serde(default)]
    tracepoints: Vec<DoctorTracepoint>,
    #[serde(default)]
    degraded: Vec<RuleName>,
}

#[derive(Deserialize)]
struct DoctorTracepoint {
    kind: String,
    /// "category:name"; None when this kernel has none of the candidates.
    tracepoint: Option<String>,
    attach_type: Option<String>,
}

/// Anything with a `rule` slug (a degraded detector, a finding).
#[derive(Deserialize)]
struct RuleName {
    rule: String,
}

/// What the matrix reads of `uringtrace diagnose --format json`.
#[derive(Deserialize)]
struct Report {
    findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct Finding {
    rule: String,
    severity: String,
    message: String,
}

impl Report {
    fn rules(&self) -> BTreeSet<String> {
        self.findings.iter().map(|f| f.rule.clone()).collect()
    }
}

/// One line of `uringtrace dump --format jsonl`.
#[derive(Deserialize)]
struct DumpEvent {
    kind: String,
    user_data: u64,
    res: i64,
}

/// What the workload generator printed about the results the application saw.
#[derive(Deserialize)]
struct WorkloadOutput {
    #[serde(default)]
    results: Vec<i64>,
}

fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let bytes = fs::read(path).with_context(|| format!("reading {name}"))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {name}"))
}

fn diagnose(ut: &Path, rec: &Path) -> anyhow::Result<Report> {
    let out = sh(Command::new(ut)
        .args(["diagnose", "--format", "json", "--input"])
        .arg(rec))?;
    serde_json::from_str(&out).with_context(|| format!("diagnose of {}", rec.display()))
}

fn jsonl_events(ut: &Path, file: &Path) -> anyhow::Result<Vec<DumpEvent>> {
    let out = sh(Command::new(ut)
        .args(["dump", "--format", "jsonl"])
        .arg(file))?;
    out.lines()
        .map(|l| serde_json::from_str(l).context("dump line"))
        .collect()
}

fn check_aggregating_mode(
    ut: &Path,
    dir: &Path,
    console: &str,
    r: &mut KernelResult,
) -> anyhow::Result<()> {
    for s in AGGREGATE_SCENARIOS {
        if !console.contains(&format!("MATRIX-AGGREGATE {s} exit=0")) {
            let err = fs::read_to_string(dir.join(format!("agg-{s}.err"))).unwrap_or_default();
            r.notes.push(format!(
                "{s}: diagnose --kernel-mode aggregate --syscall-hooks off failed: {}",
                err.trim()
            ));
            r.passed = false;
            continue;
        }
        let live: Report = read_json(&dir.join(format!("agg-{s}.json")))?;
        let rec = dir.join(format!("{s}.utr"));
        if !rec.exists() {
            continue;
        }
        let streamed = diagnose(ut, &rec)?;
        if live.rules() != streamed.rules() {
            r.notes.push(format!(
                "{s}: aggregating mode found {:?}, streaming {:?}",
                live.rules(),
                streamed.rules()
            ));
            r.passed = false;
        }
    }
    Ok(())
}

pub(super) fn verify(
    ut: &Path,
    dir: &Path,
    console: &str,
    r: &mut KernelResult,
) -> anyhow::Result<()> {
    let doctor: Doctor = read_json(&dir.join("doctor.json"))?;
    if let Err(e) = &doctor.ebpf_load {
        r.notes.push(format!("eBPF load failed: {e:?}"));
        r.passed = false;
        return Ok(());
    }
    r.tracepoints = doctor.io_uring_tracepoints;
    r.enter_host_wide = doctor.enter_host_wide.unwrap_or_else(|| "?".into());
    r.events = doctor
        .tracepoints
        .into_iter()
        .map(|t| (t.kind, t.tracepoint, t.attach_type.unwrap_or_default()))
        .collect();
    let degraded: BTreeSet<String> = doctor.degraded.into_iter().map(|d| d.rule).collect();
    r.degraded = degraded.iter().cloned().collect();
    check_aggregating_mode(ut, dir, console, r)?;
    for (scenario, rules) in SCENARIOS {
        let rec = dir.join(format!("{scenario}.utr"));
        let exit_ok = console.contains(&format!("MATRIX-RECORD {scenario} exit=0"));
        if console.contains(&format!("MATRIX-HUNG {scenario}")) {
            r.notes.push(format!(
                "{scenario}: recording did not finish within 120 s (see console.txt)"
            ));
            r.passed = false;
            continue;
        }
        if !exit_ok {
            // The workload exits non-zero when the kernel lacks the feature (e.g. buffer
            // rings before 5.19): not a uringtrace failure, but say so.
            let err = fs::read_to_string(dir.join(format!("{scenario}.err"))).unwrap_or_default();
            let why = err
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string();
            r.notes
                .push(format!("{scenario}: workload unsupported here ({why})"));
            continue;
        }
        let events = jsonl_events(ut, &rec)?;
        let report = diagnose(ut, &rec)?;
        let found = report.rules();
        for rule in *rules {
            if !found.contains(*rule) && !degraded.contains(*rule) {
                r.notes.push(format!(
                    "{scenario}: {rule} neither found nor reported degraded"
                ));
                r.passed = false;
            }
        }
        let serious: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.severity != "info" && !rules.contains(&f.rule.as_str()))
            .map(|f| format!("{:?}: {:?}", f.rule, f.message))
            .collect();
        if !serious.is_empty() {
            r.notes.push(format!("{scenario}: unexpected {serious:?}"));
            r.passed = false;
        }
        let count = |kind: &str| events.iter().filter(|e| e.kind == kind).count() as u64;
        match *scenario {
            "nop-storm" => {
                let (s, c) = (count("submit"), count("complete"));
                if s != NOPS || c != NOPS {
                    r.notes.push(format!(
                        "nop-storm: {s} submits, {c} completions, want {NOPS} each"
                    ));
                    r.passed = false;
                }
            }
            "chain-broken-error" => {
                // The kernel's results as the application saw them. They differ by kernel:
                // before 5.19 a bad fd fails the SQE at submit and the whole chain with it
                // (-125, -9, -125, -125); later it fails at issue (0, -9, -125, -125).
                let app: WorkloadOutput = read_json(&dir.join("chain-broken-error.json"))?;
                let want = app.results;
                let res: Vec<i64> = [1u64, 2, 3, 4]
                    .iter()
                    .map(|ud| {
                        events
                            .iter()
                            .find(|e| e.kind == "complete" && e.user_data == *ud)
                            .map_or(i64::MIN, |e| e.res)
                    })
                    .collect();
                if res != want || count("fail_link") < 2 || count("link") != 3 {
                    r.notes.push(format!(
                        "chain-broken-error: traced results {res:?}, application saw {want:?}, {} link, {} fail_link",
                        count("link"),
                        count("fail_link")
                    ));
                    r.passed = false;
                }
            }
            // Only io threads' renames are streamed: the twelve SQ threads.
            "sqpoll-many-threads" if count("task_rename") != 12 => {
                r.notes.push(format!(
                    "sqpoll-many-threads: {} task_rename events, want 12",
                    count("task_rename")
                ));
                r.passed = false;
            }
            // One poll wakeup queued the READ; the blocked owner was read from /proc once.
            "task-work-stalled"
                if !degraded.contains("task-work-stalled")
                    && (count("task_add") != 1 || count("task_state") != 1) =>
            {
                r.notes.push(format!(
                    "task-work-stalled: {} task_add, {} task_state events, want 1 each",
                    count("task_add"),
                    count("task_state")
                ));
                r.passed = false;
            }
            "cq-overflow" if !degraded.contains("cq-overflow") && count("cqe_overflow") != 13 => {
                r.notes.push(format!(
                    "cq-overflow: {} overflow events, want 13",
                    count("cqe_overflow")
                ));
                r.passed = false;
            }
            // One short write (the WRITE that crosses RLIMIT_FSIZE), one drain deferred.
            "short-write" if !degraded.contains("short-write") && count("short_write") != 1 => {
                r.notes.push(format!(
                    "short-write: {} short_write events, want 1",
                    count("short_write")
                ));
                r.passed = false;
            }
            "drain-blocked" if count("defer") != 1 => {
                r.notes.push(format!(
                    "drain-blocked: {} defer events, want 1",
                    count("defer")
                ));
                r.passed = false;
            }
            _ => {}
        }
    }
    Ok(())
}
