//! `uringtrace agent`: traces the whole host until SIGTERM/SIGINT and serves
//! `/metrics`, `/inventory` and `/healthz` over HTTP; new findings go out as JSON lines.
//!
//! One thread traces and owns the analyzer; the HTTP thread asks it for the metrics
//! text over a channel, so a scrape sees the state as of the scrape.

use std::fs::File;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use uringtrace_common::EventKind;

use crate::analyzer::finding::Finding;
use crate::analyzer::report::LostEvents;
use crate::analyzer::Analyzer;
use crate::cgroups::Cgroups;
use crate::cli::AgentArgs;
use crate::output::inventory::Inventory;
use crate::output::metrics::{Metrics, ToolCounters};
use crate::pipeline::live_environment;
use crate::system::monotonic_ns;
use crate::trace::session::{Flow, Session, StopReason};
use crate::tui::cost::BpfStats;

/// Distinct (comm, cgroup) identities with series of their own; the rest share
/// `other` (Prometheus memory grows with series).
const MAX_IDENTITIES: usize = 64;
/// How often findings are taken and the metrics updated while nobody scrapes.
const TICK: Duration = Duration::from_secs(1);
/// A scrape waits this long for the tracing thread at most.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    // Bound before tracing starts: a port in use fails at once, with nothing loaded.
    let server = tiny_http::Server::http(args.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let server = Arc::new(server);
    let findings_out = match &args.findings {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(Box::new(io::stdout()) as Box<dyn Write>),
        Some(p) => Some(Box::new(
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ) as Box<dyn Write>),
    };
    let mut findings = Findings {
        out: findings_out,
        host: String::new(),
    };
    let mut session = Session::start(&args.session_options()).context("starting the trace")?;
    let env = live_environment(&session.tracer);
    let stats = BpfStats::enable().ok();
    let (scrapes_tx, scrapes) = mpsc::channel::<(Route, Sender<String>)>();
    let http = {
        let server = Arc::clone(&server);
        thread::Builder::new()
            .name("agent-http".into())
            .spawn(move || serve(&server, &scrapes_tx))
            .context("starting the HTTP thread")?
    };
    eprintln!(
        "uringtrace: agent tracing the whole host; metrics on http://{}/metrics",
        args.listen
    );
    let host = env.host.clone();
    findings.host.clone_from(&host);
    let mut an = Analyzer::new(args.analysis.analyzer_config(), env);
    let mut metrics = Metrics::new(MAX_IDENTITIES);
    let mut inventory = Inventory::new(&host);
    let mut cgroups = Cgroups::new();
    let mut last = Instant::now();
    let result = session.run(|batch, tracer| {
        // A process's cgroup comes with its ring's creation, else it is read while
        // the process runs: by the time a finding about it is written it may be
        // gone. One look per run of one process's events.
        let mut last_tgid = 0;
        for ev in batch {
            if ev.tgid != last_tgid || ev.kind == EventKind::Create as u16 {
                last_tgid = ev.tgid;
                cgroups.see(ev);
            }
            inventory.observe(ev);
            an.push(*ev);
        }
        an.advance(monotonic_ns());
        let asked: Vec<(Route, Sender<String>)> = scrapes.try_iter().collect();
        // Rings that retired since the last update are counted before the analyzer
        // forgets them (it keeps the newest few), however busy the host.
        if asked.is_empty() && last.elapsed() < TICK && !metrics.behind(an.state()) {
            return Ok(Flow::Continue);
        }
        last = Instant::now();
        tick(
            &mut an,
            &mut metrics,
            &mut inventory,
            &mut cgroups,
            &mut findings,
        )?;
        if asked.iter().any(|(r, _)| *r == Route::Inventory) {
            let text = serde_json::to_string(&inventory).unwrap_or_default();
            for (_, reply) in asked.iter().filter(|(r, _)| *r == Route::Inventory) {
                let _ = reply.send(text.clone());
            }
        }
        if asked.iter().any(|(r, _)| *r == Route::Metrics) {
            metrics.set_tool(ToolCounters {
                lost_events: tracer
                    .counters()
                    .map_or(0, |c| LostEvents::counted(&c.dropped).total),
                bpf_run_ns: stats
                    .as_ref()
                    .map(|s| s.sample(tracer, monotonic_ns()).run_time_ns),
            });
            let text = metrics.encode().unwrap_or_default();
            for (_, reply) in asked.iter().filter(|(r, _)| *r == Route::Metrics) {
                let _ = reply.send(text.clone());
            }
        }
        Ok(Flow::Continue)
    });
    // What the last moments recorded: findings go out before the agent exits.
    an.flush();
    let last_tick = tick(
        &mut an,
        &mut metrics,
        &mut inventory,
        &mut cgroups,
        &mut findings,
    );
    server.unblock();
    let _ = http.join();
    let stop = result.context("tracing")?;
    last_tick.context("writing findings")?;
    drop(session);
    eprintln!(
        "uringtrace: agent stopped ({})",
        match stop {
            StopReason::Duration => "--duration reached",
            _ => "signal",
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// What the HTTP thread asks the tracing thread for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    Inventory,
}

fn serve(server: &tiny_http::Server, scrapes: &Sender<(Route, Sender<String>)>) {
    for rq in server.incoming_requests() {
        let path = rq.url().split('?').next().unwrap_or("").to_string();
        let route = match path.as_str() {
            "/metrics" => Some((Route::Metrics, OPENMETRICS)),
            "/inventory" => Some((Route::Inventory, "application/json")),
            _ => None,
        };
        let response = match (rq.method(), route, path.as_str()) {
            (tiny_http::Method::Get, Some((route, ctype)), _) => {
                let (tx, rx) = mpsc::channel();
                let text = scrapes
                    .send((route, tx))
                    .ok()
                    .and_then(|()| rx.recv_timeout(SCRAPE_TIMEOUT).ok());
                match text {
                    Some(t) => text_response(t, 200, ctype),
                    None => text_response("tracing stopped\n".into(), 503, "text/plain"),
                }
            }
            (tiny_http::Method::Get, None, "/healthz") => {
                text_response("ok\n".into(), 200, "text/plain")
            }
            _ => text_response(
                "not found; try /metrics, /inventory or /healthz\n".into(),
                404,
                "text/plain",
            ),
        };
        let _ = rq.respond(response);
    }
}

fn text_response(body: String, code: u16, ctype: &str) -> tiny_http::Response<io::Cursor<Vec<u8>>> {
    let mut r = tiny_http::Response::from_string(body).with_status_code(code);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes()) {
        r.add_header(h);
    }
    r
}

/// Where findings go: JSON lines, each finding once.
struct Findings {
    out: Option<Box<dyn Write>>,
    host: String,
}

/// Once a second (and at each scrape): new findings are counted and written, the
/// metrics and the inventory take in the state. Nothing here grows with the length
/// of the run: the analyzer hands over each finding once and lets go of those whose
/// process is gone; the metrics keep per-identity totals under a cap; the inventory
/// is bounded by its own caps.
fn tick(
    an: &mut Analyzer,
    metrics: &mut Metrics,
    inventory: &mut Inventory,
    cgroups: &mut Cgroups,
    findings: &mut Findings,
) -> io::Result<()> {
    let new = an.take_new_findings();
    metrics.add_findings(&new, &mut |p| cgroups.of(p));
    metrics.update(an.state(), &mut |p| cgroups.of(p));
    inventory.update(an.state(), &mut |p| cgroups.of(p));
    if let Some(out) = findings.out.as_mut() {
        write_findings(out, &new, &findings.host, cgroups)?;
    }
    Ok(())
}

/// One JSON line per finding: `diagnose --format json`'s finding object plus `host`
/// and `cgroup`. Each finding is written once, when first recorded, with the
/// occurrences counted so far (later ones are not written), and again when its
/// severity rises (same rule, pid, ring and `evidence.first_ns`: the later line
/// supersedes).
fn write_findings(
    out: &mut Box<dyn Write>,
    findings: &[Finding],
    host: &str,
    cgroups: &mut Cgroups,
) -> io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    for f in findings {
        let mut v = serde_json::to_value(f).map_err(io::Error::other)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("host".into(), host.into());
            o.insert("cgroup".into(), cgroups.of(f.pid).into());
        }
        writeln!(out, "{v}")?;
    }
    out.flush()
}
