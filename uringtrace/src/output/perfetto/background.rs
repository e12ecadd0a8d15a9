//! An [`Exporter`] on its own thread: the caller (replay or a live trace) feeds the
//! analyzer on its thread while the encoder writes on another, so an export takes about
//! as long as a replay on a machine with two CPUs. Events cross in batches (one channel
//! operation per few thousand events), and the batches' buffers come back for reuse.
//! The bytes are the same as a single-threaded export's: one thread encodes, in order.

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use uringtrace_common::RawEvent;

use super::{Exporter, Written};
use crate::analyzer::report::Report;

/// Events per batch: about 200 KiB, which stays in cache between the two threads.
const BATCH: usize = 2048;
/// Batches queued for the encoder before the caller waits for it (~6.5 MiB): enough
/// that the two threads rarely wait for each other when other processes share the CPUs
/// and one of them is descheduled for a few time slices.
const QUEUED: usize = 32;

pub struct Background<W: Write + Send + 'static> {
    batch: Vec<RawEvent>,
    tx: Option<SyncSender<Vec<RawEvent>>>,
    /// Emptied batches, back from the encoder.
    free: Receiver<Vec<RawEvent>>,
    worker: Option<JoinHandle<std::io::Result<Exporter<W>>>>,
}

impl<W: Write + Send + 'static> Background<W> {
    pub fn spawn(mut ex: Exporter<W>) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<RawEvent>>(QUEUED);
        let (free_tx, free) = sync_channel::<Vec<RawEvent>>(QUEUED + 2);
        let worker = std::thread::Builder::new()
            .name("perfetto-export".into())
            .spawn(move || {
                for mut batch in rx {
                    for ev in &batch {
                        ex.push(ev)?;
                    }
                    batch.clear();
                    // The caller may be gone or have enough buffers: then it is dropped.
                    let _ = free_tx.try_send(batch);
                }
                Ok(ex)
            })?;
        Ok(Background {
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
            free,
            worker: Some(worker),
        })
    }

    #[inline]
    pub fn push(&mut self, ev: &RawEvent) -> std::io::Result<()> {
        self.batch.push(*ev);
        if self.batch.len() == BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> std::io::Result<()> {
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        let sent = match &self.tx {
            Some(tx) => tx.send(full).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The encoder stopped: its error says why.
        self.tx = None;
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(std::io::Error::other("the export thread stopped")),
        }
    }

    fn join(&mut self) -> std::io::Result<Exporter<W>> {
        let worker = self
            .worker
            .take()
            .ok_or_else(|| std::io::Error::other("the export thread already ended"))?;
        worker
            .join()
            .map_err(|_| std::io::Error::other("the export thread panicked"))?
    }

    /// Hands over the last events, waits for the encoder and ends the trace with the
    /// report of the same events.
    pub fn finish(mut self, report: &Report) -> std::io::Result<(W, Written)> {
        if !self.batch.is_empty() {
            self.send()?;
        }
        self.tx = None;
        self.join()?.finish(report)
    }
}
