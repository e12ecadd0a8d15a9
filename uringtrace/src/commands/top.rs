//! `uringtrace top`: the live view (or a replay of a recording) in the terminal.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use anyhow::Context as _;

mod headless;

use crate::cli::TopArgs;
use crate::system::monotonic_ns;
use crate::tui::event::{self, Event, TICK};
use crate::tui::live::Live;
use crate::tui::replay::{self, Control};
use crate::tui::run::{self, Exit};
use crate::tui::terminal::TerminalGuard;
use crate::tui::theme::Theme;
use crate::tui::{App, Source};

pub fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let quit = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&quit))
            .context("installing the signal handler")?;
    }
    let cfg = args.analysis.analyzer_config();
    if let Some(format) = args.format {
        headless_run(&args, format, cfg, &quit)?;
        return Ok(ExitCode::SUCCESS);
    }
    let theme = Theme::from_env();
    let (tx, rx) = event::channel();
    let (exit, app) = match &args.replay {
        Some(path) => {
            let (mut app, slicer) = replay::open(path, args.speed, cfg, theme)?;
            require_terminal()?;
            let ctl = Arc::new(Control::default());
            replay::spawn(slicer, args.speed, Arc::clone(&ctl), tx.clone())
                .context("starting the replay thread")?;
            let exit = ui(&mut app, tx, rx, Some(&ctl), &quit);
            ctl.stop();
            (exit, app)
        }
        None => {
            require_terminal()?;
            let mut opts = args
                .trace
                .analysis_session_options(&args.kernel, &args.analysis);
            let log = quiet_command(&mut opts.command)?;
            // Started before the screen is taken: load errors print as usual.
            let mut live = Live::start(opts, tx.clone())?;
            let mut app = App::new(Source::Live, live.env.clone(), cfg, monotonic_ns(), theme);
            let exit = ui(&mut app, tx, rx, None, &quit);
            // The receiver is gone by now, so the tracing thread cannot block on it.
            live.stop();
            if let Some(log) = log {
                eprintln!("uringtrace: the command's output is in {}", log.display());
            }
            (exit, app)
        }
    };
    let exit = exit?;
    let s = &app.snapshot;
    eprintln!(
        "uringtrace: {} events, {} lost, {} findings{}",
        s.events,
        if s.lost.known {
            s.lost.total.to_string()
        } else {
            "unknown".into()
        },
        s.findings.len(),
        if exit == Exit::Signal {
            " (stopped by a signal)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `--format`: documents on stdout, no terminal. The traced command's output still
/// goes to a log: it would mix with the documents.
fn headless_run(
    args: &TopArgs,
    format: crate::cli::TopFormat,
    cfg: crate::analyzer::AnalyzerConfig,
    quit: &AtomicBool,
) -> anyhow::Result<()> {
    if args.replay.is_some() {
        return headless::replay(args, format, cfg);
    }
    let mut opts = args
        .trace
        .analysis_session_options(&args.kernel, &args.analysis);
    let log = quiet_command(&mut opts.command)?;
    let (tx, rx) = event::channel();
    let mut live = Live::start(opts, tx.clone())?;
    let result = headless::live(args, format, cfg, &mut live, tx, rx, quit);
    live.stop();
    if let Some(log) = log {
        eprintln!("uringtrace: the command's output is in {}", log.display());
    }
    result
}

fn require_terminal() -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!("top needs a terminal; for a report on stdout use `uringtrace diagnose`");
    }
    Ok(())
}

/// The traced command shares our terminal: its output would tear the screen and it
/// could read our keys. Run it through `sh`, which sends its output to a log file and
/// gives it /dev/null as input, then execs it: same pid, so tracing is unchanged.
/// Returns the log's path.
fn quiet_command(command: &mut Vec<String>) -> anyhow::Result<Option<PathBuf>> {
    let Some(program) = command.first() else {
        return Ok(None);
    };
    // sh would only report a missing program in the log: say it here instead.
    if !on_path(program) {
        anyhow::bail!("cannot start {program:?}: no such file or directory");
    }
    let log = std::env::temp_dir().join(format!("uringtrace-top-{}.log", std::process::id()));
    std::fs::write(&log, "").with_context(|| format!("creating {}", log.display()))?;
    let mut wrapped = vec![
        "sh".to_string(),
        "-c".into(),
        r#"exec "$@" >>"$0" 2>&1 </dev/null"#.into(),
    ];
    wrapped.push(log.display().to_string());
    wrapped.append(command);
    *command = wrapped;
    Ok(Some(log))
}

/// Whether `program` names an executable file, directly or through PATH.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| executable(&d.join(program))))
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
