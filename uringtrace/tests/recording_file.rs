//! The recording format without root: round trips, truncation, corruption, foreign
//! files. Every failure must be an error naming an offset, never a panic.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
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
            let name = if i.is_multiple_of(3) {
                &b"iou-wrk-42"[..]
            } else {
                &b"app"[..]
            };
            comm[..name.len()].copy_from_slice(name);
            RawEvent {
                ts_ns: 10_000 + (i as u64 * 37) % 500, // not monotonic: several CPUs
                ctx: 0xffff_8880_0000_0000 + (i as u64 % 2) * 0x800,
                req: if i.is_multiple_of(5) {
                    0
                } else {
                    0xffff_8881_0000_0000 + i as u64 * 0x40
                },
                user_data: i as u64,
                aux: (i as u64) << 20,
                aux2: u64::MAX - i as u64,
                pid: 42 + (i as u32).is_multiple_of(3) as u32,
                tgid: 42,
                res: if i.is_multiple_of(4) { -125 } else { i as i32 },
                cflags: (i as u32) << 16 | 3,
                args: [i as u32, 0, u32::MAX, 7],
                kind: [EventKind::Submit, EventKind::Complete, EventKind::Link][i % 3] as u16,
                cpu: (i % 2) as u16,
                opcode: (i % 60) as u8,
                role: if i.is_multiple_of(3) { 2 } else { 0 },
                _pad: [0; 2],
                comm,
            }
        })
        .collect()
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Offset of the first record (after the preamble and the header).
fn data_start_of(bytes: &[u8]) -> usize {
    PREAMBLE_LEN as usize + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize
}

/// What a NOP storm looks like to the recorder: one thread, one ring, batches of
/// submits then their completions, user_data counting up, the requests reused from a
/// handful of slab objects, an io_uring_enter around each batch, tens of ns apart.
fn nop_storm(batches: usize) -> Vec<RawEvent> {
    const BATCH: usize = 16;
    let mut comm = [0u8; 16];
    comm[..9].copy_from_slice(b"nop-storm");
    let ring = 0xffff_8881_0b7d_7800;
    // The kernel's request cache hands out the same few io_kiocb objects.
    let slab: Vec<u64> = (0..BATCH as u64 + 4)
        .map(|i| 0xffff_8881_4b6c_e000 + ((i * 7) % (BATCH as u64 + 4)) * 0x100)
        .collect();
    let base = RawEvent {
        ctx: ring,
        pid: 4321,
        tgid: 4321,
        comm,
        ..RawEvent::default()
    };
    let mut ts = 10_894_342_045_913u64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut tick = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ts += 20 + seed % 70;
        ts
    };
    let mut evs = Vec::new();
    let mut user_data = 0;
    for b in 0..batches {
        evs.push(RawEvent {
            kind: EventKind::EnterEnter as u16,
            ts_ns: tick(),
            ctx: 0,
            cflags: 1,
            args: [3, BATCH as u32, BATCH as u32, 0],
            ..base
        });
        let reqs: Vec<u64> = (0..BATCH).map(|i| slab[(b * 3 + i) % slab.len()]).collect();
        let first = user_data + 1;
        for &req in &reqs {
            user_data += 1;
            evs.push(RawEvent {
                kind: EventKind::Submit as u16,
                ts_ns: tick(),
                req,
                user_data,
                ..base
            });
        }
        for (i, &req) in reqs.iter().enumerate() {
            evs.push(RawEvent {
                kind: EventKind::Complete as u16,
                ts_ns: tick(),
                req,
                user_data: first + i as u64,
                ..base
            });
        }
        evs.push(RawEvent {
            kind: EventKind::EnterExit as u16,
            ts_ns: tick(),
            ctx: 0,
            res: BATCH as i32,
            ..base
        });
    }
    evs
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
    let per_event = (bytes.len() - data_start_of(&bytes)) as f64 / evs.len() as f64;
    // These synthetic events fill every field; real ones are ~30 bytes.
    assert!(per_event < 60.0, "{per_event} bytes per event");
}

/// Cuts `bytes` at every offset of its record area: each prefix reads up to its last
/// complete event.
fn check_cuts(bytes: &[u8], evs: &[RawEvent]) {
    // Record boundaries, from a full read.
    let mut r = Reader::new(Cursor::new(bytes.to_vec())).unwrap();
    let mut ends = vec![r.offset()];
    while r.next_event().unwrap().is_some() {
        ends.push(r.offset());
    }
    let data_start = ends[0] as usize;
    assert_eq!(data_start, data_start_of(bytes));
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
fn a_file_cut_anywhere_reads_up_to_its_last_complete_event() {
    let evs = events(50);
    check_cuts(&write(&evs, true), &evs);
    // Version 1 (a committed fixture) too.
    let v1 = std::fs::read(fixture("v1/chain-ok-v1.utr")).unwrap();
    let (evs, status, _) = read(&v1).unwrap();
    assert_eq!(status, ReadStatus::Complete);
    check_cuts(&v1, &evs);
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
fn a_dropped_writer_keeps_what_it_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.utr");
    let evs = events(100);
    {
        let mut w = Writer::create(&path, header()).unwrap();
        for e in &evs {
            w.write_event(e).unwrap();
        }
    }
    let (got, status, _) = read(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(got, evs);
    assert_eq!(status, ReadStatus::Unfinished);
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
    let mut v9 = good.clone();
    v9[8] = 9;
    assert_eq!(
        read(&v9).unwrap_err().to_string(),
        "made by a newer uringtrace (format v9, this one reads up to v2): upgrade uringtrace"
    );
    let mut v0 = good.clone();
    v0[8] = 0;
    assert_eq!(
        read(&v0).unwrap_err().to_string(),
        "recording format version 0 is not supported (this uringtrace reads versions 1 to 2)"
    );
    let mut bad_json = good.clone();
    bad_json[PREAMBLE_LEN as usize] = b'[';
    assert!(read(&bad_json)
        .unwrap_err()
        .to_string()
        .starts_with("corrupt header at offset 16"));
}

/// Flips every byte of the record area in turn: each read ends in Ok or a named
/// error, never a panic.
fn check_flips(bytes: &[u8]) {
    for i in data_start_of(bytes)..bytes.len() {
        let mut b = bytes.to_vec();
        b[i] ^= 0xff;
        match read(&b) {
            Ok(_) => {}
            Err(e) => assert!(e.to_string().contains("offset"), "{e}"),
        }
    }
}

#[test]
fn corrupt_records_name_their_offset_and_never_panic() {
    let evs = events(30);
    let bytes = write(&evs, true);
    let data_start = data_start_of(&bytes);
    let mut bad_type = bytes.clone();
    bad_type[data_start] = 0xff;
    let e = read(&bad_type).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("corrupt record at offset {data_start}: unknown record type 255")
    );
    check_flips(&bytes);
    check_flips(&write(&nop_storm(20), true));

    // Version 1 (a committed fixture).
    let v1 = std::fs::read(fixture("v1/chain-ok-v1.utr")).unwrap();
    let data_start = data_start_of(&v1);
    let mut bad_type = v1.clone();
    bad_type[data_start] = 0x77;
    let e = read(&bad_type).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("corrupt record at offset {data_start}: unknown record type 119")
    );
    check_flips(&v1);
}

#[test]
fn dump_names_the_offset_of_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.utr");
    let mut bytes = write(&events(5), true);
    let data_start = data_start_of(&bytes);
    bytes[data_start] = 0xff;
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

#[test]
fn a_nop_storm_costs_at_most_16_bytes_per_event() {
    let evs = nop_storm(2000);
    let bytes = write(&evs, false);
    let (got, _, _) = read(&bytes).unwrap();
    assert_eq!(got, evs);
    let data = bytes.len() - data_start_of(&bytes);
    eprintln!("{:.2} bytes per event", data as f64 / evs.len() as f64);
    assert!(
        data <= 16 * evs.len(),
        "{data} bytes for {} events: {:.2} per event",
        evs.len(),
        data as f64 / evs.len() as f64
    );
}

#[test]
fn the_writer_writes_version_2() {
    let bytes = write(&events(3), true);
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 2);
    let r = Reader::new(Cursor::new(bytes)).unwrap();
    assert_eq!(r.format_version(), 2);
    assert_eq!(r.header().format_version, 2);
}

#[test]
fn unusual_values_round_trip() {
    let mut comm = [0xffu8; 16];
    comm[2] = 0; // bytes after a NUL are kept too
    let max = RawEvent {
        ts_ns: u64::MAX,
        ctx: u64::MAX,
        req: u64::MAX,
        user_data: u64::MAX,
        aux: u64::MAX,
        aux2: 1 << 63,
        pid: u32::MAX,
        tgid: u32::MAX,
        res: i32::MIN,
        cflags: u32::MAX,
        args: [u32::MAX; 4],
        kind: u16::MAX,
        cpu: u16::MAX,
        opcode: u8::MAX,
        role: u8::MAX,
        _pad: [0xff; 2],
        comm,
    };
    let evs = vec![
        RawEvent::default(),
        max,
        RawEvent { kind: 0xf0, ..max },
        RawEvent::default(),
        RawEvent { ts_ns: 0, ..max },
        max,
    ];
    let (got, status, _) = read(&write(&evs, true)).unwrap();
    assert_eq!(got, evs);
    assert_eq!(status, ReadStatus::Complete);
}

/// The committed version-1 recordings: each reads, and re-encodes to version 2 event
/// for event.
#[test]
fn version_1_fixtures_read_and_re_encode_losslessly() {
    fn utr_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                utr_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "utr") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    utr_files(&fixture(""), &mut files);
    assert!(files.len() >= 20, "{files:?}");
    let (mut v1_bytes, mut v2_bytes, mut n) = (0, 0, 0);
    let mut v1_files = 0;
    for path in &files {
        let mut r = Reader::open(path).unwrap();
        // Fixtures re-recorded since are in the current format (read by every replay
        // test); this one is about the v1 ones.
        if r.format_version() != 1 {
            continue;
        }
        v1_files += 1;
        let mut evs = Vec::new();
        while let Some(e) = r.next_event().unwrap() {
            evs.push(e);
        }
        let header = r.header().clone();
        let drops = r.drops().clone();
        let status = r.status().clone();
        let v1 = std::fs::read(path).unwrap();

        let mut w = Writer::new(Cursor::new(Vec::new()), header.clone()).unwrap();
        for e in &evs {
            w.write_event(e).unwrap();
        }
        let v2 = if status == ReadStatus::Complete {
            w.finish(drops.clone()).unwrap().into_inner()
        } else {
            w.abandon().unwrap().into_inner()
        };
        let mut r2 = Reader::new(Cursor::new(&v2[..])).unwrap();
        assert_eq!(r2.format_version(), 2);
        let mut got = Vec::new();
        while let Some(e) = r2.next_event().unwrap() {
            got.push(e);
        }
        assert_eq!(got, evs, "{}", path.display());
        assert_eq!(r2.status(), &status, "{}", path.display());
        assert_eq!(r2.drops(), &drops, "{}", path.display());
        v1_bytes += v1.len() - data_start_of(&v1);
        v2_bytes += v2.len() - data_start_of(&v2);
        n += evs.len();
    }
    eprintln!(
        "{} fixtures, {n} events: version 1 {:.1} bytes/event, version 2 {:.1}",
        files.len(),
        v1_bytes as f64 / n as f64,
        v2_bytes as f64 / n as f64
    );
    assert!(v2_bytes * 2 < v1_bytes);
    assert!(v1_files >= 1, "{v1_files} v1 fixtures");
}

/// Random garbage after a valid header, and random multi-byte damage to a valid
/// recording: reads end in Ok or a named error, never a panic or a runaway allocation.
#[test]
fn garbage_records_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let good = write(&nop_storm(10), true);
    let data_start = data_start_of(&good);
    for round in 0..2000u32 {
        let mut b = good.clone();
        if round.is_multiple_of(2) {
            for x in &mut b[data_start..] {
                *x = next() as u8;
            }
        } else {
            for _ in 0..1 + next() % 8 {
                let i = data_start + (next() as usize) % (b.len() - data_start);
                b[i] = next() as u8;
            }
        }
        match read(&b) {
            Ok(_) => {}
            Err(e) => assert!(e.to_string().contains("offset"), "{e}"),
        }
    }
}
