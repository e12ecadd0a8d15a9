//! `uringtrace top`: the live view (or a replay of a recording) in the terminal.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::TopArgs;
use crate::system::monotonic_ns;
use crate::tui::event::{self, Event, TICK};
use crate::tui::live::Live;
use crate::tui::replay::{self, Control};
use crate::tui::run::{self, Exit};
use crate::tui::terminal::TerminalGuard;
use crate::tui::theme::Theme;
use crate::tui::{App, Source};

use super::diagnose::analyzer_config;
use super::record::session_options;

pub fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!("top needs a terminal; for a report on stdout use `uringtrace diagnose`");
    }
    let quit = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&quit)).context("installing the signal handler")?;
    }
    let cfg = analyzer_config(args.stall_threshold);
    let theme = Theme::from_env();
    let (tx, rx) = event::channel();
    let (exit, app) = match &args.replay {
        Some(path) => {
            let (mut app, slicer) = replay::open(path, args.speed, cfg, theme)?;
            let ctl = Arc::new(Control::default());
            replay::spawn(slicer, args.speed, Arc::clone(&ctl), tx.clone()).context("starting the replay thread")?;
            let exit = ui(&mut app, tx, rx, Some(&ctl), &quit);
            ctl.stop();
            (exit, app)
        }
        None => {
            // Started before the screen is taken: load errors print as usual.
            let mut live = Live::start(session_options(&args.trace), tx.clone())?;
            let mut app = App::new(Source::Live, live.env.clone(), cfg, monotonic_ns(), theme);
            let exit = ui(&mut app, tx, rx, None, &quit);
            // The receiver is gone by now, so the tracing thread cannot block on it.
            live.stop();
            (exit, app)
        }
    };
    let exit = exit?;
    let s = &app.snapshot;
    eprintln!(
        "uringtrace: {} events, {} lost, {} findings{}",
        s.events,
        if s.lost.known { s.lost.total.to_string() } else { "unknown".into() },
        s.findings.len(),
        if exit == Exit::Signal { " (stopped by a signal)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Takes the terminal, runs the loop, and gives the terminal back (also on error).
/// Consumes the channel: when it returns, producers can no longer block on it.
fn ui(
    app: &mut App,
    tx: SyncSender<Event>,
    rx: Receiver<Event>,
    replay: Option<&Control>,
    quit: &AtomicBool,
) -> anyhow::Result<Exit> {
    let keys_stop = Arc::new(AtomicBool::new(false));
    let mut guard = TerminalGuard::enter().context("setting up the terminal")?;
    let size = guard.terminal.size().context("reading the terminal size")?;
    app.set_viewport(size.width, size.height);
    event::spawn_ticks(tx.clone(), TICK).context("starting the tick thread")?;
    event::spawn_keys(tx, Arc::clone(&keys_stop)).context("starting the key reader")?;
    let result = run::run(&mut guard.terminal, app, &rx, replay, quit);
    // Stop reading keys before the shell gets the terminal back.
    keys_stop.store(true, Ordering::Relaxed);
    drop(guard);
    drop(rx);
    result
}
