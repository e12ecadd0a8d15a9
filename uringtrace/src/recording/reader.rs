//! Recording reader: validates everything, never panics, names the offset of any
//! problem. Reads format versions 1 and 2.
//!
//! Records are decoded straight out of a large buffer (no per-record reads or
//! allocations): the buffer is refilled only when fewer than [`LOOKAHEAD`] bytes are
//! left, so a record never has to be decoded twice.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use thiserror::Error;
use uringtrace_common::RawEvent;

use super::codec2::{self, DecErr, LOOKAHEAD, TAG_END, TAG_MAX_KIND, TAG_RING, TAG_TASK};
use super::v1::{self, REC_END};
use super::varint::{self, VarintError};
use super::{Drops, Header, FORMAT_VERSION, FORMAT_VERSION_V1, MAGIC, MAX_PAYLOAD, PREAMBLE_LEN};

#[derive(Debug, Error)]
pub enum RecordingError {
    // Not `source`: the message says the cause, and anyhow's `{:#}` would repeat it.
    #[error("I/O error at offset {offset}: {error}")]
    Io { offset: u64, error: io::Error },
    #[error("not a uringtrace recording (bad magic at offset 0)")]
    NotARecording,
    #[error("recording format version {0} is not supported (this uringtrace reads versions {FORMAT_VERSION_V1} to {FORMAT_VERSION})")]
    Version(u32),
    /// A version this reader does not know yet: the fix is a newer reader, not a
    /// repaired file.
    #[error("made by a newer uringtrace (format v{0}, this one reads up to v{FORMAT_VERSION}): upgrade uringtrace")]
    Newer(u32),
    #[error("file ends at offset {offset}, inside the {what}")]
    TruncatedHeader { offset: u64, what: &'static str },
    #[error("corrupt header at offset {offset}: {reason}")]
    BadHeader { offset: u64, reason: String },
    #[error("corrupt record at offset {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
}

/// How reading ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// Still reading.
    Reading,
    /// Clean end: the end record was read.
    Complete,
    /// The file stops inside a record at this offset (a recording cut short).
    Truncated { offset: u64 },
    /// No end record, but the file ends on a record boundary (killed mid-flight).
    Unfinished,
    /// A corrupt record stopped reading (the error was returned once).
    Failed,
}

/// Initial size of the read buffer: all a short input needs.
const BUF_MIN: usize = 16 << 10;
/// Size the read buffer grows to, doubling each time a read fills it, for a long
/// input; beyond it only for an end record or a version-1 record longer than it (as
/// that record's bytes arrive: a corrupt length in a short file allocates little).
/// Growing, not starting there: short inputs (fuzzing reads millions) are not slowed
/// by zeroing 256 KiB each.
const BUF_LEN: usize = 256 << 10;

/// The input, buffered: `buf[pos..end]` are the unread bytes, `base` is the file
/// offset of `buf[0]`.
struct Input<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    base: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    #[inline(always)]
    fn avail(&self) -> usize {
        self.end - self.pos
    }

    #[inline(always)]
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Makes at least `want` bytes available, unless the input ends first; reads as
    /// much as fits while at it.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.avail() >= want || self.eof {
            return Ok(());
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end < want {
            if self.end == self.buf.len() {
                // A record longer than the buffer: room for more of it (end > 0 here).
                let len = (self.end * 2).min(want.max(BUF_LEN));
                self.buf.resize(len, 0);
            }
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.end == self.buf.len() && self.buf.len() < BUF_LEN {
            // The input had more than the buffer holds: larger reads from now on.
            let len = (self.buf.len() * 2).min(BUF_LEN);
            self.buf.resize(len, 0);
        }
        Ok(())
    }
}

/// Per-version decoding state.
enum Codec {
    V1(v1::State),
    V2(Box<codec2::State>),
}

pub struct Reader<R: Read> {
    input: Input<R>,
    header: Header,
    version: u32,
    codec: Codec,
    status: ReadStatus,
    final_drops: Option<Drops>,
}

impl Reader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let f = File::open(path).map_err(|error| RecordingError::Io { offset: 0, error })?;
        // The reader keeps its own large buffer; reads into it mostly bypass this one.
        Reader::new(BufReader::with_capacity(64 << 10, f))
    }
}

/// Reads as many bytes as available into `buf`; returns how many (short at EOF).
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Outcome of decoding a record header with a length (every version-1 record, the
/// version-2 end record) from the buffer.
enum RecordHead {
    /// (type, header length, payload length)
    Ok(u8, usize, usize),
    Short,
    Bad(String),
}

fn record_head(p: &[u8]) -> RecordHead {
    let Some(&kind) = p.first() else {
        return RecordHead::Short;
    };
    // The length takes at most 9 bytes (a larger one would be rejected below anyway).
    const LEN_MAX_BYTES: usize = 9;
    let field = &p[..p.len().min(1 + LEN_MAX_BYTES)];
    let mut i = 1;
    let len = match varint::get_u64(field, &mut i) {
        Ok(len) => len,
        // The input ends before the length's last possible byte.
        Err(VarintError::Truncated) if p.len() <= LEN_MAX_BYTES => return RecordHead::Short,
        Err(_) => return RecordHead::Bad("record length is not a valid varint".into()),
    };
    if len > MAX_PAYLOAD {
        return RecordHead::Bad(format!(
            "record length {len} exceeds the maximum {MAX_PAYLOAD}"
        ));
    }
    RecordHead::Ok(kind, i, len as usize)
}

impl<R: Read> Reader<R> {
    pub fn new(mut input: R) -> Result<Self, RecordingError> {
        let mut pre = [0u8; PREAMBLE_LEN as usize];
        let n = read_full(&mut input, &mut pre)
            .map_err(|error| RecordingError::Io { offset: 0, error })?;
        if n < 8 || &pre[..8] != MAGIC {
            return Err(RecordingError::NotARecording);
        }
        if n < pre.len() {
            return Err(RecordingError::TruncatedHeader {
                offset: n as u64,
                what: "preamble",
            });
        }
        let version = u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]);
        let codec = match version {
            FORMAT_VERSION_V1 => Codec::V1(v1::State::default()),
            FORMAT_VERSION => Codec::V2(Box::default()),
            v if v > FORMAT_VERSION => return Err(RecordingError::Newer(v)),
            v => return Err(RecordingError::Version(v)),
        };
        let capacity = u32::from_le_bytes([pre[12], pre[13], pre[14], pre[15]]);
        if u64::from(capacity) > MAX_PAYLOAD * 16 {
            return Err(RecordingError::BadHeader {
                offset: 12,
                reason: format!("header length {capacity} is implausible"),
            });
        }
        // Read in steps, so a corrupt length in a short file allocates little.
        // (Not `take().read_to_end()`: its probing costs much more per read, which
        // showed when fuzzing fed the header a few bytes per read.)
        let capacity_len = capacity as usize;
        let mut json = Vec::new();
        while json.len() < capacity_len {
            let start = json.len();
            let step = (capacity_len - start).min(BUF_MIN);
            json.resize(start + step, 0);
            let n =
                read_full(&mut input, &mut json[start..]).map_err(|error| RecordingError::Io {
                    offset: PREAMBLE_LEN,
                    error,
                })?;
            json.truncate(start + n);
            if n < step {
                return Err(RecordingError::TruncatedHeader {
                    offset: PREAMBLE_LEN + json.len() as u64,
                    what: "header",
                });
            }
        }
        let header: Header = serde_json::from_slice(json.trim_ascii_end()).map_err(|e| {
            RecordingError::BadHeader {
                offset: PREAMBLE_LEN,
                reason: e.to_string(),
            }
        })?;
        if header.format != Header::FORMAT {
            return Err(RecordingError::BadHeader {
                offset: PREAMBLE_LEN,
                reason: format!(
                    "format is {:?}, expected {:?}",
                    header.format,
                    Header::FORMAT
                ),
            });
        }
        Ok(Reader {
            input: Input {
                r: input,
                buf: vec![0; BUF_MIN],
                pos: 0,
                end: 0,
                base: PREAMBLE_LEN + u64::from(capacity),
                eof: false,
            },
            header,
            version,
            codec,
            status: ReadStatus::Reading,
            final_drops: None,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file's format version (1 or 2).
    pub fn format_version(&self) -> u32 {
        self.version
    }

    pub fn status(&self) -> &ReadStatus {
        &self.status
    }

    /// Drop counters: from the end record if read, else from the header (which is
    /// only final when `header.finished`).
    pub fn drops(&self) -> &Drops {
        self.final_drops.as_ref().unwrap_or(&self.header.drops)
    }

    /// Offset of the next record.
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    fn corrupt(offset: u64, reason: impl Into<String>) -> RecordingError {
        RecordingError::Corrupt {
            offset,
            reason: reason.into(),
        }
    }

    /// The next event, `Ok(None)` at the end (see [`Reader::status`] for how it ended).
    #[inline]
    pub fn next_event(&mut self) -> Result<Option<RawEvent>, RecordingError> {
        if self.status != ReadStatus::Reading {
            return Ok(None);
        }
        let r = match self.codec {
            Codec::V2(_) => self.read_v2(),
            Codec::V1(_) => self.read_v1(),
        };
        if r.is_err() {
            self.status = ReadStatus::Failed;
        }
        r
    }

    fn io_error(&self, error: io::Error) -> RecordingError {
        RecordingError::Io {
            offset: self.input.offset(),
            error,
        }
    }

    #[inline(always)]
    fn read_v2(&mut self) -> Result<Option<RawEvent>, RecordingError> {
        let Codec::V2(st) = &mut self.codec else {
            unreachable!("read_v2 on a version-2 file only")
        };
        loop {
            if self.input.avail() < LOOKAHEAD {
                if let Err(e) = self.input.fill(LOOKAHEAD) {
                    return Err(RecordingError::Io {
                        offset: self.input.offset(),
                        error: e,
                    });
                }
            }
            let p = self.input.bytes();
            let Some(&tag) = p.first() else {
                self.status = ReadStatus::Unfinished;
                return Ok(None);
            };
            let (r, what) = if tag <= TAG_MAX_KIND {
                match st.decode_event(p) {
                    Ok((ev, n)) => {
                        self.input.pos += n;
                        return Ok(Some(ev));
                    }
                    Err(e) => (Err(e), "event"),
                }
            } else if tag == TAG_TASK {
                (st.decode_task(p), "task")
            } else if tag == TAG_RING {
                (st.decode_ring(p), "ring")
            } else if tag == TAG_END {
                return self.read_end_v2();
            } else {
                return Err(Self::corrupt(
                    self.input.offset(),
                    format!("unknown record type {tag}"),
                ));
            };
            match r {
                Ok(n) => self.input.pos += n,
                Err(e) => return self.record_error(e, what),
            }
        }
    }

    /// A record that did not decode: cut short (at the end of the file) or corrupt.
    fn record_error(&mut self, e: DecErr, what: &str) -> Result<Option<RawEvent>, RecordingError> {
        let offset = self.input.offset();
        match e {
            // With LOOKAHEAD bytes in hand a record cannot run short: only at the end.
            DecErr::Short if self.input.eof => {
                self.status = ReadStatus::Truncated { offset };
                Ok(None)
            }
            DecErr::Short => Err(Self::corrupt(offset, format!("{what} record too long"))),
            DecErr::Bad(reason) => Err(Self::corrupt(
                offset,
                format!("malformed {what} record: {reason}"),
            )),
        }
    }

    /// End record (version 2): tag, length varint, JSON (the same shape as a version-1
    /// record).
    fn read_end_v2(&mut self) -> Result<Option<RawEvent>, RecordingError> {
        let offset = self.input.offset();
        match record_head(self.input.bytes()) {
            RecordHead::Ok(_, hdr, len) => self.finish_end(offset, hdr, len),
            RecordHead::Short => self.record_error(DecErr::Short, "end"),
            RecordHead::Bad(reason) => Err(Self::corrupt(offset, reason)),
        }
    }

    /// Reads the JSON payload of an end record whose header (`hdr` bytes) is in hand.
    fn finish_end(
        &mut self,
        offset: u64,
        hdr: usize,
        len: usize,
    ) -> Result<Option<RawEvent>, RecordingError> {
        self.input.fill(hdr + len).map_err(|e| self.io_error(e))?;
        if self.input.avail() < hdr + len {
            self.status = ReadStatus::Truncated { offset };
            return Ok(None);
        }
        let payload = &self.input.bytes()[hdr..hdr + len];
        let drops: Drops = serde_json::from_slice(payload)
            .map_err(|e| Self::corrupt(offset, format!("malformed end record: {e}")))?;
        self.input.pos += hdr + len;
        self.final_drops = Some(drops);
        self.status = ReadStatus::Complete;
        Ok(None)
    }

    fn read_v1(&mut self) -> Result<Option<RawEvent>, RecordingError> {
        loop {
            let start = self.input.offset();
            // Type byte and a length varint of at most 9 bytes.
            self.input.fill(16).map_err(|e| self.io_error(e))?;
            if self.input.avail() == 0 {
                self.status = ReadStatus::Unfinished;
                return Ok(None);
            }
            let (kind, hdr, len) = match record_head(self.input.bytes()) {
                RecordHead::Ok(kind, hdr, len) => (kind, hdr, len),
                RecordHead::Short => {
                    self.status = ReadStatus::Truncated { offset: start };
                    return Ok(None);
                }
                RecordHead::Bad(reason) => return Err(Self::corrupt(start, reason)),
            };
            if kind == REC_END {
                return self.finish_end(start, hdr, len);
            }
            self.input.fill(hdr + len).map_err(|e| self.io_error(e))?;
            if self.input.avail() < hdr + len {
                self.status = ReadStatus::Truncated { offset: start };
                return Ok(None);
            }
            let Codec::V1(st) = &mut self.codec else {
                unreachable!("read_v1 on a version-1 file only")
            };
            let payload = &self.input.buf[self.input.pos + hdr..self.input.pos + hdr + len];
            let ev = st
                .record(kind, payload)
                .map_err(|reason| Self::corrupt(start, reason))?;
            self.input.pos += hdr + len;
            if ev.is_some() {
                return Ok(ev);
            }
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<RawEvent, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}
