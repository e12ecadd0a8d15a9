//! Streaming recording writer (format version 2).
//!
//! Records are encoded straight into one large buffer, written out when it fills up or
//! on [`Writer::flush`]: no per-event allocation or write call.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use uringtrace_common::RawEvent;

use super::codec2::{Encoder, LOOKAHEAD, TAG_END};
use super::varint::put_u64;
use super::{Drops, Header, FORMAT_VERSION, MAGIC, PREAMBLE_LEN};
use crate::aside::Aside;

/// Buffered bytes that trigger a write to the file.
const FLUSH_AT: usize = 1 << 20;

pub struct Writer<W: Write + Seek> {
    /// None only once `finish` or `abandon` took it.
    out: Option<W>,
    buf: Vec<u8>,
    header: Header,
    capacity: u32,
    enc: Box<Encoder>,
    /// Bytes already handed to `out`.
    written: u64,
    events: u64,
    /// A write failed (the disk is full): the file may end inside a record, so
    /// nothing may follow it, or what follows would be read as part of that record.
    failed: bool,
    /// The earlier file at the path, deleted meanwhile (waited for when dropped).
    _aside: Option<Aside>,
}

impl Writer<File> {
    /// Creates the recording; an earlier large file at `path` is replaced without the
    /// wait its truncation would cost ([`Aside`]).
    pub fn create(path: &Path, header: Header) -> io::Result<Writer<File>> {
        let aside = Aside::take(path);
        let file = File::create(path)?;
        if let Some(a) = &aside {
            a.restore_owner(&file);
        }
        let mut w = Writer::new(file, header)?;
        w._aside = aside;
        Ok(w)
    }
}

impl<W: Write + Seek> Writer<W> {
    pub fn new(mut inner: W, mut header: Header) -> io::Result<Writer<W>> {
        header.format_version = FORMAT_VERSION;
        let json = serde_json::to_vec(&header).map_err(io::Error::other)?;
        // Room for the final drop counters (one number per CPU) and other growth.
        let capacity = (json.len() + 4096 + 24 * header.ncpus as usize) as u32;
        let mut pre = Vec::with_capacity(PREAMBLE_LEN as usize + capacity as usize);
        pre.extend_from_slice(MAGIC);
        pre.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        pre.extend_from_slice(&capacity.to_le_bytes());
        push_padded(&mut pre, &json, capacity);
        inner.write_all(&pre)?;
        Ok(Writer {
            out: Some(inner),
            buf: Vec::with_capacity(FLUSH_AT + 2 * LOOKAHEAD),
            header,
            capacity,
            enc: Box::default(),
            written: pre.len() as u64,
            events: 0,
            failed: false,
            _aside: None,
        })
    }

    #[inline]
    pub fn write_event(&mut self, ev: &RawEvent) -> io::Result<()> {
        self.enc.encode_event(ev, &mut self.buf);
        self.events += 1;
        if self.buf.len() >= FLUSH_AT {
            self.write_buf()?;
        }
        Ok(())
    }

    fn write_buf(&mut self) -> io::Result<()> {
        if self.failed {
            self.buf.clear();
            return Err(io::Error::other(
                "an earlier write to the recording failed; nothing more is written",
            ));
        }
        let out = self.out.as_mut().ok_or_else(finished)?;
        let r = out.write_all(&self.buf);
        match r {
            Ok(()) => self.written += self.buf.len() as u64,
            Err(_) => self.failed = true,
        }
        // Even after an error: never write the same records twice.
        self.buf.clear();
        r
    }

    /// Pushes buffered records to the file so a crash loses at most what came since.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_buf()?;
        self.out.as_mut().ok_or_else(finished)?.flush()
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes written so far, header included.
    pub fn bytes(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Flushes and gives the output back without an end record or final header: what
    /// a recorder killed mid-flight leaves behind (used to test readers).
    pub fn abandon(mut self) -> io::Result<W> {
        self.flush()?;
        self.out.take().ok_or_else(finished)
    }

    /// Writes the end record and the final header (drop counters, finished = true).
    pub fn finish(mut self, mut drops: Drops) -> io::Result<W> {
        drops.recorded = self.events;
        self.header.drops = drops;
        self.header.finished = true;
        let json = serde_json::to_vec(&self.header).map_err(io::Error::other)?;
        let end = serde_json::to_vec(&self.header.drops).map_err(io::Error::other)?;
        self.buf.push(TAG_END);
        put_u64(&mut self.buf, end.len() as u64);
        self.buf.extend_from_slice(&end);
        self.flush()?;
        let mut out = self.out.take().ok_or_else(finished)?;
        if json.len() <= self.capacity as usize {
            let mut hdr = Vec::with_capacity(self.capacity as usize);
            push_padded(&mut hdr, &json, self.capacity);
            out.seek(SeekFrom::Start(PREAMBLE_LEN))?;
            out.write_all(&hdr)?;
            out.flush()?;
        }
        // Otherwise the end record alone carries the counters (the reader uses it).
        Ok(out)
    }
}

impl<W: Write + Seek> Drop for Writer<W> {
    /// A writer dropped without `finish` (an error path, a panic) still writes what it
    /// buffered, as a `BufWriter` would: the file reads as unfinished, not shorter.
    /// Not after a failed write: the file may end inside a record.
    fn drop(&mut self) {
        if let Some(out) = self.out.as_mut().filter(|_| !self.failed) {
            let _ = out.write_all(&self.buf);
            let _ = out.flush();
        }
    }
}

/// The error for an output already taken. Not seen in practice: only `finish` and
/// `abandon` take it, and they consume the writer.
fn finished() -> io::Error {
    io::Error::other("the recording writer was already finished")
}

fn push_padded(out: &mut Vec<u8>, json: &[u8], capacity: u32) {
    out.extend_from_slice(json);
    out.resize(out.len() + (capacity as usize - json.len()), b' ');
}

#[cfg(test)]
mod tests;
