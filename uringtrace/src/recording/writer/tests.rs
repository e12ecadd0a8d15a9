//! A disk that fills up under the writer: the file keeps whole records only up to the
//! failed write, and reads back as incomplete.

use std::cell::RefCell;
use std::io::{self, Cursor, Seek, SeekFrom, Write};
use std::rc::Rc;

use uringtrace_common::{EventKind, RawEvent};

use super::*;
use crate::recording::{ClockBase, Filter, ReadStatus, Reader};

/// A file on a filesystem with `room` bytes free: writes past it are short, then
/// fail with ENOSPC, as write(2) on a full tmpfs does.
/// The test keeps a handle on the bytes and the room, the writer owns the other.
#[derive(Clone)]
struct FullDisk {
    data: Rc<RefCell<Cursor<Vec<u8>>>>,
    room: Rc<RefCell<u64>>,
}

impl FullDisk {
    fn new(room: u64) -> FullDisk {
        FullDisk {
            data: Rc::default(),
            room: Rc::new(RefCell::new(room)),
        }
    }
    fn bytes(&self) -> Vec<u8> {
        self.data.borrow().get_ref().clone()
    }
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut data = self.data.borrow_mut();
        let room = *self.room.borrow();
        let pos = data.position();
        if pos >= room && !buf.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let n = (room.saturating_sub(pos) as usize).min(buf.len());
        data.write(&buf[..n])
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for FullDisk {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.data.borrow_mut().seek(to)
    }
}

fn header() -> Header {
    Header {
        format: Header::FORMAT.into(),
        format_version: 0,
        tool_version: "test".into(),
        kernel_release: "6.18.0-test".into(),
        host: "testhost".into(),
        clock: ClockBase {
            source: "CLOCK_MONOTONIC".into(),
            start_monotonic_ns: 1,
            start_realtime_ns: 2,
        },
        tracepoints: vec![],
        missing: vec![],
        degraded: vec![],
        filter: Filter::default(),
        ring_bytes: 4096,
        ncpus: 2,
        drops: Drops::default(),
        finished: false,
    }
}

fn event(i: u64) -> RawEvent {
    let mut comm = [0u8; 16];
    comm[..3].copy_from_slice(b"app");
    RawEvent {
        ts_ns: 1000 + i * 17,
        ctx: 0xffff_8880_0000_0000,
        req: 0xffff_8881_0000_0000 + (i % 977) * 0x40,
        user_data: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        pid: 42,
        tgid: 42,
        res: (i % 7) as i32 - 3,
        kind: if i.is_multiple_of(2) {
            EventKind::Submit
        } else {
            EventKind::Complete
        } as u16,
        opcode: (i % 50) as u8,
        comm,
        ..RawEvent::default()
    }
}

#[test]
fn a_full_disk_keeps_whole_records_and_reads_as_incomplete() {
    let events: Vec<RawEvent> = (0..200_000).map(event).collect();
    // Several rooms: cut inside the first 1 MiB write, inside a later one, and so
    // that records straddle the cut at different offsets.
    for room in [100_000u64, 300_001, 1_500_017, 2_000_000] {
        let disk = FullDisk::new(room);
        let mut w = Writer::new(disk.clone(), header()).unwrap();
        let err = events
            .iter()
            .try_for_each(|e| w.write_event(e))
            .and_then(|()| w.flush())
            .expect_err("the disk fills up");
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        // What `record` does next: it stops, and the writer is dropped (no end record).
        drop(w);
        let bytes = disk.bytes();
        assert_eq!(bytes.len() as u64, room, "filled up to the last byte");
        let mut r = Reader::new(Cursor::new(bytes)).unwrap();
        assert!(!r.header().finished);
        let mut got = Vec::new();
        while let Some(e) = r.next_event().unwrap() {
            got.push(e);
        }
        // Every event read back is one that was written, in order, and whole.
        assert!(!got.is_empty());
        assert_eq!(got[..], events[..got.len()], "room {room}");
        assert!(
            matches!(
                r.status(),
                ReadStatus::Truncated { .. } | ReadStatus::Unfinished
            ),
            "{:?}",
            r.status()
        );
    }
}

#[test]
fn nothing_more_is_written_after_a_failed_write() {
    let disk = FullDisk::new(50_000);
    let mut w = Writer::new(disk.clone(), header()).unwrap();
    let mut i = 0;
    while w.write_event(&event(i)).is_ok() {
        i += 1;
    }
    assert_eq!(disk.bytes().len(), 50_000);
    // Room again (files deleted): the records encoded after the failure would
    // follow a cut record, so none may be written, not even when dropped.
    *disk.room.borrow_mut() = u64::MAX;
    for j in 1..=100_000 {
        let _ = w.write_event(&event(i + j));
    }
    assert!(w.flush().is_err());
    drop(w);
    assert_eq!(disk.bytes().len(), 50_000);
}

/// A recording created over a large earlier file: the earlier one is set aside and
/// deleted (nothing is left beside it), and the new file keeps its mode and reads whole.
#[test]
fn a_recording_over_a_large_earlier_file_replaces_it_whole() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("uringtrace-writer-over-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.utr");
    let old = std::fs::File::create(&path).unwrap();
    old.set_len(64 << 20).unwrap();
    old.set_permissions(std::fs::Permissions::from_mode(0o600))
        .unwrap();
    drop(old);
    let mut w = Writer::create(&path, header()).unwrap();
    let events: Vec<RawEvent> = (0..1000).map(event).collect();
    for e in &events {
        w.write_event(e).unwrap();
    }
    w.finish(Drops::default()).unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("old.utr")]);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(
        meta.len() < 1 << 20,
        "the new recording only: {}",
        meta.len()
    );
    let mut r = Reader::open(&path).unwrap();
    let mut got = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        got.push(e);
    }
    assert_eq!(got, events);
    assert!(r.header().finished);
    std::fs::remove_dir_all(&dir).unwrap();
}
