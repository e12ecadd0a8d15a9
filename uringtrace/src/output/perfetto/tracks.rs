//! Which tracks exist and their descriptors: a process track per tgid, a thread track per
//! tid (application threads, `iou-sqp-*`, `iou-wrk-*`), a track group per ring under its
//! process with one lane per request in flight at once (Perfetto slices on one track must
//! nest, and requests overlap), and counter tracks per ring.

use std::collections::HashMap as StdHashMap;

/// foldhash: SipHash was a tenth of an export's time.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
use std::io::Write;

use perfetto_protos::counter_descriptor::CounterDescriptor;
use perfetto_protos::process_descriptor::ProcessDescriptor;
use perfetto_protos::thread_descriptor::ThreadDescriptor;
use perfetto_protos::track_descriptor::{track_descriptor, TrackDescriptor};

use super::packets::PacketWriter;

/// A stable 64-bit uuid for (what, id, sub): the track kinds never collide by `what`.
pub fn uuid(what: u64, id: u64, sub: u64) -> u64 {
    // splitmix64 over the three parts.
    let mut z = what
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(id)
        .rotate_left(17)
        ^ sub.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

const PROCESS: u64 = 1;
const THREAD: u64 = 2;
const RING: u64 = 3;
const LANE: u64 = 4;
const COUNTER: u64 = 5;
const GLOBAL: u64 = 6;

/// The ring state counters, in the order of [`Counter::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    InFlight,
    CqReady,
    SqPending,
}

impl Counter {
    pub const ALL: [Counter; 3] = [Counter::InFlight, Counter::CqReady, Counter::SqPending];
    pub fn name(self) -> &'static str {
        match self {
            Counter::InFlight => "in flight",
            Counter::CqReady => "CQ ready",
            Counter::SqPending => "SQ pending",
        }
    }
}

struct RingTracks {
    /// Lanes: true while a request occupies it.
    lanes: Vec<bool>,
}

#[derive(Default)]
pub struct Tracks {
    processes: HashMap<u32, String>,
    threads: HashMap<u32, String>,
    rings: HashMap<u64, RingTracks>,
    lost_track: bool,
    findings_track: bool,
}

pub fn process_uuid(tgid: u32) -> u64 {
    uuid(PROCESS, tgid as u64, 0)
}
pub fn thread_uuid(tid: u32) -> u64 {
    uuid(THREAD, tid as u64, 0)
}
pub fn ring_uuid(ctx: u64) -> u64 {
    uuid(RING, ctx, 0)
}
pub fn lane_uuid(ctx: u64, lane: usize) -> u64 {
    uuid(LANE, ctx, lane as u64)
}
pub fn counter_uuid(ctx: u64, c: Counter) -> u64 {
    uuid(COUNTER, ctx, c as u64)
}
pub fn lost_uuid() -> u64 {
    uuid(GLOBAL, 0, 1)
}

fn named(uuid: u64, name: String) -> TrackDescriptor {
    let mut d = TrackDescriptor::new();
    d.set_uuid(uuid);
    d.static_or_dynamic_name = Some(track_descriptor::Static_or_dynamic_name::Name(name));
    d
}

impl Tracks {
    /// Declares the process and thread tracks of an event's task when new (or renamed).
    pub fn task<W: Write>(
        &mut self,
        out: &mut PacketWriter<W>,
        tgid: u32,
        tid: u32,
        comm: &str,
    ) -> std::io::Result<()> {
        if tgid == 0 {
            return Ok(());
        }
        let pname = if tid == tgid { comm } else { "" };
        let known = self.processes.get(&tgid);
        if known.is_none() || (known.is_some_and(|n| n.is_empty()) && !pname.is_empty()) {
            self.processes.insert(tgid, pname.to_owned());
            let mut p = ProcessDescriptor::new();
            p.set_pid(tgid as i32);
            if !pname.is_empty() {
                p.set_process_name(pname.to_owned());
            }
            let mut d = TrackDescriptor::new();
            d.set_uuid(process_uuid(tgid));
            d.process = protobuf::MessageField::some(p);
            out.descriptor(d)?;
        }
        if self
            .threads
            .get(&tid)
            .is_none_or(|n| n != comm && !comm.is_empty())
        {
            self.threads.insert(tid, comm.to_owned());
            let mut t = ThreadDescriptor::new();
            t.set_pid(tgid as i32);
            t.set_tid(tid as i32);
            if !comm.is_empty() {
                t.set_thread_name(comm.to_owned());
            }
            let mut d = TrackDescriptor::new();
            d.set_uuid(thread_uuid(tid));
            d.set_parent_uuid(process_uuid(tgid));
            d.thread = protobuf::MessageField::some(t);
            out.descriptor(d)?;
        }
        Ok(())
    }

    /// Declares a ring's track group (under its process) and its counters when new.
    pub fn ring<W: Write>(
        &mut self,
        out: &mut PacketWriter<W>,
        ctx: u64,
        tgid: u32,
    ) -> std::io::Result<()> {
        if self.rings.contains_key(&ctx) {
            return Ok(());
        }
        self.rings.insert(ctx, RingTracks { lanes: Vec::new() });
        let mut d = named(ring_uuid(ctx), format!("io_uring {ctx:#x}"));
        if tgid != 0 {
            d.set_parent_uuid(process_uuid(tgid));
        }
        d.child_ordering = Some(protobuf::EnumOrUnknown::new(
            track_descriptor::ChildTracksOrdering::EXPLICIT,
        ));
        out.descriptor(d)?;
        for (rank, c) in Counter::ALL.into_iter().enumerate() {
            let mut d = named(counter_uuid(ctx, c), format!("{} {ctx:#x}", c.name()));
            d.set_parent_uuid(ring_uuid(ctx));
            d.set_sibling_order_rank(rank as i32);
            d.counter = protobuf::MessageField::some(CounterDescriptor::new());
            out.descriptor(d)?;
        }
        Ok(())
    }

    /// Takes the lowest free lane of a ring (declaring it when new).
    pub fn take_lane<W: Write>(
        &mut self,
        out: &mut PacketWriter<W>,
        ctx: u64,
    ) -> std::io::Result<usize> {
        let Some(r) = self.rings.get_mut(&ctx) else {
            return Ok(0);
        };
        if let Some(i) = r.lanes.iter().position(|busy| !busy) {
            r.lanes[i] = true;
            return Ok(i);
        }
        r.lanes.push(true);
        let lane = r.lanes.len() - 1;
        let mut d = named(lane_uuid(ctx, lane), format!("requests #{lane}"));
        d.set_parent_uuid(ring_uuid(ctx));
        d.set_sibling_order_rank(Counter::ALL.len() as i32 + lane as i32);
        out.descriptor(d)?;
        Ok(lane)
    }

    pub fn free_lane(&mut self, ctx: u64, lane: usize) {
        if let Some(slot) = self.rings.get_mut(&ctx).and_then(|r| r.lanes.get_mut(lane)) {
            *slot = false;
        }
    }

    /// The lost-events counter track, declared once.
    pub fn lost<W: Write>(&mut self, out: &mut PacketWriter<W>) -> std::io::Result<u64> {
        if !self.lost_track {
            self.lost_track = true;
            let mut d = named(lost_uuid(), "lost events".into());
            d.counter = protobuf::MessageField::some(CounterDescriptor::new());
            out.descriptor(d)?;
        }
        Ok(lost_uuid())
    }

    /// The track of findings about no one ring or process, declared once.
    pub fn findings<W: Write>(&mut self, out: &mut PacketWriter<W>) -> std::io::Result<u64> {
        let id = uuid(GLOBAL, 0, 2);
        if !self.findings_track {
            self.findings_track = true;
            out.descriptor(named(id, "findings".into()))?;
        }
        Ok(id)
    }

    pub fn lanes(&self, ctx: u64) -> usize {
        self.rings.get(&ctx).map_or(0, |r| r.lanes.len())
    }
}
