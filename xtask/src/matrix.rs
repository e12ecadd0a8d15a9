//! `cargo xtask kernel-matrix`: boots Debian's 5.10, 6.1, 6.12 and 7.x kernels under qemu
//! (TCG; no KVM needed), runs uringtrace and the workload generator inside each, brings the
//! recordings out over a second serial port, and checks them on the host.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _};
use serde_json::Value;

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

fn ensure_host_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("cpio", "cpio"),
    ]
    .iter()
    .filter(|(bin, _)| {
        Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .map_or(true, |o| !o.status.success())
    })
    .map(|(_, pkg)| *pkg)
    .collect();
    if !missing.is_empty() {
        eprintln!("kernel-matrix: installing {}", missing.join(" "));
        sh(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing))?;
    }
    Ok(())
}

/// A private apt configuration: the host's sources stay untouched.
fn apt_config(dir: &Path) -> anyhow::Result<PathBuf> {
    let k = "/usr/share/keyrings/debian-archive-keyring.gpg";
    for d in [
        "state/lists/partial",
        "cache/archives/partial",
        "parts",
        "prefs",
    ] {
        fs::create_dir_all(dir.join(d))?;
    }
    let sources = format!(
        "deb [signed-by={k}] http://deb.debian.org/debian-security bullseye-security main\n\
         deb [signed-by={k}] http://deb.debian.org/debian-security bookworm-security main\n\
         deb [signed-by={k}] http://deb.debian.org/debian trixie-backports main\n"
    );
    fs::write(dir.join("sources.list"), sources)?;
    let d = dir.display();
    let conf = format!(
        "Dir::State \"{d}/state\";\nDir::State::status \"/var/lib/dpkg/status\";\nDir::Cache \"{d}/cache\";\n\
         Dir::Etc::sourcelist \"{d}/sources.list\";\nDir::Etc::sourceparts \"{d}/parts\";\n\
         Dir::Etc::preferencesparts \"{d}/prefs\";\nAPT::Get::List-Cleanup \"0\";\n"
    );
    let path = dir.join("apt.conf");
    fs::write(&path, conf)?;
    Ok(path)
}

fn apt(conf: &Path, args: &[&str], cwd: &Path) -> anyhow::Result<String> {
    sh(Command::new(args[0])
        .args(&args[1..])
        .env("APT_CONFIG", conf)
        .current_dir(cwd))
}

/// `linux-image-X (= V)` names from a Depends line.
fn depends(show: &str) -> Vec<String> {
    show.lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .map(|d| {
            d.split(',')
                .map(|p| p.trim().split(' ').next().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Downloads (once) and unpacks the kernel; returns the vmlinuz path and its release.
fn fetch_kernel(k: &KernelSpec, conf: &Path, cache: &Path) -> anyhow::Result<(PathBuf, String)> {
    let dir = cache.join(k.name);
    if let Some(found) = find_vmlinuz(&dir) {
        return Ok(found);
    }
    fs::create_dir_all(&dir)?;
    let madison = apt(conf, &["apt-cache", "madison", k.meta], &dir)?;
    let version = madison
        .lines()
        .find(|l| l.contains(&format!(" {}/", k.suite)))
        .and_then(|l| l.split('|').nth(1))
        .map(str::trim)
        .with_context(|| format!("{} not found in {}", k.meta, k.suite))?
        .to_string();
    let show = apt(
        conf,
        &["apt-cache", "show", &format!("{}={version}", k.meta)],
        &dir,
    )?;
    let image = depends(&show)
        .into_iter()
        .find(|d| d.starts_with("linux-image-") && d != k.meta)
        .context("no linux-image dependency")?;
    let show = apt(conf, &["apt-cache", "show", &image], &dir)?;
    // 7.x: linux-image-* is a stub; the kernel is in linux-binary-*.
    let pkg = depends(&show)
        .into_iter()
        .find(|d| d.starts_with("linux-binary-"))
        .unwrap_or(image);
    eprintln!("kernel-matrix: downloading {pkg}");
    apt(conf, &["apt-get", "download", "-qq", &pkg], &dir)?;
    let deb = fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("download produced no .deb")?;
    sh(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(dir.join("root")))?;
    fs::remove_file(&deb)?;
    find_vmlinuz(&dir).context("no vmlinuz in the package")
}

/// `boot/vmlinuz-<release>` up to 6.x; 7.x packages ship `usr/lib/modules/<release>/vmlinuz`.
fn find_vmlinuz(dir: &Path) -> Option<(PathBuf, String)> {
    let in_boot = fs::read_dir(dir.join("root/boot")).ok().and_then(|d| {
        d.flatten().find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("vmlinuz-")
                .map(|rel| (e.path(), rel.to_string()))
        })
    });
    in_boot.or_else(|| {
        fs::read_dir(dir.join("root/usr/lib/modules"))
            .ok()?
            .flatten()
            .find_map(|e| {
                let v = e.path().join("vmlinuz");
                v.is_file()
                    .then(|| (v, e.file_name().to_string_lossy().into_owned()))
            })
    })
}

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mkdir -p /out
echo "MATRIX-BEGIN $(uname -r)"
uringtrace doctor > /out/doctor.txt 2>&1
uringtrace doctor --format json > /out/doctor.json 2>/dev/null
cat /out/doctor.txt
for s in $SCENARIOS; do
  args=$s
  [ "$s" = nop-storm ] && args="nop-storm --count $NOPS"
  timeout 120 uringtrace record -q -o /out/$s.utr -- uringtrace-workload $args > /out/$s.json 2> /out/$s.err
  rc=$?
  echo "MATRIX-RECORD $s exit=$rc"
  if [ $rc -ge 124 ]; then echo "MATRIX-HUNG $s"; ps; cat /out/$s.err; fi
done
for s in $AGGREGATE; do
  timeout 120 uringtrace diagnose -q --kernel-mode aggregate --syscall-hooks off --format json -o /out/agg-$s.json -- uringtrace-workload $s > /dev/null 2> /out/agg-$s.err
  echo "MATRIX-AGGREGATE $s exit=$?"
done
tar czf /tmp/out.tgz -C /out .
base64 /tmp/out.tgz > /dev/ttyS1
echo "MATRIX-END"
sync
sleep 1
poweroff -f
"#;

fn build_initramfs(work: &Path, bins: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let root = work.join("initramfs");
    let _ = fs::remove_dir_all(&root);
    for d in [
        "bin",
        "usr/bin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "lib64",
        "lib/x86_64-linux-gnu",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::copy("/bin/busybox", root.join("bin/busybox"))?;
    let scenarios: Vec<&str> = SCENARIOS.iter().map(|s| s.0).collect();
    let init = INIT
        .replace("$SCENARIOS", &scenarios.join(" "))
        .replace("$AGGREGATE", &AGGREGATE_SCENARIOS.join(" "))
        .replace("$NOPS", &NOPS.to_string());
    fs::write(root.join("init"), init)?;
    sh(Command::new("chmod").arg("755").arg(root.join("init")))?;
    let mut libs = BTreeSet::new();
    for b in bins {
        fs::copy(
            b,
            root.join("usr/bin")
                .join(b.file_name().context("binary name")?),
        )?;
        for line in sh(Command::new("ldd").arg(b))?.lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
                libs.insert(path.to_string());
            }
        }
    }
    for lib in libs {
        let dest = root.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().context("lib dir")?)?;
        fs::copy(&lib, &dest).with_context(|| format!("copying {lib}"))?;
    }
    let out = work.join("initrd.cpio.gz");
    let cmd = format!(
        "cd {} && find . | cpio -o -H newc --quiet | gzip -1 > {}",
        root.display(),
        out.display()
    );
    sh(Command::new("sh").args(["-c", &cmd]))?;
    Ok(out)
}

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

/// Boots one kernel; the console goes to a file (follow it with `tail -f` while it
/// runs), the results come out on the second serial port.
fn boot(vmlinuz: &Path, initrd: &Path, work: &Path) -> anyhow::Result<(String, PathBuf)> {
    let data = work.join("ttyS1.b64");
    let console = work.join("console.txt");
    let _ = fs::remove_file(&data);
    let _ = fs::remove_file(&console);
    Command::new("timeout")
        // Single-threaded TCG: with multi-threaded TCG, the kernel's int3-based code
        // patching (static keys flipped when tracepoints attach) raced with the other
        // vCPU and oopsed in try_to_wake_up ("Oops: int3", 6.12 guest, busy host).
        .args([
            "900",
            "qemu-system-x86_64",
            "-accel",
            "tcg,thread=single",
            "-cpu",
            "max",
            "-m",
            "2G",
            "-smp",
            "2",
        ])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-serial",
        ])
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", data.display()))
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .output()
        .context("starting qemu")?;
    Ok((fs::read_to_string(&console).unwrap_or_default(), data))
}

fn extract(data: &Path, dest: &Path) -> anyhow::Result<()> {
    let _ = fs::remove_dir_all(dest);
    fs::create_dir_all(dest)?;
    // The guest's tty turns \n into \r\n.
    let cmd = format!(
        "tr -d '\\r' < {} | base64 -d | tar xzf - -C {}",
        data.display(),
        dest.display()
    );
    sh(Command::new("sh").args(["-c", &cmd])).map(|_| ())
}

fn jsonl_events(ut: &Path, file: &Path) -> anyhow::Result<Vec<Value>> {
    let out = sh(Command::new(ut)
        .args(["dump", "--format", "jsonl"])
        .arg(file))?;
    out.lines()
        .map(|l| serde_json::from_str(l).context("dump line"))
        .collect()
}

/// Host-side checks of one guest's results.
/// Scenarios also diagnosed live in aggregating mode inside the guest: its programs
/// differ (in-flight table, atomics, per-CPU histograms) and each verifier must accept
/// them; their findings must equal those of the streamed recording.
/// Diagnosed live the way host-wide tracing runs (aggregating, io_uring_enter not
/// hooked), and compared with the hooked streaming recording of the same scenario.
const AGGREGATE_SCENARIOS: &[&str] = &[
    "chain-broken-error",
    "cq-overflow",
    "nop-storm",
    "unsatisfiable-wait",
];

fn check_aggregating_mode(
    ut: &Path,
    dir: &Path,
    console: &str,
    r: &mut KernelResult,
) -> anyhow::Result<()> {
    let rules = |v: &Value| -> BTreeSet<String> {
        v["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["rule"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
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
        let live: Value = serde_json::from_slice(&fs::read(dir.join(format!("agg-{s}.json")))?)
            .with_context(|| format!("agg-{s}.json"))?;
        let rec = dir.join(format!("{s}.utr"));
        if !rec.exists() {
            continue;
        }
        let streamed: Value = serde_json::from_str(&sh(Command::new(ut)
            .args(["diagnose", "--format", "json", "--input"])
            .arg(&rec))?)?;
        if rules(&live) != rules(&streamed) {
            r.notes.push(format!(
                "{s}: aggregating mode found {:?}, streaming {:?}",
                rules(&live),
                rules(&streamed)
            ));
            r.passed = false;
        }
    }
    Ok(())
}

fn verify(ut: &Path, dir: &Path, console: &str, r: &mut KernelResult) -> anyhow::Result<()> {
    let doctor: Value =
        serde_json::from_slice(&fs::read(dir.join("doctor.json"))?).context("doctor.json")?;
    if doctor["ebpf_load"]["Ok"].is_null() {
        r.notes
            .push(format!("eBPF load failed: {}", doctor["ebpf_load"]["Err"]));
        r.passed = false;
        return Ok(());
    }
    r.tracepoints = doctor["io_uring_tracepoints"].as_u64().unwrap_or(0);
    r.enter_host_wide = doctor["enter_host_wide"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    r.events = doctor["tracepoints"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    (
                        t["kind"].as_str().unwrap_or("?").to_string(),
                        t["tracepoint"].as_str().map(String::from),
                        t["attach_type"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let degraded: BTreeSet<String> = doctor["degraded"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["rule"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
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
        let report: Value = serde_json::from_str(&sh(Command::new(ut)
            .args(["diagnose", "--format", "json", "--input"])
            .arg(&rec))?)?;
        let found: BTreeSet<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["rule"].as_str())
            .collect();
        for rule in *rules {
            if !found.contains(rule) && !degraded.contains(*rule) {
                r.notes.push(format!(
                    "{scenario}: {rule} neither found nor reported degraded"
                ));
                r.passed = false;
            }
        }
        let serious: Vec<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["severity"] != "info" && !rules.contains(&f["rule"].as_str().unwrap_or(""))
            })
            .map(|f| format!("{}: {}", f["rule"], f["message"]))
            .collect();
        if !serious.is_empty() {
            r.notes.push(format!("{scenario}: unexpected {serious:?}"));
            r.passed = false;
        }
        let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count() as u64;
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
                let app: Value =
                    serde_json::from_slice(&fs::read(dir.join("chain-broken-error.json"))?)?;
                let want: Vec<i64> = app["results"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                let res: Vec<i64> = [1u64, 2, 3, 4]
                    .iter()
                    .map(|ud| {
                        events
                            .iter()
                            .find(|e| e["kind"] == "complete" && e["user_data"] == *ud)
                            .and_then(|e| e["res"].as_i64())
                            .unwrap_or(i64::MIN)
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
            "cq-overflow" if !degraded.contains("cq-overflow") && count("cqe_overflow") != 13 => {
                r.notes.push(format!(
                    "cq-overflow: {} overflow events, want 13",
                    count("cqe_overflow")
                ));
                r.passed = false;
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn run(
    selected: &[String],
    ut: &Path,
    workload: &Path,
    root: &Path,
) -> anyhow::Result<Vec<KernelResult>> {
    ensure_host_tools()?;
    let work = root.join("target/kernel-matrix");
    let conf = apt_config(&work.join("apt"))?;
    eprintln!("kernel-matrix: updating the private package lists");
    apt(&conf, &["apt-get", "update", "-qq"], &work)?;
    let initrd = build_initramfs(&work, &[ut.to_path_buf(), workload.to_path_buf()])?;
    let mut results = Vec::new();
    for k in KERNELS
        .iter()
        .filter(|k| selected.is_empty() || selected.iter().any(|s| s == k.name))
    {
        let (vmlinuz, release) = match fetch_kernel(k, &conf, &work.join("cache")) {
            Ok(found) => found,
            Err(e) => {
                results.push(KernelResult {
                    kernel: k.name.into(),
                    release: "?".into(),
                    boot_secs: 0.0,
                    passed: false,
                    notes: vec![format!("fetching the kernel failed: {e:#}")],
                    degraded: vec![],
                    tracepoints: 0,
                    events: vec![],
                    enter_host_wide: "?".into(),
                });
                continue;
            }
        };
        eprintln!("kernel-matrix: booting {release} ...");
        let t0 = Instant::now();
        let (console, data) = boot(&vmlinuz, &initrd, &work)?;
        let boot_secs = t0.elapsed().as_secs_f64();
        eprintln!("kernel-matrix: {release} done in {boot_secs:.1}s");
        let mut r = KernelResult {
            kernel: k.name.into(),
            release: release.clone(),
            boot_secs,
            passed: true,
            notes: vec![],
            degraded: vec![],
            tracepoints: 0,
            events: vec![],
            enter_host_wide: "?".into(),
        };
        let dest = work.join("results").join(&release);
        fs::create_dir_all(&dest)?;
        fs::write(dest.join("console.txt"), &console)?;
        if !console.contains("MATRIX-END") {
            r.passed = false;
            r.notes.push(format!(
                "guest did not finish; console in {}",
                dest.join("console.txt").display()
            ));
        } else if let Err(e) =
            extract(&data, &dest).and_then(|_| verify(ut, &dest, &console, &mut r))
        {
            r.passed = false;
            r.notes.push(format!("{e:#}"));
        }
        results.push(r);
    }
    Ok(results)
}

pub fn print_table(results: &[KernelResult]) {
    println!(
        "\n{:<8} {:<28} {:<6} {:>6} {:>4}  degraded detectors",
        "kernel", "release", "result", "time", "tps"
    );
    for r in results {
        println!(
            "{:<8} {:<28} {:<6} {:>5.1}s {:>4}  {}",
            r.kernel,
            r.release,
            if r.passed { "PASS" } else { "FAIL" },
            r.boot_secs,
            r.tracepoints,
            if r.degraded.is_empty() {
                "none".to_string()
            } else {
                r.degraded.join(", ")
            }
        );
        for n in &r.notes {
            println!("           - {n}");
        }
    }
}

const BEGIN: &str =
    "<!-- kernel-matrix:begin (generated by `cargo xtask kernel-matrix`; do not edit) -->";
const END: &str = "<!-- kernel-matrix:end -->";

/// The compatibility tables (kernel × events, kernel × detectors) as markdown.
pub fn compat_markdown(results: &[KernelResult], detectors: &[String]) -> String {
    let mut md = String::new();
    let head: Vec<String> = results
        .iter()
        .map(|r| format!("{} ({})", r.kernel, r.release))
        .collect();
    md.push_str(&format!(
        "| | {} |\n|---|{}\n",
        head.join(" | "),
        "---|".repeat(results.len())
    ));
    md.push_str(&format!(
        "| **result** | {} |\n",
        results
            .iter()
            .map(|r| if r.passed { "PASS" } else { "FAIL" })
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    md.push_str(&format!(
        "| **matrix time** | {} |\n",
        results
            .iter()
            .map(|r| format!("{:.0} s", r.boot_secs))
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    let kinds: Vec<String> = results
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.0.clone()))
        .fold(Vec::new(), |mut v, k| {
            if !v.contains(&k) {
                v.push(k);
            }
            v
        });
    for kind in kinds {
        let cells: Vec<String> = results
            .iter()
            .map(|r| match r.events.iter().find(|e| e.0 == kind) {
                Some((_, Some(tp), at)) => format!("`{}` {at}", tp.split(':').nth(1).unwrap_or(tp)),
                Some((_, None, _)) => "—".into(),
                None => "?".into(),
            })
            .collect();
        md.push_str(&format!("| event `{kind}` | {} |\n", cells.join(" | ")));
    }
    let cells: Vec<&str> = results.iter().map(|r| r.enter_host_wide.as_str()).collect();
    md.push_str(&format!(
        "| io_uring_enter host-wide | {} |\n",
        cells.join(" | ")
    ));
    for d in detectors {
        let cells: Vec<&str> = results
            .iter()
            .map(|r| {
                if r.events.is_empty() {
                    "?"
                } else if r.degraded.contains(d) {
                    "degraded"
                } else {
                    "yes"
                }
            })
            .collect();
        md.push_str(&format!("| detector `{d}` | {} |\n", cells.join(" | ")));
    }
    md
}

/// Replaces the generated block in README.md (between the markers).
pub fn update_readme(readme: &Path, table: &str) -> anyhow::Result<()> {
    let text = fs::read_to_string(readme)?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        bail!("README.md has no kernel-matrix markers");
    };
    let new = format!("{}{BEGIN}\n{table}{}", &text[..b], &text[e..]);
    fs::write(readme, new)?;
    Ok(())
}
