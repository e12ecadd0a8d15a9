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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(u32);

impl Key {
    const fn new(number: u32, wire: u32) -> Self {
        Key(number << 3 | wire)
    }
}

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

/// The keys of every field the fast path writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A field the official definitions lack (only if `perfetto_protos` renamed one), or
/// whose number differs from [`FIELDS`] (protobuf never renumbers a field: a test
/// fails first).
#[derive(Debug, thiserror::Error)]
#[error("perfetto protos: {message}.{field} {what}")]
pub struct MissingField {
    message: String,
    field: &'static str,
    what: &'static str,
}

/// The keys the fast path writes, as constants: a constant key is one or two byte
/// stores where a key read at run time took a load and a varint loop per field.
/// [`Fields::check`] compares them with the official definitions' at startup.
pub const FIELDS: Fields = Fields {
    trace_packet: Key::new(1, LEN),
    timestamp: Key::new(8, VARINT),
    sequence_id: Key::new(10, VARINT),
    sequence_flags: Key::new(13, VARINT),
    interned_data: Key::new(12, LEN),
    track_event: Key::new(11, LEN),
    te_type: Key::new(9, VARINT),
    te_track_uuid: Key::new(11, VARINT),
    te_name_iid: Key::new(10, VARINT),
    te_annotations: Key::new(4, LEN),
    te_flow_ids: Key::new(47, FIXED64),
    te_terminating_flow_ids: Key::new(48, FIXED64),
    te_counter_value: Key::new(30, VARINT),
    da_name_iid: Key::new(1, VARINT),
    da_bool: Key::new(2, VARINT),
    da_uint: Key::new(3, VARINT),
    da_string: Key::new(6, LEN),
    da_string_iid: Key::new(17, VARINT),
    id_event_names: Key::new(2, LEN),
    id_annotation_names: Key::new(3, LEN),
    name_iid: Key::new(1, VARINT),
    name_name: Key::new(2, LEN),
    an_iid: Key::new(1, VARINT),
    an_name: Key::new(2, LEN),
    id_string_values: Key::new(29, LEN),
    is_iid: Key::new(1, VARINT),
    is_str: Key::new(2, LEN),
};

fn key(md: &MessageDescriptor, field: &'static str) -> Result<Key, MissingField> {
    let f = md.field_by_name(field).ok_or_else(|| MissingField {
        message: md.full_name().to_owned(),
        field,
        what: "not found",
    })?;
    let wire = match f.proto().type_() {
        ProtoType::TYPE_FIXED64 | ProtoType::TYPE_SFIXED64 | ProtoType::TYPE_DOUBLE => FIXED64,
        ProtoType::TYPE_STRING | ProtoType::TYPE_BYTES | ProtoType::TYPE_MESSAGE => LEN,
        _ => VARINT,
    };
    Ok(Key((f.number() as u32) << 3 | wire))
}

impl Fields {
    /// [`FIELDS`] when the official definitions agree with it, field by field.
    pub fn check() -> Result<Fields, MissingField> {
        let official = Fields::from_descriptors()?;
        if official == FIELDS {
            return Ok(FIELDS);
        }
        Err(MissingField {
            message: format!("{official:?}"),
            field: "keys",
            what: "differ from the ones compiled in",
        })
    }

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

/// Bytes of `v` as a varint: 7 bits per byte.
#[inline(always)]
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
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
    #[inline(always)]
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
        self.n = end_long(self.b, start, self.n);
    }
}

/// [`Cursor::end`] for a body of 128 bytes or more: moves it to make room for its
/// length; returns the new end. A free function: a cursor passed by reference to a
/// call that is not inlined would live in memory, and every byte written would reload
/// its position.
#[cold]
#[inline(never)]
fn end_long(b: &mut [u8], start: usize, n: usize) -> usize {
    let len = n - start;
    let extra = varint_len(len as u64) - 1;
    b.copy_within(start..n, start + extra);
    let mut at = start - 1;
    let mut v = len as u64;
    while v >= 0x80 {
        b[at] = v as u8 | 0x80;
        at += 1;
        v >>= 7;
    }
    b[at] = v as u8;
    n + extra
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
