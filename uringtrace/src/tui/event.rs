//! The one channel into the UI loop, and its simple producers (ticks, keys).
//!
//! The channel is bounded, and event batches may fill only part of it
//! ([`MAX_QUEUED_BATCHES`]): a producer that outruns the analyzer waits, so the backlog
//! stays in the kernel ring buffer, where overflow is counted and shown as lost
//! events, instead of growing here without limit; and keys never queue behind more
//! than those few batches, so the screen answers at once even under load. Ticks never
//! block (another is coming), and the loop draws by the clock anyway.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;
use uringtrace_common::RawEvent;

use crate::analyzer::report::LostEvents;

use super::app::CostSample;

/// Frames per second: 10.
pub const TICK: Duration = Duration::from_millis(100);
/// Most events in one batch (live and replay): bounds the channel's memory and keeps
/// keys responsive.
pub const MAX_BATCH: usize = 4096;
/// Batches (of at most [`MAX_BATCH`] events) queued for the loop: a few ms of
/// analysis each.
pub const MAX_QUEUED_BATCHES: usize = 8;
/// Room for keys, ticks and counters besides the batches.
pub const CAPACITY: usize = MAX_QUEUED_BATCHES + 24;

#[derive(Debug)]
pub enum Event {
    /// Events in arrival order, and the input's clock (monotonic ns) when the batch
    /// was cut: nothing older than it minus the reorder window can still come.
    Batch {
        events: Vec<RawEvent>,
        clock_ns: u64,
        slot: BatchSlot,
    },
    Lost(LostEvents),
    Cost(CostSample),
    CostUnavailable(String),
    /// The input ended (replay done, traced command exited, ...).
    Ended {
        reason: String,
        end_ns: Option<u64>,
    },
    /// A producer failed; the loop stops and reports it.
    Failed(String),
    Tick,
    Key(KeyEvent),
    Resize(u16, u16),
}

pub fn channel() -> (SyncSender<Event>, Receiver<Event>) {
    mpsc::sync_channel(CAPACITY)
}

/// One of the [`MAX_QUEUED_BATCHES`] places for a batch, freed when the batch is
/// dropped (consumed by the loop, or discarded with the channel).
#[derive(Debug)]
pub struct BatchSlot(Arc<AtomicUsize>);

impl Drop for BatchSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sends event batches, at most [`MAX_QUEUED_BATCHES`] at a time.
#[derive(Clone)]
pub struct BatchSender {
    tx: SyncSender<Event>,
    queued: Arc<AtomicUsize>,
}

impl BatchSender {
    pub fn new(tx: SyncSender<Event>) -> BatchSender {
        BatchSender {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Waits while the batch places are taken; false once the loop is gone.
    pub fn send(&self, events: Vec<RawEvent>, clock_ns: u64) -> bool {
        let since = Instant::now();
        // A discarded channel frees its slots; the time limit is only a safety net
        // (a blocking send below then fails if the loop is gone).
        while self.queued.load(Ordering::Acquire) >= MAX_QUEUED_BATCHES
            && since.elapsed() < Duration::from_secs(1)
        {
            thread::sleep(Duration::from_micros(500));
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        let slot = BatchSlot(Arc::clone(&self.queued));
        self.tx
            .send(Event::Batch {
                events,
                clock_ns,
                slot,
            })
            .is_ok()
    }

    /// The plain channel, for the other messages (losses, cost, end).
    pub fn events(&self) -> &SyncSender<Event> {
        &self.tx
    }
}

/// Sends a Tick every `every` until the loop is gone.
pub fn spawn_ticks(tx: SyncSender<Event>, every: Duration) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("top-tick".into())
        .spawn(move || loop {
            thread::sleep(every);
            match tx.try_send(Event::Tick) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return,
            }
        })
}

/// Reads keys and resizes from the terminal until `stop` is set. Polls, so that it
/// stops reading before the terminal is handed back to the shell.
pub fn spawn_keys(tx: SyncSender<Event>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    use crossterm::event::{poll, read, Event as Term};
    thread::Builder::new()
        .name("top-keys".into())
        .spawn(move || {
            let _notice = PanicNotice::new(tx.clone(), "key reader");
            while !stop.load(Ordering::Relaxed) {
                match poll(Duration::from_millis(50)) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(e) => {
                        let _ = tx.send(Event::Failed(format!("reading the terminal: {e}")));
                        return;
                    }
                }
                let ev = match read() {
                    Ok(Term::Key(k)) => Event::Key(k),
                    Ok(Term::Resize(w, h)) => Event::Resize(w, h),
                    Ok(_) => continue,
                    Err(e) => Event::Failed(format!("reading the terminal: {e}")),
                };
                let failed = matches!(ev, Event::Failed(_));
                if tx.send(ev).is_err() || failed {
                    return;
                }
            }
        })
}

/// Lives on a producer thread's stack: if the thread panics, the loop hears of it and
/// quits (the panic hook has restored the terminal) instead of showing a frozen input.
pub struct PanicNotice {
    tx: SyncSender<Event>,
    name: &'static str,
}

impl PanicNotice {
    pub fn new(tx: SyncSender<Event>, name: &'static str) -> PanicNotice {
        PanicNotice { tx, name }
    }
}

impl Drop for PanicNotice {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = self
                .tx
                .send(Event::Failed(format!("the {} thread panicked", self.name)));
        }
    }
}
