//! Processes that come and go while traced: fork, exec and exit mid-trace.

use std::ffi::CString;
use std::io::Write as _;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use io_uring::opcode;

use super::{Report, Ring, RingOpts};

/// NOPs on `ring`, user_data `first..first + n`, all reaped.
fn nops(ring: &mut Ring, first: u64, n: u64) -> Result<u64> {
    {
        let mut sq = ring.uring.submission();
        for ud in first..first + n {
            let sqe = opcode::Nop::new().build().user_data(ud);
            // SAFETY: NOP references no memory; n is below the SQ size.
            unsafe { sq.push(&sqe) }.context("submission queue unexpectedly full")?;
        }
    }
    let accepted = ring.uring.submit().context("io_uring_enter(submit NOPs)")? as u64;
    let mut cqes = Vec::new();
    ensure!(
        ring.reap(n as usize, Duration::from_secs(2), &mut cqes)?,
        "only {} of {n} NOPs completed within 2 s",
        cqes.len()
    );
    Ok(accepted)
}

/// The parent: 3 NOPs on its ring, then a fork. The child opens a ring for 2 NOPs
/// (user_data 101, 102) and keeps it open, runs chain-broken-error on another ring
/// (printing that scenario's JSON line), then execs
/// `/proc/self/exe nop-storm --count 40 --batch 8 --entries 8` (same pid, comm `exe`,
/// a new ring: the old one is closed by the exec) and exits. The parent waits for
/// it, then submits 5 more NOPs (user_data 4..=8).
pub fn fork_exec() -> Result<Report> {
    let mut ring = Ring::new(RingOpts::entries(8))?;
    let mut submitted = nops(&mut ring, 1, 3)?;
    let _ = std::io::stdout().flush();
    let exe = CString::new("/proc/self/exe").context("exe path")?;
    let args: Vec<CString> = [
        "exe",
        "nop-storm",
        "--count",
        "40",
        "--batch",
        "8",
        "--entries",
        "8",
    ]
    .iter()
    .map(|a| CString::new(*a).context("argument"))
    .collect::<Result<_>>()?;
    // SAFETY: the workload is single-threaded here; the child only runs Rust code
    // that a fresh single-threaded process may run, then execs or exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if child == 0 {
        // A ring left open for the exec to close: 2 NOPs (user_data 101, 102).
        let kept =
            Ring::new(RingOpts::entries(4)).and_then(|mut r| nops(&mut r, 101, 2).map(|_| r));
        let code = match super::basic::chain_broken_error()
            .and_then(|r| Ok((r, kept?)))
            .and_then(|(r, kept)| {
                std::mem::forget(kept);
                serde_json::to_string(&r).context("JSON")
            }) {
            Ok(line) => {
                println!("{line}");
                let _ = std::io::stdout().flush();
                let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
                argv.push(std::ptr::null());
                // SAFETY: exe and argv are NUL-terminated strings, argv ends with NULL;
                // they live until execv returns (only on failure).
                unsafe { libc::execv(exe.as_ptr(), argv.as_ptr()) };
                eprintln!("fork-exec: execv: {}", std::io::Error::last_os_error());
                127
            }
            Err(e) => {
                eprintln!("fork-exec: child: {e:#}");
                1
            }
        };
        // SAFETY: ends the child without running the parent's exit handlers twice.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; status is a valid pointer.
    if unsafe { libc::waitpid(child, &mut status, 0) } != child {
        return Err(std::io::Error::last_os_error()).context("waitpid");
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("the child (pid {child}) failed: wait status {status:#x}");
    }
    submitted += nops(&mut ring, 4, 5)?;
    let mut report = Report::new("fork-exec").ring(&ring);
    report.submitted = Some(submitted);
    report.completed = Some(submitted);
    report.as_expected = submitted == 8;
    Ok(report)
}
