//! Every committed recording exports to the same decoded trace through the fast path as
//! through the generated messages.

use std::path::Path;

use perfetto_protos::trace::Trace;
use protobuf::Message;

use super::*;
use crate::analyzer::AnalyzerConfig;
use crate::pipeline::replay_file;

fn recordings(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            recordings(&p, out);
        } else if p.extension().is_some_and(|x| x == "utr") {
            out.push(p);
        }
    }
}

#[test]
fn fixtures_export_alike_through_both_encoders() {
    let mut files = Vec::new();
    recordings(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        &mut files,
    );
    assert!(files.len() >= 30, "{files:?}");
    let mut compared = 0;
    for f in files {
        let mut fast = Exporter::new(Vec::new()).unwrap();
        let mut generated = Exporter::new(Vec::new()).unwrap().generated();
        // Some fixtures are deliberately unreadable (format tests): skip those.
        let Ok(report) = replay_file(&f, AnalyzerConfig::default(), |ev| {
            fast.push(ev)?;
            generated.push(ev)
        }) else {
            continue;
        };
        let (fast, wf) = fast.finish(&report).unwrap();
        let (generated, wg) = generated.finish(&report).unwrap();
        assert_eq!(wf, wg, "{}", f.display());
        let fast = Trace::parse_from_bytes(&fast).unwrap();
        let generated = Trace::parse_from_bytes(&generated).unwrap();
        assert_eq!(fast.packet.len(), generated.packet.len(), "{}", f.display());
        for (i, (a, b)) in fast.packet.iter().zip(&generated.packet).enumerate() {
            assert_eq!(a, b, "{} packet {i}", f.display());
        }
        compared += 1;
    }
    assert!(compared >= 20, "{compared}");
}
