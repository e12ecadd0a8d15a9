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

/// A ring's tracks, by index in [`Tracks`]: the index is what requests carry.
pub struct Ring {
    pub uuid: u64,
    pub counters: [u64; 3],
    /// Lane uuids, by lane.
    lanes: Vec<u64>,
    /// Free lanes below `lanes.len()`: a bit per lane.
    free: Vec<u64>,
    /// No free lane in the words before this one.
    free_from: usize,
    /// Requests in flight.
    pub in_flight: u32,
}

/// Tracks by what they show. Uuids are handed out in order of declaration, so they are
/// small varints and the same recording gets the same ones.
#[derive(Default)]
pub struct Tracks {
    next_uuid: u64,
    /// tgid → (name, uuid).
    processes: HashMap<u32, (String, u64)>,
    /// tid → (comm, uuid).
    threads: HashMap<u32, (String, u64)>,
    by_ctx: HashMap<u64, u32>,
    rings: Vec<Ring>,
    /// The ring of the last lookup (most events are on the ring before them).
    last_ring: Option<(u64, u32)>,
    lost_track: Option<u64>,
    findings_track: Option<u64>,
}

fn named(uuid: u64, name: String) -> TrackDescriptor {
    let mut d = TrackDescriptor::new();
    d.set_uuid(uuid);
    d.static_or_dynamic_name = Some(track_descriptor::Static_or_dynamic_name::Name(name));
    d
}

impl Tracks {
    fn uuid(&mut self) -> u64 {
        self.next_uuid += 1;
        self.next_uuid
    }

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
        let process = self.declare_process(out, tgid, pname)?;
        let uuid = match self.threads.get(&tid) {
            Some((n, _)) if n == comm || comm.is_empty() => return Ok(()),
            Some((_, uuid)) => *uuid,
            None => self.uuid(),
        };
        self.threads.insert(tid, (comm.to_owned(), uuid));
        let mut t = ThreadDescriptor::new();
        t.set_pid(tgid as i32);
        t.set_tid(tid as i32);
        if !comm.is_empty() {
            t.set_thread_name(comm.to_owned());
        }
        let mut d = TrackDescriptor::new();
        d.set_uuid(uuid);
        d.set_parent_uuid(process);
        d.thread = protobuf::MessageField::some(t);
        out.descriptor(d)
    }

    /// A process's track, declared when new or when its name becomes known.
    fn declare_process<W: Write>(
        &mut self,
        out: &mut PacketWriter<W>,
        tgid: u32,
        pname: &str,
    ) -> std::io::Result<u64> {
        let uuid = match self.processes.get(&tgid) {
            Some((n, uuid)) if !n.is_empty() || pname.is_empty() => return Ok(*uuid),
            Some((_, uuid)) => *uuid,
            None => self.uuid(),
        };
        self.processes.insert(tgid, (pname.to_owned(), uuid));
        let mut p = ProcessDescriptor::new();
        p.set_pid(tgid as i32);
        if !pname.is_empty() {
            p.set_process_name(pname.to_owned());
        }
        let mut d = TrackDescriptor::new();
        d.set_uuid(uuid);
        d.process = protobuf::MessageField::some(p);
        out.descriptor(d)?;
        Ok(uuid)
    }

    pub fn process<W: Write>(
        &mut self,
        out: &mut PacketWriter<W>,
        tgid: u32,
    ) -> std::io::Result<u64> {
        self.declare_process(out, tgid, "")
    }

    /// A thread's track; one the trace never named is declared bare (no process known).
    pub fn thread<W: Write>(
        &mut self,
        out: &mut PacketWriter<W>,
        tid: u32,
    ) -> std::io::Result<u64> {
        if let Some((_, uuid)) = self.threads.get(&tid) {
            return Ok(*uuid);
        }
        let uuid = self.uuid();
        self.threads.insert(tid, (String::new(), uuid));
        out.descriptor(named(uuid, format!("thread {tid}")))?;
        Ok(uuid)
    }

    /// A ring's index, declaring its track group (under its process) and its counters
    /// when new.
    #[inline]
    pub fn ring<W: Write>(
        &mut self,
        out: &mut PacketWriter<W>,
        ctx: u64,
        tgid: u32,
    ) -> std::io::Result<u32> {
        match self.last_ring {
            Some((c, i)) if c == ctx => Ok(i),
            _ => self.ring_slow(out, ctx, tgid),
        }
    }

    fn ring_slow<W: Write>(
        &mut self,
        out: &mut PacketWriter<W>,
        ctx: u64,
        tgid: u32,
    ) -> std::io::Result<u32> {
        if let Some(&i) = self.by_ctx.get(&ctx) {
            self.last_ring = Some((ctx, i));
            return Ok(i);
        }
        let uuid = self.uuid();
        let mut d = named(uuid, format!("io_uring {ctx:#x}"));
        if tgid != 0 {
            d.set_parent_uuid(self.process(out, tgid)?);
        }
        d.child_ordering = Some(protobuf::EnumOrUnknown::new(
            track_descriptor::ChildTracksOrdering::EXPLICIT,
        ));
        out.descriptor(d)?;
        let mut counters = [0; 3];
        for (rank, c) in Counter::ALL.into_iter().enumerate() {
            counters[rank] = self.uuid();
            let mut d = named(counters[rank], format!("{} {ctx:#x}", c.name()));
            d.set_parent_uuid(uuid);
            d.set_sibling_order_rank(rank as i32);
            d.counter = protobuf::MessageField::some(CounterDescriptor::new());
            out.descriptor(d)?;
        }
        let i = self.rings.len() as u32;
        self.rings.push(Ring {
            uuid,
            counters,
            lanes: Vec::new(),
            free: Vec::new(),
            free_from: 0,
            in_flight: 0,
        });
        self.by_ctx.insert(ctx, i);
        self.last_ring = Some((ctx, i));
        Ok(i)
    }

    /// A ring already declared, by its ctx.
    pub fn known_ring(&self, ctx: u64) -> Option<u32> {
        self.by_ctx.get(&ctx).copied()
    }

    pub fn get(&self, ring: u32) -> &Ring {
        &self.rings[ring as usize]
    }

    pub fn get_mut(&mut self, ring: u32) -> &mut Ring {
        &mut self.rings[ring as usize]
    }

    /// Takes the lowest free lane of a ring (declaring it when new): (lane, its uuid).
    pub fn take_lane<W: Write>(
        &mut self,
        out: &mut PacketWriter<W>,
        ring: u32,
    ) -> std::io::Result<(u32, u64)> {
        let r = &mut self.rings[ring as usize];
        while let Some(word) = r.free.get_mut(r.free_from) {
            if *word != 0 {
                let bit = word.trailing_zeros();
                *word &= !(1u64 << bit);
                let lane = r.free_from as u32 * 64 + bit;
                return Ok((lane, r.lanes[lane as usize]));
            }
            r.free_from += 1;
        }
        let lane = r.lanes.len() as u32;
        let parent = r.uuid;
        let uuid = self.uuid();
        self.rings[ring as usize].lanes.push(uuid);
        let mut d = named(uuid, format!("requests #{lane}"));
        d.set_parent_uuid(parent);
        d.set_sibling_order_rank(Counter::ALL.len() as i32 + lane as i32);
        out.descriptor(d)?;
        Ok((lane, uuid))
    }

    pub fn free_lane(&mut self, ring: u32, lane: u32) {
        let r = &mut self.rings[ring as usize];
        let word = lane as usize / 64;
        if r.free.len() <= word {
            r.free.resize(word + 1, 0);
        }
        r.free[word] |= 1 << (lane % 64);
        r.free_from = r.free_from.min(word);
    }

    pub fn lane_uuid(&self, ring: u32, lane: u32) -> u64 {
        self.rings[ring as usize].lanes[lane as usize]
    }

    /// The lost-events counter track, declared once.
    pub fn lost<W: Write>(&mut self, out: &mut PacketWriter<W>) -> std::io::Result<u64> {
        if let Some(uuid) = self.lost_track {
            return Ok(uuid);
        }
        let uuid = self.uuid();
        self.lost_track = Some(uuid);
        let mut d = named(uuid, "lost events".into());
        d.counter = protobuf::MessageField::some(CounterDescriptor::new());
        out.descriptor(d)?;
        Ok(uuid)
    }

    /// The track of findings about no one ring or process, declared once.
    pub fn findings<W: Write>(&mut self, out: &mut PacketWriter<W>) -> std::io::Result<u64> {
        if let Some(uuid) = self.findings_track {
            return Ok(uuid);
        }
        let uuid = self.uuid();
        self.findings_track = Some(uuid);
        out.descriptor(named(uuid, "findings".into()))?;
        Ok(uuid)
    }

    /// Lanes a ring has had (0: no request was seen on it, or no such ring).
    pub fn lanes(&self, ctx: u64) -> usize {
        self.known_ring(ctx)
            .map_or(0, |i| self.rings[i as usize].lanes.len())
    }
}
