//! Rewrites the committed test recordings in the current format version.
//!
//! ```text
//! cargo run --release -p uringtrace --example reencode_fixtures [-- DIR...]
//! ```
//! Walks DIR (default: this crate's `tests/`) for `*.utr` files whose format version
//! is not the current one and rewrites each in place with
//! [`uringtrace::recording::upgrade`], which reads the result back and checks that
//! header, events (field for field), drop counters and end state are the original's.
//! Files named `*-v1.utr` are kept as they are: they are the old format under test.
//! Running it again changes nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use uringtrace::recording::{upgrade, Reader, FORMAT_VERSION};

fn utr_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            utr_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "utr") {
            out.push(path);
        }
    }
    Ok(())
}

fn run(dirs: &[PathBuf]) -> Result<(), String> {
    let mut files = Vec::new();
    for d in dirs {
        utr_files(d, &mut files).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    files.sort();
    let (mut before, mut after, mut rewritten) = (0, 0, 0);
    for path in &files {
        let name = path.display();
        if path.to_string_lossy().ends_with("-v1.utr") {
            println!("kept     {name} (an old-format test file)");
            continue;
        }
        let old = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
        let version = Reader::new(&old[..])
            .map_err(|e| format!("{name}: {e}"))?
            .format_version();
        if version == FORMAT_VERSION {
            println!("current  {name}");
            continue;
        }
        let new = upgrade(&old).map_err(|e| format!("{name}: {e}"))?;
        std::fs::write(path, &new).map_err(|e| format!("{name}: {e}"))?;
        println!(
            "v{version}->v{FORMAT_VERSION} {name}: {} -> {} bytes",
            old.len(),
            new.len()
        );
        before += old.len();
        after += new.len();
        rewritten += 1;
    }
    println!("{rewritten} rewritten: {before} -> {after} bytes");
    Ok(())
}

fn main() -> ExitCode {
    let mut dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"));
    }
    match run(&dirs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reencode_fixtures: {e}");
            ExitCode::FAILURE
        }
    }
}
