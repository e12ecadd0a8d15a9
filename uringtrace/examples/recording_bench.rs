//! Size and speed of the recording format on a real recording.
//!
//! ```text
//! cargo run --release -p uringtrace --example recording_bench [-- FILE.utr]
//! ```
//! Reads FILE (default /var/tmp/nop1m.utr, 1 M NOPs; any version), re-encodes its
//! events with the current writer (version 2) in memory and into a temporary file,
//! decodes that again, checks every event round-trips, and prints bytes per event
//! and events per second for each step (single thread, best of several runs; rates
//! are per second of this thread's CPU time, so other load on the machine counts
//! less).
//!
//! `-- --decode FILE.utr` only decodes FILE, 10 times (for `perf stat`).
// A developer benchmark: a panic is an acceptable report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use uringtrace::recording::{Drops, Reader, Writer};
use uringtrace_common::RawEvent;

const RUNS: usize = 7;

/// CPU time of this thread.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn best<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..RUNS {
        let t = cpu_time();
        let r = f();
        best = best.min(cpu_time() - t);
        out = Some(r);
    }
    (best, out.expect("RUNS > 0"))
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:6.1} M events/s", n as f64 / d.as_secs_f64() / 1e6)
}

fn data_bytes(bytes: &[u8]) -> usize {
    bytes.len() - 16 - u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize
}

fn decode_only(path: &std::path::Path) {
    let mut n = 0usize;
    let t = Instant::now();
    let cpu = cpu_time();
    for _ in 0..10 {
        let mut r = Reader::open(path).expect("open");
        let mut sum = 0u64;
        while let Some(e) = r.next_event().expect("read") {
            n += 1;
            sum = sum.wrapping_add(e.user_data ^ e.req);
        }
        std::hint::black_box(sum);
    }
    println!(
        "decode {} (wall clock), {} (CPU time)",
        rate(n, t.elapsed()),
        rate(n, cpu_time() - cpu)
    );
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--decode") {
        return decode_only(&PathBuf::from(std::env::args().nth(2).expect("FILE")));
    }
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/var/tmp/nop1m.utr".into()),
    );
    let original = std::fs::read(&path).expect("read recording");
    let (t, (events, header)) = best(|| {
        let mut r = Reader::new(Cursor::new(&original[..])).expect("open");
        let mut evs: Vec<RawEvent> = Vec::with_capacity(1 << 21);
        while let Some(e) = r.next_event().expect("read") {
            evs.push(e);
        }
        (evs, r.header().clone())
    });
    let n = events.len();
    let version = u32::from_le_bytes(original[8..12].try_into().unwrap());
    println!(
        "{}: {n} events, format version {version}: {:.2} bytes/event; decode {}",
        path.display(),
        data_bytes(&original) as f64 / n as f64,
        rate(n, t)
    );

    let (t, v2) = best(|| {
        let mut w =
            Writer::new(Cursor::new(Vec::with_capacity(64 << 20)), header.clone()).expect("writer");
        for e in &events {
            w.write_event(e).expect("write");
        }
        w.finish(Drops::default()).expect("finish").into_inner()
    });
    println!(
        "re-encoded (version 2): {:.2} bytes/event; encode to memory {}",
        data_bytes(&v2) as f64 / n as f64,
        rate(n, t)
    );

    let dir = std::env::temp_dir().join(format!("recording_bench.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("v2.utr");
    let (t, ()) = best(|| {
        let mut w = Writer::create(&file, header.clone()).expect("create");
        for e in &events {
            w.write_event(e).expect("write");
        }
        w.finish(Drops::default()).expect("finish");
    });
    println!("encode to a file         {}", rate(n, t));

    let (t, count) = best(|| {
        let mut r = Reader::new(Cursor::new(&v2[..])).expect("open");
        let mut count = 0usize;
        let mut sum = 0u64;
        while let Some(e) = r.next_event().expect("read") {
            count += 1;
            sum = sum.wrapping_add(e.user_data ^ e.req);
        }
        std::hint::black_box(sum);
        count
    });
    assert_eq!(count, n);
    println!("decode from memory       {}", rate(n, t));

    let (t, ()) = best(|| {
        let mut r = Reader::open(&file).expect("open");
        let mut sum = 0u64;
        while let Some(e) = r.next_event().expect("read") {
            sum = sum.wrapping_add(e.user_data ^ e.req);
        }
        std::hint::black_box(sum);
    });
    println!("decode from the file     {}", rate(n, t));

    let mut r = Reader::open(&file).expect("open");
    for (i, want) in events.iter().enumerate() {
        let got = r.next_event().expect("read").expect("event");
        assert_eq!(&got, want, "event {i}");
    }
    assert!(r.next_event().expect("read").is_none());
    println!("all {n} events round-trip");
    if std::env::var_os("KEEP").is_some() {
        println!("kept {}", file.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
