//! Rewriting a recording of an older format version in the current one, event for
//! event: how the committed test fixtures were converted (see
//! `examples/reencode_fixtures.rs`). The result is read back and compared with the
//! original before it is returned, so a conversion is never lossy.

use std::io::{self, Cursor};

use thiserror::Error;
use uringtrace_common::RawEvent;

use super::{Drops, Header, ReadStatus, Reader, RecordingError, Writer, FORMAT_VERSION};

#[derive(Debug, Error)]
pub enum UpgradeError {
    #[error(transparent)]
    Read(#[from] RecordingError),
    /// Only a recording that ended cleanly or on a record boundary can be rewritten:
    /// a truncated one would read back as unfinished.
    #[error("the recording ends in a state that cannot be rewritten: {0:?}")]
    Status(ReadStatus),
    #[error("writing the new recording: {0}")]
    Write(io::Error),
    #[error("the rewritten recording differs from the original: {0}")]
    Mismatch(String),
}

/// Everything a reader gets out of a recording.
#[derive(Debug, PartialEq)]
struct Contents {
    header: Header,
    events: Vec<RawEvent>,
    drops: Drops,
    status: ReadStatus,
}

fn contents(bytes: &[u8]) -> Result<Contents, RecordingError> {
    let mut r = Reader::new(bytes)?;
    let mut events = Vec::new();
    while let Some(ev) = r.next_event()? {
        events.push(ev);
    }
    Ok(Contents {
        header: r.header().clone(),
        drops: r.drops().clone(),
        status: r.status().clone(),
        events,
    })
}

/// `old` (any version the reader reads) in the current format version: same header
/// (but its version), events, drop counters and end state.
pub fn upgrade(old: &[u8]) -> Result<Vec<u8>, UpgradeError> {
    let mut before = contents(old)?;
    let finished = match before.status {
        ReadStatus::Complete => true,
        ReadStatus::Unfinished => false,
        ref s => return Err(UpgradeError::Status(s.clone())),
    };
    if finished {
        // What a clean end means, as the writer writes it: the header says finished
        // and holds the final counters, which count the file's events. An old file
        // may differ and still be whole (its header was too small to be rewritten:
        // the end record alone carries the counters), or count its events wrongly.
        before.drops.recorded = before.events.len() as u64;
        before.header.drops = before.drops.clone();
        before.header.finished = true;
    }
    let mut w =
        Writer::new(Cursor::new(Vec::new()), before.header.clone()).map_err(UpgradeError::Write)?;
    for ev in &before.events {
        w.write_event(ev).map_err(UpgradeError::Write)?;
    }
    let out = if finished {
        w.finish(before.drops.clone())
    } else {
        w.abandon()
    }
    .map_err(UpgradeError::Write)?
    .into_inner();

    let mut after = contents(&out)?;
    if after.header.format_version != FORMAT_VERSION {
        return Err(UpgradeError::Mismatch(format!(
            "format version {}",
            after.header.format_version
        )));
    }
    after.header.format_version = before.header.format_version;
    if after.events.len() != before.events.len() {
        return Err(UpgradeError::Mismatch(format!(
            "{} events instead of {}",
            after.events.len(),
            before.events.len()
        )));
    }
    if let Some(i) = (0..after.events.len()).find(|&i| after.events[i] != before.events[i]) {
        return Err(UpgradeError::Mismatch(format!("event {i}")));
    }
    if after != before {
        return Err(UpgradeError::Mismatch("header, drops or end state".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(rel)
    }

    /// The one committed version-1 recording and its committed version-2 twin: the
    /// twin is exactly what upgrading gives, and both read to the same header, events
    /// (field for field), drop counters and end state.
    #[test]
    fn the_v1_fixture_upgrades_to_its_committed_twin() {
        let v1 = std::fs::read(fixture("v1/chain-ok-v1.utr")).unwrap();
        let v2 = std::fs::read(fixture("recordings/chain-ok.utr")).unwrap();
        let (a, b) = (contents(&v1).unwrap(), contents(&v2).unwrap());
        assert_eq!(Reader::new(&v1[..]).unwrap().format_version(), 1);
        assert_eq!(Reader::new(&v2[..]).unwrap().format_version(), 2);
        assert_eq!((a.header.format_version, b.header.format_version), (1, 2));
        assert!(a.events.len() > 10, "{} events", a.events.len());
        for (i, (x, y)) in a.events.iter().zip(&b.events).enumerate() {
            assert_eq!(x, y, "event {i}");
        }
        assert_eq!(a.events.len(), b.events.len());
        assert_eq!(
            Header {
                format_version: 2,
                ..a.header.clone()
            },
            b.header
        );
        assert_eq!(a.status, ReadStatus::Complete);
        assert_eq!((a.drops, a.status), (b.drops, b.status));
        // The twin is the current encoder's output. If an encoder change is meant,
        // write `upgrade(&v1)` to recordings/chain-ok.utr (same version: the example
        // leaves current files alone).
        assert!(
            upgrade(&v1).unwrap() == v2,
            "recordings/chain-ok.utr is not what upgrading v1/chain-ok-v1.utr gives"
        );
    }

    #[test]
    fn a_truncated_recording_is_not_rewritten() {
        let v1 = std::fs::read(fixture("v1/chain-ok-v1.utr")).unwrap();
        let cut = &v1[..v1.len() - 100];
        assert!(matches!(
            upgrade(cut),
            Err(UpgradeError::Status(ReadStatus::Truncated { .. }))
        ));
    }
}
