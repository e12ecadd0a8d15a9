use std::path::PathBuf;

use anyhow::Context as _;
use aya_build::{Package, Toolchain};

/// Must match scripts/setup.sh: its LLVM major has to equal bpf-linker's (22).
const EBPF_TOOLCHAIN: &str = "nightly-2026-05-20";

fn main() -> anyhow::Result<()> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let ebpf_dir = manifest.join("../uringtrace-ebpf");
    let ebpf_dir = ebpf_dir.to_str().context("non-UTF-8 path")?;
    // aya-build tracks the eBPF crate's sources; the shared types live elsewhere.
    println!("cargo:rerun-if-changed=../uringtrace-common/src");
    aya_build::build_ebpf(
        [Package { name: "uringtrace-ebpf", root_dir: ebpf_dir, ..Default::default() }],
        Toolchain::Custom(EBPF_TOOLCHAIN),
    )
    .context("building the eBPF programs failed; run scripts/setup.sh to install the pinned nightly and bpf-linker")
}
