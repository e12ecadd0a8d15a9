//! `cargo xtask fuzz`: builds the libFuzzer targets of `fuzz/` with the pinned nightly
//! and runs them, without cargo-fuzz (one less tool to install in CI): the same
//! instrumentation flags cargo-fuzz passes, and libFuzzer's own flags for the rest
//! (`-merge=1` is what `cargo fuzz cmin` runs).
//!
//! Directories, per target NAME:
//! - `fuzz/corpus/NAME`: committed, minimized inputs (seeds and what fuzzing found
//!   interesting); read by every run, rewritten only by `--cmin`;
//! - `fuzz/crashes/NAME`: committed inputs that once crashed, fixed since;
//! - `target/fuzz/corpus/NAME`: what runs add (not committed);
//! - `target/fuzz/artifacts/NAME`: crashes, leaks and timeouts of runs.
//!
//! The normal test suite replays both committed directories without libFuzzer
//! (uringtrace/tests/fuzz_corpus.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

/// The targets (fuzz/fuzz_targets/NAME.rs, bodies in uringtrace::fuzzing) and the
/// largest input each is given: a whole recording is mostly its padded header.
const TARGETS: [(&str, usize); 5] = [
    ("recording", 16 << 10),
    ("btf", 4096),
    ("tracefs_format", 4096),
    ("check_config", 4096),
    ("analyzer", 8192),
];

#[derive(clap::Args)]
pub struct Args {
    /// Seconds per target (default 20; no limit with --runs)
    #[arg(long)]
    time: Option<u64>,
    /// Only this target (recording, btf, tracefs_format, check_config, analyzer)
    #[arg(long)]
    target: Option<String>,
    /// Stop each target after this many executions instead (0: no limit)
    #[arg(long, default_value_t = 0)]
    runs: u64,
    /// Parallel fuzzing processes per target
    #[arg(long, default_value_t = 1)]
    jobs: u32,
    /// Instead of fuzzing: minimize fuzz/corpus/NAME together with what runs found
    /// (the inputs that add coverage, smallest first), to commit
    #[arg(long)]
    cmin: bool,
}

/// The flags cargo-fuzz uses (without AddressSanitizer: the parsers are safe Rust, and
/// ASan would halve the executions per second), plus `--cfg fuzzing`.
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cllvm-args=-sanitizer-coverage-stack-depth",
    "--cfg",
    "fuzzing",
];

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

fn build(root: &Path, toolchain: &str) -> anyhow::Result<PathBuf> {
    let target_dir = root.join("target/fuzz");
    // An explicit --target keeps the flags off build scripts and proc macros (and
    // aya-build sets its own for the eBPF crate).
    super::run(
        Command::new("cargo")
            .arg(format!("+{toolchain}"))
            .args(["build", "--release", "--bins", "--manifest-path"])
            .arg(root.join("fuzz/Cargo.toml"))
            .args(["--target", TRIPLE, "--target-dir"])
            .arg(&target_dir)
            .env("RUSTFLAGS", RUSTFLAGS.join(" ")),
    )?;
    Ok(target_dir.join(TRIPLE).join("release"))
}

pub fn run(args: &Args, root: &Path, toolchain: &str) -> anyhow::Result<()> {
    let targets: Vec<(&str, usize)> = match &args.target {
        None => TARGETS.to_vec(),
        Some(name) => match TARGETS.iter().find(|(n, _)| n == name) {
            Some(&t) => vec![t],
            None => bail!(
                "no fuzz target {name:?}; targets: {}",
                TARGETS.map(|(n, _)| n).join(", ")
            ),
        },
    };
    let bins = build(root, toolchain)?;
    let mut failed = Vec::new();
    for (name, max_len) in targets {
        let committed = root.join("fuzz/corpus").join(name);
        let found = root.join("target/fuzz/corpus").join(name);
        let artifacts = root.join("target/fuzz/artifacts").join(name);
        for d in [&committed, &found, &artifacts] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        // Minimizing, inputs are cut at 4 KiB: whole recordings (mostly header) stay
        // as the seeds only, so the committed corpus stays small.
        let max_len = if args.cmin {
            max_len.min(4096)
        } else {
            max_len
        };
        let mut cmd = Command::new(bins.join(name));
        cmd.arg(format!("-max_len={max_len}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        if args.cmin {
            let merged = root.join("target/fuzz/cmin").join(name);
            let _ = std::fs::remove_dir_all(&merged);
            std::fs::create_dir_all(&merged)?;
            // The hand-made seeds stay; of the rest, the fewest smallest inputs that
            // cover every edge (not every counter value or comparison: thousands).
            for e in std::fs::read_dir(&committed)? {
                let p = e?.path();
                if p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
                {
                    std::fs::copy(&p, merged.join(p.file_name().unwrap_or_default()))?;
                }
            }
            cmd.args(["-use_counters=0", "-use_cmp=0", "-use_value_profile=0"])
                .arg("-merge=1")
                .arg(&merged)
                .arg(&committed)
                .arg(&found);
            super::run(&mut cmd)?;
            std::fs::remove_dir_all(&committed)?;
            std::fs::rename(&merged, &committed)?;
            let n = std::fs::read_dir(&committed)?.count();
            eprintln!("xtask: fuzz/corpus/{name}: {n} inputs after minimizing");
            continue;
        }
        let time = args.time.unwrap_or(if args.runs > 0 { 0 } else { 20 });
        cmd.arg(format!("-max_total_time={time}"))
            .arg("-print_final_stats=1")
            .arg(&found)
            .arg(&committed);
        if args.runs > 0 {
            cmd.arg(format!("-runs={}", args.runs));
        }
        if args.jobs > 1 {
            cmd.arg(format!("-fork={}", args.jobs));
        }
        if let Err(e) = super::run(&mut cmd) {
            eprintln!(
                "xtask: fuzz target {name} failed ({e:#}); the input is in {}: fix the bug, \
                 then copy the input to fuzz/crashes/{name}/ (the test suite replays it)",
                artifacts.display()
            );
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}
