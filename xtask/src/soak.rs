//! `cargo xtask soak`: a host-wide `uringtrace diagnose` (aggregating mode) traces
//! process churn for N minutes: ~100 short-lived processes a second, each with one or
//! more rings doing a little exact io_uring work, plus a few long-lived checkers.
//! Every minute it prints uringtrace's RSS, the kernel maps' occupancy and events/s
//! (from the hidden `--debug-stats` lines). At the end it checks that nothing of the
//! gone processes is left in the kernel maps, that rings created late still got an
//! aggregation slot, and that the checkers' requests were counted exactly.
//!
//! A workflow, not a timed test: it checks that memory and map occupancy stay flat,
//! not speed. Other builds on the host only slow the churn down.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    /// How long processes are churned
    #[arg(long, default_value_t = 3)]
    pub minutes: u64,
    /// Short-lived processes started per second (the achieved rate is printed)
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
}

/// Short-lived processes alive at once, at most (a slow host must not pile them up).
const MAX_LIVE: usize = 256;
/// Checkers created in the last minute of the churn: their rings must still get a
/// kernel slot.
const LATE_CHECKERS: u64 = 4;
/// Checkers submit NOPs at this rate until this long after the churn stops: by then
/// the slots of the churn's rings are free again, so a checker ring that could not
/// get its slot while they held it gets it at a later submit.
const CHECKER_RATE: u64 = 10;
const CHECKERS_PAST_CHURN: Duration = Duration::from_secs(15);
/// After the churn and the checkers' work: time for gone rings to be forgotten
/// (uringtrace waits 1 s after a ring is gone, samples every 100 ms, sweeps dead
/// map entries every 5 s and writes stats every 2 s).
const QUIET: Duration = Duration::from_secs(9);
const RECHECK: Duration = Duration::from_secs(6);

/// A long-lived process with one ring doing an exact number of NOPs.
struct Checker {
    name: String,
    child: Child,
    nops: u64,
    err: PathBuf,
}

impl Checker {
    fn start(
        workload: &Path,
        dir: &Path,
        name: &str,
        nops: u64,
        rate: u64,
    ) -> anyhow::Result<Checker> {
        let err = dir.join(format!("{name}.err"));
        let child = Command::new(workload)
            .args(["nop-storm", "--batch", "1", "--entries", "8"])
            .args(["--count", &nops.to_string(), "--rate", &rate.to_string()])
            .args(["--linger", "86400"])
            .stdout(Stdio::null())
            .stderr(File::create(&err)?)
            .spawn()
            .with_context(|| format!("starting checker {name}"))?;
        Ok(Checker {
            name: name.into(),
            child,
            nops,
            err,
        })
    }

    /// The workload's own counts once its NOPs are done: (submitted, completed).
    fn done(&self) -> Option<(u64, u64)> {
        let text = std::fs::read_to_string(&self.err).ok()?;
        let line = text.lines().find(|l| l.starts_with("nop-storm: "))?;
        let mut words = line.split_whitespace().skip(1);
        let submitted = words.next()?.parse().ok()?;
        let completed = words.nth(1)?.parse().ok()?;
        Some((submitted, completed))
    }
}

/// What each short-lived process runs: mostly single-ring NOPs; some with two rings
/// and an SQPOLL thread, a link chain, an overflow, io-wq workers.
fn churn_command(workload: &Path, i: u64) -> Command {
    let mut c = Command::new(workload);
    match i % 50 {
        9 | 19 | 29 | 39 | 49 => c.arg("sqpoll-short-chains"),
        4 | 24 | 44 => c.arg("chain-ok"),
        14 | 34 => c.arg("overflow-flushed"),
        13 => c.args(["iowq-splice", "--count", "2"]),
        _ => c.args([
            "nop-storm",
            "--count",
            "32",
            "--batch",
            "8",
            "--entries",
            "8",
        ]),
    };
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// The last `--debug-stats` line written so far.
fn last_stats(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
}

/// One row of the per-minute series.
struct Row {
    t_s: f64,
    events: u64,
}

fn print_header() {
    println!(
        "{:>6} {:>8} {:>9} {:>6} {:>5} {:>6} {:>9} {:>9} {:>10} {:>9} {:>8} {:>10}",
        "minute",
        "procs/s",
        "rss_kib",
        "RINGS",
        "CTXS",
        "TGIDS",
        "IOTHREADS",
        "INFLIGHT",
        "OVERFLOWED",
        "events/s",
        "dropped",
        "watch/fds"
    );
}

fn print_row(label: &str, procs_per_s: f64, s: &Value, prev: &mut Row) {
    let k = &s["kernel"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let t_s = s["t_s"].as_f64().unwrap_or(0.0);
    let events = n(&s["events"]);
    let rate = if t_s > prev.t_s {
        events.saturating_sub(prev.events) as f64 / (t_s - prev.t_s)
    } else {
        0.0
    };
    *prev = Row { t_s, events };
    println!(
        "{:>6} {:>8.1} {:>9} {:>6} {:>5} {:>6} {:>9} {:>9} {:>10} {:>9.0} {:>8} {:>10}",
        label,
        procs_per_s,
        n(&s["rss_kib"]),
        k["rings"].as_array().map_or(0, Vec::len),
        n(&k["ctxs"]),
        n(&k["tgids"]),
        n(&k["iothreads"]),
        n(&k["inflight"]),
        n(&k["overflowed"]),
        rate,
        n(&s["dropped"]),
        format!(
            "{}/{}",
            n(&s["session"]["ring_watch"]),
            n(&s["session"]["fds_known"])
        ),
    );
}

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

pub fn run(args: &Args, ut: &Path, workload: &Path, root: &Path) -> anyhow::Result<()> {
    let dir = root.join("target/soak");
    std::fs::create_dir_all(&dir)?;
    let stats = dir.join("stats.jsonl");
    let report = dir.join("report.json");
    let _ = std::fs::remove_file(&stats);
    let _ = std::fs::remove_file(&report);

    let mut diagnose = Command::new(ut)
        .args(["diagnose", "--quiet", "--format", "json", "-o"])
        .arg(&report)
        .arg("--debug-stats")
        .arg(&stats)
        .spawn()
        .context("starting uringtrace diagnose")?;
    let loaded = Instant::now();
    while last_stats(&stats).is_none() {
        if loaded.elapsed() > Duration::from_secs(60) || diagnose.try_wait()?.is_some() {
            bail!("uringtrace diagnose did not start (no --debug-stats line)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "soak: diagnose (pid {}) traces the host; churning {} processes/s for {} min",
        diagnose.id(),
        args.rate,
        args.minutes
    );

    let churn = Duration::from_secs(args.minutes * 60);
    let nops_until_done =
        |from: Duration| (churn + CHECKERS_PAST_CHURN - from).as_secs() * CHECKER_RATE;
    let mut checkers = vec![Checker::start(
        workload,
        &dir,
        "early",
        nops_until_done(Duration::ZERO),
        CHECKER_RATE,
    )?];
    let late_at: Vec<Duration> = (0..LATE_CHECKERS)
        .map(|i| churn.saturating_sub(Duration::from_secs(40 - 10 * i)))
        .collect();

    print_header();
    let mut prev = Row {
        t_s: 0.0,
        events: 0,
    };
    let start = Instant::now();
    let mut live: Vec<Child> = Vec::new();
    let (mut spawned, mut failed, mut spawn_errors) = (0u64, 0u64, 0u64);
    let mut minute = 1u64;
    let mut spawned_at_minute = 0u64;
    let tick = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    loop {
        let now = start.elapsed();
        live.retain_mut(|c| match c.try_wait() {
            Ok(Some(st)) => {
                failed += u64::from(!st.success());
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
        if now >= Duration::from_secs(minute * 60) {
            if let Some(s) = last_stats(&stats) {
                let rate = (spawned - spawned_at_minute) as f64 / 60.0;
                print_row(&minute.to_string(), rate, &s, &mut prev);
            }
            spawned_at_minute = spawned;
            minute += 1;
        }
        if now >= churn {
            break;
        }
        if let Some(&at) = late_at.get(checkers.len() - 1) {
            if now >= at {
                let name = format!("late{}", checkers.len());
                let nops = nops_until_done(at);
                checkers.push(Checker::start(workload, &dir, &name, nops, CHECKER_RATE)?);
            }
        }
        let due = (now.as_secs_f64() / tick.as_secs_f64()) as u64;
        while spawned < due && live.len() < MAX_LIVE {
            match churn_command(workload, spawned).spawn() {
                Ok(c) => live.push(c),
                Err(_) => spawn_errors += 1,
            }
            spawned += 1;
        }
        std::thread::sleep(tick.min(Duration::from_millis(10)));
    }
    let churn_s = start.elapsed().as_secs_f64();
    for mut c in live.drain(..) {
        failed += u64::from(!c.wait()?.success());
    }
    eprintln!(
        "soak: churn over: {spawned} processes in {churn_s:.0} s ({:.1}/s), {failed} failed, \
         {spawn_errors} could not start",
        spawned as f64 / churn_s
    );

    // The checkers finish their NOPs (the late ones submit past the churn's end).
    let waited = Instant::now();
    while checkers.iter().any(|c| c.done().is_none()) {
        if waited.elapsed() > Duration::from_secs(180) {
            bail!("a checker did not finish its NOPs");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(QUIET);
    let quiet = last_stats(&stats).context("no --debug-stats line")?;
    print_row("quiet", 0.0, &quiet, &mut prev);
    // A second look: an entry of a process that exited just before the first (other
    // io_uring users on the host) is gone by then; a leaked one is not.
    std::thread::sleep(RECHECK);
    let recheck = last_stats(&stats).context("no --debug-stats line")?;

    // SAFETY: signalling our own child.
    unsafe { libc::kill(diagnose.id() as i32, libc::SIGINT) };
    let st = diagnose.wait()?;
    let mut problems = Vec::new();
    if !st.success() {
        problems.push(format!("uringtrace diagnose exited with {st}"));
    }
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(&report)
            .with_context(|| format!("reading {}", report.display()))?,
    )?;
    problems.extend(check(&checkers, &quiet, &recheck, &report));
    if failed > 0 || spawn_errors > 0 {
        problems.push(format!(
            "{failed} churn processes failed, {spawn_errors} could not start"
        ));
    }
    for c in &mut checkers {
        let _ = c.child.kill();
        let _ = c.child.wait();
    }
    let dropped = report["lost_events"]["total"].as_u64().unwrap_or(0);
    eprintln!(
        "soak: {} events analysed, {dropped} lost; stats: {}, report: {}",
        report["events"],
        stats.display(),
        dir.join("report.json").display()
    );
    if problems.is_empty() {
        eprintln!("soak: PASS");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("soak: FAIL: {p}");
        }
        bail!("soak failed ({} problems)", problems.len())
    }
}

/// The end-of-soak checks, on the stats lines written after the quiet period (and
/// again a little later) and the report. Returns the problems found.
fn check(checkers: &[Checker], quiet: &Value, recheck: &Value, report: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let k = &quiet["kernel"];
    // Nothing of a gone process may be left in the kernel.
    for map in ["rings", "ctxs", "tgids", "iothreads", "overflowed"] {
        let dead_in = |s: &Value| s["kernel"]["dead"][map].as_u64().unwrap_or(0);
        let dead = dead_in(quiet).min(dead_in(recheck));
        if dead > 0 {
            problems.push(format!(
                "{dead} {map} entries of gone processes or threads are left"
            ));
        }
    }
    let slots = k["rings"].as_array().cloned().unwrap_or_default();
    let rings = report["rings"].as_array().cloned().unwrap_or_default();
    for c in checkers {
        let pid = u64::from(c.child.id());
        let Some((sub, comp)) = c.done() else {
            problems.push(format!("checker {} has no counts", c.name));
            continue;
        };
        if (sub, comp) != (c.nops, c.nops) {
            problems.push(format!(
                "checker {}: the workload did {sub}/{comp} of {} NOPs",
                c.name, c.nops
            ));
            continue;
        }
        let mine: Vec<&Value> = rings
            .iter()
            .filter(|r| r["pid"].as_u64() == Some(pid))
            .collect();
        let [ring] = mine[..] else {
            problems.push(format!(
                "checker {} (pid {pid}): {} rings in the report, expected 1",
                c.name,
                mine.len()
            ));
            continue;
        };
        let (rs, rc) = (
            ring["submitted"].as_u64().unwrap_or(0),
            ring["completed"].as_u64().unwrap_or(0),
        );
        if (rs, rc) != (c.nops, c.nops) {
            problems.push(format!(
                "checker {} (pid {pid}): the report counts {rs} submitted, {rc} completed; \
                 the workload did {}",
                c.name, c.nops
            ));
        }
        let ctx_hex = ring["ring"].as_str().unwrap_or("");
        let ctx = u64::from_str_radix(ctx_hex.trim_start_matches("0x"), 16).unwrap_or(0);
        let index = u64::from(uringtrace_common::aggregate::ring_index(ctx));
        let slot = slots.iter().find(|s| s["slot"].as_u64() == Some(index));
        let verdict = match slot {
            Some(s) if s["ring"].as_str() == Some(ctx_hex) => {
                let ks = s["submitted"].as_u64().unwrap_or(0);
                let kc = s["completed"].as_u64().unwrap_or(0);
                if ks != kc || ks > c.nops {
                    problems.push(format!(
                        "checker {}: its kernel slot counts {ks} submitted, {kc} completed",
                        c.name
                    ));
                }
                format!(
                    "aggregated in slot {index} ({ks} of {} NOPs counted there)",
                    c.nops
                )
            }
            Some(s) if alive(s["tgid"].as_u64().unwrap_or(0)) => format!(
                "streamed: slot {index} is held by live ring {} of pid {}",
                s["ring"], s["tgid"]
            ),
            Some(s) => {
                problems.push(format!(
                    "checker {}: slot {index} is still held by ring {} of gone pid {}",
                    c.name, s["ring"], s["tgid"]
                ));
                "streamed (slot leaked)".into()
            }
            None => {
                problems.push(format!(
                    "checker {} (ring {ctx_hex}): slot {index} is free but its ring is not in it",
                    c.name
                ));
                "streamed (slot free)".into()
            }
        };
        eprintln!(
            "soak: checker {} (pid {pid}, ring {ctx_hex}): {rs}/{rc} of {} NOPs in the report; {verdict}",
            c.name, c.nops
        );
    }
    problems
}
