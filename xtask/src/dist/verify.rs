//! `cargo xtask dist --verify`: the artefacts work on this machine (CI: root).
//!
//! The static binary: `ldd` calls it static, it runs `doctor` and traces a scenario
//! with `diagnose`. The .deb: `dpkg -i`, the same two runs from /usr/bin, `man
//! uringtrace-diagnose` renders, bash completion offers every subcommand, and `dpkg -r`
//! leaves none of its files behind. The package is removed even when a check fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context as _};

use super::{output, Artefacts};

/// The scenario traced, and the one finding it must give (diagnose_root.rs asserts the
/// same: 13 CQEs overflow a 4-entry CQ ring).
const SCENARIO: &str = "cq-overflow";
const FINDING: (&str, u64) = ("cq-overflow", 13);

pub fn run(art: &Artefacts, root: &Path) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("dist --verify installs the .deb and loads eBPF programs: run it as root");
    }
    static_binary(&art.binary)?;
    doctor(&art.binary)?;
    diagnose(&art.binary, &art.workload, root)?;
    eprintln!("xtask: verify: the static binary runs doctor and diagnose");

    dpkg(&["-i"], Some(&art.deb))?;
    let checked = installed(art);
    let removed = remove();
    checked?;
    let files = removed?;
    eprintln!(
        "xtask: verify: the .deb installs, works and removes cleanly ({} files)",
        files
    );
    Ok(())
}

fn static_binary(binary: &Path) -> anyhow::Result<()> {
    // ldd exits non-zero for a static executable: read what it says, not its status.
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd does not call {} static: {said}",
        binary.display()
    );
    Ok(())
}

fn doctor(uringtrace: &Path) -> anyhow::Result<()> {
    output(Command::new(uringtrace).arg("doctor"))
        .with_context(|| format!("{} doctor", uringtrace.display()))?;
    Ok(())
}

/// `diagnose -- WORKLOAD cq-overflow` finds exactly cq-overflow, 13 times.
fn diagnose(uringtrace: &Path, workload: &Path, root: &Path) -> anyhow::Result<()> {
    let report = root.join("target/dist/verify-report.json");
    output(
        Command::new(uringtrace)
            .args(["diagnose", "-q", "--format", "json", "-o"])
            .arg(&report)
            .arg("--")
            .arg(workload)
            .arg(SCENARIO),
    )
    .with_context(|| format!("{} diagnose", uringtrace.display()))?;
    let text = std::fs::read(&report).with_context(|| format!("reading {}", report.display()))?;
    let json: serde_json::Value = serde_json::from_slice(&text)?;
    let found: Vec<(String, u64)> = json["findings"]
        .as_array()
        .context("report has no findings array")?
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["occurrences"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    ensure!(
        found == [(FINDING.0.to_string(), FINDING.1)],
        "{} diagnose -- {SCENARIO}: expected exactly {FINDING:?}, found {found:?}",
        uringtrace.display()
    );
    Ok(())
}

/// Checks of the installed package.
fn installed(art: &Artefacts) -> anyhow::Result<()> {
    let status = package_status()?;
    ensure!(
        status == format!("install ok installed {}", art.version),
        "after dpkg -i: {status}"
    );
    let usr_bin = Path::new("/usr/bin/uringtrace");
    doctor(usr_bin)?;
    diagnose(usr_bin, &art.workload, &super::super::root())?;
    for path in [
        "/usr/share/bash-completion/completions/uringtrace",
        "/usr/share/zsh/vendor-completions/_uringtrace",
        "/usr/share/fish/vendor_completions.d/uringtrace.fish",
        "/usr/share/man/man1/uringtrace.1.gz",
        "/usr/share/man/man1/uringtrace-diagnose.1.gz",
    ] {
        ensure!(Path::new(path).is_file(), "{path} not installed");
    }
    let man = String::from_utf8(output(
        Command::new("man")
            .args(["-P", "cat", "uringtrace-diagnose"])
            .env("MANWIDTH", "80"),
    )?)?;
    for want in [
        "EXAMPLES",
        "EXIT STATUS",
        "--stall-threshold",
        "uringtrace diagnose --input app.utr",
    ] {
        ensure!(
            man.contains(want),
            "man uringtrace-diagnose has no {want:?}:\n{man}"
        );
    }
    let offered = String::from_utf8(output(Command::new("bash").arg("-c").arg(
        "source /usr/share/bash-completion/completions/uringtrace
         COMP_WORDS=(uringtrace ''); COMP_CWORD=1; COMP_LINE='uringtrace '; COMP_POINT=11
         _uringtrace uringtrace '' uringtrace
         printf '%s\\n' \"${COMPREPLY[@]}\"",
    ))?)?;
    let offered: Vec<&str> = offered.lines().collect();
    let missing: Vec<&String> = art
        .subcommands
        .iter()
        .filter(|s| !offered.contains(&s.as_str()))
        .collect();
    ensure!(
        missing.is_empty(),
        "bash completion does not offer {missing:?} (offers {offered:?})"
    );
    Ok(())
}

/// `dpkg -r uringtrace`; checks that none of its files is left; returns their count.
fn remove() -> anyhow::Result<usize> {
    let listed = String::from_utf8(output(Command::new("dpkg").args(["-L", "uringtrace"]))?)?;
    let files: Vec<PathBuf> = listed
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    dpkg(&["-r", "uringtrace"], None)?;
    let left: Vec<&PathBuf> = files.iter().filter(|p| p.exists()).collect();
    ensure!(left.is_empty(), "dpkg -r left {left:?}");
    let status = package_status()?;
    ensure!(!status.contains(" installed"), "after dpkg -r: {status}");
    Ok(files.len())
}

fn package_status() -> anyhow::Result<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status} ${Version}", "uringtrace"])
        .output()
        .context("running dpkg-query")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// dpkg, retried while another dpkg or apt (another job on the host) holds its lock.
fn dpkg(args: &[&str], deb: Option<&Path>) -> anyhow::Result<()> {
    for _ in 0..60 {
        let mut cmd = Command::new("dpkg");
        cmd.args(args);
        if let Some(deb) = deb {
            cmd.arg(deb);
        }
        let out = cmd.output().context("running dpkg")?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("lock") {
            bail!("dpkg {args:?} failed: {}", err.trim());
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    bail!("dpkg {args:?}: the dpkg lock stayed held for 2 minutes")
}
