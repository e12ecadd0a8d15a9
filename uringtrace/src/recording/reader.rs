//! Recording reader: validates everything, never panics, names the offset of any
//! problem.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use thiserror::Error;
use uringtrace_common::RawEvent;

use super::codec::{decode_event, decode_task, TaskTable};
use super::{
    Drops, Header, FORMAT_VERSION, MAGIC, MAX_PAYLOAD, PREAMBLE_LEN, REC_END, REC_EVENT, REC_TASK,
};

#[derive(Debug, Error)]
pub enum RecordingError {
    #[error("I/O error at offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("not a uringtrace recording (bad magic at offset 0)")]
    NotARecording,
    #[error("recording format version {0} is not supported (this uringtrace reads version {FORMAT_VERSION})")]
    Version(u32),
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

pub struct Reader<R: Read> {
    input: R,
    header: Header,
    offset: u64,
    tasks: TaskTable,
    prev_ts: u64,
    status: ReadStatus,
    final_drops: Option<Drops>,
    buf: Vec<u8>,
}

impl Reader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let f = File::open(path).map_err(|source| RecordingError::Io { offset: 0, source })?;
        Reader::new(BufReader::with_capacity(1 << 20, f))
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

impl<R: Read> Reader<R> {
    pub fn new(mut input: R) -> Result<Self, RecordingError> {
        let mut pre = [0u8; PREAMBLE_LEN as usize];
        let n = read_full(&mut input, &mut pre)
            .map_err(|source| RecordingError::Io { offset: 0, source })?;
        if n < 8 || &pre[..8] != MAGIC {
            return Err(RecordingError::NotARecording);
        }
        if n < pre.len() {
            return Err(RecordingError::TruncatedHeader {
                offset: n as u64,
                what: "preamble",
            });
        }
        let version = u32::from_le_bytes(pre[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(RecordingError::Version(version));
        }
        let capacity = u32::from_le_bytes(pre[12..16].try_into().expect("4 bytes"));
        if u64::from(capacity) > MAX_PAYLOAD * 16 {
            return Err(RecordingError::BadHeader {
                offset: 12,
                reason: format!("header length {capacity} is implausible"),
            });
        }
        let mut json = vec![0u8; capacity as usize];
        let n = read_full(&mut input, &mut json).map_err(|source| RecordingError::Io {
            offset: PREAMBLE_LEN,
            source,
        })?;
        if n < json.len() {
            return Err(RecordingError::TruncatedHeader {
                offset: PREAMBLE_LEN + n as u64,
                what: "header",
            });
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
            input,
            header,
            offset: PREAMBLE_LEN + u64::from(capacity),
            tasks: TaskTable::default(),
            prev_ts: 0,
            status: ReadStatus::Reading,
            final_drops: None,
            buf: Vec::with_capacity(256),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
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
        self.offset
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> RecordingError {
        RecordingError::Corrupt {
            offset,
            reason: reason.into(),
        }
    }

    /// The next event, `Ok(None)` at the end (see [`Reader::status`] for how it ended).
    pub fn next_event(&mut self) -> Result<Option<RawEvent>, RecordingError> {
        let r = self.read_record();
        if r.is_err() {
            self.status = ReadStatus::Failed;
        }
        r
    }

    fn read_record(&mut self) -> Result<Option<RawEvent>, RecordingError> {
        loop {
            if self.status != ReadStatus::Reading {
                return Ok(None);
            }
            let start = self.offset;
            let io = |source| RecordingError::Io {
                offset: start,
                source,
            };
            let mut kind = [0u8; 1];
            if read_full(&mut self.input, &mut kind).map_err(io)? == 0 {
                self.status = ReadStatus::Unfinished;
                return Ok(None);
            }
            // Payload length varint, byte by byte.
            let mut len: u64 = 0;
            let mut shift = 0;
            let mut header_len = 1u64;
            loop {
                let mut b = [0u8; 1];
                if read_full(&mut self.input, &mut b).map_err(io)? == 0 {
                    self.status = ReadStatus::Truncated { offset: start };
                    return Ok(None);
                }
                header_len += 1;
                len |= u64::from(b[0] & 0x7f) << shift;
                if b[0] & 0x80 == 0 {
                    break;
                }
                shift += 7;
                if shift > 56 {
                    return Err(self.corrupt(start, "record length is not a valid varint"));
                }
            }
            if len > MAX_PAYLOAD {
                return Err(self.corrupt(
                    start,
                    format!("record length {len} exceeds the maximum {MAX_PAYLOAD}"),
                ));
            }
            self.buf.resize(len as usize, 0);
            let n = read_full(&mut self.input, &mut self.buf).map_err(io)?;
            if n < len as usize {
                self.status = ReadStatus::Truncated { offset: start };
                return Ok(None);
            }
            self.offset = start + header_len + len;
            match kind[0] {
                REC_TASK => {
                    let (tid, tgid, comm) = decode_task(&self.buf)
                        .ok_or_else(|| self.corrupt(start, "malformed task record"))?;
                    self.tasks.set(tid, tgid, comm);
                }
                REC_EVENT => {
                    let ev = decode_event(&self.buf, self.prev_ts, &self.tasks)
                        .ok_or_else(|| self.corrupt(start, "malformed event record"))?;
                    self.prev_ts = ev.ts_ns;
                    return Ok(Some(ev));
                }
                REC_END => {
                    let drops: Drops = serde_json::from_slice(&self.buf)
                        .map_err(|e| self.corrupt(start, format!("malformed end record: {e}")))?;
                    self.final_drops = Some(drops);
                    self.status = ReadStatus::Complete;
                    return Ok(None);
                }
                other => return Err(self.corrupt(start, format!("unknown record type {other}"))),
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
