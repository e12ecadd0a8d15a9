//! `cargo xtask kernel-matrix`: boots Debian's 5.10, 6.1, 6.12 and 7.x kernels under qemu
//! (TCG; no KVM needed), runs uringtrace and the workload generator inside each, brings the
//! recordings out over a second serial port, and checks them on the host.
//!
//! Parts: `apt` fetches the kernels from Debian's archive (a private apt config),
//! `initramfs` builds the guest's root, `qemu` boots it and brings the results out,
//! `verify` checks them, `readme` prints the table and updates README.md.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _};

mod apt;
mod initramfs;
mod qemu;
mod readme;
mod verify;

pub use readme::{compat_markdown, detectors, print_table, update_readme};

/// A kernel to boot: the name used on the command line, and where Debian has it.
pub struct KernelSpec {
    pub name: &'static str,
    /// Metapackage that resolves to the current ABI.
    pub meta: &'static str,
    /// Suite that carries it (the newest version in that suite is taken).
    pub suite: &'static str,
}

pub const KERNELS: &[KernelSpec] = &[
    KernelSpec {
        name: "5.10",
        meta: "linux-image-cloud-amd64",
        suite: "bullseye-security",
    },
    KernelSpec {
        name: "6.1",
        meta: "linux-image-cloud-amd64",
        suite: "bookworm-security",
    },
    KernelSpec {
        name: "6.12",
        meta: "linux-image-6.12-cloud-amd64",
        suite: "bookworm-security",
    },
    KernelSpec {
        name: "7",
        meta: "linux-image-cloud-amd64",
        suite: "trixie-backports",
    },
];

/// Scenarios run in every guest, with the rules their diagnosis must show (or name as
/// degraded). Healthy ones must show no warning or error.
pub const SCENARIOS: &[(&str, &[&str])] = &[
    ("nop-storm", &[]),
    ("chain-ok", &[]),
    ("chain-hardlink", &[]),
    ("chain-broken-error", &["link-chain-broken"]),
    ("chain-broken-short", &["link-chain-broken"]),
    ("invalid-sqe", &["invalid-sqe"]),
    ("cq-overflow", &["cq-overflow"]),
    ("pipe-read-before-write", &["wait-cycle"]),
    ("unsatisfiable-wait", &["unsatisfiable-wait"]),
    ("iowq-splice", &["iowq-punt-storm"]),
    (
        "multishot-recv",
        &["multishot-terminated", "buffer-exhausted"],
    ),
    ("fixed-file-misuse", &["fixed-file-misuse"]),
    ("fixed-buffer-misuse", &["fixed-buffer-misuse"]),
    ("fixed-ok", &[]),
    ("short-write", &["short-write"]),
    ("short-write-ok", &[]),
    ("drain-blocked", &["drain-blocked"]),
    ("drain-ok", &[]),
    ("enter-error", &["enter-error"]),
    ("io-uring-unavailable", &["io-uring-unavailable"]),
    ("overflow-not-flushed", &["overflow-not-flushed"]),
    ("sqpoll-many-threads", &["sqpoll-proliferation"]),
    ("sqpoll-attached", &[]),
    ("task-work-stalled", &["task-work-stalled"]),
    ("task-work-waiting-owner", &[]),
];

const NOPS: u64 = 500;

fn sh(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Scenarios also diagnosed live in aggregating mode inside the guest: its programs
/// differ (in-flight table, atomics, per-CPU histograms) and each verifier must accept
/// them; their findings must equal those of the streamed recording. They are
/// diagnosed the way host-wide tracing runs (aggregating, io_uring_enter not hooked),
/// and compared with the hooked streaming recording of the same scenario.
const AGGREGATE_SCENARIOS: &[&str] = &[
    "chain-broken-error",
    "cq-overflow",
    "nop-storm",
    "unsatisfiable-wait",
];

pub struct KernelResult {
    pub kernel: String,
    pub release: String,
    pub boot_secs: f64,
    pub passed: bool,
    pub notes: Vec<String>,
    pub degraded: Vec<String>,
    pub tracepoints: u64,
    /// (event kind, "category:name" when present, attach type) from `doctor`.
    pub events: Vec<(String, Option<String>, String)>,
    /// Where host-wide tracing gets io_uring_enter from (`doctor`).
    pub enter_host_wide: String,
}

pub fn run(
    selected: &[String],
    ut: &Path,
    workload: &Path,
    root: &Path,
) -> anyhow::Result<Vec<KernelResult>> {
    apt::ensure_host_tools()?;
    let work = root.join("target/kernel-matrix");
    let conf = apt::apt_config(&work.join("apt"))?;
    eprintln!("kernel-matrix: updating the private package lists");
    apt::apt(&conf, &["apt-get", "update", "-qq"], &work)?;
    let initrd = initramfs::build_initramfs(&work, &[ut.to_path_buf(), workload.to_path_buf()])?;
    let kernels: Vec<&KernelSpec> = KERNELS
        .iter()
        .filter(|k| selected.is_empty() || selected.iter().any(|s| s == k.name))
        .collect();
    // Downloads one after the other (one apt), then the guests side by side: each
    // qemu runs single-threaded TCG, so it keeps one host CPU busy, and a guest per
    // CPU halves the matrix's time on CI's two CPUs.
    let fetched: Vec<_> = kernels
        .iter()
        .map(|k| apt::fetch_kernel(k, &conf, &work.join("cache")))
        .collect();
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<KernelResult>> = kernels.iter().map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|s| {
        for _ in 0..parallel.min(kernels.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (Some(k), Some(found)) = (kernels.get(i), fetched.get(i)) else {
                    break;
                };
                let r = run_one(k, found, &initrd, ut, &work);
                if let Ok(mut slots) = slots.lock() {
                    slots[i] = Some(r);
                }
            });
        }
    });
    Ok(results.into_iter().flatten().collect())
}

/// Boots one fetched kernel and checks what its guest brought out.
fn run_one(
    k: &KernelSpec,
    found: &anyhow::Result<(std::path::PathBuf, String)>,
    initrd: &Path,
    ut: &Path,
    work: &Path,
) -> KernelResult {
    let mut r = KernelResult {
        kernel: k.name.into(),
        release: "?".into(),
        boot_secs: 0.0,
        passed: false,
        notes: vec![],
        degraded: vec![],
        tracepoints: 0,
        events: vec![],
        enter_host_wide: "?".into(),
    };
    let (vmlinuz, release) = match found {
        Ok(found) => found,
        Err(e) => {
            r.notes.push(format!("fetching the kernel failed: {e:#}"));
            return r;
        }
    };
    r.release = release.clone();
    eprintln!("kernel-matrix: booting {release} ...");
    let t0 = Instant::now();
    let guest_dir = work.join("guests").join(k.name);
    let booted = fs::create_dir_all(&guest_dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| qemu::boot(vmlinuz, initrd, &guest_dir));
    let (console, data) = match booted {
        Ok(b) => b,
        Err(e) => {
            r.notes.push(format!("booting failed: {e:#}"));
            return r;
        }
    };
    r.boot_secs = t0.elapsed().as_secs_f64();
    r.passed = true;
    eprintln!("kernel-matrix: {release} done in {:.1}s", r.boot_secs);
    let dest = work.join("results").join(release);
    if let Err(e) =
        fs::create_dir_all(&dest).and_then(|()| fs::write(dest.join("console.txt"), &console))
    {
        r.passed = false;
        r.notes.push(format!("saving the console: {e}"));
        return r;
    }
    if !console.contains("MATRIX-END") {
        r.passed = false;
        r.notes.push(format!(
            "guest did not finish; console in {}",
            dest.join("console.txt").display()
        ));
    } else if let Err(e) =
        qemu::extract(&data, &dest).and_then(|_| verify::verify(ut, &dest, &console, &mut r))
    {
        r.passed = false;
        r.notes.push(format!("{e:#}"));
    }
    r
}
