//! `cargo xtask ebpf [--check]`: builds the eBPF object from source with the pinned
//! toolchain and writes (or, with --check, compares against) the committed
//! uringtrace/ebpf-prebuilt/uringtrace.bpf.o and its manifest. `cargo xtask install-check`:
//! `cargo install --path uringtrace` with stable Rust alone.
//!
//! The committed object is bpf-linker's output with its DWARF removed (`llvm-strip
//! --strip-debug`): aya loads BTF (.BTF, .BTF.ext: types, func and line info), never DWARF,
//! and the DWARF was three quarters of the 3.8 MB. Builds are byte-reproducible across
//! clones because prebuilt::rustflags remaps the clone's path (BTF line info names every
//! source file by its absolute path).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

#[path = "../../uringtrace/build/prebuilt.rs"]
mod prebuilt;

#[derive(clap::Args)]
pub struct Args {
    /// Rebuild from source and fail if the object or the manifest differs from the
    /// committed ones (what CI runs); writes nothing
    #[arg(long)]
    check: bool,
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let o = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !o.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The LLVM major version of the pinned rustc (bpf-linker must link the same one).
fn llvm_version(rustc_vv: &str) -> Option<&str> {
    rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .map(str::trim)
}

/// llvm-strip of that LLVM major: Debian's llvm-N package (scripts/setup.sh) puts it in
/// /usr/lib/llvm-N/bin; a plain `llvm-strip` on PATH is the fallback.
fn llvm_strip(major: &str) -> PathBuf {
    let debian = PathBuf::from(format!("/usr/lib/llvm-{major}/bin/llvm-strip"));
    if debian.exists() {
        debian
    } else {
        PathBuf::from("llvm-strip")
    }
}

/// The registry packages of the eBPF crate's build graph (normal and build edges, any
/// platform), as `name version`: their Cargo.lock entries are inputs.
fn lock_packages(root: &Path) -> anyhow::Result<Vec<String>> {
    let tree = output(
        Command::new("cargo")
            .args([
                "tree",
                "--locked",
                "-p",
                prebuilt::EBPF_PACKAGE,
                "--target",
                "all",
            ])
            .args(["-e", "normal,build", "--prefix", "none", "--format", "{p}"])
            .current_dir(root),
    )?;
    Ok(parse_tree(&tree))
}

fn parse_tree(tree: &str) -> Vec<String> {
    let mut packages: Vec<String> = tree
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            // Workspace crates ("(/path/to/crate)") are hashed file by file instead.
            let path = words.next().is_some_and(|w| w.starts_with("(/"));
            (!path).then(|| format!("{name} {version}"))
        })
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

/// Builds, strips, and returns the object and the manifest that describes it.
fn build(root: &Path) -> anyhow::Result<(Vec<u8>, prebuilt::Manifest)> {
    let toolchain = prebuilt::pinned_toolchain(root).map_err(anyhow::Error::msg)?;
    let missing = prebuilt::missing_toolchain(&toolchain);
    if !missing.is_empty() {
        bail!("missing {}: run scripts/setup.sh", missing.join(" and "));
    }
    let target_dir = root.join("target/ebpf");
    super::run(&mut prebuilt::build_command(root, &toolchain, &target_dir))?;
    let rustc_vv = output(Command::new("rustup").args(["run", &toolchain, "rustc", "-vV"]))?;
    let llvm = llvm_version(&rustc_vv)
        .context("rustc -vV names no LLVM version")?
        .to_string();
    let major = llvm.split('.').next().unwrap_or_default().to_string();
    let strip = llvm_strip(&major);
    let stripped = target_dir.join("uringtrace.bpf.o");
    super::run(
        Command::new(&strip)
            .arg("--strip-debug")
            .arg(prebuilt::built_object(&target_dir))
            .arg("-o")
            .arg(&stripped),
    )?;
    let object =
        std::fs::read(&stripped).with_context(|| format!("reading {}", stripped.display()))?;

    let lock = lock_packages(root)?;
    let inputs = prebuilt::inputs(root, &lock).map_err(anyhow::Error::msg)?;
    let strip_version = output(Command::new(&strip).arg("--version"))?;
    let linker_llvm = output(Command::new("sh").args([
        "-c",
        "ldd \"$(command -v bpf-linker)\" | sed -n 's/.*libLLVM[.-]so[.]\\{0,1\\}\\([0-9.]*\\).*/\\1/p' | head -n 1",
    ]))
    .unwrap_or_default();
    let toolchain_info = BTreeMap::from([
        ("toolchain".to_string(), toolchain.clone()),
        (
            "rustc".to_string(),
            rustc_vv.lines().next().unwrap_or_default().to_string(),
        ),
        ("rustc-llvm".to_string(), llvm),
        (
            "bpf-linker".to_string(),
            output(Command::new("bpf-linker").arg("--version"))?,
        ),
        (
            "bpf-linker-llvm".to_string(),
            if linker_llvm.is_empty() {
                "unknown".into()
            } else {
                linker_llvm
            },
        ),
        (
            "strip".to_string(),
            format!(
                "llvm-strip --strip-debug ({})",
                strip_version
                    .lines()
                    .find(|l| l.contains("LLVM version"))
                    .unwrap_or("")
                    .trim()
            ),
        ),
    ]);
    let manifest = prebuilt::Manifest {
        object_sha256: prebuilt::sha256_hex(&object),
        toolchain: toolchain_info,
        lock_packages: lock,
        inputs,
    };
    Ok((object, manifest))
}

/// Per-section sizes (binutils readelf), to say *where* two objects differ.
fn sections(path: &Path) -> String {
    output(Command::new("sh").arg("-c").arg(format!(
        "readelf -SW '{}' 2>/dev/null | sed -n 's/^ *\\[ *[0-9]*\\] //p' | awk '{{print $1, $5}}'",
        path.display()
    )))
    .unwrap_or_default()
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let (object, manifest) = build(root)?;
    let object_path = root.join(prebuilt::OBJECT);
    let manifest_path = root.join(prebuilt::MANIFEST);
    if !args.check {
        std::fs::create_dir_all(object_path.parent().unwrap_or(root))?;
        std::fs::write(&object_path, &object)?;
        std::fs::write(&manifest_path, manifest.render())?;
        eprintln!(
            "xtask: wrote {} ({} bytes, sha256 {}) and {}; commit both",
            prebuilt::OBJECT,
            object.len(),
            manifest.object_sha256,
            prebuilt::MANIFEST
        );
        return Ok(());
    }

    let committed_text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let committed = prebuilt::Manifest::parse(&committed_text).map_err(anyhow::Error::msg)?;
    let mut problems = Vec::new();
    let stale = prebuilt::changed(&committed.inputs, &manifest.inputs);
    if !stale.is_empty() || committed.lock_packages != manifest.lock_packages {
        problems.push(format!(
            "the manifest's inputs are not the sources' (changed: {})",
            stale.join(", ")
        ));
    }
    let committed_object = std::fs::read(&object_path).unwrap_or_default();
    if committed_object != object {
        let rebuilt = root.join("target/ebpf/uringtrace.bpf.o");
        let toolchain_diff: Vec<String> = manifest
            .toolchain
            .iter()
            .filter(|(k, v)| committed.toolchain.get(*k) != Some(*v))
            .map(|(k, v)| {
                format!(
                    "{k}: committed {:?}, here {v:?}",
                    committed.toolchain.get(k)
                )
            })
            .collect();
        let (new_sections, old_sections) = (sections(&rebuilt), sections(&object_path));
        let old_lines: Vec<&str> = old_sections.lines().collect();
        let new_lines: Vec<&str> = new_sections.lines().collect();
        let differing: Vec<String> = new_lines
            .iter()
            .filter(|l| !old_lines.contains(l))
            .map(|l| format!("rebuilt {l}"))
            .chain(
                old_lines
                    .iter()
                    .filter(|l| !new_lines.contains(l))
                    .map(|l| format!("committed {l}")),
            )
            .collect();
        problems.push(format!(
            "the object rebuilt from source ({} bytes, sha256 {}, {}) differs from the \
             committed one ({} bytes, sha256 {}); toolchain differences: {}; section sizes \
             (hex) that differ: {}",
            object.len(),
            manifest.object_sha256,
            rebuilt.display(),
            committed_object.len(),
            prebuilt::sha256_hex(&committed_object),
            if toolchain_diff.is_empty() {
                "none".to_string()
            } else {
                toolchain_diff.join("; ")
            },
            if differing.is_empty() {
                "none (same sizes, other bytes)".to_string()
            } else {
                differing.join(", ")
            },
        ));
    }
    if !problems.is_empty() {
        bail!(
            "ebpf --check: {}\nRun `cargo xtask ebpf` and commit {} and {}.",
            problems.join("\n"),
            prebuilt::OBJECT,
            prebuilt::MANIFEST
        );
    }
    eprintln!(
        "xtask: ebpf --check: the object rebuilt from source is byte-identical to {} ({} bytes)",
        prebuilt::OBJECT,
        object.len()
    );
    Ok(())
}

/// `cargo install --locked --path uringtrace` into target/install-check with the stable
/// toolchain's own cargo and rustc first on PATH, and every PATH directory holding rustup,
/// bpf-linker or LLVM tools removed, so neither the nightly nor bpf-linker can be reached;
/// then runs the installed `uringtrace --version` and `doctor`. CARGO_TARGET_DIR is the
/// workspace's target/, so `cargo build --release -p uringtrace` by the same stable rustc
/// (kernel-matrix's, in CI) is reused: a few seconds. After `cargo test --release` alone it
/// is not (dev-dependencies unify other features into serde_json, regex, syn, libc...).
pub fn install_check(root: &Path) -> anyhow::Result<()> {
    let cargo = output(Command::new("rustup").args(["which", "--toolchain", "stable", "cargo"]))
        .context("the stable toolchain is needed: rustup toolchain install stable")?;
    let stable_bin = Path::new(&cargo)
        .parent()
        .context("cargo has no directory")?
        .to_path_buf();
    // Out: ~/.cargo/bin (rustup's proxies, bpf-linker) and LLVM's own bin dirs. /usr/bin
    // stays (cc and ld link the binary), LLVM symlinks of a distribution LLVM included.
    let unwanted = ["rustup", "bpf-linker", "cargo", "rustc"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![stable_bin.clone()];
    dirs.extend(std::env::split_paths(&path).filter(|d| {
        !unwanted.iter().any(|t| d.join(t).exists())
            && !d.to_string_lossy().starts_with("/usr/lib/llvm")
    }));
    for tool in ["rustup", "bpf-linker"] {
        if let Some(d) = dirs.iter().find(|d| d.join(tool).exists()) {
            bail!(
                "install-check: {tool} is still reachable in {}",
                d.display()
            );
        }
    }
    let path = std::env::join_paths(&dirs)?;
    let install_root = root.join("target/install-check");
    let _ = std::fs::remove_dir_all(&install_root);
    let mut install = Command::new(stable_bin.join("cargo"));
    install
        .args(["install", "--locked", "--path", "uringtrace", "--root"])
        .arg(&install_root)
        .env("PATH", &path)
        .env("RUSTUP_TOOLCHAIN", "stable")
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env_remove(prebuilt::BUILD_ENV)
        .env_remove("RUSTC")
        .env_remove("CARGO");
    let start = std::time::Instant::now();
    super::run(&mut install)?;
    let took = start.elapsed();
    let bin = install_root.join("bin/uringtrace");
    for args in [&["--version"][..], &["doctor"][..]] {
        super::run(Command::new(&bin).args(args).env("PATH", &path))?;
    }
    eprintln!(
        "xtask: install-check: `cargo install --path uringtrace` with stable Rust alone \
         (PATH: {}) took {:.0} s; {} runs",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
        took.as_secs_f64(),
        bin.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_object_matches_the_sources() {
        let root = super::super::root();
        let (choice, manifest) = prebuilt::choose_on_disk(&root, None);
        assert!(
            manifest.is_some(),
            "{} is missing or unreadable",
            prebuilt::MANIFEST
        );
        if let prebuilt::Choice::FromSource(why) = choice {
            panic!(
                "{}: the committed eBPF object is stale. Run `cargo xtask ebpf` and commit {} \
                 and {}.",
                why.describe(),
                prebuilt::OBJECT,
                prebuilt::MANIFEST
            );
        }
    }

    #[test]
    fn tree_lines_become_lock_keys() {
        let tree = "uringtrace-ebpf v0.1.0 (/w/uringtrace-ebpf)\naya-ebpf v0.2.1\n\
                    syn v2.0.119 (*)\nsyn v2.0.119\nrustversion v1.0.23 (proc-macro)\n";
        assert_eq!(
            parse_tree(tree),
            ["aya-ebpf 0.2.1", "rustversion 1.0.23", "syn 2.0.119"]
        );
    }

    #[test]
    fn llvm_version_comes_from_rustc() {
        assert_eq!(
            llvm_version("rustc 1.97.0-nightly\nLLVM version: 22.1.4\n"),
            Some("22.1.4")
        );
    }
}
