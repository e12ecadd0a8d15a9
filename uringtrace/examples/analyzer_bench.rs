//! The analyzer's own speed, without the recording format, and the reader's apart.
//!
//! ```text
//! cargo run --release --example analyzer_bench                  # 2 M synthetic NOP-storm events
//! cargo run --release --example analyzer_bench -- 100000000     # streamed: peak RSS vs length
//! cargo run --release --example analyzer_bench -- FILE.utr      # read alone, then analyze alone
//! ```
//! Pin it to one core (`taskset -c 1`) for stable numbers.
// A developer benchmark: a panic is an acceptable report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use uringtrace::analyzer::report::Environment;
use uringtrace::analyzer::synthetic::{nop_storm, peak_rss_kib};
use uringtrace::analyzer::{Analyzer, AnalyzerConfig};
use uringtrace::recording::Reader;
use uringtrace_common::RawEvent;

fn rate(n: u64, d: Duration) -> String {
    format!(
        "{n} events in {:.3} s: {:.2} M events/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64() / 1e6
    )
}

fn analyze(events: impl Iterator<Item = RawEvent>) -> (u64, Duration) {
    let t = Instant::now();
    let mut an = Analyzer::new(AnalyzerConfig::default(), Environment::default());
    for ev in events {
        an.push(ev);
    }
    let report = an.finish();
    (report.events, t.elapsed())
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "2000000".into());
    match arg.parse::<u64>() {
        Ok(n) if n > 10_000_000 => {
            // Streamed: nothing but the analyzer holds events, so the peak RSS is its.
            let (m, d) = analyze(nop_storm(n));
            println!("analyze (streamed): {}", rate(m, d));
        }
        Ok(n) => {
            let events: Vec<RawEvent> = nop_storm(n).collect();
            let (m, d) = analyze(events.into_iter());
            println!("analyze (in memory): {}", rate(m, d));
        }
        Err(_) => {
            let read = |each: &mut dyn FnMut(RawEvent)| {
                let mut reader = Reader::open(arg.as_ref()).expect("open the recording");
                while let Some(ev) = reader.next_event().expect("read the recording") {
                    each(ev);
                }
            };
            let t = Instant::now();
            let mut n = 0u64;
            let mut sum = 0u64;
            read(&mut |ev| {
                n += 1;
                sum = sum.wrapping_add(ev.ts_ns);
            });
            println!("read alone: {} (checksum {sum:x})", rate(n, t.elapsed()));
            let mut events = Vec::with_capacity(n as usize);
            read(&mut |ev| events.push(ev));
            let (m, d) = analyze(events.into_iter());
            println!("analyze alone: {}", rate(m, d));
        }
    }
    println!("peak RSS: {} KiB", peak_rss_kib());
}
