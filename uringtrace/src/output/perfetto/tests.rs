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

/// The export's two threads (`replay_file_beside`) write the same bytes, and the
/// analyzer reports the same, as one thread doing both in turn.
#[test]
fn fixtures_export_alike_on_one_thread_and_beside_the_analyzer() {
    let mut files = Vec::new();
    recordings(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        &mut files,
    );
    let mut compared = 0;
    for f in files {
        let mut alone = Exporter::new(Vec::new()).unwrap();
        let Ok(report) = replay_file(&f, AnalyzerConfig::default(), |ev| alone.push(ev)) else {
            assert!(crate::pipeline::replay_file_beside(
                &f,
                AnalyzerConfig::default(),
                Exporter::new(Vec::new()).unwrap(),
                |ex, ev| ex.push(ev)
            )
            .is_err());
            continue;
        };
        let (beside_report, beside) = crate::pipeline::replay_file_beside(
            &f,
            AnalyzerConfig::default(),
            Exporter::new(Vec::new()).unwrap(),
            |ex, ev| ex.push(ev),
        )
        .unwrap();
        assert_eq!(
            crate::output::json(&report),
            crate::output::json(&beside_report),
            "{}",
            f.display()
        );
        let (alone, _) = alone.finish(&report).unwrap();
        let (beside, _) = beside.finish(&beside_report).unwrap();
        assert!(alone == beside, "{}", f.display());
        compared += 1;
    }
    assert!(compared >= 20, "{compared}");
}

#[test]
fn compiled_in_keys_are_the_official_ones() {
    assert_eq!(
        wire::Fields::check().unwrap(),
        wire::Fields::from_descriptors().unwrap()
    );
}
