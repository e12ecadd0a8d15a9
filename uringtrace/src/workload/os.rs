//! Plain OS resources the scenarios feed to io_uring: buffers, pipes, sockets,
//! eventfds, temp files.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use anyhow::{Context as _, Result};

/// A buffer the kernel may write into. Leaked on purpose: if a scenario bails
/// while a request is in flight, the kernel may still own the memory after the
/// ring is closed, and the process is short-lived anyway.
pub(crate) fn leaked_buffer(len: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; len].into_boxed_slice())
}

/// A pipe as (read end, write end), close-on-exec.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// write(2) all of `data` to `fd` from userspace.
pub(crate) fn write_all(fd: &OwnedFd, data: &[u8]) -> Result<()> {
    let mut done = 0;
    while done < data.len() {
        let rest = &data[done..];
        // SAFETY: rest is a valid, initialised slice for the duration of the call.
        let n = unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err).with_context(|| format!("write to fd {}", fd.as_raw_fd()));
        }
        done += n as usize;
    }
    Ok(())
}

/// A connected TCP pair on 127.0.0.1 as (client, server end). The connect
/// completes through the listen backlog, so no thread is needed.
pub(crate) fn tcp_pair() -> Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind a TCP listener on 127.0.0.1")?;
    let addr = listener.local_addr().context("listener address")?;
    let client = TcpStream::connect(addr).context("connect to the loopback listener")?;
    let (server, _) = listener
        .accept()
        .context("accept the loopback connection")?;
    Ok((client, server))
}

/// An eventfd with counter 0, close-on-exec.
pub(crate) fn eventfd() -> Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("eventfd");
    }
    // SAFETY: eventfd succeeded, so fd is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new, empty regular file in the temp directory, unlinked at once: it is
/// gone when the returned handle is dropped, even if the scenario bails.
pub(crate) fn unlinked_temp_file(tag: &str) -> Result<File> {
    let path =
        std::env::temp_dir().join(format!("uringtrace-workload-{}-{tag}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    std::fs::remove_file(&path).with_context(|| format!("unlink {}", path.display()))?;
    Ok(file)
}

/// Milliseconds since `start`.
pub(crate) fn ms_since(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}
