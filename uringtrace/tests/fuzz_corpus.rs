//! Replays every committed fuzzing input (fuzz/corpus/TARGET: what fuzzing found
//! interesting; fuzz/crashes/TARGET: inputs that once crashed, fixed since) through
//! the fuzz targets' own code (uringtrace::fuzzing), without libFuzzer: a regression
//! of any fix fails here, in the normal test suite.

use std::path::Path;

use uringtrace::fuzzing::TARGETS;

#[test]
fn every_committed_fuzz_input_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let mut inputs = 0;
        for dir in ["corpus", "crashes"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("listing the corpus").path();
                let data = std::fs::read(&path).expect("reading a corpus input");
                eprintln!("{}", path.display());
                target(&data);
                inputs += 1;
            }
        }
        assert!(inputs > 0, "no committed inputs for fuzz target {name}");
        replayed += inputs;
    }
    eprintln!("replayed {replayed} inputs");
}
