//! How full the kernel's maps are, and what the session keeps in userspace: the
//! hidden `--debug-stats FILE` writes one JSON line of it every few seconds, so a long
//! trace (`cargo xtask soak`) can show that nothing piles up as rings and processes
//! come and go.

use std::io::Write as _;
use std::time::{Duration, Instant};

use aya::maps::{HashMap as BpfHashMap, MapData};
use serde::Serialize;
use uringtrace_common::aggregate::RingAgg;

use super::loader::{LoadError, Tracer};
use super::sweep::{process_alive, thread_alive};

/// An aggregation slot in use.
#[derive(Clone, Debug, Serialize)]
pub struct SlotUse {
    pub slot: u32,
    /// The ring, as hex (as in the report's `rings`).
    pub ring: String,
    pub tgid: u32,
    pub submitted: u64,
    pub completed: u64,
}

/// Entries in use in each kernel map that grows with rings, processes and threads.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Occupancy {
    /// RINGS (aggregating mode; empty in streaming mode).
    pub rings: Vec<SlotUse>,
    pub ctxs: usize,
    pub tgids: usize,
    pub iothreads: usize,
    pub overflowed: usize,
    /// INFLIGHT slots holding a request (aggregating mode).
    pub inflight: usize,
    /// Of the entries above, those whose process (IOTHREADS: thread) is gone.
    pub dead: Dead,
}

/// Map entries whose process or thread no longer exists.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Dead {
    pub rings: usize,
    pub ctxs: usize,
    pub tgids: usize,
    pub iothreads: usize,
    pub overflowed: usize,
}

/// Keys of a hash map (a snapshot: the programs may change it meanwhile).
pub(super) fn keys<K: aya::Pod>(tracer: &Tracer, name: &'static str) -> Result<Vec<K>, LoadError> {
    let map = tracer.map(name).ok_or(LoadError::MissingMap(name))?;
    let m: BpfHashMap<&MapData, K, u32> =
        BpfHashMap::try_from(map).map_err(|error| LoadError::Map { name, error })?;
    Ok(m.keys().filter_map(Result::ok).collect())
}

/// Entries of a hash map, as (key, u32 value).
pub(super) fn entries<K: aya::Pod>(
    tracer: &Tracer,
    name: &'static str,
) -> Result<Vec<(K, u32)>, LoadError> {
    let map = tracer.map(name).ok_or(LoadError::MissingMap(name))?;
    let m: BpfHashMap<&MapData, K, u32> =
        BpfHashMap::try_from(map).map_err(|error| LoadError::Map { name, error })?;
    Ok(m.iter().filter_map(Result::ok).collect())
}

impl Occupancy {
    /// Reads the maps. `inflight`: slots in use of the in-flight table, when mapped.
    pub fn read(tracer: &Tracer, inflight: Option<usize>) -> Result<Occupancy, LoadError> {
        let slots = tracer.ring_aggs()?;
        let ctxs = entries::<u64>(tracer, "CTXS")?;
        let tgids = keys::<u32>(tracer, "TGIDS")?;
        let iothreads = entries::<u32>(tracer, "IOTHREADS")?;
        let overflowed = keys::<u32>(tracer, "OVERFLOWED")?;
        let gone = |t: &u32| !process_alive(*t);
        let dead = Dead {
            rings: slots.iter().filter(|(_, r)| gone(&r.tgid)).count(),
            ctxs: ctxs.iter().filter(|(_, t)| gone(t)).count(),
            tgids: tgids.iter().filter(|t| gone(t)).count(),
            iothreads: iothreads
                .iter()
                .filter(|&&(tid, tgid)| !thread_alive(tgid, tid))
                .count(),
            overflowed: overflowed.iter().filter(|t| gone(t)).count(),
        };
        let rings = slots
            .into_iter()
            .map(|(slot, r): (u32, RingAgg)| SlotUse {
                slot,
                ring: format!("{:#x}", r.ctx),
                tgid: r.tgid,
                submitted: r.submitted,
                completed: r.completed,
            })
            .collect();
        Ok(Occupancy {
            rings,
            ctxs: ctxs.len(),
            tgids: tgids.len(),
            iothreads: iothreads.len(),
            overflowed: overflowed.len(),
            inflight: inflight.unwrap_or(0),
            dead,
        })
    }
}

/// What the session itself keeps, by collection.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SessionSizes {
    /// Rings watched to be forgotten once gone.
    pub ring_watch: usize,
    /// Processes whose rings are sampled from fdinfo.
    pub ring_owners: usize,
    /// (process, fd) pairs whose object is known.
    pub fds_known: usize,
    /// (ring, opcode) totals already reported (aggregating mode).
    pub deltas: usize,
}

/// One line of `--debug-stats`.
#[derive(Clone, Debug, Serialize)]
struct Line<'a> {
    /// Seconds since the session started.
    t_s: f64,
    rss_kib: u64,
    /// Events drained from the ring buffer so far (before the analyzer).
    events: u64,
    /// Kernel counters: events emitted, dropped, requests only counted.
    emitted: u64,
    dropped: u64,
    aggregated: u64,
    kernel: &'a Occupancy,
    session: &'a SessionSizes,
}

/// Writes `--debug-stats` lines.
pub struct DebugStats {
    out: std::fs::File,
    last: Option<Instant>,
}

impl DebugStats {
    /// How often a line is written: a soak samples these once a minute, and checks
    /// the map contents right after its workload stops.
    pub const INTERVAL: Duration = Duration::from_secs(2);

    pub fn create(path: &std::path::Path) -> std::io::Result<DebugStats> {
        Ok(DebugStats {
            out: std::fs::File::create(path)?,
            last: None,
        })
    }

    pub fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= Self::INTERVAL)
    }

    pub fn write(
        &mut self,
        tracer: &Tracer,
        elapsed: Duration,
        events: u64,
        inflight: Option<usize>,
        session: &SessionSizes,
    ) -> std::io::Result<()> {
        self.last = Some(Instant::now());
        let kernel = Occupancy::read(tracer, inflight).map_err(std::io::Error::other)?;
        let c = tracer.counters().map_err(std::io::Error::other)?;
        let line = Line {
            t_s: elapsed.as_secs_f64(),
            rss_kib: rss_kib(),
            events,
            emitted: c.total_emitted(),
            dropped: c.total_dropped(),
            aggregated: c.aggregated.iter().sum(),
            kernel: &kernel,
            session,
        };
        let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
        text.push('\n');
        self.out.write_all(text.as_bytes())
    }
}

/// This process's resident memory (VmRSS), in KiB; 0 when unknown.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
