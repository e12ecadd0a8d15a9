//! Perfetto packets, built with the official protos (`perfetto_protos`) and written as
//! a `Trace` (`repeated TracePacket packet = 1`) one packet at a time, so a trace of
//! any length streams. Event names and debug annotation names are interned
//! (`InternedData` on the sequence, `SEQ_INCREMENTAL_STATE_CLEARED` on its first packet).

use std::collections::HashMap as StdHashMap;

/// foldhash: SipHash was a tenth of an export's time.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
use std::io::Write;

use super::wire::{self, Fields, MissingField};

#[cfg(test)]
use perfetto_protos::debug_annotation::{debug_annotation, DebugAnnotation, DebugAnnotationName};
#[cfg(test)]
use perfetto_protos::interned_data::InternedData;
use perfetto_protos::trace_packet::{trace_packet, TracePacket};
use perfetto_protos::track_descriptor::TrackDescriptor;
use perfetto_protos::track_event::track_event;
#[cfg(test)]
use perfetto_protos::track_event::{EventName, TrackEvent};

/// The one packet sequence this writer produces (any nonzero id).
const SEQUENCE_ID: u32 = 1;
/// Buffered bytes before a write to the sink.
const FLUSH_AT: usize = 1 << 20;

/// A debug annotation's value.
pub enum Arg {
    Uint(u64),
    Str(String),
    Bool(bool),
}

/// One track event to write: what the encoder decides, without protobuf types.
pub struct Event<'a> {
    pub ts: u64,
    pub track: u64,
    pub kind: track_event::Type,
    /// Interned; unused for a slice end.
    pub name: &'a str,
    pub args: Vec<(&'static str, Arg)>,
    pub flows: Vec<u64>,
    pub terminating_flows: Vec<u64>,
    pub counter: Option<i64>,
}

impl<'a> Event<'a> {
    pub fn new(ts: u64, track: u64, kind: track_event::Type, name: &'a str) -> Self {
        Event {
            ts,
            track,
            kind,
            name,
            args: Vec::new(),
            flows: Vec::new(),
            terminating_flows: Vec::new(),
            counter: None,
        }
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
    buf: Vec<u8>,
    names: HashMap<String, u64>,
    arg_names: HashMap<&'static str, u64>,
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
            names: HashMap::default(),
            arg_names: HashMap::default(),
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
    pub fn event(&mut self, ev: Event<'_>) -> std::io::Result<()> {
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
        if ev.kind != track_event::Type::TYPE_SLICE_END
            && ev.kind != track_event::Type::TYPE_COUNTER
        {
            let iid = match self.names.get(ev.name) {
                Some(&iid) => iid,
                None => {
                    let next = self.names.len() as u64 + 1;
                    self.names.insert(ev.name.to_owned(), next);
                    item.clear();
                    wire::uint(item, f.name_iid, next);
                    wire::bytes(item, f.name_name, ev.name.as_bytes());
                    wire::bytes(interned, f.id_event_names, item);
                    next
                }
            };
            wire::uint(buf, f.te_name_iid, iid);
        }
        for (name, value) in &ev.args {
            let iid = match self.arg_names.get(name) {
                Some(&iid) => iid,
                None => {
                    let next = self.arg_names.len() as u64 + 1;
                    self.arg_names.insert(name, next);
                    item.clear();
                    wire::uint(item, f.an_iid, next);
                    wire::bytes(item, f.an_name, name.as_bytes());
                    wire::bytes(interned, f.id_annotation_names, item);
                    next
                }
            };
            let ann = wire::begin(buf, f.te_annotations);
            wire::uint(buf, f.da_name_iid, iid);
            match value {
                Arg::Uint(v) => wire::uint(buf, f.da_uint, *v),
                Arg::Str(v) => wire::bytes(buf, f.da_string, v.as_bytes()),
                Arg::Bool(v) => wire::uint(buf, f.da_bool, u64::from(*v)),
            }
            wire::end(buf, ann);
        }
        for &id in &ev.flows {
            wire::uint(buf, f.te_flow_ids, id);
        }
        for &id in &ev.terminating_flows {
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
    pub fn event_generated(&mut self, ev: Event<'_>) -> std::io::Result<()> {
        let mut interned = InternedData::new();
        let mut te = TrackEvent::new();
        te.set_type(ev.kind);
        te.set_track_uuid(ev.track);
        if ev.kind != track_event::Type::TYPE_SLICE_END
            && ev.kind != track_event::Type::TYPE_COUNTER
        {
            let next = self.names.len() as u64 + 1;
            let iid = match self.names.get(ev.name) {
                Some(&iid) => iid,
                None => {
                    self.names.insert(ev.name.to_owned(), next);
                    let mut n = EventName::new();
                    n.set_iid(next);
                    n.set_name(ev.name.to_owned());
                    interned.event_names.push(n);
                    next
                }
            };
            te.set_name_iid(iid);
        }
        for (name, value) in ev.args {
            let next = self.arg_names.len() as u64 + 1;
            let iid = *self.arg_names.entry(name).or_insert_with(|| {
                let mut n = DebugAnnotationName::new();
                n.set_iid(next);
                n.set_name(name.to_owned());
                interned.debug_annotation_names.push(n);
                next
            });
            let mut a = DebugAnnotation::new();
            a.name_field = Some(debug_annotation::Name_field::NameIid(iid));
            a.value = Some(match value {
                Arg::Uint(v) => debug_annotation::Value::UintValue(v),
                Arg::Str(v) => debug_annotation::Value::StringValue(v),
                Arg::Bool(v) => debug_annotation::Value::BoolValue(v),
            });
            te.debug_annotations.push(a);
        }
        te.flow_ids = ev.flows;
        te.terminating_flow_ids = ev.terminating_flows;
        if let Some(v) = ev.counter {
            te.set_counter_value(v);
        }
        let mut p = TracePacket::new();
        p.timestamp = Some(ev.ts);
        if !interned.event_names.is_empty() || !interned.debug_annotation_names.is_empty() {
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

#[cfg(test)]
#[path = "packets_tests.rs"]
mod tests;
