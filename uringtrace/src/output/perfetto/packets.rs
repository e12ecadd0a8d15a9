//! Perfetto packets, built with the official protos (`perfetto_protos`) and written as
//! a `Trace` (`repeated TracePacket packet = 1`) one packet at a time, so a trace of
//! any length streams. Event names and debug annotation names are interned
//! (`InternedData` on the sequence, `SEQ_INCREMENTAL_STATE_CLEARED` on its first packet).

use std::collections::HashMap as StdHashMap;

/// foldhash: SipHash was a tenth of an export's time.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
use std::io::Write;

use perfetto_protos::debug_annotation::{debug_annotation, DebugAnnotation, DebugAnnotationName};
use perfetto_protos::interned_data::InternedData;
use perfetto_protos::trace_packet::{trace_packet, TracePacket};
use perfetto_protos::track_descriptor::TrackDescriptor;
use perfetto_protos::track_event::{track_event, EventName, TrackEvent};

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
}

impl<W: Write> PacketWriter<W> {
    pub fn new(sink: W) -> Self {
        PacketWriter {
            sink,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            names: HashMap::default(),
            arg_names: HashMap::default(),
            first: true,
            written: Written::default(),
        }
    }

    pub fn descriptor(&mut self, desc: TrackDescriptor) -> std::io::Result<()> {
        let mut p = TracePacket::new();
        p.set_track_descriptor(desc);
        self.write(p)
    }

    pub fn event(&mut self, ev: Event<'_>) -> std::io::Result<()> {
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
        p.sequence_flags = Some(if self.first {
            self.first = false;
            trace_packet::SequenceFlags::SEQ_INCREMENTAL_STATE_CLEARED as u32
                | trace_packet::SequenceFlags::SEQ_NEEDS_INCREMENTAL_STATE as u32
        } else {
            trace_packet::SequenceFlags::SEQ_NEEDS_INCREMENTAL_STATE as u32
        });
        let before = self.buf.len();
        {
            let mut os = protobuf::CodedOutputStream::vec(&mut self.buf);
            os.write_message(1, &p).map_err(std::io::Error::other)?;
            os.flush().map_err(std::io::Error::other)?;
        }
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
