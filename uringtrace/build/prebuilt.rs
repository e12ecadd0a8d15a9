//! The prebuilt eBPF object (uringtrace/ebpf-prebuilt/): what its inputs are, the manifest
//! that names their sha256, the choice between embedding it and building from source, and the
//! one command that builds it from source.
//!
//! Shared, through `#[path]`, by uringtrace/build.rs (which must stay fast and std + sha2
//! only, so that `cargo install` works on stable Rust) and by `cargo xtask ebpf`, which
//! writes the manifest: the two cannot disagree on what "the sources match" means.
// Each includer uses a different subset of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

/// The committed object and its manifest, relative to the workspace root.
pub const OBJECT: &str = "uringtrace/ebpf-prebuilt/uringtrace.bpf.o";
pub const MANIFEST: &str = "uringtrace/ebpf-prebuilt/manifest.txt";
/// `URINGTRACE_BUILD_EBPF=1` makes build.rs build from source even when the sources match.
pub const BUILD_ENV: &str = "URINGTRACE_BUILD_EBPF";
/// The eBPF crate and the bin target aya loads (`<target-dir>/bpfel-unknown-none/release/<bin>`).
pub const EBPF_PACKAGE: &str = "uringtrace-ebpf";
pub const EBPF_BIN: &str = "uringtrace";
pub const EBPF_TARGET: &str = "bpfel-unknown-none";
/// Source trees whose every file is an input (their `target/` dirs excepted): the eBPF
/// crate and the `#![no_std]` types it compiles in (all of uringtrace-common's modules are
/// built for the kernel side too).
pub const SOURCE_DIRS: [&str; 2] = ["uringtrace-ebpf", "uringtrace-common"];
/// Single files that are inputs: the pinned nightly, and cargo config (profiles, flags).
pub const SOURCE_FILES: [&str; 2] = ["ebpf-toolchain", ".cargo/config.toml"];

/// One hashed input: `name` is a workspace-relative path, or a description of the part of
/// Cargo.toml / Cargo.lock it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub sha256: String,
}

/// The parsed manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// sha256 of the committed object.
    pub object_sha256: String,
    /// What built it, informational (build.rs cannot check a toolchain it may not have):
    /// `toolchain`, `rustc`, `rustc-llvm`, `bpf-linker`, `bpf-linker-llvm`, `strip`.
    pub toolchain: BTreeMap<String, String>,
    /// Registry packages of the eBPF crate's build graph, `name version`; their Cargo.lock
    /// entries are inputs.
    pub lock_packages: Vec<String>,
    /// Every input with its sha256, sorted by name.
    pub inputs: Vec<Input>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn read(root: &Path, rel: &str) -> Result<Vec<u8>, String> {
    std::fs::read(root.join(rel)).map_err(|e| format!("reading {}: {e}", root.join(rel).display()))
}

/// Files under `dir` (workspace-relative, `/`-separated), skipping `target` dirs, sorted.
fn files_under(root: &Path, dir: &str, out: &mut Vec<String>) -> Result<(), String> {
    let path = root.join(dir);
    let entries =
        std::fs::read_dir(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", path.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(format!("non-UTF-8 file name in {}", path.display()));
        };
        let rel = format!("{dir}/{name}");
        let kind = entry
            .file_type()
            .map_err(|e| format!("reading {rel}: {e}"))?;
        if kind.is_dir() {
            if name != "target" {
                files_under(root, &rel, out)?;
            }
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// The workspace-relative files that are inputs, sorted (what build.rs watches too).
pub fn input_files(root: &Path) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    for dir in SOURCE_DIRS {
        files_under(root, dir, &mut files)?;
    }
    for file in SOURCE_FILES {
        if root.join(file).exists() {
            files.push(file.to_string());
        }
    }
    files.sort();
    Ok(files)
}

/// `[section]` → its lines, without blank lines and full-line comments (editing a comment
/// does not change the object).
fn toml_sections(text: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = vec![(String::new(), Vec::new())];
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            sections.push((line.to_string(), Vec::new()));
        } else if let Some((_, lines)) = sections.last_mut() {
            lines.push(line.to_string());
        }
    }
    sections
}

/// The parts of the workspace Cargo.toml that reach the eBPF build: `[workspace.package]`
/// (edition), every `[profile.*]`, and the `[workspace.dependencies]` lines of the crates it
/// uses. The rest (members, host-only dependencies) may change without staling the object.
fn workspace_toml_inputs(text: &str, used: &[&str], out: &mut Vec<Input>) {
    for (header, lines) in toml_sections(text) {
        if header == "[workspace.package]" || header.starts_with("[profile") {
            let body = lines.join("\n");
            out.push(Input {
                name: format!("Cargo.toml {header}"),
                sha256: sha256_hex(body.as_bytes()),
            });
        } else if header == "[workspace.dependencies]" {
            for line in lines {
                let key = line
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches('"');
                if used.contains(&key) {
                    out.push(Input {
                        name: format!("Cargo.toml [workspace.dependencies] {key}"),
                        sha256: sha256_hex(line.as_bytes()),
                    });
                }
            }
        }
    }
}

/// Keys of a crate's `[*dependencies]` lines that say `workspace = true`.
fn inherited_dependencies(crate_toml: &str) -> Vec<String> {
    toml_sections(crate_toml)
        .into_iter()
        .filter(|(header, _)| header.contains("dependencies"))
        .flat_map(|(_, lines)| lines)
        .filter(|l| l.replace(' ', "").contains("workspace=true"))
        .filter_map(|l| {
            l.split('=')
                .next()
                .map(|k| k.trim().trim_matches('"').to_string())
        })
        .collect()
}

/// Cargo.lock's `[[package]]` entries keyed by `name version`, as their normalized text.
fn lock_entries(text: &str) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    for block in text.split("[[package]]").skip(1) {
        let lines: Vec<&str> = block
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let field = |key: &str| {
            lines.iter().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(name), Some(version)) = (field("name"), field("version")) {
            entries.insert(format!("{name} {version}"), lines.join("\n"));
        }
    }
    entries
}

/// Hashes every input now on disk. `lock_packages` comes from the manifest (xtask computes it
/// with `cargo tree`); a package missing from Cargo.lock (bumped, removed) gets no input, so
/// the comparison reports it as changed.
pub fn inputs(root: &Path, lock_packages: &[String]) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::new();
    for file in input_files(root)? {
        let bytes = read(root, &file)?;
        inputs.push(Input {
            name: file,
            sha256: sha256_hex(&bytes),
        });
    }
    let lock = String::from_utf8_lossy(&read(root, "Cargo.lock")?).into_owned();
    let entries = lock_entries(&lock);
    for package in lock_packages {
        if let Some(entry) = entries.get(package) {
            inputs.push(Input {
                name: format!("Cargo.lock {package}"),
                sha256: sha256_hex(entry.as_bytes()),
            });
        }
    }
    // The workspace dependency lines the two crates inherit (`x = { workspace = true }`).
    let mut used = Vec::new();
    for dir in SOURCE_DIRS {
        let text = String::from_utf8_lossy(&read(root, &format!("{dir}/Cargo.toml"))?).into_owned();
        used.extend(inherited_dependencies(&text));
    }
    let used: Vec<&str> = used.iter().map(String::as_str).collect();
    let toml = String::from_utf8_lossy(&read(root, "Cargo.toml")?).into_owned();
    workspace_toml_inputs(&toml, &used, &mut inputs);
    inputs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(inputs)
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut m = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || format!("{MANIFEST} line {}: cannot parse {line:?}", n + 1);
            let (key, rest) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
            let rest = rest.trim();
            match key {
                "object" => {
                    m.object_sha256 = rest.split_whitespace().next().ok_or_else(bad)?.into()
                }
                "lock" => m.lock_packages.push(rest.to_string()),
                "input" => {
                    let (sha, name) = rest.split_once(char::is_whitespace).ok_or_else(bad)?;
                    if sha.len() != 64 {
                        return Err(bad());
                    }
                    m.inputs.push(Input {
                        name: name.trim().to_string(),
                        sha256: sha.to_string(),
                    });
                }
                _ => {
                    m.toolchain.insert(key.to_string(), rest.to_string());
                }
            }
        }
        if m.object_sha256.len() != 64 {
            return Err(format!("{MANIFEST} names no object sha256"));
        }
        m.inputs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(m)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str(
            "# The prebuilt eBPF object next to this file, and what it was built from.\n\
             # Written by `cargo xtask ebpf`: do not edit. uringtrace/build.rs embeds the\n\
             # object while every input below still has this sha256, and builds from source\n\
             # otherwise; `cargo xtask ebpf --check` rebuilds it and compares (README,\n\
             # \"Prebuilt eBPF object\").\n",
        );
        let _ = writeln!(s, "object {} {}", self.object_sha256, EBPF_OBJECT_FILE);
        for (k, v) in &self.toolchain {
            let _ = writeln!(s, "{k} {v}");
        }
        for p in &self.lock_packages {
            let _ = writeln!(s, "lock {p}");
        }
        for i in &self.inputs {
            let _ = writeln!(s, "input {} {}", i.sha256, i.name);
        }
        s
    }
}

const EBPF_OBJECT_FILE: &str = "uringtrace.bpf.o";

/// Names of the inputs that differ between the manifest and disk (changed, added, removed).
pub fn changed(recorded: &[Input], current: &[Input]) -> Vec<String> {
    let rec: BTreeMap<&str, &str> = recorded
        .iter()
        .map(|i| (i.name.as_str(), i.sha256.as_str()))
        .collect();
    let cur: BTreeMap<&str, &str> = current
        .iter()
        .map(|i| (i.name.as_str(), i.sha256.as_str()))
        .collect();
    let mut names: Vec<String> = rec
        .keys()
        .chain(cur.keys())
        .filter(|n| rec.get(*n) != cur.get(*n))
        .map(|n| n.to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Why build.rs builds the eBPF programs from source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromSource {
    /// `URINGTRACE_BUILD_EBPF=1`.
    Requested,
    /// These inputs differ from the manifest.
    Stale(Vec<String>),
    /// The manifest or object is missing, unreadable, or the object's hash is not the
    /// manifest's.
    Broken(String),
}

/// Embed the committed object, or build from source and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Prebuilt,
    FromSource(FromSource),
}

/// The decision, kept pure so it is unit-tested: `env` is `URINGTRACE_BUILD_EBPF`,
/// `manifest` the parsed manifest, `current` the inputs hashed now (with the manifest's lock
/// packages), `object_sha256` the committed object's hash.
pub fn choose(
    env: Option<&str>,
    manifest: Result<&Manifest, &str>,
    current: Result<&[Input], &str>,
    object_sha256: Result<&str, &str>,
) -> Choice {
    if matches!(env.map(str::trim), Some("1" | "true" | "yes")) {
        return Choice::FromSource(FromSource::Requested);
    }
    let manifest = match manifest {
        Ok(m) => m,
        Err(e) => return Choice::FromSource(FromSource::Broken(e.to_string())),
    };
    let current = match current {
        Ok(c) => c,
        Err(e) => return Choice::FromSource(FromSource::Broken(e.to_string())),
    };
    match object_sha256 {
        Err(e) => return Choice::FromSource(FromSource::Broken(e.to_string())),
        Ok(sha) if sha != manifest.object_sha256 => {
            return Choice::FromSource(FromSource::Broken(format!(
                "{OBJECT} has sha256 {sha}, {MANIFEST} names {}",
                manifest.object_sha256
            )))
        }
        Ok(_) => {}
    }
    let changed = changed(&manifest.inputs, current);
    if changed.is_empty() {
        Choice::Prebuilt
    } else {
        Choice::FromSource(FromSource::Stale(changed))
    }
}

/// Reads the manifest, the current inputs and the object, and decides.
pub fn choose_on_disk(root: &Path, env: Option<&str>) -> (Choice, Option<Manifest>) {
    let manifest = read(root, MANIFEST).and_then(|b| Manifest::parse(&String::from_utf8_lossy(&b)));
    let lock = manifest
        .as_ref()
        .map(|m| m.lock_packages.clone())
        .unwrap_or_default();
    let current = inputs(root, &lock);
    let object = read(root, OBJECT).map(|b| sha256_hex(&b));
    let choice = choose(
        env,
        manifest.as_ref().map_err(String::as_str),
        current.as_deref().map_err(String::as_str),
        object.as_deref().map_err(String::as_str),
    );
    (choice, manifest.ok())
}

/// The pinned nightly: the first line of `ebpf-toolchain` that is no comment.
pub fn pinned_toolchain(root: &Path) -> Result<String, String> {
    let text = String::from_utf8_lossy(&read(root, "ebpf-toolchain")?).into_owned();
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .ok_or_else(|| "ebpf-toolchain names no toolchain".to_string())
}

/// The flags of the eBPF build (aya-build's, plus path remapping). rustc writes the
/// absolute paths of the sources into the DWARF and, through it, into BTF line info, so
/// the same sources built from two clones differ; remapping the workspace, `CARGO_HOME`
/// and `RUSTUP_HOME` makes the object depend on the sources only.
pub fn rustflags(root: &Path) -> String {
    let mut flags = vec![
        "--cfg=bpf_target_arch=\"x86_64\"".to_string(),
        "-Cdebuginfo=2".to_string(),
        "-Clink-arg=--btf".to_string(),
    ];
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo"));
    let rustup_home = std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{home}/.rustup"));
    for (from, to) in [
        (root.display().to_string(), "/uringtrace"),
        (cargo_home, "/cargo"),
        (rustup_home, "/rustup"),
    ] {
        if !from.is_empty() {
            flags.push(format!("--remap-path-prefix={from}={to}"));
        }
    }
    flags.join("\x1f")
}

/// `cargo build` of the eBPF crate with the pinned nightly into `target_dir`; the object
/// lands at [`built_object`]. Same command for build.rs's from-source path and the xtask.
pub fn build_command(root: &Path, toolchain: &str, target_dir: &Path) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        toolchain,
        "cargo",
        "build",
        "--package",
        EBPF_PACKAGE,
        "--bins",
    ])
    .args([
        "--release",
        "--target",
        EBPF_TARGET,
        "-Z",
        "build-std=core",
        "--target-dir",
    ])
    .arg(target_dir)
    .current_dir(root)
    .env("CARGO_ENCODED_RUSTFLAGS", rustflags(root));
    // From a build script: the outer cargo's compiler settings must not leak into the
    // nested build (aya-build does the same).
    for key in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(key);
    }
    cmd
}

pub fn built_object(target_dir: &Path) -> PathBuf {
    target_dir.join(EBPF_TARGET).join("release").join(EBPF_BIN)
}

/// What is missing to build from source, if anything: the pinned nightly (with rust-src)
/// and bpf-linker.
pub fn missing_toolchain(toolchain: &str) -> Vec<String> {
    let mut missing = Vec::new();
    // Checking must not install: rustup may auto-install a missing toolchain on `run`.
    let rustup = |args: &[&str]| {
        Command::new("rustup")
            .args(["run", toolchain])
            .args(args)
            .env("RUSTUP_AUTO_INSTALL", "0")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match rustup(&["rustc", "--print", "sysroot"]) {
        None => missing.push(format!("the Rust toolchain {toolchain}")),
        Some(sysroot) => {
            if !Path::new(&sysroot)
                .join("lib/rustlib/src/rust/library/core")
                .is_dir()
            {
                missing.push(format!("rust-src for {toolchain}"));
            }
        }
    }
    let linker = Command::new("bpf-linker").arg("--version").output();
    if !linker.map(|o| o.status.success()).unwrap_or(false) {
        missing.push("bpf-linker".to_string());
    }
    missing
}

impl FromSource {
    /// Why, in one clause (names at most five changed inputs).
    pub fn describe(&self) -> String {
        match self {
            Self::Requested => format!("{BUILD_ENV}=1 asks to build the eBPF programs from source"),
            Self::Stale(names) => {
                let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
                let more = names.len().saturating_sub(shown.len());
                format!(
                    "the eBPF sources differ from those of the prebuilt object ({MANIFEST}: {}{})",
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
            Self::Broken(e) => format!("the prebuilt eBPF object cannot be used ({e})"),
        }
    }
}

/// The one message build.rs gives when it must build from source and cannot.
pub fn cannot_build_message(why: &FromSource, missing: &[String]) -> String {
    format!(
        "uringtrace: {}, so they must be built from source, which needs {} (missing). \
         Install the eBPF toolchain with scripts/setup.sh, then rebuild; `cargo xtask ebpf` \
         refreshes the committed object and manifest. Or restore the eBPF sources to the \
         committed ones (git checkout) to use the prebuilt object.",
        why.describe(),
        missing.join(" and ")
    )
}

#[cfg(test)]
#[path = "prebuilt_tests.rs"]
mod tests;
