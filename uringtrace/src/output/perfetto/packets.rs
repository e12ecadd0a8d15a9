//! Perfetto packets, built with the official protos (`perfetto_protos`) and written as
//! a `Trace` (`repeated TracePacket packet = 1`) one packet at a time, so a trace of
//! any length streams. Event names, debug annotation names and the common string
//! values (results, IOSQE flags) are interned (`InternedData` on the sequence,
//! `SEQ_INCREMENTAL_STATE_CLEARED` on its first packet): a NOP's slice is then a few
//! varints. An [`Event`] holds no heap data, so writing one allocates nothing.

use std::borrow::Cow;
use std::io::Write;

use super::interner::{Interner, Known, Value};
use super::wire::{self, Fields, MissingField, FIELDS};
use crate::names;

#[cfg(test)]
use perfetto_protos::debug_annotation::{debug_annotation, DebugAnnotation, DebugAnnotationName};
#[cfg(test)]
use perfetto_protos::interned_data::InternedData;
#[cfg(test)]
use perfetto_protos::profile_common::InternedString;
use perfetto_protos::trace_packet::{trace_packet, TracePacket};
use perfetto_protos::track_descriptor::TrackDescriptor;
use perfetto_protos::track_event::track_event;
#[cfg(test)]
use perfetto_protos::track_event::{EventName, TrackEvent};

/// The one packet sequence this writer produces (any nonzero id).
const SEQUENCE_ID: u32 = 1;
/// Buffered bytes before a write to the sink.
const FLUSH_AT: usize = 256 << 10;
/// Room past FLUSH_AT for the packet that crosses it (larger ones grow the buffer).
const ROOM: usize = 64 << 10;
/// A track event's bytes at most, apart from its args and interned data: three nested
/// messages' keys and lengths (packet, track event, interned data), and eleven scalars
/// (timestamp, sequence id and flags, type, track, name, three flows, a terminating
/// flow, a counter).
const PACKET_BOUND: usize = 3 * wire::NESTED + 11 * wire::SCALAR;
/// An arg's bytes apart from a string value: its key and length, name and value.
const ARG_BOUND: usize = wire::NESTED + 2 * wire::SCALAR;
/// The most args an event has (a request slice: user_data, result, flags, fd,
/// chain_position, cancelled_follower, overflowed, cqe_dropped).
pub const MAX_ARGS: usize = 8;

/// An event's name; opcodes' names are interned by number, without formatting.
#[derive(Clone, Copy, Debug)]
pub enum Name<'a> {
    /// The opcode's name: a request slice.
    Op(u8),
    /// `OP (cancelled)`: a chain follower cancelled by a failed member.
    Cancelled(u8),
    /// `io-wq punt OP`.
    Punt(u8),
    /// `CQE OP`: a punted request's completion on its worker.
    Cqe(u8),
    Text(&'a str),
}

impl<'a> Name<'a> {
    pub fn text(self) -> Cow<'a, str> {
        match self {
            Name::Op(op) => names::opcode_name(op),
            Name::Cancelled(op) => format!("{} (cancelled)", names::opcode_name(op)).into(),
            Name::Punt(op) => format!("io-wq punt {}", names::opcode_name(op)).into(),
            Name::Cqe(op) => format!("CQE {}", names::opcode_name(op)).into(),
            Name::Text(t) => t.into(),
        }
    }
}

/// The debug annotation names the export writes, interned by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgName {
    UserData,
    Result,
    Flags,
    Fd,
    ChainPosition,
    CancelledFollower,
    Overflowed,
    CqeDropped,
    MinComplete,
    ToSubmit,
    Ring,
    Dropped,
    Rule,
    Severity,
    Message,
    Occurrences,
    Inconclusive,
}

pub const ARG_NAMES: [&str; 17] = [
    "user_data",
    "result",
    "flags",
    "fd",
    "chain_position",
    "cancelled_follower",
    "overflowed",
    "cqe_dropped",
    "min_complete",
    "to_submit",
    "ring",
    "dropped",
    "rule",
    "severity",
    "message",
    "occurrences",
    "inconclusive",
];

impl ArgName {
    pub fn name(self) -> &'static str {
        ARG_NAMES[self as usize]
    }
}

/// A debug annotation's value.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Uint(u64),
    Bool(bool),
    Str(&'a str),
    /// A CQE result as its errno name or number (interned).
    Result(i32),
    /// IOSQE_* flags by name (interned).
    SqeFlags(u8),
}

/// One track event to write: what the encoder decides, without protobuf types.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    pub ts: u64,
    pub track: u64,
    pub kind: track_event::Type,
    /// Interned; unused for a slice end and a counter.
    pub name: Name<'a>,
    args: [(ArgName, Arg<'a>); MAX_ARGS],
    nargs: usize,
    flows: [u64; 3],
    nflows: usize,
    pub terminating_flow: Option<u64>,
    pub counter: Option<i64>,
}

impl<'a> Event<'a> {
    pub fn new(ts: u64, track: u64, kind: track_event::Type, name: Name<'a>) -> Self {
        Event {
            ts,
            track,
            kind,
            name,
            args: [(ArgName::UserData, Arg::Uint(0)); MAX_ARGS],
            nargs: 0,
            flows: [0; 3],
            nflows: 0,
            terminating_flow: None,
            counter: None,
        }
    }

    pub fn arg(&mut self, name: ArgName, value: Arg<'a>) {
        debug_assert!(self.nargs < MAX_ARGS, "raise MAX_ARGS");
        if let Some(slot) = self.args.get_mut(self.nargs) {
            *slot = (name, value);
            self.nargs += 1;
        }
    }

    pub fn flow(&mut self, id: u64) {
        debug_assert!(
            self.nflows < self.flows.len(),
            "a slice has at most 3 flows"
        );
        if let Some(slot) = self.flows.get_mut(self.nflows) {
            *slot = id;
            self.nflows += 1;
        }
    }

    fn args(&self) -> &[(ArgName, Arg<'a>)] {
        &self.args[..self.nargs]
    }

    fn flows(&self) -> &[u64] {
        &self.flows[..self.nflows]
    }
}

/// Counts of what was written, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub packets: u64,
    pub bytes: u64,
}

pub struct PacketWriter<W: Write> {
    sink: W,
    /// Packets are written at `pos`; the rest is room (zeroed once) for the next one.
    buf: Vec<u8>,
    pos: usize,
    interner: Interner,
    first: bool,
    pub written: Written,
    /// Scratch for the fast path: one interned entry, and the packet's interned data.
    item: Vec<u8>,
    interned: Vec<u8>,
    /// Tests: write track events with the generated messages instead.
    #[cfg(test)]
    pub generated: bool,
}

impl<W: Write> PacketWriter<W> {
    pub fn new(sink: W) -> Result<Self, MissingField> {
        Fields::check()?;
        Ok(PacketWriter {
            sink,
            buf: vec![0; FLUSH_AT + ROOM],
            pos: 0,
            interner: Interner::new(),
            first: true,
            written: Written::default(),
            item: Vec::new(),
            interned: Vec::new(),
            #[cfg(test)]
            generated: false,
        })
    }

    pub fn descriptor(&mut self, desc: TrackDescriptor) -> std::io::Result<()> {
        let mut p = TracePacket::new();
        p.set_track_descriptor(desc);
        self.write(p)
    }

    /// Writes one track event packet with [`wire`], straight into the buffer.
    pub fn event(&mut self, ev: &Event<'_>) -> std::io::Result<()> {
        #[cfg(test)]
        if self.generated {
            return self.event_generated(ev);
        }
        // Room for the packet but its interned data, which is rarely there.
        let mut bound = PACKET_BOUND;
        for (_, value) in ev.args() {
            bound += ARG_BOUND
                + match value {
                    Arg::Str(s) => s.len(),
                    // The text of a result not interned (past MAX_BIG_RES).
                    Arg::Result(_) => 32,
                    _ => 0,
                };
        }
        let at = self.room(bound)?;
        let flags = self.sequence_flags();
        let f = FIELDS;
        let (item, interned) = (&mut self.item, &mut self.interned);
        interned.clear();
        let mut c = wire::Cursor::new(&mut self.buf, at);
        // Field order does not matter to a protobuf reader, so the interned data (known
        // only once the names are looked up) comes last.
        let (packet, te) = begin_track_event(&mut c, ev.ts, flags, ev.kind, ev.track);
        if has_name(ev.kind) {
            let iid = match self.interner.known_name(ev.name) {
                0 => {
                    let name = self.interner.name(ev.name);
                    if let Some(text) = &name.new {
                        item.clear();
                        wire::uint(item, f.name_iid, name.iid);
                        wire::bytes(item, f.name_name, text.as_bytes());
                        wire::bytes(interned, f.id_event_names, item);
                    }
                    name.iid
                }
                iid => iid.into(),
            };
            c.uint(f.te_name_iid, iid);
        }
        for &(name, value) in ev.args() {
            // Known names and values are looked up inline; what is new takes the
            // interner's slower path, which also declares it.
            let name = match self.interner.arg_names[name as usize] {
                0 => {
                    let name = self.interner.arg_name(name);
                    if let Some(text) = &name.new {
                        item.clear();
                        wire::uint(item, f.an_iid, name.iid);
                        wire::bytes(item, f.an_name, text.as_bytes());
                        wire::bytes(interned, f.id_annotation_names, item);
                    }
                    name.iid
                }
                iid => iid.into(),
            };
            let ann = c.begin(f.te_annotations);
            c.uint(f.da_name_iid, name);
            match self.interner.known(value) {
                Known::Uint(v) => c.uint(f.da_uint, v),
                Known::Bool(v) => c.uint(f.da_bool, u64::from(v)),
                Known::Iid(iid) => c.uint(f.da_string_iid, iid),
                Known::No => match self.interner.value(value) {
                    Value::Uint(v) => c.uint(f.da_uint, v),
                    Value::Bool(v) => c.uint(f.da_bool, u64::from(v)),
                    Value::Str(v) => c.bytes(f.da_string, v.as_bytes()),
                    Value::Interned(v) => {
                        if let Some(text) = &v.new {
                            item.clear();
                            wire::uint(item, f.is_iid, v.iid);
                            wire::bytes(item, f.is_str, text.as_bytes());
                            wire::bytes(interned, f.id_string_values, item);
                        }
                        c.uint(f.da_string_iid, v.iid);
                    }
                },
            }
            c.end(ann);
        }
        for &id in ev.flows() {
            c.uint(f.te_flow_ids, id);
        }
        if let Some(id) = ev.terminating_flow {
            c.uint(f.te_terminating_flow_ids, id);
        }
        if let Some(v) = ev.counter {
            // int64: a negative value is its two's complement, ten bytes.
            c.uint(f.te_counter_value, v as u64);
        }
        c.end(te);
        if !interned.is_empty() {
            let need = interned.len() + 2 * wire::NESTED;
            if c.room() < need {
                // Past the bound: the buffer grows (the packet stays where it is).
                let n = c.n;
                self.buf.resize(n + need, 0);
                c = wire::Cursor::new(&mut self.buf, n);
            }
            c.bytes(f.interned_data, interned);
        }
        c.end(packet);
        let end = c.n;
        self.wrote(at, end)
    }

    /// A slice's end: [`Self::event`] for a `TYPE_SLICE_END` without args, flows or
    /// counter, which is half of all packets, without the general path's bounds, name
    /// and args loops.
    pub fn slice_end(&mut self, ts: u64, track: u64) -> std::io::Result<()> {
        #[cfg(test)]
        if self.generated {
            let ev = Event::new(ts, track, track_event::Type::TYPE_SLICE_END, Name::Text(""));
            return self.event_generated(&ev);
        }
        let at = self.room(PACKET_BOUND)?;
        let flags = self.sequence_flags();
        let mut c = wire::Cursor::new(&mut self.buf, at);
        let (packet, te) =
            begin_track_event(&mut c, ts, flags, track_event::Type::TYPE_SLICE_END, track);
        c.end(te);
        c.end(packet);
        let end = c.n;
        self.wrote(at, end)
    }

    /// The generated-message encoding of [`Self::event`], which the fast path must match.
    #[cfg(test)]
    pub fn event_generated(&mut self, ev: &Event<'_>) -> std::io::Result<()> {
        let mut interned = InternedData::new();
        let mut te = TrackEvent::new();
        te.set_type(ev.kind);
        te.set_track_uuid(ev.track);
        if has_name(ev.kind) {
            let name = self.interner.name(ev.name);
            if let Some(text) = name.new {
                let mut n = EventName::new();
                n.set_iid(name.iid);
                n.set_name(text.into_owned());
                interned.event_names.push(n);
            }
            te.set_name_iid(name.iid);
        }
        for &(name, value) in ev.args() {
            let name = self.interner.arg_name(name);
            if let Some(text) = name.new {
                let mut n = DebugAnnotationName::new();
                n.set_iid(name.iid);
                n.set_name(text.into_owned());
                interned.debug_annotation_names.push(n);
            }
            let mut a = DebugAnnotation::new();
            a.name_field = Some(debug_annotation::Name_field::NameIid(name.iid));
            a.value = Some(match self.interner.value(value) {
                Value::Uint(v) => debug_annotation::Value::UintValue(v),
                Value::Str(v) => debug_annotation::Value::StringValue(v.into_owned()),
                Value::Bool(v) => debug_annotation::Value::BoolValue(v),
                Value::Interned(v) => {
                    if let Some(text) = v.new {
                        let mut s = InternedString::new();
                        s.set_iid(v.iid);
                        s.set_str(text.into_owned().into_bytes());
                        interned.debug_annotation_string_values.push(s);
                    }
                    debug_annotation::Value::StringValueIid(v.iid)
                }
            });
            te.debug_annotations.push(a);
        }
        te.flow_ids = ev.flows().to_vec();
        te.terminating_flow_ids = ev.terminating_flow.into_iter().collect();
        if let Some(v) = ev.counter {
            te.set_counter_value(v);
        }
        let mut p = TracePacket::new();
        p.timestamp = Some(ev.ts);
        if interned != InternedData::new() {
            p.interned_data = protobuf::MessageField::some(interned);
        }
        p.set_track_event(te);
        self.write(p)
    }

    fn write(&mut self, mut p: TracePacket) -> std::io::Result<()> {
        p.optional_trusted_packet_sequence_id = Some(
            trace_packet::Optional_trusted_packet_sequence_id::TrustedPacketSequenceId(SEQUENCE_ID),
        );
        p.sequence_flags = Some(self.sequence_flags());
        self.item.clear();
        {
            let mut os = protobuf::CodedOutputStream::vec(&mut self.item);
            os.write_message(1, &p).map_err(std::io::Error::other)?;
            os.flush().map_err(std::io::Error::other)?;
        }
        let at = self.room(self.item.len())?;
        let end = at + self.item.len();
        self.buf[at..end].copy_from_slice(&self.item);
        self.wrote(at, end)
    }

    /// The first packet clears the sequence's interning state; all need it.
    fn sequence_flags(&mut self) -> u32 {
        if self.first {
            self.first = false;
            trace_packet::SequenceFlags::SEQ_INCREMENTAL_STATE_CLEARED as u32
                | trace_packet::SequenceFlags::SEQ_NEEDS_INCREMENTAL_STATE as u32
        } else {
            trace_packet::SequenceFlags::SEQ_NEEDS_INCREMENTAL_STATE as u32
        }
    }

    /// Where a packet of at most `bound` bytes goes: the buffer's end, after writing out
    /// what it holds when there is not room enough.
    #[inline]
    fn room(&mut self, bound: usize) -> std::io::Result<usize> {
        if self.pos + bound > self.buf.len() {
            self.flush_buf()?;
            if bound > self.buf.len() {
                self.buf.resize(bound, 0);
            }
        }
        Ok(self.pos)
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.sink.write_all(&self.buf[..self.pos])?;
        self.pos = 0;
        Ok(())
    }

    /// Counts the packet written at `at..end` and flushes a full buffer.
    #[inline]
    fn wrote(&mut self, at: usize, end: usize) -> std::io::Result<()> {
        self.written.packets += 1;
        self.written.bytes += (end - at) as u64;
        self.pos = end;
        if self.pos >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Writes what is buffered and returns the sink.
    pub fn finish(mut self) -> std::io::Result<(W, Written)> {
        self.flush_buf()?;
        self.sink.flush()?;
        Ok((self.sink, self.written))
    }
}

/// Starts a track event packet: its timestamp, sequence, type and track; returns the
/// starts of the packet and of the track event, for [`wire::Cursor::end`].
#[inline(always)]
fn begin_track_event(
    c: &mut wire::Cursor<'_>,
    ts: u64,
    sequence_flags: u32,
    kind: track_event::Type,
    track: u64,
) -> (usize, usize) {
    let f = FIELDS;
    let packet = c.begin(f.trace_packet);
    c.uint(f.timestamp, ts);
    c.uint(f.sequence_id, SEQUENCE_ID.into());
    c.uint(f.sequence_flags, sequence_flags.into());
    let te = c.begin(f.track_event);
    c.uint(f.te_type, kind as u64);
    c.uint(f.te_track_uuid, track);
    (packet, te)
}

/// Slice ends and counter values carry no name.
fn has_name(kind: track_event::Type) -> bool {
    kind != track_event::Type::TYPE_SLICE_END && kind != track_event::Type::TYPE_COUNTER
}

mod request_begin;
pub use request_begin::RequestBegin;

#[cfg(test)]
#[path = "packets_tests.rs"]
mod tests;
