//! The host tax's context-switch workload: two processes pinned to one CPU pass
//! a byte back and forth over two pipes, so every round trip is two wake-ups
//! and two context switches. Run as `xtask bench-pingpong` (hidden) so that it
//! is a process of its own the tracers can start.

use std::time::Instant;

use anyhow::{bail, ensure, Context as _};

/// Times `round_trips` round trips on `cpu` and prints
/// `ping-pong: N round trips in X s on CPU C` on stderr.
pub fn run(round_trips: u64, cpu: usize) -> anyhow::Result<()> {
    pin(cpu).with_context(|| format!("pinning to CPU {cpu}"))?;
    let (to_child, from_parent) = pipe()?;
    let (to_parent, from_child) = pipe()?;
    // SAFETY: this process is single-threaded (xtask's main thread only), so the
    // child may run any code; it only reads, writes and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        let mut ok = true;
        for _ in 0..round_trips {
            ok = read_byte(from_parent) && write_byte(to_parent);
            if !ok {
                break;
            }
        }
        // SAFETY: leaving the child without running the parent's exit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let start = Instant::now();
    let mut done = 0;
    while done < round_trips && write_byte(to_child) && read_byte(from_child) {
        done += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut status = 0;
    // SAFETY: reaping our own child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        bail!("waitpid: {}", std::io::Error::last_os_error());
    }
    ensure!(
        done == round_trips && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "ping-pong stopped after {done} of {round_trips} round trips (child status {status})"
    );
    eprintln!("ping-pong: {round_trips} round trips in {secs:.6} s on CPU {cpu}");
    Ok(())
}

fn pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; CPU_SET bounds-checks `cpu`
    // against its size in the libc crate.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn pipe() -> anyhow::Result<(libc::c_int, libc::c_int)> {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe");
    }
    Ok((fds[1], fds[0]))
}

fn write_byte(fd: libc::c_int) -> bool {
    loop {
        // SAFETY: writing one byte from a live local.
        match unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) } {
            1 => return true,
            -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
}

fn read_byte(fd: libc::c_int) -> bool {
    let mut b = 0u8;
    loop {
        // SAFETY: reading one byte into a live local.
        match unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) } {
            1 => return true,
            -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
}
