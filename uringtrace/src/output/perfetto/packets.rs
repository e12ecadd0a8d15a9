//! Perfetto packets, built with the official protos (`perfetto_protos`) and written as
//! a `Trace` (`repeated TracePacket packet = 1`) one packet at a time, so a trace of
//! any length streams. Event names, debug annotation names and the common string
//! values (results, IOSQE flags) are interned (`InternedData` on the sequence,
//! `SEQ_INCREMENTAL_STATE_CLEARED` on its first packet): a NOP's slice is then a few
//! varints. An [`Event`] holds no heap data, so writing one allocates nothing.

use std::borrow::Cow;
use std::collections::HashMap as StdHashMap;

/// foldhash: SipHash was a tenth of an export's time.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
use std::io::Write;

use super::wire::{self, Fields, MissingField};
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
const FLUSH_AT: usize = 1 << 20;
/// Results in -SMALL_RES..=SMALL_RES are interned through an array (errnos, small sizes).
const SMALL_RES: i32 = 4096;
/// Other distinct results interned through a map, at most this many (constant memory);
/// later ones are written inline.
const MAX_BIG_RES: usize = 16384;
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
    fn text(self) -> Cow<'a, str> {
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

const ARG_NAMES: [&str; 17] = [
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

/// An interned id, with the text to declare when it is new.
struct Iid<'a> {
    iid: u64,
    new: Option<Cow<'a, str>>,
}

/// An annotation value as written.
enum Value<'a> {
    Uint(u64),
    Bool(bool),
    Str(Cow<'a, str>),
    Interned(Iid<'a>),
}

/// The sequence's interning state: ids handed out in order of first use.
struct Interner {
    /// [Op, Cancelled, Punt, Cqe][opcode] → iid (0: not yet).
    op_names: [[u32; 256]; 4],
    text_names: HashMap<String, u64>,
    next_name: u64,
    arg_names: [u32; ARG_NAMES.len()],
    next_arg: u64,
    small_res: Vec<u32>,
    big_res: HashMap<i32, u64>,
    sqe_flags: [u32; 256],
    next_str: u64,
}

impl Interner {
    fn new() -> Self {
        Interner {
            op_names: [[0; 256]; 4],
            text_names: HashMap::default(),
            next_name: 1,
            arg_names: [0; ARG_NAMES.len()],
            next_arg: 1,
            small_res: vec![0; 2 * SMALL_RES as usize + 1],
            big_res: HashMap::default(),
            sqe_flags: [0; 256],
            next_str: 1,
        }
    }

    fn name<'a>(&mut self, name: Name<'a>) -> Iid<'a> {
        let slot = match name {
            Name::Op(op) => &mut self.op_names[0][op as usize],
            Name::Cancelled(op) => &mut self.op_names[1][op as usize],
            Name::Punt(op) => &mut self.op_names[2][op as usize],
            Name::Cqe(op) => &mut self.op_names[3][op as usize],
            Name::Text(t) => {
                if let Some(&iid) = self.text_names.get(t) {
                    return Iid { iid, new: None };
                }
                let iid = self.next_name;
                self.next_name += 1;
                self.text_names.insert(t.to_owned(), iid);
                return Iid {
                    iid,
                    new: Some(t.into()),
                };
            }
        };
        if *slot != 0 {
            return Iid {
                iid: (*slot).into(),
                new: None,
            };
        }
        let iid = self.next_name;
        self.next_name += 1;
        *slot = iid as u32;
        Iid {
            iid,
            new: Some(name.text()),
        }
    }

    fn arg_name(&mut self, name: ArgName) -> Iid<'static> {
        let slot = &mut self.arg_names[name as usize];
        if *slot != 0 {
            return Iid {
                iid: (*slot).into(),
                new: None,
            };
        }
        let iid = self.next_arg;
        self.next_arg += 1;
        *slot = iid as u32;
        Iid {
            iid,
            new: Some(name.name().into()),
        }
    }

    fn value<'a>(&mut self, v: Arg<'a>) -> Value<'a> {
        let (slot, text): (&mut u32, fn(u64) -> String) = match v {
            Arg::Uint(v) => return Value::Uint(v),
            Arg::Bool(v) => return Value::Bool(v),
            Arg::Str(s) => return Value::Str(s.into()),
            Arg::SqeFlags(f) => (&mut self.sqe_flags[f as usize], names::sqe_flags),
            Arg::Result(res) => match usize::try_from(res + SMALL_RES) {
                Ok(i) if res <= SMALL_RES => {
                    (&mut self.small_res[i], |r| names::result_name(r as i32))
                }
                _ => return self.big_result(res),
            },
        };
        if *slot != 0 {
            return Value::Interned(Iid {
                iid: (*slot).into(),
                new: None,
            });
        }
        let iid = self.next_str;
        self.next_str += 1;
        *slot = iid as u32;
        let key = match v {
            Arg::SqeFlags(f) => f.into(),
            Arg::Result(res) => res as u32 as u64,
            _ => 0,
        };
        Value::Interned(Iid {
            iid,
            new: Some(text(key).into()),
        })
    }

    fn big_result<'a>(&mut self, res: i32) -> Value<'a> {
        if let Some(&iid) = self.big_res.get(&res) {
            return Value::Interned(Iid { iid, new: None });
        }
        if self.big_res.len() == MAX_BIG_RES {
            return Value::Str(names::result_name(res).into());
        }
        let iid = self.next_str;
        self.next_str += 1;
        self.big_res.insert(res, iid);
        Value::Interned(Iid {
            iid,
            new: Some(names::result_name(res).into()),
        })
    }
}

pub struct PacketWriter<W: Write> {
    sink: W,
    buf: Vec<u8>,
    interner: Interner,
    first: bool,
    pub written: Written,
    fields: Fields,
    /// Scratch for the fast path: one interned entry, and the packet's interned data.
    item: Vec<u8>,
    interned: Vec<u8>,
    /// Tests: write track events with the generated messages instead.
    #[cfg(test)]
    pub generated: bool,
}

impl<W: Write> PacketWriter<W> {
    pub fn new(sink: W) -> Result<Self, MissingField> {
        Ok(PacketWriter {
            sink,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            interner: Interner::new(),
            first: true,
            written: Written::default(),
            fields: Fields::from_descriptors()?,
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
        let flags = self.sequence_flags();
        let f = &self.fields;
        let (buf, item, interned) = (&mut self.buf, &mut self.item, &mut self.interned);
        interned.clear();
        let before = buf.len();
        // Written in place; field order does not matter to a protobuf reader, so the
        // interned data (known only once the names are looked up) comes last.
        let packet = wire::begin(buf, f.trace_packet);
        wire::uint(buf, f.timestamp, ev.ts);
        wire::uint(buf, f.sequence_id, SEQUENCE_ID.into());
        wire::uint(buf, f.sequence_flags, flags.into());
        let te = wire::begin(buf, f.track_event);
        wire::uint(buf, f.te_type, ev.kind as u64);
        wire::uint(buf, f.te_track_uuid, ev.track);
        if has_name(ev.kind) {
            let name = self.interner.name(ev.name);
            if let Some(text) = &name.new {
                item.clear();
                wire::uint(item, f.name_iid, name.iid);
                wire::bytes(item, f.name_name, text.as_bytes());
                wire::bytes(interned, f.id_event_names, item);
            }
            wire::uint(buf, f.te_name_iid, name.iid);
        }
        for &(name, value) in ev.args() {
            let name = self.interner.arg_name(name);
            if let Some(text) = &name.new {
                item.clear();
                wire::uint(item, f.an_iid, name.iid);
                wire::bytes(item, f.an_name, text.as_bytes());
                wire::bytes(interned, f.id_annotation_names, item);
            }
            let ann = wire::begin(buf, f.te_annotations);
            wire::uint(buf, f.da_name_iid, name.iid);
            match self.interner.value(value) {
                Value::Uint(v) => wire::uint(buf, f.da_uint, v),
                Value::Bool(v) => wire::uint(buf, f.da_bool, u64::from(v)),
                Value::Str(v) => wire::bytes(buf, f.da_string, v.as_bytes()),
                Value::Interned(v) => {
                    if let Some(text) = &v.new {
                        item.clear();
                        wire::uint(item, f.is_iid, v.iid);
                        wire::bytes(item, f.is_str, text.as_bytes());
                        wire::bytes(interned, f.id_string_values, item);
                    }
                    wire::uint(buf, f.da_string_iid, v.iid);
                }
            }
            wire::end(buf, ann);
        }
        for &id in ev.flows() {
            wire::uint(buf, f.te_flow_ids, id);
        }
        if let Some(id) = ev.terminating_flow {
            wire::uint(buf, f.te_terminating_flow_ids, id);
        }
        if let Some(v) = ev.counter {
            // int64: a negative value is its two's complement, ten bytes.
            wire::uint(buf, f.te_counter_value, v as u64);
        }
        wire::end(buf, te);
        if !interned.is_empty() {
            wire::bytes(buf, f.interned_data, interned);
        }
        wire::end(buf, packet);
        self.wrote(before)
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
        let before = self.buf.len();
        {
            let mut os = protobuf::CodedOutputStream::vec(&mut self.buf);
            os.write_message(1, &p).map_err(std::io::Error::other)?;
            os.flush().map_err(std::io::Error::other)?;
        }
        self.wrote(before)
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

    /// Counts the packet written from `before` on and flushes a full buffer.
    #[inline]
    fn wrote(&mut self, before: usize) -> std::io::Result<()> {
        self.written.packets += 1;
        self.written.bytes += (self.buf.len() - before) as u64;
        if self.buf.len() >= FLUSH_AT {
            self.sink.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is buffered and returns the sink.
    pub fn finish(mut self) -> std::io::Result<(W, Written)> {
        self.sink.write_all(&self.buf)?;
        self.sink.flush()?;
        Ok((self.sink, self.written))
    }
}

/// Slice ends and counter values carry no name.
fn has_name(kind: track_event::Type) -> bool {
    kind != track_event::Type::TYPE_SLICE_END && kind != track_event::Type::TYPE_COUNTER
}

#[cfg(test)]
#[path = "packets_tests.rs"]
mod tests;
