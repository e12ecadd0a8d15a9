//! The recording format without root: round trips, truncation, corruption, foreign
//! files. Every failure must be an error naming an offset, never a panic.

mod common;

use std::io::Cursor;
use std::process::Command;

use uringtrace::recording::{
    ClockBase, Drops, Filter, Header, ReadStatus, Reader, RecordingError, TracepointInfo, Writer,
    PREAMBLE_LEN,
};
use uringtrace_common::{EventKind, RawEvent};

fn header() -> Header {
    Header {
        format: Header::FORMAT.into(),
        format_version: 1,
        tool_version: "test".into(),
        kernel_release: "6.18.0-test".into(),
        host: "testhost".into(),
        clock: ClockBase {
            source: "CLOCK_MONOTONIC".into(),
            start_monotonic_ns: 1_000,
            start_realtime_ns: 2_000,
        },
        tracepoints: vec![TracepointInfo {
            kind: "complete".into(),
            tracepoint: "io_uring:io_uring_complete".into(),
            attach_type: "tracepoint".into(),
        }],
        missing: vec![],
        degraded: vec![],
        filter: Filter {
            pids: vec![42],
            command: vec!["app".into()],
            follow_children: true,
        },
        ring_bytes: 1 << 24,
        ncpus: 2,
        drops: Drops::default(),
        finished: false,
    }
}

fn events(n: usize) -> Vec<RawEvent> {
    (0..n)
        .map(|i| {
            let mut comm = [0u8; 16];
            let name = if i % 3 == 0 {
                &b"iou-wrk-42"[..]
            } else {
                &b"app"[..]
            };
            comm[..name.len()].copy_from_slice(name);
            RawEvent {
                ts_ns: 10_000 + (i as u64 * 37) % 500, // not monotonic: several CPUs
                ctx: 0xffff_8880_0000_0000 + (i as u64 % 2) * 0x800,
                req: if i % 5 == 0 {
                    0
                } else {
                    0xffff_8881_0000_0000 + i as u64 * 0x40
                },
                user_data: i as u64,
                aux: (i as u64) << 20,
                aux2: u64::MAX - i as u64,
                pid: 42 + (i as u32 % 3 == 0) as u32,
                tgid: 42,
                res: if i % 4 == 0 { -125 } else { i as i32 },
                cflags: (i as u32) << 16 | 3,
                args: [i as u32, 0, u32::MAX, 7],
                kind: [EventKind::Submit, EventKind::Complete, EventKind::Link][i % 3] as u16,
                cpu: (i % 2) as u16,
                opcode: (i % 60) as u8,
                role: if i % 3 == 0 { 2 } else { 0 },
                _pad: [0; 2],
                comm,
            }
        })
        .collect()
}

fn write(evs: &[RawEvent], finish: bool) -> Vec<u8> {
    let mut w = Writer::new(Cursor::new(Vec::new()), header()).unwrap();
    for e in evs {
        w.write_event(e).unwrap();
    }
    if finish {
        let drops = Drops {
            per_cpu: vec![0, 3],
            total: 3,
            emitted: evs.len() as u64 + 3,
            recorded: 0,
            end_monotonic_ns: 5,
        };
        w.finish(drops).unwrap().into_inner()
    } else {
        w.abandon().unwrap().into_inner()
    }
}

fn read(bytes: &[u8]) -> Result<(Vec<RawEvent>, ReadStatus, Drops), RecordingError> {
    let mut r = Reader::new(Cursor::new(bytes.to_vec()))?;
    let mut out = Vec::new();
    while let Some(e) = r.next_event()? {
        out.push(e);
    }
    Ok((out, r.status().clone(), r.drops().clone()))
}

#[test]
fn round_trips_every_field_and_the_final_counters() {
    let evs = events(1000);
    let bytes = write(&evs, true);
    let mut r = Reader::new(Cursor::new(bytes.clone())).unwrap();
    assert!(r.header().finished);
    assert_eq!(r.header().drops.per_cpu, vec![0, 3]);
    assert_eq!(r.header().drops.recorded, 1000);
    assert_eq!(r.header().filter.command, vec!["app".to_string()]);
    let mut got = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        got.push(e);
    }
    assert_eq!(got, evs);
    assert_eq!(r.status(), &ReadStatus::Complete);
    assert_eq!(r.drops().total, 3);
}

#[test]
fn is_compact() {
    let evs = events(10_000);
    let bytes = write(&evs, true);
    let header_len = 16 + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let per_event = (bytes.len() - header_len) as f64 / evs.len() as f64;
    // These synthetic events fill every field; real ones are ~30 bytes.
    assert!(per_event < 60.0, "{per_event} bytes per event");
}

#[test]
fn a_file_cut_anywhere_reads_up_to_its_last_complete_event() {
    let evs = events(50);
    let bytes = write(&evs, true);
    // Record boundaries, from a full read.
    let mut r = Reader::new(Cursor::new(bytes.clone())).unwrap();
    let mut ends = vec![r.offset()];
    while r.next_event().unwrap().is_some() {
        ends.push(r.offset());
    }
    let data_start = ends[0] as usize;
    for cut in data_start..bytes.len() {
        let (got, status, _) = read(&bytes[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let complete = ends.iter().filter(|&&end| end as usize <= cut).count() - 1;
        assert_eq!(got.len(), complete, "cut at {cut}");
        assert_eq!(got[..], evs[..complete]);
        // A cut between records (after an event or a task record) reads as
        // unfinished; a cut inside a record as truncated at that record.
        if ends.contains(&(cut as u64)) {
            assert_eq!(status, ReadStatus::Unfinished, "cut at {cut}");
        } else {
            assert!(
                matches!(
                    status,
                    ReadStatus::Truncated { .. } | ReadStatus::Unfinished
                ),
                "cut at {cut}: {status:?}"
            );
        }
    }
}

#[test]
fn a_killed_recording_still_reads() {
    let evs = events(20);
    let bytes = write(&evs, false);
    let (got, status, drops) = read(&bytes).unwrap();
    assert_eq!(got, evs);
    assert_eq!(status, ReadStatus::Unfinished);
    assert_eq!(drops, Drops::default());
}

#[test]
fn foreign_and_damaged_headers_are_named_errors() {
    assert!(matches!(read(b""), Err(RecordingError::NotARecording)));
    assert!(matches!(
        read(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"),
        Err(RecordingError::NotARecording)
    ));
    let good = write(&events(3), true);
    let e = read(&good[..10]).unwrap_err();
    assert_eq!(e.to_string(), "file ends at offset 10, inside the preamble");
    let e = read(&good[..40]).unwrap_err();
    assert_eq!(e.to_string(), "file ends at offset 40, inside the header");
    let mut v2 = good.clone();
    v2[8] = 9;
    assert_eq!(
        read(&v2).unwrap_err().to_string(),
        "recording format version 9 is not supported (this uringtrace reads version 1)"
    );
    let mut bad_json = good.clone();
    bad_json[PREAMBLE_LEN as usize] = b'[';
    assert!(read(&bad_json)
        .unwrap_err()
        .to_string()
        .starts_with("corrupt header at offset 16"));
}

#[test]
fn corrupt_records_name_their_offset_and_never_panic() {
    let evs = events(30);
    let bytes = write(&evs, true);
    let data_start = 16 + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut bad_type = bytes.clone();
    bad_type[data_start] = 0x77;
    let e = read(&bad_type).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("corrupt record at offset {data_start}: unknown record type 119")
    );
    // Flip every byte of the record area in turn: each read ends in Ok or a named
    // error, never a panic.
    for i in data_start..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0xff;
        match read(&b) {
            Ok(_) => {}
            Err(e) => assert!(e.to_string().contains("offset"), "{e}"),
        }
    }
}

#[test]
fn dump_names_the_offset_of_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.utr");
    let mut bytes = write(&events(5), true);
    let data_start = 16 + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    bytes[data_start] = 0x77;
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(common::UT)
        .arg("dump")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("corrupt record at offset {data_start}")),
        "{err}"
    );

    std::fs::write(&path, b"hello world, not a trace").unwrap();
    let out = Command::new(common::UT)
        .arg("dump")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a uringtrace recording"));

    // Truncated: reads what is there, warns, succeeds.
    let good = write(&events(5), true);
    std::fs::write(&path, &good[..good.len() - 3]).unwrap();
    let out = Command::new(common::UT)
        .arg("dump")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut short"));
}
