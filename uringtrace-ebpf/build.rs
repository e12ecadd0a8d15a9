// Re-run the eBPF build when bpf-linker changes (a stale object is worse than a slow build).
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
