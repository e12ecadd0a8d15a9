//! A minimal protobuf writer for the per-event packets (track events), which are most of
//! an export: building `perfetto_protos` messages for each one (allocations, drops,
//! a size pass then a write pass) cost ten times replay. The field numbers and wire
//! types still come from the official definitions: they are read once from the
//! generated descriptors ([`Fields::from_descriptors`]), and a test checks that these
//! bytes decode to the same `Trace` as the generated messages would write.

use perfetto_protos::debug_annotation::{DebugAnnotation, DebugAnnotationName};
use perfetto_protos::interned_data::InternedData;
use perfetto_protos::profile_common::InternedString;
use perfetto_protos::trace::Trace;
use perfetto_protos::trace_packet::TracePacket;
use perfetto_protos::track_event::{EventName, TrackEvent};
use protobuf::descriptor::field_descriptor_proto::Type as ProtoType;
use protobuf::reflect::MessageDescriptor;
use protobuf::MessageFull;

/// A field's key (number and wire type), pre-encoded as a varint.
#[derive(Clone, Copy, Debug)]
pub struct Key(u32);

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

/// The keys of every field the fast path writes.
#[derive(Debug)]
pub struct Fields {
    pub trace_packet: Key,
    pub timestamp: Key,
    pub sequence_id: Key,
    pub sequence_flags: Key,
    pub interned_data: Key,
    pub track_event: Key,
    pub te_type: Key,
    pub te_track_uuid: Key,
    pub te_name_iid: Key,
    pub te_annotations: Key,
    pub te_flow_ids: Key,
    pub te_terminating_flow_ids: Key,
    pub te_counter_value: Key,
    pub da_name_iid: Key,
    pub da_bool: Key,
    pub da_uint: Key,
    pub da_string: Key,
    pub da_string_iid: Key,
    pub id_event_names: Key,
    pub id_annotation_names: Key,
    pub name_iid: Key,
    pub name_name: Key,
    pub an_iid: Key,
    pub an_name: Key,
    pub id_string_values: Key,
    pub is_iid: Key,
    pub is_str: Key,
}

/// A field the official definitions lack (only if `perfetto_protos` renamed one).
#[derive(Debug, thiserror::Error)]
#[error("perfetto protos: {message}.{field} not found")]
pub struct MissingField {
    message: String,
    field: &'static str,
}

fn key(md: &MessageDescriptor, field: &'static str) -> Result<Key, MissingField> {
    let f = md.field_by_name(field).ok_or_else(|| MissingField {
        message: md.full_name().to_owned(),
        field,
    })?;
    let wire = match f.proto().type_() {
        ProtoType::TYPE_FIXED64 | ProtoType::TYPE_SFIXED64 | ProtoType::TYPE_DOUBLE => FIXED64,
        ProtoType::TYPE_STRING | ProtoType::TYPE_BYTES | ProtoType::TYPE_MESSAGE => LEN,
        _ => VARINT,
    };
    Ok(Key((f.number() as u32) << 3 | wire))
}

impl Fields {
    pub fn from_descriptors() -> Result<Self, MissingField> {
        let trace = Trace::descriptor();
        let tp = TracePacket::descriptor();
        let te = TrackEvent::descriptor();
        let da = DebugAnnotation::descriptor();
        let id = InternedData::descriptor();
        let en = EventName::descriptor();
        let an = DebugAnnotationName::descriptor();
        let is = InternedString::descriptor();
        Ok(Fields {
            trace_packet: key(&trace, "packet")?,
            timestamp: key(&tp, "timestamp")?,
            sequence_id: key(&tp, "trusted_packet_sequence_id")?,
            sequence_flags: key(&tp, "sequence_flags")?,
            interned_data: key(&tp, "interned_data")?,
            track_event: key(&tp, "track_event")?,
            te_type: key(&te, "type")?,
            te_track_uuid: key(&te, "track_uuid")?,
            te_name_iid: key(&te, "name_iid")?,
            te_annotations: key(&te, "debug_annotations")?,
            te_flow_ids: key(&te, "flow_ids")?,
            te_terminating_flow_ids: key(&te, "terminating_flow_ids")?,
            te_counter_value: key(&te, "counter_value")?,
            da_name_iid: key(&da, "name_iid")?,
            da_bool: key(&da, "bool_value")?,
            da_uint: key(&da, "uint_value")?,
            da_string: key(&da, "string_value")?,
            da_string_iid: key(&da, "string_value_iid")?,
            id_event_names: key(&id, "event_names")?,
            id_annotation_names: key(&id, "debug_annotation_names")?,
            name_iid: key(&en, "iid")?,
            name_name: key(&en, "name")?,
            an_iid: key(&an, "iid")?,
            an_name: key(&an, "name")?,
            id_string_values: key(&id, "debug_annotation_string_values")?,
            is_iid: key(&is, "iid")?,
            is_str: key(&is, "str")?,
        })
    }
}

#[inline(always)]
pub fn varint(buf: &mut Vec<u8>, mut v: u64) {
    if v < 0x80 {
        buf.push(v as u8);
        return;
    }
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Bytes of `v` as a varint.
#[inline(always)]
fn varint_len(v: u64) -> usize {
    // 1 + floor(bits / 7), with bits ≥ 1.
    (64 - (v | 1).leading_zeros() as usize + 6) / 7
}

/// Bytes a scalar field takes at most: a key (three bytes for field numbers up to
/// 2^18) and a ten-byte varint; a string's key and length take less.
pub const SCALAR: usize = 13;
/// Bytes a nested message's key and length take at most (a length up to 2^28).
pub const NESTED: usize = 8;

/// A write position in a buffer the caller made long enough for what is written (see
/// the bounds in `PacketWriter::event`). Writing through a slice and a local position
/// keeps both in registers: pushing byte by byte onto a `Vec` reloads its length and
/// pointer after every byte, which was most of the encoder's time.
pub struct Cursor<'a> {
    b: &'a mut [u8],
    pub n: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a mut [u8], n: usize) -> Self {
        Cursor { b, n }
    }

    /// Bytes left after the position.
    pub fn room(&self) -> usize {
        self.b.len() - self.n
    }

    #[inline(always)]
    fn byte(&mut self, x: u8) {
        self.b[self.n] = x;
        self.n += 1;
    }

    #[inline(always)]
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// A scalar field: varint or fixed64, as its key says.
    #[inline(always)]
    pub fn uint(&mut self, k: Key, v: u64) {
        self.varint(k.0.into());
        if k.0 & 7 == FIXED64 {
            self.b[self.n..self.n + 8].copy_from_slice(&v.to_le_bytes());
            self.n += 8;
        } else {
            self.varint(v);
        }
    }

    #[inline(always)]
    pub fn bytes(&mut self, k: Key, v: &[u8]) {
        self.varint(k.0.into());
        self.varint(v.len() as u64);
        self.b[self.n..self.n + v.len()].copy_from_slice(v);
        self.n += v.len();
    }

    /// Starts a nested message written in place: its key and a one-byte length to patch.
    #[inline(always)]
    pub fn begin(&mut self, k: Key) -> usize {
        self.varint(k.0.into());
        self.byte(0);
        self.n
    }

    /// Ends the nested message [`Cursor::begin`] started: patches its length, moving the
    /// body when the length needs more than one byte (rare: packets are about 30 bytes).
    #[inline(always)]
    pub fn end(&mut self, start: usize) {
        let len = self.n - start;
        if len < 0x80 {
            self.b[start - 1] = len as u8;
            return;
        }
        self.end_long(start, len);
    }

    #[cold]
    fn end_long(&mut self, start: usize, len: usize) {
        let extra = varint_len(len as u64) - 1;
        self.b.copy_within(start..self.n, start + extra);
        let mut at = Cursor::new(self.b, start - 1);
        at.varint(len as u64);
        self.n += extra;
    }
}

/// A scalar field: varint or fixed64, as its key says.
#[inline(always)]
pub fn uint(buf: &mut Vec<u8>, k: Key, v: u64) {
    varint(buf, k.0.into());
    if k.0 & 7 == FIXED64 {
        buf.extend_from_slice(&v.to_le_bytes());
    } else {
        varint(buf, v);
    }
}

#[inline(always)]
pub fn bytes(buf: &mut Vec<u8>, k: Key, v: &[u8]) {
    varint(buf, k.0.into());
    varint(buf, v.len() as u64);
    buf.extend_from_slice(v);
}
