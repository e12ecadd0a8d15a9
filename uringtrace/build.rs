use std::path::PathBuf;

use anyhow::Context as _;
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    // The pinned nightly is named once, in the workspace's ebpf-toolchain file.
    let toolchain_file = manifest.join("../ebpf-toolchain");
    println!("cargo:rerun-if-changed={}", toolchain_file.display());
    let text = std::fs::read_to_string(&toolchain_file)
        .with_context(|| format!("reading {}", toolchain_file.display()))?;
    let toolchain = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .with_context(|| format!("{} names no toolchain", toolchain_file.display()))?;
    let ebpf_dir = manifest.join("../uringtrace-ebpf");
    let ebpf_dir = ebpf_dir.to_str().context("non-UTF-8 path")?;
    // aya-build tracks the eBPF crate's sources; the shared types live elsewhere.
    println!("cargo:rerun-if-changed=../uringtrace-common/src");
    aya_build::build_ebpf(
        [Package { name: "uringtrace-ebpf", root_dir: ebpf_dir, ..Default::default() }],
        Toolchain::Custom(toolchain),
    )
    .context("building the eBPF programs failed; run scripts/setup.sh to install the pinned nightly and bpf-linker")
}
