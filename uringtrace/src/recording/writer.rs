//! Streaming recording writer.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use uringtrace_common::RawEvent;

use super::codec::{encode_event, encode_task, TaskTable};
use super::varint::put_u64;
use super::{Drops, Header, FORMAT_VERSION, MAGIC, PREAMBLE_LEN, REC_END, REC_EVENT, REC_TASK};

pub struct Writer<W: Write + Seek> {
    out: BufWriter<W>,
    header: Header,
    capacity: u32,
    tasks: TaskTable,
    prev_ts: u64,
    scratch: Vec<u8>,
    payload: Vec<u8>,
    bytes: u64,
    events: u64,
}

impl Writer<File> {
    pub fn create(path: &Path, header: Header) -> io::Result<Writer<File>> {
        Writer::new(File::create(path)?, header)
    }
}

impl<W: Write + Seek> Writer<W> {
    pub fn new(inner: W, header: Header) -> io::Result<Writer<W>> {
        let json = serde_json::to_vec(&header).map_err(io::Error::other)?;
        // Room for the final drop counters (one number per CPU) and other growth.
        let capacity = (json.len() + 4096 + 24 * header.ncpus as usize) as u32;
        let mut out = BufWriter::with_capacity(1 << 20, inner);
        out.write_all(MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        out.write_all(&capacity.to_le_bytes())?;
        write_padded(&mut out, &json, capacity)?;
        Ok(Writer {
            out,
            header,
            capacity,
            tasks: TaskTable::default(),
            prev_ts: 0,
            scratch: Vec::with_capacity(128),
            payload: Vec::with_capacity(128),
            bytes: PREAMBLE_LEN + u64::from(capacity),
            events: 0,
        })
    }

    fn record(&mut self, kind: u8) -> io::Result<()> {
        self.scratch.clear();
        self.scratch.push(kind);
        put_u64(&mut self.scratch, self.payload.len() as u64);
        self.out.write_all(&self.scratch)?;
        self.out.write_all(&self.payload)?;
        self.bytes += (self.scratch.len() + self.payload.len()) as u64;
        Ok(())
    }

    pub fn write_event(&mut self, ev: &RawEvent) -> io::Result<()> {
        if !self.tasks.is_current(ev) {
            self.payload.clear();
            encode_task(ev.pid, ev.tgid, &ev.comm, &mut self.payload);
            self.record(REC_TASK)?;
            self.tasks.set(ev.pid, ev.tgid, ev.comm);
        }
        self.payload.clear();
        encode_event(ev, self.prev_ts, &mut self.payload);
        self.record(REC_EVENT)?;
        self.prev_ts = ev.ts_ns;
        self.events += 1;
        Ok(())
    }

    /// Pushes buffered records to the file so a crash loses at most what came since.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes written so far, header included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes and gives the output back without an end record or final header: what
    /// a recorder killed mid-flight leaves behind (used to test readers).
    pub fn abandon(mut self) -> io::Result<W> {
        self.out.flush()?;
        self.out.into_inner().map_err(|e| e.into_error())
    }

    /// Writes the end record and the final header (drop counters, finished = true).
    pub fn finish(mut self, mut drops: Drops) -> io::Result<W> {
        drops.recorded = self.events;
        self.header.drops = drops;
        self.header.finished = true;
        let json = serde_json::to_vec(&self.header).map_err(io::Error::other)?;
        self.payload = serde_json::to_vec(&self.header.drops).map_err(io::Error::other)?;
        self.record(REC_END)?;
        self.out.flush()?;
        if json.len() <= self.capacity as usize {
            self.out.seek(SeekFrom::Start(PREAMBLE_LEN))?;
            write_padded(&mut self.out, &json, self.capacity)?;
            self.out.flush()?;
        }
        // Otherwise the end record alone carries the counters (the reader uses it).
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

fn write_padded(out: &mut impl Write, json: &[u8], capacity: u32) -> io::Result<()> {
    out.write_all(json)?;
    let pad = capacity as usize - json.len();
    out.write_all(&vec![b' '; pad])
}
