//! Developer workflows: `cargo xtask <setup|demo|test|bench|soak|lint|ebpf|man|dist|...>`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};

mod bench;
mod dist;
mod ebpf;
mod fuzz;
mod man;
mod matrix;
mod soak;

/// The pinned eBPF toolchain: the first line of `ebpf-toolchain` that is no comment
/// (uringtrace/build.rs and scripts/setup.sh read the same file).
fn ebpf_toolchain() -> anyhow::Result<String> {
    let path = root().join("ebpf-toolchain");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .with_context(|| format!("{} names no toolchain", path.display()))
}

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
    /// Overhead vs untraced (NOP storm, fio) and bpftrace, the host tax on untraced
    /// processes, zero-drop stream rate, replay speed and memory, bytes per event;
    /// table + target/bench/*.json
    Bench(bench::Args),
    /// The bench's context-switch workload: a pipe ping-pong between two
    /// processes pinned to one CPU
    #[command(hide = true)]
    BenchPingpong {
        #[arg(long)]
        round_trips: u64,
        #[arg(long)]
        cpu: usize,
    },
    /// Host-wide `diagnose` over N minutes of process churn (~100 io_uring processes/s):
    /// per-minute RSS, kernel map occupancy and events/s; checks that gone rings and
    /// processes leave the kernel maps and that late rings are aggregated exactly
    Soak(soak::Args),
    /// clippy on the host crates and on the eBPF crate
    Lint,
    /// Build the libFuzzer targets (fuzz/) with the pinned nightly and run each for
    /// --time seconds over its committed corpus; --cmin minimizes that corpus
    Fuzz(fuzz::Args),
    /// Rebuild the eBPF object from source with the pinned toolchain and refresh the
    /// committed uringtrace/ebpf-prebuilt/ (object + manifest); --check compares instead
    Ebpf(ebpf::Args),
    /// `cargo install --path uringtrace` with stable Rust alone (no nightly, bpf-linker or
    /// LLVM on PATH) into target/install-check, then run its --version and doctor
    InstallCheck,
    /// Boot Debian's 5.10, 6.1, 6.12 and 7.x kernels under qemu and test uringtrace in each
    KernelMatrix {
        /// Only these kernels (5.10, 6.1, 6.12, 7); repeatable
        #[arg(long = "kernel", value_name = "VERSION")]
        kernels: Vec<String>,
    },
    /// Write uringtrace.1 and a page per subcommand (the --help text, EXAMPLES, EXIT
    /// STATUS) into --out
    Man(man::Args),
    /// Build the static musl binary and pack it with man pages, completions, README and
    /// licences: target/dist/uringtrace-VERSION-x86_64-unknown-linux-musl.tar.gz and
    /// target/dist/uringtrace_VERSION_amd64.deb
    Dist(dist::Args),
}

fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    // xtask/ sits in the workspace root; an absolute path always has a parent.
    xtask.parent().unwrap_or(xtask).to_path_buf()
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
        Cmd::Bench(args) => {
            build_release()?;
            bench::run(
                &args,
                &bin("uringtrace"),
                &bin("uringtrace-workload"),
                &root(),
            )
        }
        Cmd::BenchPingpong { round_trips, cpu } => bench::pingpong::run(round_trips, cpu),
        Cmd::Soak(args) => {
            build_release()?;
            soak::run(
                &args,
                &bin("uringtrace"),
                &bin("uringtrace-workload"),
                &root(),
            )
        }
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
                let detectors = matrix::detectors(&bin("uringtrace"))?;
                let table = matrix::compat_markdown(&results, &detectors);
                matrix::update_readme(&root().join("README.md"), &table)?;
                println!("\n{table}\nkernel-matrix: README.md compatibility table updated");
            }
            if results.iter().any(|r| !r.passed) {
                bail!("kernel matrix failed");
            }
            Ok(())
        }
        Cmd::Ebpf(args) => ebpf::run(&args, &root()),
        Cmd::InstallCheck => ebpf::install_check(&root()),
        Cmd::Man(args) => {
            build_release()?;
            let out = root().join(&args.out);
            for page in man::generate(&bin("uringtrace"), &out)? {
                println!("{}", page.display());
            }
            Ok(())
        }
        Cmd::Dist(args) => dist::run(&args, &root()),
        Cmd::Fuzz(args) => fuzz::run(&args, &root(), &ebpf_toolchain()?),
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
                .arg(format!("+{}", ebpf_toolchain()?))
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
