//! The UI loop: one channel in, one frame per tick out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use ratatui::backend::Backend;
use ratatui::Terminal;

use super::app::{Action, App, Taken};
use super::event::{Event, TICK};
use super::replay::Control;
use super::view;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// q or Ctrl-C.
    Quit,
    /// SIGTERM, SIGINT or SIGHUP.
    Signal,
    /// Every producer is gone (cannot happen while the tick thread runs).
    InputClosed,
}

/// Runs until quit. Events go into the app as they come; the screen is drawn once
/// per tick (and after a key), never per event, so a flood of events costs analysis
/// time but no extra frames. `quit` is the signal flag, checked at least every tick.
pub fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    rx: &Receiver<Event>,
    replay: Option<&Control>,
    quit: &AtomicBool,
) -> anyhow::Result<Exit>
where
    B::Error: Send + Sync + 'static,
{
    let mut last_tick: Option<Instant> = None;
    loop {
        if quit.load(Ordering::Relaxed) {
            return Ok(Exit::Signal);
        }
        let mut redraw = false;
        match rx.recv_timeout(TICK).map(|ev| app.take(ev)) {
            Ok(Taken::Applied) => {}
            Ok(Taken::Ended) => redraw = true,
            Ok(Taken::Failed(msg)) => anyhow::bail!(msg),
            Ok(Taken::Ui(Event::Key(key))) => {
                match app.handle_key(key) {
                    Action::Quit => return Ok(Exit::Quit),
                    Action::Pause(p) => {
                        if let Some(c) = replay {
                            c.set_paused(p);
                        }
                    }
                    Action::Step(s) => {
                        if let Some(c) = replay {
                            c.step(s);
                        }
                    }
                    Action::None => {}
                }
                redraw = true;
            }
            Ok(Taken::Ui(Event::Resize(w, h))) => {
                app.set_viewport(w, h);
                redraw = true;
            }
            Ok(Taken::Ui(_)) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(Exit::InputClosed),
        }
        // By the clock, not by Tick messages: ticks are dropped when the channel is
        // full of batches, and the screen must go on regardless.
        let due = last_tick.is_none_or(|t| t.elapsed() >= TICK);
        if due {
            app.tick();
            last_tick = Some(Instant::now());
        }
        if due || redraw {
            terminal.draw(|f| view::draw(f, app))?;
        }
    }
}
