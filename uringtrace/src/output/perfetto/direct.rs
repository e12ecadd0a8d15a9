//! The export's output file, written with O_DIRECT by a thread of its own when the
//! file system allows it. A 10 M-event export is ~600 MiB: copying that into the page
//! cache took the encoder about as long as encoding it (and dirty-page throttling
//! stalled it for seconds when the disk was busy), while a direct write is DMA from
//! our buffer and costs the CPU almost nothing. Blocks are 4 MiB, aligned to 4 KiB in
//! memory, length and file offset, as O_DIRECT requires; the unaligned tail goes
//! through the page cache at the end. A file system that refuses O_DIRECT (tmpfs
//! before Linux 6.6, some FUSE), or a path that is not a regular file (a pipe), gets
//! ordinary buffered writes: the bytes are the same.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::aside::Aside;

/// Bytes per direct write (a multiple of [`ALIGN`]).
const BLOCK: usize = 4 << 20;
/// O_DIRECT's alignment: the largest logical block size in use.
const ALIGN: usize = 4096;
/// Blocks in flight between the encoder and the writer thread.
const BLOCKS: usize = 3;

/// A buffer with a 4 KiB-aligned window of [`BLOCK`] bytes (found with `align_offset`,
/// so no unsafe allocation).
struct Block {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn new() -> Self {
        let mem = vec![0u8; BLOCK + ALIGN];
        let start = mem.as_ptr().align_offset(ALIGN).min(ALIGN);
        Block { mem, start, len: 0 }
    }
    fn filled(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }
    /// Copies as much of `data` as fits; returns how much.
    fn fill(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(BLOCK - self.len);
        let at = self.start + self.len;
        self.mem[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }
}

enum Sink {
    Direct(Direct),
    Buffered(std::io::BufWriter<File>),
}

struct Direct {
    block: Block,
    offset: u64,
    tx: Option<SyncSender<(Block, u64)>>,
    free: Receiver<Block>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
    /// The same file without O_DIRECT, for the tail.
    plain: File,
}

/// An output file for an export; [`OutFile::finish`] completes it.
pub struct OutFile {
    sink: Sink,
    /// The earlier file at the path, being deleted meanwhile.
    aside: Option<Aside>,
}

impl OutFile {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let aside = Aside::take(path);
        let direct = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        let direct = match direct {
            Ok(f) if f.metadata()?.is_file() => f,
            _ => {
                let f = File::create(path)?;
                if let Some(a) = &aside {
                    a.restore_owner(&f);
                }
                return Ok(OutFile {
                    sink: Sink::Buffered(std::io::BufWriter::with_capacity(1 << 20, f)),
                    aside,
                });
            }
        };
        if let Some(a) = &aside {
            a.restore_owner(&direct);
        }
        let plain = OpenOptions::new().write(true).open(path)?;
        let writer_plain = plain.try_clone()?;
        let (tx, rx) = sync_channel::<(Block, u64)>(BLOCKS - 1);
        let (free_tx, free) = sync_channel::<Block>(BLOCKS);
        let writer = std::thread::Builder::new()
            .name("perfetto-write".into())
            .spawn(move || {
                let mut direct_ok = true;
                for (block, offset) in rx {
                    if direct_ok {
                        // EINVAL: the file system takes O_DIRECT at open, not at write.
                        match direct.write_all_at(block.filled(), offset) {
                            Ok(()) => {}
                            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                                direct_ok = false;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    if !direct_ok {
                        writer_plain.write_all_at(block.filled(), offset)?;
                    }
                    let _ = free_tx.try_send(block);
                }
                Ok(())
            })?;
        Ok(OutFile {
            sink: Sink::Direct(Direct {
                block: Block::new(),
                offset: 0,
                tx: Some(tx),
                free,
                writer: Some(writer),
                plain,
            }),
            aside,
        })
    }

    /// Writes what is left and waits for the writer.
    pub fn finish(self) -> std::io::Result<()> {
        let written = Self::finish_sink(self.sink);
        if let Some(a) = self.aside {
            a.finish();
        }
        written
    }

    fn finish_sink(sink: Sink) -> std::io::Result<()> {
        match sink {
            Sink::Buffered(mut w) => w.flush(),
            Sink::Direct(mut d) => {
                // Whole aligned pages still go direct; the rest through the page cache.
                let aligned = d.block.len / ALIGN * ALIGN;
                let tail = d.block.filled()[aligned..].to_vec();
                d.block.len = aligned;
                if aligned > 0 {
                    d.send()?;
                }
                d.tx = None;
                d.join()?;
                d.plain.write_all_at(&tail, d.offset)?;
                d.plain.flush()
            }
        }
    }
}

impl Direct {
    fn send(&mut self) -> std::io::Result<()> {
        let next = self.free.try_recv().unwrap_or_else(|_| Block::new());
        let full = std::mem::replace(&mut self.block, next);
        self.block.len = 0;
        let offset = self.offset;
        self.offset += full.len as u64;
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((full, offset)).is_ok());
        if sent {
            return Ok(());
        }
        self.tx = None;
        self.join()?;
        Err(std::io::Error::other("the export's writer thread stopped"))
    }

    fn join(&mut self) -> std::io::Result<()> {
        match self.writer.take() {
            Some(w) => w
                .join()
                .map_err(|_| std::io::Error::other("the export's writer thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Write for OutFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match &mut self.sink {
            Sink::Buffered(w) => w.write(data),
            Sink::Direct(d) => {
                let n = d.block.fill(data);
                if d.block.len == BLOCK {
                    d.send()?;
                }
                Ok(n)
            }
        }
    }

    /// Buffered data is written by [`OutFile::finish`]: a direct write must wait for a
    /// full block.
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Buffered(w) => w.flush(),
            Sink::Direct(_) => Ok(()),
        }
    }
}
