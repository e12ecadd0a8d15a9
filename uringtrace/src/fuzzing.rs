//! The fuzz targets' bodies: one function per target, each taking arbitrary bytes and
//! panicking only on a bug. They live in the library, not in `fuzz/`, so that the
//! normal test suite (`tests/fuzz_corpus.rs`) replays every committed corpus input and
//! crash through the very same code, without libFuzzer or a nightly compiler.
//!
//! Besides "no panic", each target checks what must hold for any input: the recording
//! reader gives the same result however its input is split into reads, and an
//! upgrade is lossless or refused; the analyzer stays within its documented memory
//! bounds.

use std::borrow::Cow;
use std::io::{self, Read};

use uringtrace_common::{EventKind, RawEvent};

use crate::analyzer::check::Config;
use crate::analyzer::finding::MAX_EXAMPLE_REQUESTS;
use crate::analyzer::report::Environment;
use crate::analyzer::state::{RECENT_CHAINS, RETIRED_RINGS};
use crate::analyzer::{Analyzer, AnalyzerConfig};
use crate::recording::{self, ReadStatus, Reader, UpgradeError, FORMAT_VERSION_V1, MAGIC};
use crate::trace::btf::{Btf, BtfPlan};
use crate::trace::{catalog, fdinfo, format};

/// A target's body: any bytes in, a panic only on a bug.
pub type Target = fn(&[u8]);

/// The targets, by the name `cargo xtask fuzz --target` takes (and the corpus
/// directory `fuzz/corpus/NAME` holds).
pub const TARGETS: [(&str, Target); 5] = [
    ("recording", recording),
    ("btf", btf),
    ("tracefs_format", tracefs_format),
    ("check_config", check_config),
    ("analyzer", analyzer),
];

/// A minimal valid header (its `format_version` is set per file).
const HEADER_JSON: &str = r#"{"format":"uringtrace-recording","format_version":2,"tool_version":"0","kernel_release":"6.18","host":"h","clock":{"source":"CLOCK_MONOTONIC","start_monotonic_ns":0,"start_realtime_ns":0},"tracepoints":[],"filter":{"pids":[],"command":[],"follow_children":false},"ring_bytes":0,"ncpus":1,"drops":{"per_cpu":[0],"total":0,"emitted":0,"recorded":0},"finished":false}"#;

/// `records` behind a valid preamble and header of format `version`: mutations then
/// go to the records, not to a JSON header that only serde reads.
pub fn with_header(version: u32, records: &[u8]) -> Vec<u8> {
    let json = HEADER_JSON.replace(
        "\"format_version\":2",
        &format!("\"format_version\":{version}"),
    );
    let mut out = Vec::with_capacity(16 + json.len() + records.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(records);
    out
}

/// A reader that hands out at most `step` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Everything reading a file gives: header, events, drops, how it ended, the error.
#[derive(Debug, PartialEq)]
struct ReadOut {
    header: Option<recording::Header>,
    events: Vec<RawEvent>,
    drops: Option<recording::Drops>,
    status: Option<ReadStatus>,
    error: Option<String>,
}

fn read_all(input: impl Read) -> ReadOut {
    let mut r = match Reader::new(input) {
        Ok(r) => r,
        Err(e) => {
            return ReadOut {
                header: None,
                events: Vec::new(),
                drops: None,
                status: None,
                error: Some(e.to_string()),
            }
        }
    };
    let mut events = Vec::new();
    let mut error = None;
    loop {
        match r.next_event() {
            Ok(Some(ev)) => events.push(ev),
            Ok(None) => break,
            Err(e) => {
                error = Some(e.to_string());
                // Once failed, a reader says so and gives nothing more.
                assert_eq!(r.status(), &ReadStatus::Failed);
                assert!(matches!(r.next_event(), Ok(None)));
                break;
            }
        }
    }
    assert_ne!(
        r.status(),
        &ReadStatus::Reading,
        "reading ended while still reading"
    );
    ReadOut {
        header: Some(r.header().clone()),
        events,
        drops: Some(r.drops().clone()),
        status: Some(r.status().clone()),
        error,
    }
}

/// The recording reader, every format version. The first byte chooses the input:
/// 0 the rest is a whole file, 1 or 2 the rest are records of that version behind a
/// valid header. Then: read in one go and in small pieces (the same result), and
/// upgraded to the current version (lossless, or refused as unreadable/truncated).
pub fn recording(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file: Cow<[u8]> = match mode % 3 {
        0 => Cow::Borrowed(rest),
        v => Cow::Owned(with_header(FORMAT_VERSION_V1 - 1 + u32::from(v), rest)),
    };
    let whole = read_all(&file[..]);
    let step = 1 + usize::from(mode / 3) % 300;
    let pieces = read_all(Chunked { data: &file, step });
    assert_eq!(whole, pieces, "reading in {step}-byte pieces differs");
    match recording::upgrade(&file) {
        Ok(new) => {
            let again = read_all(&new[..]);
            assert_eq!(again.events, whole.events);
            assert_eq!(again.status, whole.status);
            // A finished file's event count is what the file holds (see `upgrade`).
            let recorded =
                |d: Option<recording::Drops>| d.map(|d| recording::Drops { recorded: 0, ..d });
            assert_eq!(recorded(again.drops), recorded(whole.drops));
        }
        Err(UpgradeError::Mismatch(what)) => panic!("upgrade is lossy: {what}"),
        Err(UpgradeError::Write(e)) => panic!("upgrade to memory failed: {e}"),
        Err(UpgradeError::Read(_) | UpgradeError::Status(_)) => {
            // Refused only when it does not read to a clean or unfinished end.
            assert!(
                whole.error.is_some()
                    || !matches!(
                        whole.status,
                        Some(ReadStatus::Complete | ReadStatus::Unfinished)
                    )
            );
        }
    }
}

/// Names a kernel BTF has and uringtrace asks for, plus a few from the test blob.
const BTF_NAMES: [&str; 8] = [
    "io_kiocb",
    "io_uring_cqe",
    "io_futex",
    "pt_regs",
    "task_struct",
    "inner",
    "outer",
    "REQ_F_ISREG_BIT",
];

/// The BTF reader: parse, then every query uringtrace makes (and type names of the
/// first types), including the whole tp_btf plan.
pub fn btf(data: &[u8]) {
    let Ok(btf) = Btf::parse(data.to_vec()) else {
        return;
    };
    for id in 0..64 {
        let _ = btf.type_name(id);
    }
    for name in BTF_NAMES {
        let _ = btf.struct_id(name);
        let _ = btf.enum_value(name);
        for path in [
            &["a"][..],
            &["in", "fd"],
            &["cqe", "user_data"],
            &["user_data"],
            &["comm"],
            &["p"],
        ] {
            let _ = btf.member(name, path);
        }
    }
    for tp in [
        "tp",
        "io_uring_complete",
        "io_uring_submit_req",
        "sched_switch",
    ] {
        let _ = btf.tracepoint_args(tp);
    }
    let _ = BtfPlan::from_btf(&btf);
}

/// The tracefs `format` parser, and the layout built from a parsed file for every
/// catalog entry; also the io_uring fdinfo parser (text from /proc, same trust).
pub fn tracefs_format(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = fdinfo::parse_fdinfo(&text);
    let Ok(fmt) = format::parse_format(&text) else {
        return;
    };
    for &kind in EventKind::ALL {
        if let Some(spec) = catalog::spec_for(kind) {
            let layout = catalog::layout_for(spec, &fmt);
            for f in layout.fields {
                assert!(f.size == 0 || matches!(f.size, 1 | 2 | 4 | 8));
            }
        }
    }
}

/// The check's configuration (`uringtrace.toml`), then the config applied to a report.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text) else {
        return;
    };
    let _ = crate::analyzer::check::apply(&config, &crate::analyzer::report::Report::default());
}

/// Bytes to events: byte 0 sets the reorder bound, then each event is a selector byte
/// and either a whole raw event (selector ≥ 0xF0) or a compact one whose fields come
/// from small sets (a few rings, requests, threads), so that events meet each other.
fn events(data: &[u8]) -> impl Iterator<Item = RawEvent> + '_ {
    let mut p = data;
    let mut ts: u64 = 1_000_000_000;
    std::iter::from_fn(move || {
        let (&sel, rest) = p.split_first()?;
        if sel >= 0xF0 {
            let n = rest.len().min(std::mem::size_of::<RawEvent>());
            let mut ev = RawEvent::default();
            // SAFETY: RawEvent is #[repr(C)] plain data (integers and byte arrays, no
            // padding: size asserted in uringtrace-common), so any bytes are a valid
            // value; n is at most its size.
            unsafe {
                std::ptr::copy_nonoverlapping(rest.as_ptr(), (&raw mut ev).cast::<u8>(), n);
            }
            p = &rest[n..];
            return Some(ev);
        }
        const LEN: usize = 16;
        if rest.len() < LEN {
            p = &[];
            return None;
        }
        let (b, tail) = rest.split_at(LEN);
        p = tail;
        let kinds = EventKind::ALL;
        let kind = kinds[usize::from(sel) % kinds.len()];
        // Mostly forward in time, sometimes back (what the reorder window is for),
        // sometimes far.
        let dt = i16::from_le_bytes([b[0], b[1]]);
        ts = match dt {
            i16::MIN => ts.wrapping_add(5_000_000_000),
            d => ts.saturating_add_signed(i64::from(d) * 1_000),
        };
        let small = |x: u8, n: u8| u64::from(x % n);
        let mut comm = [0u8; 16];
        let name: &[u8] = match b[15] % 4 {
            0 => b"app",
            1 => b"iou-wrk-7",
            2 => b"iou-sqp-7",
            _ => b"other",
        };
        comm[..name.len()].copy_from_slice(name);
        Some(RawEvent {
            ts_ns: ts,
            ctx: 0xffff_8880_0000_0000 + 0x1000 * small(b[2], 4),
            req: match b[3] {
                0 => 0,
                x => 0xffff_8881_0000_0000 + 0x100 * small(x, 16),
            },
            user_data: small(b[4], 8),
            aux: match b[5] >> 6 {
                0 => 0xffff_8881_0000_0000 + 0x100 * small(b[5], 16),
                1 => 0xffff_8880_0000_0000 + 0x1000 * small(b[5], 4),
                _ => u64::from(b[5]),
            },
            aux2: u64::from(b[6]) << (b[6] & 0x1f),
            pid: 100 + u32::from(b[7] % 6),
            tgid: 100 + u32::from(b[7] % 6 / 3),
            res: i32::from(b[8] as i8),
            cflags: u32::from(b[9]),
            args: [
                u32::from(b[10]),
                u32::from(b[11]),
                u32::from(b[12] % 4),
                u32::from(b[12] >> 2),
            ],
            kind: kind as u16,
            cpu: u16::from(b[13] % 2),
            opcode: b[14] % 64,
            role: b[15] / 4 % 4,
            _pad: [0; 2],
            comm,
        })
    })
}

/// The analyzer fed any event sequence: no panic, and the documented bounds hold after
/// every event: the reorder window holds at most `reorder_max_events`, a ring keeps at
/// most RECENT_CHAINS finished chains, at most RETIRED_RINGS gone rings are kept, a
/// finding at most MAX_EXAMPLE_REQUESTS example requests; and nothing else grows
/// faster than the events that came in (threads: two per event, as a sched_switch
/// meets two tasks). Byte 0 sets the reorder bound (bits 0-4) and whether the final
/// report is also rendered as text, JSON and markdown (bit 7): rendering took two
/// thirds of the target's time, so it is done for the inputs that ask for it, which
/// the fuzzer keeps as they reach more code.
pub fn analyzer(data: &[u8]) {
    let Some((&bound, rest)) = data.split_first() else {
        return;
    };
    let render = bound & 0x80 != 0;
    let cfg = AnalyzerConfig {
        reorder_max_events: 1 + usize::from(bound % 32),
        ..AnalyzerConfig::default()
    };
    let max_pending = cfg.reorder_max_events;
    let mut a = Analyzer::new(cfg, Environment::default());
    let mut pushed = 0usize;
    for (i, ev) in events(rest).enumerate() {
        a.push(ev);
        pushed += 1;
        assert!(a.pending() <= max_pending, "{} pending", a.pending());
        if i % 64 == 63 {
            check_state_bounds(&a, pushed);
            let _ = a.report();
        }
    }
    check_state_bounds(&a, pushed);
    let report = a.finish();
    for f in &report.findings {
        assert!(f.evidence.requests.len() <= MAX_EXAMPLE_REQUESTS);
    }
    assert!(report.events <= pushed as u64);
    if render {
        let _ = crate::output::text(&report, false);
        let _ = crate::output::json(&report);
        let _ = crate::output::markdown(&report);
    }
}

fn check_state_bounds(a: &Analyzer, pushed: usize) {
    let st = a.state();
    assert!(st.retired.len() <= RETIRED_RINGS);
    for r in st.rings.values().chain(st.retired.iter()) {
        assert!(r.recent_chains.len() <= RECENT_CHAINS);
    }
    assert!(
        st.threads.len() <= 2 * pushed,
        "{} threads after {pushed} events",
        st.threads.len()
    );
    for (what, len) in [
        ("rings", st.rings.len()),
        ("chains", st.chains.len()),
        ("comms", st.comms.len()),
        ("enters", st.enters.len()),
        ("samples", st.samples.len()),
        ("procs", st.procs.len()),
        ("fds", st.fds.len()),
        ("punts", st.punts.len()),
        ("latency", st.latency.len()),
    ] {
        assert!(len <= pushed, "{len} {what} after {pushed} events");
    }
}
