//! Running tools and reading the machine: child processes with their max RSS,
//! waiting for idle CPUs, tool versions, and the root lock that keeps eBPF runs from
//! overlapping.

use super::*;

/// Runs `cmd` to completion (killed after `timeout`), with stdout and stderr
/// captured in files, its wall time and its peak RSS (wait4).
pub(super) fn execute(
    tool: &str,
    cmd: &mut Command,
    timeout: Duration,
    work: &Path,
) -> anyhow::Result<Finished> {
    let (out_path, err_path) = (work.join("stdout.txt"), work.join("stderr.txt"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {tool} ({cmd:?})"))?;
    let pid = child.id() as libc::pid_t;
    let (done, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let expired = matches!(
            done_rx.recv_timeout(timeout),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if expired {
            // SAFETY: plain kill(2) of our own child, not yet reaped (we are blocked in wait4).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        expired
    });
    let waited = wait4(pid);
    let wall = start.elapsed();
    drop(done);
    let timed_out = watchdog.join().unwrap_or(false);
    let (status, max_rss_bytes) = waited.with_context(|| format!("waiting for {tool}"))?;
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    if timed_out {
        bail!(
            "{tool} did not finish within {} s and was killed ({cmd:?})",
            timeout.as_secs()
        );
    }
    if !status.success() {
        bail!("{tool} failed ({status}): {}", error_summary(&stderr));
    }
    Ok(Finished {
        stdout,
        stderr,
        wall,
        max_rss_bytes,
        busy_before: 0.0,
        other_tracer: None,
    })
}

/// Waits up to `max` for the CPUs to be mostly idle (other engineers' builds,
/// cleanup of the previous run) and for other tracers to exit; returns the busy
/// share seen last and a tracer still running.
pub(super) fn wait_for_quiet(max: Duration) -> (f64, Option<String>) {
    let deadline = Instant::now() + max;
    loop {
        let busy = cpu_busy(Duration::from_millis(250));
        let tracer = other_tracer();
        if busy < QUIET && tracer.is_none() {
            return (busy, None);
        }
        if Instant::now() >= deadline {
            let done = match max.is_zero() {
                true => " (done waiting for quiet in this run)",
                false => "",
            };
            match &tracer {
                Some(t) => progress(&format!(
                    "another tracer is running ({t}); measuring anyway{done}"
                )),
                None => progress(&format!(
                    "other processes keep {:.0}% of the CPUs busy; measuring anyway{done}",
                    busy * 100.0
                )),
            }
            return (busy, tracer);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A uringtrace or bpftrace process not started by this bench (none of ours
/// runs between measurements): its programs would tax the untraced runs too.
pub(super) fn other_tracer() -> Option<String> {
    let me = std::process::id();
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let exe = fs::read_link(entry.path().join("exe")).ok()?;
        let name = exe.file_name()?.to_str()?;
        let tracer =
            name == "bpftrace" || (name.starts_with("uringtrace") && name != "uringtrace-workload");
        (tracer && pid != me).then(|| format!("pid {pid}, {}", exe.display()))
    })
}

/// Share of all CPUs busy (not idle or waiting for I/O) over `span`, from /proc/stat.
pub(super) fn cpu_busy(span: Duration) -> f64 {
    pub(super) fn sample() -> Option<(u64, u64)> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let f: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let total: u64 = f.iter().take(8).sum();
        Some((total, f.get(3)? + f.get(4)?))
    }
    let Some((t0, i0)) = sample() else { return 0.0 };
    std::thread::sleep(span);
    let Some((t1, i1)) = sample() else { return 0.0 };
    let total = t1.saturating_sub(t0).max(1);
    1.0 - i1.saturating_sub(i0) as f64 / total as f64
}

/// Reaps `pid`: its exit status and peak resident set size in bytes.
pub(super) fn wait4(pid: libc::pid_t) -> anyhow::Result<(ExitStatus, u64)> {
    let mut status = 0;
    // SAFETY: rusage is plain integers, so all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((ExitStatus::from_raw(status), usage.ru_maxrss as u64 * 1024));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
}

/// The line of a failed tool's stderr that says what went wrong: the first
/// one mentioning an error (a verifier log can follow it), else the last
/// lines; cut to a readable length.
pub(super) fn error_summary(stderr: &str) -> String {
    const MAX: usize = 400;
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let text = match lines
        .iter()
        .find(|l| l.to_ascii_lowercase().contains("error"))
    {
        Some(l) => l.to_string(),
        None => lines[lines.len().saturating_sub(3)..].join(" | "),
    };
    match text.char_indices().nth(MAX) {
        _ if text.is_empty() => "(nothing on stderr)".into(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

pub(super) fn tool_name(path: &std::ffi::OsStr) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
        .into_owned()
}

/// `tool --version`'s first line, or why the tool cannot be used.
pub(super) fn tool_version(tool: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(tool).args(args).output() {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            Ok(text.lines().next().unwrap_or("").trim().to_string())
        }
        Ok(o) => Err(format!("`{tool} --version` failed ({})", o.status)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "{} is not installed; {INSTALL_HINT}",
            tool_name(tool.as_ref())
        )),
        Err(e) => Err(format!("cannot run {tool}: {e}")),
    }
}

/// Which `--kernel-mode` values `diagnose` accepts, and `--attach tracepoint`.
/// `floor` is hidden from --help, so it is probed: clap checks the value before
/// acting on --help.
pub(super) fn kernel_modes(ut: &Path) -> KernelModes {
    let accepts = |option: &str, value: &str| {
        Command::new(ut)
            .args(["diagnose", option, value, "--help"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    KernelModes {
        aggregate: accepts("--kernel-mode", "aggregate"),
        floor: accepts("--kernel-mode", "floor"),
        attach_tracepoint: accepts("--attach", "tracepoint"),
        stats_json: accepts("--stats-json", "/dev/null"),
    }
}

/// `flock` on ROOT_LOCK for the whole bench, unless a parent process (e.g.
/// `flock /tmp/ut-root.lock cargo xtask bench`) already holds it for us.
pub(super) struct RootLock {
    pub(super) _file: Option<File>,
}

impl RootLock {
    pub(super) fn acquire() -> anyhow::Result<RootLock> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(ROOT_LOCK)
            .with_context(|| format!("opening {ROOT_LOCK}"))?;
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            return Ok(RootLock { _file: Some(file) });
        }
        let ino = file.metadata()?.ino();
        if let Some(pid) = lock_holder_among_ancestors(ino) {
            progress(&format!(
                "{ROOT_LOCK} is held by pid {pid}, a parent of this process"
            ));
            return Ok(RootLock { _file: None });
        }
        progress(&format!(
            "waiting for {ROOT_LOCK} (another eBPF run holds it)"
        ));
        ensure!(
            flock(&file, libc::LOCK_EX),
            "flock {ROOT_LOCK}: {}",
            std::io::Error::last_os_error()
        );
        Ok(RootLock { _file: Some(file) })
    }
}

pub(super) fn flock(file: &File, op: libc::c_int) -> bool {
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// A pid holding a flock on inode `ino` (per /proc/locks) that is one of our ancestors.
pub(super) fn lock_holder_among_ancestors(ino: u64) -> Option<u32> {
    let locks = fs::read_to_string("/proc/locks").ok()?;
    let holders: Vec<u32> = locks
        .lines()
        .filter_map(|l| {
            // "1: FLOCK  ADVISORY  WRITE 21766 fe:00:10010720 0 EOF"
            let f: Vec<&str> = l.split_whitespace().collect();
            let file_ino: u64 = f.get(5)?.rsplit(':').next()?.parse().ok()?;
            (f.get(1) == Some(&"FLOCK") && file_ino == ino).then(|| f[4].parse().ok())?
        })
        .collect();
    let mut pid = std::process::id();
    while pid > 1 {
        pid = parent_pid(pid)?;
        if holders.contains(&pid) {
            return Some(pid);
        }
    }
    None
}

pub(super) fn parent_pid(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:")?.trim().parse().ok())
}

pub(super) fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub(super) fn cpuinfo_model() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| {
            Some(
                l.strip_prefix("model name")?
                    .split_once(':')?
                    .1
                    .trim()
                    .to_string(),
            )
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub(super) fn mem_total_gib() -> f64 {
    let info = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: f64 = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    (kib / (1 << 20) as f64 * 10.0).round() / 10.0
}

/// The current UTC time formatted with strftime(3).
pub(super) fn utc_now(format: &str) -> String {
    let fmt = std::ffi::CString::new(format).unwrap_or_default();
    let mut buf = [0u8; 64];
    // SAFETY: time/gmtime_r/strftime with valid pointers; strftime bounds its output by buf.len().
    let n = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&t, &mut tm);
        libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm)
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_summary_prefers_the_error_line() {
        let s = "uringtrace: error: loading failed. Verifier output: 0: R1=ctx()\n1: r1 >>= 20\n";
        assert_eq!(
            error_summary(s),
            "uringtrace: error: loading failed. Verifier output: 0: R1=ctx()"
        );
        assert_eq!(error_summary("a\nb\nc\nd\n"), "b | c | d");
        assert_eq!(error_summary(""), "(nothing on stderr)");
    }

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let why = tool_version("uringtrace-bench-no-such-tool", &["--version"]).unwrap_err();
        assert!(
            why.contains("not installed") && why.contains("apt-get install"),
            "{why}"
        );
    }
}
