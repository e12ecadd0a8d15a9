//! A small reader of kernel BTF (/sys/kernel/btf/vmlinux): struct member offsets and
//! tracepoint prototypes, which is all uringtrace needs to use tp_btf programs
//! without knowing any kernel's layout in advance.
//!
//! Format: include/uapi/linux/btf.h and Documentation/bpf/btf.rst.

use std::collections::HashMap;

use thiserror::Error;

mod plan;
pub use plan::BtfPlan;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("not BTF data (bad magic)")]
    BadMagic,
    #[error("BTF data is truncated at offset {0}")]
    Truncated(usize),
    #[error("unknown BTF kind {kind} at type {id}")]
    UnknownKind { id: u32, kind: u32 },
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Clone, Copy, Debug)]
struct Type {
    name_off: u32,
    info: u32,
    size_or_type: u32,
    /// Byte offset of the kind-specific data that follows the common header.
    extra: usize,
}

impl Type {
    fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }
    fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }
    fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }
}

pub struct Btf {
    data: Vec<u8>,
    str_start: usize,
    str_len: usize,
    /// Index 0 is `void`.
    types: Vec<Type>,
    by_name: HashMap<(u32, String), u32>,
}

/// A struct member found by path: byte offset from the start of the outer struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub offset: u32,
    pub size: u32,
}

/// How deep type references are followed (pointers, arrays, anonymous members):
/// real kernel BTF nests a few levels; corrupt BTF can loop.
const MAX_DEPTH: u32 = 32;

/// Members one lookup may visit: a struct with many anonymous members of its own
/// type (corrupt BTF) would otherwise be searched exponentially long. Real lookups
/// (task_struct, io_kiocb) visit a few hundred. A safety net only: a lookup also
/// searches each type at most once (see [`Lookup`]).
const MAX_MEMBERS_VISITED: u32 = 1 << 16;

/// One member lookup's bounds: the member budget, and the types already searched.
/// A type searched once without the member is searched again for nothing; a type met
/// again inside its own search is a cycle (corrupt BTF: C cannot nest a struct in
/// itself). Skipping both makes a lookup linear in the members of the BTF, where a
/// struct with anonymous members of its own type made it exponential (cut only by the
/// budget: fuzzing spent most of its time there).
struct Lookup {
    budget: u32,
    searched: std::collections::HashSet<u32>,
}

impl Lookup {
    fn new() -> Lookup {
        Lookup {
            budget: MAX_MEMBERS_VISITED,
            searched: std::collections::HashSet::new(),
        }
    }
}

fn u32_at(d: &[u8], off: usize) -> Result<u32, BtfError> {
    match d.get(off..off + 4) {
        Some(&[a, b, c, e]) => Ok(u32::from_le_bytes([a, b, c, e])),
        _ => Err(BtfError::Truncated(off)),
    }
}

impl Btf {
    pub fn from_sys_fs() -> std::io::Result<Btf> {
        let data = std::fs::read("/sys/kernel/btf/vmlinux")?;
        Btf::parse(data).map_err(std::io::Error::other)
    }

    /// The raw BTF this was parsed from (aya parses the same bytes for tp_btf loads).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    pub fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        // Little-endian hosts only (x86_64, arm64): magic reads as 0xeb9f.
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != 0xeb9f {
            return Err(BtfError::BadMagic);
        }
        let hdr_len = u32_at(&data, 4)? as usize;
        let type_off = u32_at(&data, 8)? as usize;
        let type_len = u32_at(&data, 12)? as usize;
        let str_off = u32_at(&data, 16)? as usize;
        let str_len = u32_at(&data, 20)? as usize;
        let t_start = hdr_len + type_off;
        let t_end = t_start + type_len;
        let str_start = hdr_len + str_off;
        if data.len() < t_end || data.len() < str_start + str_len {
            return Err(BtfError::Truncated(data.len()));
        }
        let mut types = vec![Type {
            name_off: 0,
            info: 0,
            size_or_type: 0,
            extra: 0,
        }];
        let mut pos = t_start;
        while pos < t_end {
            let t = Type {
                name_off: u32_at(&data, pos)?,
                info: u32_at(&data, pos + 4)?,
                size_or_type: u32_at(&data, pos + 8)?,
                extra: pos + 12,
            };
            let vlen = t.vlen();
            let extra_len = match t.kind() {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                kind => {
                    return Err(BtfError::UnknownKind {
                        id: types.len() as u32,
                        kind,
                    })
                }
            };
            pos = t.extra + extra_len;
            // A type's data must end inside the type section: a last type claiming
            // more (a corrupt vlen) was accepted, and every lookup then walked its
            // up to 65,535 absent entries.
            if pos > t_end {
                return Err(BtfError::Truncated(t_end));
            }
            types.push(t);
        }
        let mut btf = Btf {
            data,
            str_start,
            str_len,
            types,
            by_name: HashMap::new(),
        };
        let mut by_name = HashMap::new();
        for (id, t) in btf.types.iter().enumerate().skip(1) {
            if matches!(t.kind(), KIND_STRUCT | KIND_UNION | KIND_TYPEDEF) && t.name_off != 0 {
                by_name
                    .entry((t.kind(), btf.name(t.name_off).to_string()))
                    .or_insert(id as u32);
            }
        }
        btf.by_name = by_name;
        Ok(btf)
    }

    fn name(&self, off: u32) -> &str {
        let start = self.str_start + off as usize;
        let end_max = self.str_start + self.str_len;
        if start >= end_max {
            return "";
        }
        let bytes = &self.data[start..end_max];
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..len]).unwrap_or("")
    }

    /// `name(off) == want`, without scanning the string to its end and checking it is
    /// UTF-8: that made a lookup's cost grow with the length of the strings it
    /// passed, not of `want`.
    fn name_is(&self, off: u32, want: &str) -> bool {
        if want.is_empty() {
            return self.name(off).is_empty();
        }
        let start = self.str_start + off as usize;
        let end_max = self.str_start + self.str_len;
        let Some(bytes) = self.data.get(start.min(end_max)..end_max) else {
            return false;
        };
        bytes.starts_with(want.as_bytes()) && bytes.get(want.len()).is_none_or(|&b| b == 0)
    }

    fn ty(&self, id: u32) -> Option<&Type> {
        self.types.get(id as usize)
    }

    /// Follows typedef/const/volatile/restrict/type_tag to the underlying type.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.ty(id).map(Type::kind) {
                Some(KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG) => {
                    id = self.types[id as usize].size_or_type;
                }
                _ => break,
            }
        }
        id
    }

    fn size_of(&self, id: u32) -> Option<u32> {
        self.size_at_depth(id, 0)
    }

    fn size_at_depth(&self, id: u32, depth: u32) -> Option<u32> {
        // Types may refer to themselves in corrupt BTF (an array of itself).
        if depth > MAX_DEPTH {
            return None;
        }
        let id = self.resolve(id);
        let t = self.ty(id)?;
        match t.kind() {
            KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT => {
                Some(t.size_or_type)
            }
            KIND_PTR => Some(8),
            KIND_ARRAY => {
                let elem = u32_at(&self.data, t.extra).ok()?;
                let n = u32_at(&self.data, t.extra + 8).ok()?;
                self.size_at_depth(elem, depth + 1)?.checked_mul(n)
            }
            _ => None,
        }
    }

    pub fn struct_id(&self, name: &str) -> Option<u32> {
        self.by_name.get(&(KIND_STRUCT, name.to_string())).copied()
    }

    /// Byte offset and size of `path` (e.g. `["cqe", "user_data"]`) inside struct
    /// `name`, looking through anonymous unions and structs as C does. Bitfields
    /// are not supported (None).
    pub fn member(&self, name: &str, path: &[&str]) -> Option<Member> {
        let mut id = self.struct_id(name)?;
        let mut offset = 0u32;
        let mut size = 0u32;
        for part in path {
            let (off, mid) = self.find_member(id, part, 0, &mut Lookup::new())?;
            offset = offset.checked_add(off)?;
            id = mid;
            size = self.size_of(mid)?;
        }
        Some(Member { offset, size })
    }

    /// (byte offset, type id) of a named member, searching anonymous members.
    fn find_member(
        &self,
        id: u32,
        want: &str,
        depth: u32,
        lookup: &mut Lookup,
    ) -> Option<(u32, u32)> {
        // Anonymous members nest a few levels in real BTF; in corrupt BTF a struct
        // can contain itself.
        if depth > MAX_DEPTH {
            return None;
        }
        let id = self.resolve(id);
        let t = *self.ty(id)?;
        if !matches!(t.kind(), KIND_STRUCT | KIND_UNION) || !lookup.searched.insert(id) {
            return None;
        }
        for i in 0..t.vlen() {
            lookup.budget = lookup.budget.checked_sub(1)?;
            let m = t.extra + 12 * i;
            let name_off = u32_at(&self.data, m).ok()?;
            let mtype = u32_at(&self.data, m + 4).ok()?;
            let raw = u32_at(&self.data, m + 8).ok()?;
            let (bit_off, bitfield) = if t.kind_flag() {
                (raw & 0xff_ffff, raw >> 24)
            } else {
                (raw, 0)
            };
            if name_off == 0 {
                if let Some((o, ty)) = self.find_member(mtype, want, depth + 1, lookup) {
                    return Some(((bit_off / 8).checked_add(o)?, ty));
                }
                continue;
            }
            if self.name_is(name_off, want) {
                if bitfield != 0 || bit_off % 8 != 0 {
                    return None;
                }
                return Some((bit_off / 8, mtype));
            }
        }
        None
    }

    /// The value of an enumerator (of any enum, anonymous ones included), by name.
    pub fn enum_value(&self, name: &str) -> Option<i64> {
        self.types.iter().find_map(|t| {
            let (step, wide) = match t.kind() {
                KIND_ENUM => (8, false),
                KIND_ENUM64 => (12, true),
                _ => return None,
            };
            (0..t.vlen()).find_map(|i| {
                let at = t.extra + i * step;
                if !self.name_is(u32_at(&self.data, at).ok()?, name) {
                    return None;
                }
                let lo = u32_at(&self.data, at + 4).ok()?;
                Some(if wide {
                    let hi = u32_at(&self.data, at + 8).ok()?;
                    ((u64::from(hi) << 32) | u64::from(lo)) as i64
                } else {
                    i64::from(lo as i32)
                })
            })
        })
    }

    /// A C-ish name for a type, e.g. `struct io_kiocb *`, `void *`, `int`.
    pub fn type_name(&self, id: u32) -> String {
        self.type_name_at_depth(id, 0)
    }

    fn type_name_at_depth(&self, id: u32, depth: u32) -> String {
        // A pointer to itself (corrupt BTF) would recurse forever.
        if depth > MAX_DEPTH {
            return "?".into();
        }
        let id = self.resolve(id);
        let Some(t) = self.ty(id) else {
            return "?".into();
        };
        match t.kind() {
            0 => "void".into(),
            KIND_PTR => format!("{} *", self.type_name_at_depth(t.size_or_type, depth + 1)),
            KIND_STRUCT => format!("struct {}", self.name(t.name_off)),
            KIND_UNION => format!("union {}", self.name(t.name_off)),
            _ => self.name(t.name_off).to_string(),
        }
    }

    /// Whether a type is a signed integer (or a signed enum): how a classic record's
    /// `format` would mark a field of that type.
    pub fn is_signed(&self, id: u32) -> bool {
        let id = self.resolve(id);
        let Some(t) = self.ty(id) else {
            return false;
        };
        match t.kind() {
            // The encoding byte's BTF_INT_SIGNED bit.
            KIND_INT => u32_at(&self.data, t.extra).is_ok_and(|e| (e >> 24) & 1 == 1),
            KIND_ENUM | KIND_ENUM64 => t.kind_flag(),
            _ => false,
        }
    }

    /// Like [`Btf::member`], with whether the member is signed.
    pub fn member_signed(&self, name: &str, path: &[&str]) -> Option<(Member, bool)> {
        let mut id = self.struct_id(name)?;
        let mut offset = 0u32;
        for part in path {
            let (off, mid) = self.find_member(id, part, 0, &mut Lookup::new())?;
            offset += off;
            id = mid;
        }
        let size = self.size_of(id)?;
        Some((Member { offset, size }, self.is_signed(id)))
    }

    /// A raw tracepoint's arguments with their size and signedness: (type name, size,
    /// signed). None when the kernel has no such tracepoint.
    pub fn tracepoint_params(&self, tp: &str) -> Option<Vec<(String, u32, bool)>> {
        let proto = self.tracepoint_proto(tp)?;
        let mut args = Vec::new();
        for i in 1..proto.vlen() {
            let ptype = u32_at(&self.data, proto.extra + 8 * i + 4).ok()?;
            args.push((
                self.type_name(ptype),
                self.size_of(ptype)?,
                self.is_signed(ptype),
            ));
        }
        Some(args)
    }

    /// Whether the kernel has the tracepoint `tp` (its `btf_trace_<tp>` typedef: every
    /// tracepoint of vmlinux has one). No tracefs needed.
    pub fn has_tracepoint(&self, tp: &str) -> bool {
        self.tracepoint_proto(tp).is_some()
    }

    fn tracepoint_proto(&self, tp: &str) -> Option<Type> {
        let td = *self
            .by_name
            .get(&(KIND_TYPEDEF, format!("btf_trace_{tp}")))?;
        let ptr = self.ty(td)?.size_or_type;
        let proto_id = self.ty(ptr)?.size_or_type;
        let proto = *self.ty(proto_id)?;
        (proto.kind() == KIND_FUNC_PROTO).then_some(proto)
    }

    /// The argument types of a raw tracepoint (`btf_trace_<name>` typedef), without
    /// the leading `void *__data`. None when the kernel has no such tracepoint.
    pub fn tracepoint_args(&self, tp: &str) -> Option<Vec<String>> {
        let td = *self
            .by_name
            .get(&(KIND_TYPEDEF, format!("btf_trace_{tp}")))?;
        let ptr = self.ty(td)?.size_or_type;
        let proto_id = self.ty(ptr)?.size_or_type;
        let proto = *self.ty(proto_id)?;
        if proto.kind() != KIND_FUNC_PROTO {
            return None;
        }
        let mut args = Vec::new();
        for i in 1..proto.vlen() {
            let ptype = u32_at(&self.data, proto.extra + 8 * i + 4).ok()?;
            args.push(self.type_name(ptype));
        }
        Some(args)
    }
}

#[cfg(test)]
mod tests;
