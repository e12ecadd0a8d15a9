//! Developer workflows: `cargo xtask <setup|demo|test|bench|lint>`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};

mod matrix;

/// Must match uringtrace/build.rs and scripts/setup.sh.
const EBPF_TOOLCHAIN: &str = "nightly-2026-05-20";

#[derive(Parser)]
#[command(name = "xtask", about = "uringtrace developer workflows")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install prerequisites (apt packages, pinned nightly, bpf-linker, tracefs); idempotent
    Setup,
    /// Set up, build, check the host, and trace every workload scenario into demo.utr
    Demo,
    /// Set up, build, and run every test (as root, eBPF tests load real programs)
    Test {
        /// Extra arguments for `cargo test`
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// NOP throughput untraced vs traced, events/s, drops, bytes per event
    Bench {
        /// NOPs per run
        #[arg(long, default_value_t = 2_000_000)]
        count: u64,
        /// Runs per variant (the best is reported)
        #[arg(long, default_value_t = 3)]
        runs: u32,
    },
    /// clippy on the host crates and on the eBPF crate
    Lint,
    /// Boot Debian's 5.10, 6.1, 6.12 and 7.x kernels under qemu and test uringtrace in each
    KernelMatrix {
        /// Only these kernels (5.10, 6.1, 6.12, 7); repeatable
        #[arg(long = "kernel", value_name = "VERSION")]
        kernels: Vec<String>,
    },
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn setup() -> anyhow::Result<()> {
    run(Command::new("bash").arg("scripts/setup.sh"))
}

fn build_release() -> anyhow::Result<()> {
    run(Command::new("cargo").args(["build", "--release", "-p", "uringtrace"]))
}

fn bin(name: &str) -> PathBuf {
    root().join("target/release").join(name)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Setup => setup(),
        Cmd::Demo => {
            setup()?;
            build_release()?;
            let ut = bin("uringtrace");
            let _ = run(Command::new(&ut).arg("doctor"));
            run(Command::new(&ut)
                .args(["record", "-o", "demo.utr", "--"])
                .arg(bin("uringtrace-workload"))
                .arg("all"))?;
            eprintln!("xtask: recorded demo.utr; its diagnosis:");
            // The findings of every scenario, from the recording (exit code ignored:
            // the demo's scenarios are there to produce findings).
            let _ = Command::new(&ut)
                .args(["diagnose", "--input", "demo.utr"])
                .current_dir(root())
                .status();
            eprintln!("xtask: every event: ./target/release/uringtrace dump demo.utr | less");
            eprintln!("xtask: live view:   ./target/release/uringtrace top --replay demo.utr");
            Ok(())
        }
        Cmd::Test { args } => {
            setup()?;
            // Default members only: the eBPF crate is built by uringtrace/build.rs.
            run(Command::new("cargo").args(["test", "--release"]).args(args))
        }
        Cmd::Bench { count, runs } => bench(count, runs),
        Cmd::KernelMatrix { kernels } => {
            build_release()?;
            let results = matrix::run(
                &kernels,
                &bin("uringtrace"),
                &bin("uringtrace-workload"),
                &root(),
            )?;
            matrix::print_table(&results);
            if kernels.is_empty() {
                let rules = Command::new(bin("uringtrace"))
                    .args(["rules", "--format", "json"])
                    .output()?;
                let rules: serde_json::Value =
                    serde_json::from_slice(&rules.stdout).context("uringtrace rules")?;
                let detectors: Vec<String> = rules
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r["rule"].as_str())
                            .filter(|s| !s.starts_with("budget-"))
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let table = matrix::compat_markdown(&results, &detectors);
                matrix::update_readme(&root().join("README.md"), &table)?;
                println!("\n{table}\nkernel-matrix: README.md compatibility table updated");
            }
            if results.iter().any(|r| !r.passed) {
                bail!("kernel matrix failed");
            }
            Ok(())
        }
        Cmd::Lint => {
            run(Command::new("cargo").args([
                "clippy",
                "--release",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))?;
            run(Command::new("cargo")
                .arg(format!("+{EBPF_TOOLCHAIN}"))
                .args([
                    "clippy",
                    "-p",
                    "uringtrace-ebpf",
                    "--release",
                    "--target",
                    "bpfel-unknown-none",
                ])
                .args(["-Z", "build-std=core", "--", "-D", "warnings"]))
        }
    }
}

/// Parses "... in X s (N ops/s ..." from the workload's stderr.
fn ops_per_sec(stderr: &str) -> Option<f64> {
    let i = stderr.find(" s (")?;
    let rest = &stderr[i + 4..];
    rest.split_whitespace().next()?.parse().ok()
}

fn bench(count: u64, runs: u32) -> anyhow::Result<()> {
    build_release()?;
    let wl = bin("uringtrace-workload");
    let ut = bin("uringtrace");
    let n = count.to_string();
    let mut best_untraced: f64 = 0.0;
    let mut best_traced: f64 = 0.0;
    let mut summary = String::new();
    let tmp = std::env::temp_dir().join("uringtrace-bench.utr");
    for i in 0..runs {
        let out = Command::new(&wl)
            .args(["nop-storm", "--count", &n])
            .output()?;
        let u = ops_per_sec(&String::from_utf8_lossy(&out.stderr))
            .context("parsing workload output")?;
        best_untraced = best_untraced.max(u);
        let t0 = Instant::now();
        let out = Command::new(&ut)
            .args(["record", "-q", "-o"])
            .arg(&tmp)
            .arg("--")
            .arg(&wl)
            .args(["nop-storm", "--count", &n])
            .output()?;
        let wall = t0.elapsed();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let t = ops_per_sec(&err).context("parsing traced workload output")?;
        best_traced = best_traced.max(t);
        let last = err
            .lines()
            .rfind(|l| l.starts_with("uringtrace:"))
            .unwrap_or("")
            .to_string();
        println!(
            "run {}: untraced {:.2} M ops/s, traced {:.2} M ops/s ({:.1}s wall); {last}",
            i + 1,
            u / 1e6,
            t / 1e6,
            wall.as_secs_f64()
        );
        summary = last;
    }
    // Analyzer replay throughput on the last recording (one core).
    let t0 = Instant::now();
    let out = Command::new(&ut)
        .args(["diagnose", "--format", "json", "--input"])
        .arg(&tmp)
        .output()?;
    let secs = t0.elapsed().as_secs_f64();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing the replay report")?;
    let events = report["events"].as_u64().unwrap_or(0);
    println!(
        "analyzer replay: {events} events in {secs:.2}s ({:.2} M events/s)",
        events as f64 / secs / 1e6
    );
    let _ = std::fs::remove_file(&tmp);
    println!(
        "\nNOP storm, {count} NOPs, best of {runs}: untraced {:.2} M ops/s, traced while recording {:.2} M ops/s ({:.0}%)\n{summary}",
        best_untraced / 1e6,
        best_traced / 1e6,
        100.0 * best_traced / best_untraced.max(1.0)
    );
    Ok(())
}
