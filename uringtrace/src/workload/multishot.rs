//! Multishot RECV fed from a provided buffer ring.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use io_uring::{cqueue, opcode, types};

use super::{leaked_buffer, write_all, Cqe, Report, Ring, RingOpts};

const BGID: u16 = 1;
const NBUFS: u16 = 2;
const BUF_LEN: usize = 64;
const MSG_LEN: usize = 16;
const MESSAGES: usize = 3;

/// Page-aligned memory for a buffer ring (struct io_uring_buf_ring).
struct BufRingMem {
    ptr: *mut types::BufRingEntry,
    len: usize,
}

impl BufRingMem {
    fn new(entries: u16) -> Result<Self> {
        let len = (usize::from(entries) * std::mem::size_of::<types::BufRingEntry>()).max(4096);
        // SAFETY: fresh anonymous mapping; the kernel requires page alignment,
        // which mmap guarantees, and zero-fills it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error()).context("mmap for the buffer ring");
        }
        Ok(BufRingMem {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for BufRingMem {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in new() with this length.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("socketpair(AF_UNIX, SOCK_STREAM)");
    }
    // SAFETY: socketpair succeeded; both fds are ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// One multishot RECV (IORING_RECV_MULTISHOT, buffer group 1) on a socket with
/// a registered buffer ring of 2 x 64-byte buffers. The peer sends 3 x 16
/// bytes with pauses. Each CQE consumes a buffer that is never given back, so
/// messages 1 and 2 post res 16 with F_BUFFER|F_MORE (buffer id in the upper
/// 16 flag bits), and message 3 finds the ring empty: the request terminates
/// with -ENOBUFS and no F_MORE.
pub fn multishot_recv() -> Result<Report> {
    let (sock, peer) = socketpair()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;

    let mem = BufRingMem::new(NBUFS)?;
    let bufs = leaked_buffer(usize::from(NBUFS) * BUF_LEN);
    for bid in 0..NBUFS {
        // SAFETY: bid < NBUFS entries fit in the mapping; it is zeroed memory
        // of plain integers the kernel does not read until registration.
        let entry = unsafe { &mut *mem.ptr.add(usize::from(bid)) };
        entry.set_addr(bufs[usize::from(bid) * BUF_LEN..].as_mut_ptr() as u64);
        entry.set_len(BUF_LEN as u32);
        entry.set_bid(bid);
    }
    // SAFETY: the tail shares entry 0's `resv` slot and is read by the kernel
    // concurrently, hence the atomic release store.
    unsafe {
        (*(types::BufRingEntry::tail(mem.ptr) as *const AtomicU16)).store(NBUFS, Ordering::Release)
    };
    // SAFETY: the mapping and the buffers outlive the registration: the group
    // is unregistered and the ring closed before `mem` is dropped, and the
    // buffers are leaked.
    unsafe {
        ring.uring
            .submitter()
            .register_buf_ring_with_flags(mem.ptr as u64, NBUFS, BGID, 0)
    }
    .context("IORING_REGISTER_PBUF_RING (needs Linux 5.19+)")?;

    let recv = opcode::RecvMulti::new(types::Fd(sock.as_raw_fd()), BGID)
        .build()
        .user_data(1);
    // SAFETY: the request only writes into the registered, leaked buffers.
    unsafe { ring.push(&[recv])? };
    let enter_ret = ring
        .uring
        .submit()
        .context("io_uring_enter(submit RecvMulti)")?;

    let mut cqes: Vec<Cqe> = Vec::new();
    for i in 0..MESSAGES {
        let msg = format!("message-{i:08}");
        debug_assert_eq!(msg.len(), MSG_LEN);
        write_all(&peer, msg.as_bytes())?;
        // Wait for this message's CQE before sending the next, so messages
        // never merge in the socket into one receive.
        ring.reap(1, Duration::from_millis(200), &mut cqes)?;
    }
    // A CQE without F_MORE is the request's last: it is no longer armed.
    let terminated = |cqes: &[Cqe]| cqes.last().is_some_and(|c| !cqueue::more(c.flags));
    let deadline = Instant::now() + Duration::from_secs(2);
    while !terminated(&cqes) && Instant::now() < deadline {
        ring.reap(1, Duration::from_millis(100), &mut cqes)?;
    }
    let terminated = terminated(&cqes);
    if !terminated {
        // Not what the design expects; cancel so the ring closes cleanly.
        eprintln!(
            "multishot-recv: request still armed after {} CQEs; cancelling",
            cqes.len()
        );
        // SAFETY: an AsyncCancel references no memory.
        unsafe { ring.push(&[opcode::AsyncCancel::new(1).build().user_data(2)])? };
        ring.uring.submit().context("submit AsyncCancel")?;
        ring.reap(2, Duration::from_millis(500), &mut cqes)?;
    }

    ring.uring
        .submitter()
        .unregister_buf_ring(BGID)
        .context("unregister buffer ring")?;
    let mut report = Report::new("multishot-recv").ring(&ring);
    drop(ring);
    drop(mem);
    if cqes.is_empty() {
        bail!("multishot RECV posted no CQE at all");
    }

    let results: Vec<i32> = cqes.iter().map(|c| c.res).collect();
    let expected = vec![MSG_LEN as i32, MSG_LEN as i32, -libc::ENOBUFS];
    // Buffers are handed out in ring order: message 1 gets bid 0, message 2 bid 1.
    let got_buffer = |i: usize, bid: u16| {
        cqueue::buffer_select(cqes[i].flags) == Some(bid) && cqueue::more(cqes[i].flags)
    };
    report.as_expected = terminated && results == expected && got_buffer(0, 0) && got_buffer(1, 1);
    report.submitted = Some(enter_ret as u64);
    report.enter_ret = Some(enter_ret as i64);
    report.completed = Some(cqes.len() as u64);
    report.user_data = Some(cqes.iter().map(|c| c.user_data).collect());
    report.results = Some(results);
    report.expected_results = Some(expected);
    report.completions = Some(cqes);
    report.buf_group = Some(BGID);
    report.buffers = Some(u32::from(NBUFS));
    Ok(report)
}
