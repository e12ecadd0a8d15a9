//! `uringtrace inventory`: which programs and cgroups use io_uring, after watching the
//! whole host for a while.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use uringtrace_common::EventKind;

use crate::analyzer::{Analyzer, AnalyzerConfig};
use crate::cgroups::Cgroups;
use crate::cli::{InventoryArgs, InventoryFormat};
use crate::output::inventory::Inventory;
use crate::pipeline::live_environment;
use crate::system::monotonic_ns;
use crate::trace::session::{Flow, Session};

/// The analyzer forgets closed fds and exited processes: the inventory takes them in
/// this often.
const UPDATE_EVERY: Duration = Duration::from_millis(200);

pub fn run(args: InventoryArgs) -> anyhow::Result<ExitCode> {
    let mut session = Session::start(&args.session_options()).context("starting the trace")?;
    let env = live_environment(&session.tracer);
    eprintln!(
        "uringtrace: watching the whole host for {:?}; Ctrl-C to stop early",
        args.duration
    );
    let mut inv = Inventory::new(&env.host);
    let mut an = Analyzer::new(AnalyzerConfig::default(), env);
    let mut cgroups = Cgroups::new();
    let mut last = Instant::now();
    session.run(|batch, _| {
        let mut last_tgid = 0;
        for ev in batch {
            // From the ring's creation, else read while the process runs: it may be
            // gone at the next update.
            if ev.tgid != last_tgid || ev.kind == EventKind::Create as u16 {
                last_tgid = ev.tgid;
                cgroups.see(ev);
            }
            inv.observe(ev);
            an.push(*ev);
        }
        if last.elapsed() >= UPDATE_EVERY {
            last = Instant::now();
            an.advance(monotonic_ns());
            inv.update(an.state(), &mut |p| cgroups.of(p));
        }
        Ok(Flow::Continue)
    })?;
    an.flush();
    inv.update(an.state(), &mut |p| cgroups.of(p));
    drop(session);
    match args.format {
        InventoryFormat::Text => print!("{}", inv.text()),
        InventoryFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&inv).context("encoding the inventory")?
        ),
    }
    Ok(ExitCode::SUCCESS)
}
