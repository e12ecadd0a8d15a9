//! `cargo xtask dist [--verify]`: the static musl binary, packed as a tarball and a .deb
//! under target/dist/; `--verify` installs the .deb and runs both (root).
//!
//! The .deb is assembled by hand and packed by `dpkg-deb`, Debian's own tool (present
//! on every Debian/Ubuntu host, CI's included): cargo-deb would add a from-source
//! `cargo install` of a large crate to every cold CI run for what is a directory tree
//! and a control file here. `strip` and `gzip` come from binutils and gzip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _};

mod verify;

pub const TARGET: &str = "x86_64-unknown-linux-musl";

#[derive(clap::Args)]
pub struct Args {
    /// Then check the artefacts (needs root): `ldd` calls the binary static, it runs
    /// `doctor` and a `diagnose`; the .deb installs, runs, has its man pages and bash
    /// completion, and removes cleanly
    #[arg(long)]
    pub verify: bool,
}

/// What `dist` made.
pub struct Artefacts {
    pub version: String,
    /// The stripped static binary as shipped.
    pub binary: PathBuf,
    /// The musl uringtrace-workload (not shipped; `--verify` traces it).
    pub workload: PathBuf,
    pub tarball: PathBuf,
    pub deb: PathBuf,
    pub subcommands: Vec<String>,
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let art = build(root)?;
    println!("dist: {}", art.tarball.display());
    println!("dist: {}", art.deb.display());
    for (what, path) in [
        ("binary (stripped)", &art.binary),
        ("tarball", &art.tarball),
        (".deb", &art.deb),
    ] {
        let len = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        println!(
            "dist: {what:<18} {:>6.2} MiB",
            len as f64 / (1 << 20) as f64
        );
    }
    if args.verify {
        verify::run(&art, root)?;
        println!("dist: verified");
    }
    Ok(())
}

fn build(root: &Path) -> anyhow::Result<Artefacts> {
    let started = Instant::now();
    // The release profile has no debug info; `strip` below drops the symbols.
    super::run(Command::new("cargo").args([
        "build",
        "--release",
        "--target",
        TARGET,
        "-p",
        "uringtrace",
        "--bin",
        "uringtrace",
        "--bin",
        "uringtrace-workload",
    ]))
    .with_context(|| {
        format!("the musl build failed; is the target installed? (rustup target add {TARGET})")
    })?;
    eprintln!(
        "xtask: musl build took {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let built = root.join("target").join(TARGET).join("release");
    let dist = root.join("target/dist");
    std::fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    let binary = dist.join("uringtrace");
    exec(
        Command::new("strip")
            .arg("-o")
            .arg(&binary)
            .arg(built.join("uringtrace")),
    )?;
    let version = version(&binary)?;
    let epoch = source_date_epoch(root)?;

    let name = format!("uringtrace-{version}-{TARGET}");
    let tree = dist.join(&name);
    fresh_dir(&tree)?;
    let pages = super::man::generate(&binary, &tree.join("man"))?;
    let subcommands = super::man::subcommands(&pages);
    install(&binary, &tree.join("uringtrace"), 0o755)?;
    for f in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        install(&root.join(f), &tree.join(f), 0o644)?;
    }
    let completions = tree.join("completions");
    for (shell, file) in COMPLETIONS {
        write(
            &completions.join(file),
            &output(Command::new(&binary).args(["completions", shell]))?,
            0o644,
        )?;
    }
    let units = systemd_units(root)?;
    for unit in &units {
        install(unit, &tree.join("systemd").join(file_name(unit)?), 0o644)?;
    }
    let tarball = dist.join(format!("{name}.tar.gz"));
    normalize(&tree, epoch)?;
    exec(Command::new("bash").arg("-c").arg(format!(
        "set -o pipefail; tar --sort=name --owner=0 --group=0 --numeric-owner -C '{}' -cf - '{name}' | gzip -9n > '{}'",
        dist.display(),
        tarball.display()
    )))?;

    let deb = dist.join(format!("uringtrace_{version}_amd64.deb"));
    let staging = dist.join("deb");
    fresh_dir(&staging)?;
    install(&binary, &staging.join("usr/bin/uringtrace"), 0o755)?;
    let man1 = staging.join("usr/share/man/man1");
    for page in &pages {
        let gz = man1.join(format!("{}.gz", file_name(page)?));
        write(&gz, &gzip(page)?, 0o644)?;
    }
    for (shell, file) in COMPLETIONS {
        let to = match shell {
            "bash" => "usr/share/bash-completion/completions/uringtrace",
            "zsh" => "usr/share/zsh/vendor-completions/_uringtrace",
            _ => "usr/share/fish/vendor_completions.d/uringtrace.fish",
        };
        install(&completions.join(file), &staging.join(to), 0o644)?;
    }
    for unit in &units {
        let to = staging
            .join("usr/lib/systemd/system")
            .join(file_name(unit)?);
        install(unit, &to, 0o644)?;
    }
    let doc = staging.join("usr/share/doc/uringtrace");
    write(&doc.join("copyright"), copyright(root)?.as_bytes(), 0o644)?;
    write(
        &doc.join("README.md.gz"),
        &gzip(&root.join("README.md"))?,
        0o644,
    )?;
    let debian = staging.join("DEBIAN");
    if !units.is_empty() {
        // Let systemd see the unit; enabling it stays the administrator's choice.
        let script = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n";
        write(&debian.join("postinst"), script.as_bytes(), 0o755)?;
        write(&debian.join("postrm"), script.as_bytes(), 0o755)?;
    }
    let installed_kib = du_kib(&staging)?;
    // md5sums: what `dpkg --verify` and debsums check the installed files against.
    let sums = output(
        Command::new("bash")
            .arg("-c")
            .arg("set -o pipefail; find usr -type f | LC_ALL=C sort | xargs md5sum")
            .current_dir(&staging),
    )?;
    write(&debian.join("md5sums"), &sums, 0o644)?;
    write(
        &debian.join("control"),
        control(&version, installed_kib).as_bytes(),
        0o644,
    )?;
    normalize(&staging, epoch)?;
    exec(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&staging)
            .arg(&deb)
            .env("SOURCE_DATE_EPOCH", epoch.to_string()),
    )?;
    Ok(Artefacts {
        version,
        binary,
        workload: built.join("uringtrace-workload"),
        tarball,
        deb,
        subcommands,
    })
}

/// (shell, file name in the tarball's completions/).
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "uringtrace.bash"),
    ("zsh", "_uringtrace"),
    ("fish", "uringtrace.fish"),
];

fn control(version: &str, installed_kib: u64) -> String {
    // A static binary: no Depends.
    format!(
        "Package: uringtrace
Version: {version}
Architecture: amd64
Maintainer: The uringtrace developers <uringtrace@example.invalid>
Installed-Size: {installed_kib}
Section: admin
Priority: optional
Description: trace io_uring and diagnose what is wrong with it
 uringtrace attaches eBPF programs to the kernel's io_uring tracepoints and
 follows every request from submission to completion. It records traces,
 prints them, shows every ring live (top), and reports named findings with
 evidence and fixes (diagnose, check: a CI gate).
 .
 One static binary: no shared library (not even libc) at run time. Tracing
 needs root, or CAP_BPF and CAP_PERFMON; reading recordings needs nothing.
"
    )
}

/// A machine-readable debian/copyright naming the two licences of Cargo.toml.
fn copyright(root: &Path) -> anyhow::Result<String> {
    let apache = read(&root.join("LICENSE-APACHE"))?;
    let mit = read(&root.join("LICENSE-MIT"))?;
    let para = |text: &str| {
        text.lines()
            .map(|l| {
                if l.trim().is_empty() {
                    " .".to_string()
                } else {
                    format!(" {l}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: uringtrace

Files: *
Copyright: 2026 The uringtrace developers
License: MIT or Apache-2.0

License: MIT
{}

License: Apache-2.0
{}
",
        para(&mit),
        para(&apache)
    ))
}

/// deploy/systemd/*.service, when the tree has them (the agent's unit).
fn systemd_units(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("deploy/systemd");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut units: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    units.sort();
    Ok(units)
}

/// "uringtrace 0.1.0" → "0.1.0".
fn version(binary: &Path) -> anyhow::Result<String> {
    let out = String::from_utf8(output(Command::new(binary).arg("--version"))?)?;
    match out.trim().split_once(' ') {
        Some(("uringtrace", v)) if !v.is_empty() => Ok(v.to_string()),
        _ => bail!("unexpected `uringtrace --version`: {out:?}"),
    }
}

/// SOURCE_DATE_EPOCH, or the last commit's time: the files' times in both archives,
/// so that the same tree packs to the same bytes.
fn source_date_epoch(root: &Path) -> anyhow::Result<u64> {
    if let Some(v) = std::env::var_os("SOURCE_DATE_EPOCH") {
        return v
            .to_str()
            .and_then(|s| s.parse().ok())
            .context("SOURCE_DATE_EPOCH is not a number");
    }
    let out = output(
        Command::new("git")
            .args(["log", "-1", "--format=%ct"])
            .current_dir(root),
    )?;
    String::from_utf8_lossy(&out)
        .trim()
        .parse()
        .context("git log gave no commit time")
}

/// Directories 0755 whatever the umask, and every time set to `epoch`.
fn normalize(dir: &Path, epoch: u64) -> anyhow::Result<()> {
    exec(
        Command::new("find")
            .arg(dir)
            .args(["-type", "d", "-exec", "chmod", "0755", "{}", "+"]),
    )?;
    exec(
        Command::new("find")
            .arg(dir)
            .args(["-exec", "touch", "-h", "-d"])
            .arg(format!("@{epoch}"))
            .args(["{}", "+"]),
    )
}

fn du_kib(dir: &Path) -> anyhow::Result<u64> {
    let out = output(Command::new("du").args(["-sk", "--apparent-size"]).arg(dir))?;
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .context("du gave no size")
}

fn gzip(path: &Path) -> anyhow::Result<Vec<u8>> {
    output(Command::new("gzip").args(["-9nc"]).arg(path))
}

fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn file_name(path: &Path) -> anyhow::Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no UTF-8 file name", path.display()))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write(to, &bytes, mode)
}

/// Writes `bytes` with `mode`, creating parent directories (see [`normalize`]).
fn write(to: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(to, bytes).with_context(|| format!("writing {}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

/// Runs `cmd`, failing with its stderr.
fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    output(cmd).map(|_| ())
}

/// Runs `cmd` and returns its stdout, failing with its stderr.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}
