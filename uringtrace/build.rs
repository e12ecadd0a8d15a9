//! Puts the eBPF object at `$OUT_DIR/uringtrace` (src/trace/loader.rs embeds it).
//!
//! By default that is the committed object, uringtrace/ebpf-prebuilt/uringtrace.bpf.o, so
//! building uringtrace needs stable Rust alone (`cargo install --path uringtrace`). It builds
//! from source with the pinned nightly and bpf-linker instead when `URINGTRACE_BUILD_EBPF=1`,
//! or when an eBPF source input no longer has the sha256 the manifest names (a developer
//! editing uringtrace-ebpf gets their change, and a warning to refresh the object with
//! `cargo xtask ebpf`). The decision and the build command live in build/prebuilt.rs, shared
//! with the xtask.

use std::path::{Path, PathBuf};

#[path = "build/prebuilt.rs"]
mod prebuilt;

use prebuilt::{Choice, FromSource};

/// Build scripts report errors on stderr; one message, then exit 1 (no error chain noise).
fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1);
}

fn copy(from: &Path, to: &Path) {
    if let Err(e) = std::fs::copy(from, to) {
        fail(&format!(
            "uringtrace: copying {} to {}: {e}",
            from.display(),
            to.display()
        ));
    }
}

fn main() {
    let env_path = |key: &str| match std::env::var_os(key) {
        Some(v) => PathBuf::from(v),
        None => fail(&format!(
            "uringtrace build script: {key} not set (run it through cargo)"
        )),
    };
    let manifest_dir = env_path("CARGO_MANIFEST_DIR");
    let out_dir = env_path("OUT_DIR");
    // uringtrace/ sits in the workspace root.
    let root = manifest_dir.parent().unwrap_or(&manifest_dir).to_path_buf();

    println!("cargo:rerun-if-env-changed={}", prebuilt::BUILD_ENV);
    for watched in ["Cargo.toml", "Cargo.lock", "uringtrace/ebpf-prebuilt"]
        .into_iter()
        .chain(prebuilt::SOURCE_DIRS)
        .chain(prebuilt::SOURCE_FILES)
    {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let env = std::env::var(prebuilt::BUILD_ENV).ok();
    let dst = out_dir.join(prebuilt::EBPF_BIN);
    let why = match prebuilt::choose_on_disk(&root, env.as_deref()).0 {
        Choice::Prebuilt => return copy(&root.join(prebuilt::OBJECT), &dst),
        Choice::FromSource(why) => why,
    };

    let toolchain = prebuilt::pinned_toolchain(&root).unwrap_or_else(|e| fail(&e));
    let missing = prebuilt::missing_toolchain(&toolchain);
    if !missing.is_empty() {
        fail(&prebuilt::cannot_build_message(&why, &missing));
    }
    if !matches!(why, FromSource::Requested) {
        println!(
            "cargo:warning={}: built the eBPF programs from source with {toolchain}; \
             `cargo xtask ebpf` refreshes the committed object",
            why.describe()
        );
    }
    let target_dir = out_dir.join("ebpf-target");
    let output = prebuilt::build_command(&root, &toolchain, &target_dir).output();
    match output {
        Ok(o) if o.status.success() => {}
        Ok(o) => fail(&format!(
            "uringtrace: building the eBPF programs from source with {toolchain} failed \
             ({}):\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => fail(&format!(
            "uringtrace: starting rustup to build the eBPF programs: {e}"
        )),
    }
    copy(&prebuilt::built_object(&target_dir), &dst);
}
