//! Real io_uring programs that nobody in this project wrote, run healthy under
//! `uringtrace diagnose` as root, in both kernel modes:
//!
//! - fio's io_uring engine: 4k random reads, buffered, O_DIRECT, and with SQPOLL;
//! - Node.js with libuv's io_uring backend (`UV_USE_IO_URING=1`): concurrent
//!   fs.read calls, a timer and an idle keep-alive connection (tests/programs/node-fs.js);
//! - a keep-alive TCP echo server on monoio's io_uring driver, whose connections sit
//!   idle longer than the stall threshold (tests/programs/uring-server/).
//!
//! A healthy program must get no finding of severity warning or error, with no event
//! lost, and the trace must show that the program really used io_uring (its rings,
//! its requests by opcode). These are the analyzer's false-positive guards: rules
//! tuned on the project's own workloads must stay quiet on real programs.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

const MODES: [&str; 2] = ["aggregate", "stream"];

/// What `diagnose` said about one run, and what the traced program printed.
struct Diagnosed {
    report: Value,
    output: Output,
}

impl Diagnosed {
    /// The traced program's own JSON result: the last stdout line that is JSON
    /// (diagnose writes its report to a file; the program shares its stdout).
    fn program_json(&self) -> Value {
        let stdout = String::from_utf8_lossy(&self.output.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON line from the traced program in {stdout:?}"));
        serde_json::from_str(line).expect("program JSON")
    }

    /// How many requests of `opcode` completed, from the per-opcode latency table.
    fn count(&self, opcode: &str) -> u64 {
        self.report["latency"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["opcode"] == opcode)
            .map_or(0, |l| l["count"].as_u64().unwrap())
    }

    fn rings_of(&self, comm: &str) -> Vec<&Value> {
        self.report["rings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["comm"] == comm)
            .collect()
    }
}

/// `uringtrace diagnose -q --format json --kernel-mode MODE -o REPORT -- PROGRAM ARGS...`
/// with `env` added to the environment the program inherits.
fn diagnose(mode: &str, program: &OsStr, args: &[&OsStr], env: &[(&str, &str)]) -> Diagnosed {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let output = Command::new(UT)
        .args([
            "diagnose",
            "-q",
            "--format",
            "json",
            "--kernel-mode",
            mode,
            "-o",
        ])
        .arg(&report)
        .arg("--")
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run uringtrace diagnose");
    assert!(
        output.status.success(),
        "diagnose ({mode}) of {program:?} failed: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report).expect("report written"))
        .expect("report JSON");
    // A trace that lost events cannot vouch for a program being healthy.
    assert_eq!(
        report["lost_events"]["total"], 0,
        "{mode}: {program:?} lost events: {}",
        report["lost_events"]
    );
    assert_eq!(report["lost_events"]["known"], true, "{mode}: {program:?}");
    Diagnosed { report, output }
}

/// Findings of severity warning or error, one line each.
fn serious(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            format!(
                "{} {} ({} pid {} ring {}): {}",
                f["severity"].as_str().unwrap(),
                f["rule"].as_str().unwrap(),
                f["comm"].as_str().unwrap(),
                f["pid"],
                f["ring"].as_str().unwrap(),
                f["message"].as_str().unwrap()
            )
        })
        .collect()
}

/// Serious findings per run, e.g. [("buffered aggregate", [...]), ...]; a healthy
/// program's list is all empty. Collected over every run so that one failure shows
/// what each mode and variant reported.
type Verdicts = Vec<(String, Vec<String>)>;

fn all_quiet(verdicts: &Verdicts) -> Verdicts {
    verdicts.iter().map(|(k, _)| (k.clone(), vec![])).collect()
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs")
}

/// The workspace's target directory (CARGO_TARGET_DIR when set, relative to the
/// workspace root as cargo takes it from there).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => workspace_dir().join(d),
        None => workspace_dir().join("target"),
    }
}

// ---------------------------------------------------------------------------------
// fio

/// A directory on a filesystem that takes O_DIRECT opens (tmpfs did not before 6.6).
fn o_direct_dir() -> tempfile::TempDir {
    let candidates = [
        std::env::temp_dir(),
        PathBuf::from("/var/tmp"),
        target_dir(),
    ];
    for c in &candidates {
        let Ok(dir) = tempfile::tempdir_in(c) else {
            continue;
        };
        let probe = dir.path().join("probe");
        std::fs::write(&probe, vec![0u8; 4096]).unwrap();
        let direct = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe);
        std::fs::remove_file(&probe).unwrap();
        if direct.is_ok() {
            return dir;
        }
    }
    panic!("no directory among {candidates:?} accepts O_DIRECT");
}

/// fio, io_uring engine, 4k random reads of a 4 MiB file at depth 16 for 1 s, under
/// diagnose in `mode`; checks fio's own JSON result and that its ring did the reads.
/// Returns the serious findings.
fn fio_run(dir: &Path, mode: &str, extra: &[&str], setup_flag: Option<&str>) -> Vec<String> {
    let file = dir.join("fio.dat");
    if !file.exists() {
        std::fs::write(&file, vec![7u8; 4 << 20]).unwrap();
    }
    let fio_json = dir.join("fio.json");
    let mut args: Vec<String> = [
        "--name=t",
        "--ioengine=io_uring",
        "--rw=randread",
        "--bs=4k",
        "--iodepth=16",
        "--size=4M",
        "--time_based",
        "--runtime=1",
        "--invalidate=0",
        "--output-format=json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--filename={}", file.display()));
    args.push(format!("--output={}", fio_json.display()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let d = diagnose(mode, OsStr::new("fio"), &args, &[]);
    let what = format!("fio {extra:?} {mode}");

    // fio ran and read.
    let fio: Value = serde_json::from_slice(&std::fs::read(&fio_json).expect("fio JSON output"))
        .expect("fio JSON");
    let job = &fio["jobs"][0];
    assert_eq!(job["error"], 0, "{what}: {job:#}");
    let fio_ios = job["read"]["total_ios"].as_u64().unwrap();
    assert!(fio_ios > 100, "{what}: fio did {fio_ios} reads");

    // ...through io_uring: its ring submitted the reads, and they completed.
    let rings = d.rings_of("fio");
    assert_eq!(
        rings.len(),
        1,
        "{what}: fio's rings: {:#}",
        d.report["rings"]
    );
    let ring = rings[0];
    if let Some(flag) = setup_flag {
        assert!(
            ring["setup_flags"]
                .as_str()
                .unwrap()
                .split('|')
                .any(|f| f == flag),
            "{what}: setup flags {}",
            ring["setup_flags"]
        );
    }
    let submitted = ring["submitted"].as_u64().unwrap();
    assert!(submitted > 100, "{what}: ring submitted {submitted}");
    assert_eq!(ring["completed"], ring["submitted"], "{what}: {ring:#}");
    assert_eq!(ring["in_flight"], 0, "{what}: {ring:#}");
    let reads = d.count("READ");
    assert!(reads > 100, "{what}: {reads} READ completions");
    serious(&d.report["findings"])
}

#[test]
fn fio_is_healthy_with_and_without_sqpoll() {
    let Some(_g) = require_root("fio_is_healthy_with_and_without_sqpoll") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut verdicts = Verdicts::new();
    for (name, extra, flag) in [
        ("buffered", &[][..], None),
        ("sqpoll", &["--sqthread_poll=1"][..], Some("SQPOLL")),
    ] {
        for mode in MODES {
            let s = fio_run(dir.path(), mode, extra, flag);
            verdicts.push((format!("{name} {mode}"), s));
        }
    }
    assert_eq!(verdicts, all_quiet(&verdicts), "fio is healthy");
}

#[test]
fn fio_o_direct_is_healthy() {
    let Some(_g) = require_root("fio_o_direct_is_healthy") else {
        return;
    };
    let dir = o_direct_dir();
    let mut verdicts = Verdicts::new();
    for mode in MODES {
        let s = fio_run(dir.path(), mode, &["--direct=1"], None);
        verdicts.push((format!("direct {mode}"), s));
    }
    assert_eq!(verdicts, all_quiet(&verdicts), "fio O_DIRECT is healthy");
}

// ---------------------------------------------------------------------------------
// Node.js (libuv io_uring)

/// `node` (or URINGTRACE_NODE), checked to bundle a libuv with io_uring (>= 1.45).
fn node() -> String {
    let node = std::env::var("URINGTRACE_NODE").unwrap_or_else(|_| "node".into());
    let out = Command::new(&node)
        .args(["-p", "process.versions.uv"])
        .output()
        .unwrap_or_else(|e| panic!("{node}: {e} (scripts/setup.sh installs Node.js)"));
    assert!(out.status.success(), "{node} -p process.versions.uv failed");
    let uv = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let v: Vec<u32> = uv.split('.').map(|p| p.parse().unwrap()).collect();
    assert!(
        v[0] > 1 || (v[0] == 1 && v[1] >= 45),
        "{node} has libuv {uv}, without io_uring (needs >= 1.45; scripts/setup.sh installs one)"
    );
    node
}

#[test]
fn node_fs_on_libuv_io_uring_is_healthy() {
    let Some(_g) = require_root("node_fs_on_libuv_io_uring_is_healthy") else {
        return;
    };
    let node = node();
    let script = programs_dir().join("node-fs.js");
    let mut verdicts = Verdicts::new();
    for mode in MODES {
        let d = diagnose(
            mode,
            OsStr::new(&node),
            &[script.as_os_str()],
            &[("UV_USE_IO_URING", "1")],
        );
        // The program did what it says: 4000 reads of 4 KiB, 32 at a time, its timer
        // fired, and both requests on the keep-alive connection were answered.
        let out = d.program_json();
        assert_eq!(out["reads"], 4000, "{mode}: {out}");
        assert_eq!(out["bytes"], 4000 * 4096, "{mode}: {out}");
        assert_eq!(out["concurrency"], 32, "{mode}: {out}");
        assert_eq!(out["timer_fired"], true, "{mode}: {out}");
        assert_eq!(out["exchanges"], 2, "{mode}: {out}");

        // Every fs.read went through io_uring (libuv 1.46 uses READV; READ counted
        // too for later libuv), on an SQPOLL ring of node's: libuv's fs ring.
        let reads = d.count("READ") + d.count("READV");
        assert_eq!(
            reads, 4000,
            "{mode}: READ+READV in {:#}",
            d.report["latency"]
        );
        let rings = d.rings_of("node");
        let fs_ring = rings
            .iter()
            .filter(|r| {
                r["setup_flags"]
                    .as_str()
                    .unwrap()
                    .split('|')
                    .any(|f| f == "SQPOLL")
            })
            .max_by_key(|r| r["submitted"].as_u64().unwrap())
            .unwrap_or_else(|| panic!("{mode}: no SQPOLL ring of node's: {:#}", d.report["rings"]));
        // Created by node during the trace (its fd is known), and it did the reads.
        assert!(fs_ring["fd"].is_u64(), "{mode}: fs ring {fs_ring:#}");
        let submitted = fs_ring["submitted"].as_u64().unwrap();
        assert!(submitted >= 4000, "{mode}: fs ring {fs_ring:#}");
        assert_eq!(
            fs_ring["completed"], fs_ring["submitted"],
            "{mode}: {fs_ring:#}"
        );
        assert_eq!(fs_ring["in_flight"], 0, "{mode}: {fs_ring:#}");
        verdicts.push((mode.to_string(), serious(&d.report["findings"])));
    }
    assert_eq!(verdicts, all_quiet(&verdicts), "node-fs.js is healthy");
}

// ---------------------------------------------------------------------------------
// monoio keep-alive server

/// Builds tests/programs/uring-server (its own workspace and lock file) into
/// <target>/programs; returns the binary.
fn build_uring_server() -> PathBuf {
    let manifest = programs_dir().join("uring-server/Cargo.toml");
    let target = target_dir().join("programs");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("run cargo build for uring-server");
    assert!(
        out.status.success(),
        "building {manifest:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("release/uring-server")
}

#[test]
fn monoio_keepalive_server_is_healthy() {
    let Some(_g) = require_root("monoio_keepalive_server_is_healthy") else {
        return;
    };
    let server = build_uring_server();
    let mut verdicts = Verdicts::new();
    for mode in MODES {
        let d = diagnose(mode, server.as_os_str(), &[], &[]);
        // 8 connections, 2 requests each, every byte echoed (16 requests of 45 bytes).
        let out = d.program_json();
        assert_eq!(
            out,
            serde_json::json!({"conns": 8, "requests": 16, "echoed_bytes": 720}),
            "{mode}"
        );

        // The server's one ring (monoio's IoUringDriver) accepted the 8 connections,
        // received each request plus each connection's end (16 + 8), sent 16 echoes.
        let rings = d.rings_of("uring-server");
        assert_eq!(rings.len(), 1, "{mode}: {:#}", d.report["rings"]);
        let ring = rings[0];
        assert_eq!(ring["completed"], ring["submitted"], "{mode}: {ring:#}");
        assert_eq!(ring["in_flight"], 0, "{mode}: {ring:#}");
        let counts: Vec<u64> = ["ACCEPT", "RECV", "SEND"]
            .iter()
            .map(|o| d.count(o))
            .collect();
        assert_eq!(
            counts,
            [8, 24, 16],
            "{mode}: ACCEPT, RECV, SEND in {:#}",
            d.report["latency"]
        );
        assert!(
            ring["submitted"].as_u64().unwrap() >= 48,
            "{mode}: {ring:#}"
        );
        verdicts.push((mode.to_string(), serious(&d.report["findings"])));
    }
    assert_eq!(verdicts, all_quiet(&verdicts), "uring-server is healthy");
}
