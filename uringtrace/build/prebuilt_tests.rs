//! Unit tests of the prebuilt-object decision (run by `cargo test -p xtask`, which includes
//! this module; build scripts have no tests of their own).

use super::*;

fn input(name: &str, sha: char) -> Input {
    Input {
        name: name.to_string(),
        sha256: sha.to_string().repeat(64),
    }
}

fn manifest() -> Manifest {
    Manifest {
        object_sha256: "o".repeat(64),
        toolchain: BTreeMap::from([("toolchain".to_string(), "nightly-2026-05-20".to_string())]),
        lock_packages: vec!["aya-ebpf 0.2.1".to_string()],
        inputs: vec![
            input("Cargo.lock aya-ebpf 0.2.1", 'a'),
            input("uringtrace-ebpf/src/main.rs", 'b'),
        ],
    }
}

#[test]
fn manifest_round_trips_through_its_text() {
    let m = manifest();
    let text = m.render();
    assert!(text.starts_with("# The prebuilt eBPF object"));
    assert_eq!(Manifest::parse(&text).unwrap(), m);
}

#[test]
fn manifest_parse_rejects_garbage_with_the_line() {
    let err = Manifest::parse("object short\n").unwrap_err();
    assert!(err.contains("names no object sha256"), "{err}");
    let err = Manifest::parse(&format!("object {}\ninput abc x\n", "o".repeat(64))).unwrap_err();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn matching_sources_embed_the_prebuilt_object() {
    let m = manifest();
    let o = "o".repeat(64);
    assert_eq!(
        choose(None, Ok(&m), Ok(&m.inputs), Ok(&o)),
        Choice::Prebuilt
    );
    assert_eq!(
        choose(Some("0"), Ok(&m), Ok(&m.inputs), Ok(&o)),
        Choice::Prebuilt
    );
}

#[test]
fn the_environment_variable_forces_a_source_build() {
    let m = manifest();
    let o = "o".repeat(64);
    for v in ["1", "true", "yes"] {
        assert_eq!(
            choose(Some(v), Ok(&m), Ok(&m.inputs), Ok(&o)),
            Choice::FromSource(FromSource::Requested)
        );
    }
}

#[test]
fn changed_added_and_removed_inputs_are_named() {
    let m = manifest();
    let o = "o".repeat(64);
    let now = vec![
        // aya-ebpf bumped: its old entry is gone, a new one appears.
        input("Cargo.lock aya-ebpf 0.2.2", 'a'),
        input("uringtrace-ebpf/src/main.rs", 'c'),
        input("uringtrace-ebpf/src/new.rs", 'd'),
    ];
    assert_eq!(
        choose(None, Ok(&m), Ok(&now), Ok(&o)),
        Choice::FromSource(FromSource::Stale(vec![
            "Cargo.lock aya-ebpf 0.2.1".to_string(),
            "Cargo.lock aya-ebpf 0.2.2".to_string(),
            "uringtrace-ebpf/src/main.rs".to_string(),
            "uringtrace-ebpf/src/new.rs".to_string(),
        ]))
    );
}

#[test]
fn a_missing_or_replaced_object_is_not_embedded() {
    let m = manifest();
    let Choice::FromSource(FromSource::Broken(e)) =
        choose(None, Ok(&m), Ok(&m.inputs), Ok(&"x".repeat(64)))
    else {
        panic!("a replaced object was embedded");
    };
    assert!(e.contains(OBJECT) && e.contains(MANIFEST), "{e}");
    assert_eq!(
        choose(None, Ok(&m), Ok(&m.inputs), Err("reading x: not found")),
        Choice::FromSource(FromSource::Broken("reading x: not found".to_string()))
    );
    assert_eq!(
        choose(None, Err("no manifest"), Ok(&m.inputs), Ok("o")),
        Choice::FromSource(FromSource::Broken("no manifest".to_string()))
    );
}

#[test]
fn the_failure_message_says_how_to_rebuild() {
    let names: Vec<String> = (0..7).map(|i| format!("f{i}.rs")).collect();
    let msg = cannot_build_message(
        &FromSource::Stale(names),
        &[
            "the Rust toolchain nightly-x".to_string(),
            "bpf-linker".to_string(),
        ],
    );
    assert!(
        msg.contains("f0.rs, f1.rs, f2.rs, f3.rs, f4.rs and 2 more"),
        "{msg}"
    );
    assert!(
        msg.contains("the Rust toolchain nightly-x and bpf-linker (missing)"),
        "{msg}"
    );
    assert!(
        msg.contains("scripts/setup.sh") && msg.contains("`cargo xtask ebpf`"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "one message, one line: {msg}");
}

#[test]
fn workspace_toml_keeps_only_what_reaches_the_ebpf_build() {
    let toml = "[workspace]\nmembers = [\"a\"]\n[workspace.package]\nedition = \"2021\"\n\
                [workspace.dependencies]\n# pinned\naya-ebpf = \"=0.2.1\"\nclap = \"4\"\n\
                [profile.release.package.uringtrace-ebpf]\ndebug = 2\n";
    let mut out = Vec::new();
    workspace_toml_inputs(toml, &["aya-ebpf"], &mut out);
    let names: Vec<&str> = out.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Cargo.toml [workspace.package]",
            "Cargo.toml [workspace.dependencies] aya-ebpf",
            "Cargo.toml [profile.release.package.uringtrace-ebpf]",
        ]
    );
    // A comment or a host-only dependency does not stale the object; a profile does.
    let mut again = Vec::new();
    let edited = toml
        .replace("# pinned", "# other")
        .replace("clap = \"4\"", "clap = \"5\"");
    workspace_toml_inputs(&edited, &["aya-ebpf"], &mut again);
    assert_eq!(out, again);
    let mut profile = Vec::new();
    workspace_toml_inputs(
        &toml.replace("debug = 2", "debug = 1"),
        &["aya-ebpf"],
        &mut profile,
    );
    assert_ne!(out, profile);
}

#[test]
fn lock_entries_are_keyed_by_name_and_version() {
    let lock = "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\
                dependencies = [\n \"b\",\n]\n\n[[package]]\nname = \"b\"\nversion = \"2.0.0\"\n";
    let entries = lock_entries(lock);
    assert_eq!(entries.keys().collect::<Vec<_>>(), ["a 1.0.0", "b 2.0.0"]);
    assert!(entries["a 1.0.0"].contains("\"b\","));
}

#[test]
fn remapped_paths_leave_no_clone_directory_in_the_flags_target() {
    let flags = rustflags(Path::new("/some/clone"));
    let parts: Vec<&str> = flags.split('\x1f').collect();
    assert!(parts.contains(&"-Clink-arg=--btf"));
    assert!(parts.contains(&"--remap-path-prefix=/some/clone=/uringtrace"));
}

#[test]
fn only_inherited_dependencies_pick_workspace_lines() {
    let toml =
        "[package]\nversion.workspace = true\n[dependencies]\naya-ebpf = { workspace = true }\n\
                uringtrace-common = { workspace = true }\n[build-dependencies]\nwhich = \"8\"\n";
    assert_eq!(
        inherited_dependencies(toml),
        ["aya-ebpf", "uringtrace-common"]
    );
}
