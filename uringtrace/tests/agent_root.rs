//! `uringtrace agent` as root: the metrics a scrape shows after known workloads, the
//! findings it writes, and a clean exit on SIGTERM. Other tests may run workloads on
//! this host at the same time, so counts of the workload's comm are lower bounds.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{require_root, UT, WORKLOAD};

/// (status code, body) of GET `path`.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp.split(' ').nth(1).unwrap().parse().unwrap();
    let body = resp.split_once("\r\n\r\n").unwrap().1.to_string();
    (code, body)
}

/// Sum of the samples of `metric` whose labels include every one of `labels`.
fn sum(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn workload(args: &[&str]) {
    let st = Command::new(WORKLOAD).args(args).status().unwrap();
    assert!(st.success(), "workload {args:?}: {st}");
}

/// A fresh cgroup v2 directory, removed at the end.
struct FreshCgroup {
    dir: std::path::PathBuf,
    /// Its path as /proc/PID/cgroup shows it: the agent's `cgroup` label.
    label: String,
}

impl FreshCgroup {
    fn new(name: &str) -> FreshCgroup {
        // cgroup v2 at /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host.
        let root = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .map(std::path::Path::new)
            .find(|p| p.join("cgroup.controllers").exists())
            .expect("no cgroup v2 hierarchy");
        let dir = root.join(name);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap();
        FreshCgroup {
            dir,
            label: format!("/{name}"),
        }
    }

    /// Runs the workload inside the cgroup from its start (a shell moves itself in,
    /// then execs it).
    fn workload(&self, args: &[&str]) {
        let procs = self.dir.join("cgroup.procs");
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {} && exec {WORKLOAD} {}",
                procs.display(),
                args.join(" ")
            ))
            .status()
            .unwrap();
        assert!(st.success(), "workload {args:?} in {}: {st}", self.label);
    }
}

impl Drop for FreshCgroup {
    fn drop(&mut self) {
        // io_uring's kernel threads of an exited workload can linger for a moment.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn agent_scrape_counts_workloads_and_stops_on_sigterm() {
    let Some(_g) = require_root("agent_scrape_counts_workloads_and_stops_on_sigterm") else {
        return;
    };
    let port = free_port();
    let findings = std::env::temp_dir().join(format!("agent-findings-{port}.jsonl"));
    let _ = std::fs::remove_file(&findings);
    let mut agent = Agent(
        Command::new(UT)
            .args([
                "agent",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--findings",
            ])
            .arg(&findings)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Tracing has started once the agent says so.
    let mut err = BufReader::new(agent.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("metrics on http://"), "{line}");
    assert_eq!(get(port, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(port, "/nope").0, 404);

    workload(&["nop-storm", "--count", "1000"]);
    workload(&["chain-broken-error"]);
    // A short-lived process in a cgroup of its own: the label comes from the cgroup
    // id the kernel records at ring creation.
    let cg = FreshCgroup::new(&format!("uringtrace-agent-{port}"));
    cg.workload(&["cq-overflow"]);
    workload(&["pipe-read-before-write"]);

    // Events reach the analyzer within a poll interval and its reorder window.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (code, text) = get(port, "/metrics");
        assert_eq!(code, 200);
        let done = sum(
            &text,
            "uringtrace_findings_total",
            &[r#"rule="cq-overflow""#],
        ) >= 1.0
            && sum(
                &text,
                "uringtrace_requests_total",
                &[
                    r#"comm="uringtrace-work""#,
                    r#"opcode="NOP""#,
                    r#"result="ok""#,
                ],
            ) >= 1000.0 + 17.0;
        if done || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let work = r#"comm="uringtrace-work""#;
    // nop-storm's 1000 and cq-overflow's 17 NOPs at least (others may run workloads too).
    let nops = sum(
        &text,
        "uringtrace_requests_total",
        &[work, r#"opcode="NOP""#, r#"result="ok""#],
    );
    assert!(nops >= 1017.0, "{nops} NOPs\n{text}");
    // chain-broken-error: READ(fd -1) fails with EBADF.
    let bad_reads = sum(
        &text,
        "uringtrace_requests_total",
        &[work, r#"opcode="READ""#, r#"result="error""#],
    );
    assert!(bad_reads >= 1.0, "{text}");
    assert!(
        sum(&text, "uringtrace_cq_overflow_total", &[work]) >= 13.0,
        "{text}"
    );
    let in_cg = format!(r#"cgroup="{}""#, cg.label);
    assert!(
        sum(&text, "uringtrace_cq_overflow_total", &[work, &in_cg]) >= 13.0,
        "{in_cg}\n{text}"
    );
    assert!(
        sum(
            &text,
            "uringtrace_findings_total",
            &[r#"rule="cq-overflow""#, r#"severity="#]
        ) >= 1.0,
        "{text}"
    );
    let lat = sum(
        &text,
        "uringtrace_request_duration_seconds_count",
        &[work, r#"opcode="NOP""#],
    );
    assert!(lat >= 1017.0, "{text}");
    assert!(
        text.contains("# TYPE uringtrace_lost_events counter"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // Workload identity only: no pid label.
    assert!(!text.contains("pid="), "{text}");

    let (code, inv) = get(port, "/inventory");
    assert_eq!(code, 200);
    let inv: serde_json::Value = serde_json::from_str(&inv).unwrap();
    let ours: Vec<&serde_json::Value> = inv["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["comm"] == "uringtrace-work")
        .collect();
    assert!(!ours.is_empty(), "{inv:#}");
    let has = |field: &str, want: &dyn Fn(&str) -> bool| {
        ours.iter().any(|e| {
            e[field]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| want(v.as_str().unwrap()))
        })
    };
    assert!(has("opcodes", &|o| o == "NOP"), "{inv:#}");
    assert!(has("opcodes", &|o| o == "READ"), "{inv:#}");
    // cq-overflow's ring: IORING_SETUP_CQSIZE, in its cgroup.
    assert!(has("setup_flags", &|f| f.contains("CQSIZE")), "{inv:#}");
    assert!(
        ours.iter()
            .any(|e| e["cgroup"] == cg.label.as_str()
                && e["setup_flags"].to_string().contains("CQSIZE")),
        "{inv:#}"
    );
    // pipe-read-before-write: a READ held on a pipe is streamed with its fd (fast
    // requests are only counted in the kernel, with no fd).
    assert!(has("files", &|f| f.starts_with("pipe:")), "{inv:#}");

    // SIGTERM: a clean exit.
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) }, 0);
    let st = agent.0.wait().unwrap();
    assert!(st.success(), "{st}");
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("agent stopped (signal)"), "{rest}");

    let lines = std::fs::read_to_string(&findings).unwrap();
    let overflow: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["rule"] == "cq-overflow" && v["comm"] == "uringtrace-work")
        .collect();
    assert!(!overflow.is_empty(), "{lines}");
    let f = overflow
        .iter()
        .find(|f| f["cgroup"] == cg.label.as_str())
        .unwrap_or_else(|| panic!("no cq-overflow finding in {}:\n{lines}", cg.label));
    assert!(f["host"].as_str().is_some_and(|h| !h.is_empty()), "{f}");
    // Each finding once.
    let keys: std::collections::HashSet<String> = lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{} {} {} {}", v["rule"], v["pid"], v["ring"], v["message"])
        })
        .collect();
    assert_eq!(keys.len(), lines.lines().count(), "{lines}");
    assert!(f["evidence"].is_object() && f["ring"].is_string(), "{f}");
    let _ = std::fs::remove_file(&findings);
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The values of an instant query to Prometheus's HTTP API.
fn query(port: u16, q: &str) -> Vec<f64> {
    let (code, body) = get(port, &format!("/api/v1/query?query={}", url_encode(q)));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"][1].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Debian's `prometheus` server scrapes the agent every second: the rate of NOPs is
/// above 0 and the cq-overflow finding is counted, as Prometheus itself sees them.
#[test]
fn prometheus_scrapes_the_agent() {
    let Some(_g) = require_root("prometheus_scrapes_the_agent") else {
        return;
    };
    let (agent_port, prom_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("agent-prom-{prom_port}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: uringtrace\n    \
             static_configs: [{{targets: ['127.0.0.1:{agent_port}']}}]\n"
        ),
    )
    .unwrap();
    let mut agent = Agent(
        Command::new(UT)
            .args(["agent", "--listen", &format!("127.0.0.1:{agent_port}")])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(agent.0.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("metrics on http://"), "{line}");
    let _prom = Agent(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus not found: apt-get install prometheus (scripts/setup.sh does)"),
    );
    workload(&["cq-overflow"]);
    let rate = r#"sum(rate(uringtrace_requests_total{comm="uringtrace-work",opcode="NOP",result="ok"}[10s]))"#;
    let overflow = r#"sum(uringtrace_findings_total{rule="cq-overflow"})"#;
    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut r, mut f) = (vec![], vec![]);
    while Instant::now() < deadline {
        // Requests between scrapes, so that the counter rises within the window.
        workload(&["nop-storm", "--count", "1000"]);
        std::thread::sleep(Duration::from_millis(500));
        if TcpStream::connect(("127.0.0.1", prom_port)).is_err() {
            continue;
        }
        r = query(prom_port, rate);
        f = query(prom_port, overflow);
        if r.first().is_some_and(|v| *v > 0.0) && f.first().is_some_and(|v| *v >= 1.0) {
            break;
        }
    }
    assert!(r.first().is_some_and(|v| *v > 0.0), "{rate} = {r:?}");
    assert!(f.first().is_some_and(|v| *v >= 1.0), "{overflow} = {f:?}");
    eprintln!("prometheus: {rate} = {r:?}; {overflow} = {f:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The create event carries the creating task's cgroup v2 id, which is the inode
/// number of the cgroup's directory: what the agent resolves its `cgroup` label from.
#[test]
fn ring_creation_records_the_creators_cgroup() {
    use std::os::unix::fs::MetadataExt as _;
    use uringtrace_common::view::{Create, EventView as _};
    let Some(_g) = require_root("ring_creation_records_the_creators_cgroup") else {
        return;
    };
    let cg = FreshCgroup::new(&format!("uringtrace-create-{}", std::process::id()));
    let id = std::fs::metadata(&cg.dir).unwrap().ino();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.utr");
    let st = Command::new(UT)
        .args(["record", "-q", "-o"])
        .arg(&path)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "echo $$ > {} && exec {WORKLOAD} nop-storm --count 10",
            cg.dir.join("cgroup.procs").display()
        ))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{st}");
    let (_, events, _) = common::read_all(&path);
    let ids: Vec<u64> = events
        .iter()
        .filter(|e| e.comm.starts_with(b"uringtrace-work"))
        .filter_map(Create::of)
        .map(|c| c.cgroup_id)
        .collect();
    assert_eq!(ids, [id], "cgroup {} is inode {id}", cg.label);
}
