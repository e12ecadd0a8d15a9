//! TCP servers as real programs run them: requests that wait for a peer,
//! sometimes for longer than the tool's stall threshold, which is normal, and
//! peers that go away, which breaks chains for a good reason.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::null_mut;
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use io_uring::{cqueue, opcode, squeue, squeue::Flags, types::Fd};

use super::{
    eventfd, leaked_buffer, ms_since, results_for, tcp_pair, write_all, Cqe, Report, Ring, RingOpts,
};

const ECANCELED: i32 = -libc::ECANCELED;

fn accept(listener: &TcpListener, ud: u64) -> squeue::Entry {
    opcode::Accept::new(Fd(listener.as_raw_fd()), null_mut(), null_mut())
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(ud)
}

/// Takes ownership of the fd an ACCEPT returned, so it is closed at the end.
fn accepted(res: i32, what: &str) -> Result<OwnedFd> {
    ensure!(res >= 0, "{what} failed with {res}");
    // SAFETY: a successful ACCEPT installed a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(res) })
}

/// Threads joined inside a scope return their own errors; a panic is one too.
fn joined<T>(handle: thread::ScopedJoinHandle<'_, Result<T>>, who: &str) -> Result<T> {
    handle
        .join()
        .map_err(|_| anyhow!("{who} thread panicked"))?
}

/// A server at rest, as epoll-style servers sit most of their life:
///
/// 1. ACCEPT (ud 1) on a 127.0.0.1 listener; a client connects at once and
///    the ACCEPT completes with the new connection's fd.
/// 2. RECV(connection, 64) (ud 2), POLL_ADD(eventfd, POLLIN) (ud 3) and a
///    second ACCEPT (ud 4) are submitted together, and the server blocks in
///    one io_uring_enter(GETEVENTS, min_complete = 3) while nothing happens
///    for 1.5 s, longer than the tool's stall threshold.
/// 3. A client thread then sends 16 bytes (RECV completes with 16), adds 1 to
///    the eventfd (POLL_ADD completes with the POLLIN mask, 1) and opens a
///    second connection (ACCEPT completes with its fd).
///
/// Nothing here is stuck: every request waits on an outside event that comes.
/// ACCEPT results are fds, so expected_results is not set; `as_expected`
/// checks them for >= 0 and the rest exactly.
pub fn idle_server() -> Result<Report> {
    const IDLE: Duration = Duration::from_millis(1500);
    const REQUEST: &[u8; 16] = b"PING idle-server";
    let start = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").context("bind a TCP listener")?;
    let addr = listener.local_addr().context("listener address")?;
    let efd = eventfd()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;

    // SAFETY: ACCEPT writes no peer address (null pointers).
    unsafe { ring.push(&[accept(&listener, 1)])? };
    let mut submitted = ring.uring.submit().context("io_uring_enter(ACCEPT)")? as u64;
    let client1 = TcpStream::connect(addr).context("connect client 1")?;
    let mut cqes = Vec::new();
    if !ring.reap(1, Duration::from_secs(2), &mut cqes)? {
        bail!("the first ACCEPT did not complete after the client connected");
    }
    let conn1 = accepted(cqes[0].res, "first ACCEPT")?;

    let buf = leaked_buffer(64);
    let sqes = [
        opcode::Recv::new(Fd(conn1.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .user_data(2),
        opcode::PollAdd::new(Fd(efd.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(3),
        accept(&listener, 4),
    ];
    // SAFETY: the RECV buffer is leaked; the fds outlive the ring (declared
    // before it, and the ring is dropped first at the end of the scope).
    unsafe { ring.push(&sqes)? };
    submitted += ring
        .uring
        .submit()
        .context("io_uring_enter(RECV, POLL_ADD, ACCEPT)")? as u64;

    let (wait, client2) = thread::scope(|s| -> Result<_> {
        let client = s.spawn(|| -> Result<(TcpStream, TcpStream)> {
            sleep(IDLE);
            let mut client1 = client1;
            client1.write_all(REQUEST).context("client 1 send")?;
            write_all(&efd, &1u64.to_ne_bytes())?;
            let client2 = TcpStream::connect(addr).context("connect client 2")?;
            Ok((client1, client2))
        });
        // A server blocks until work arrives; the timeout only bounds a bug.
        let wait = ring.timed_wait(3, Duration::from_secs(4), "RECV, POLL_ADD, ACCEPT")?;
        let clients = joined(client, "client")?;
        Ok((wait, clients))
    })?;
    if !ring.reap(4 - cqes.len().min(4), Duration::from_secs(2), &mut cqes)? {
        bail!("not every request completed after the client acted: {cqes:?}");
    }
    let user_data = vec![1, 2, 3, 4];
    let results = results_for(&user_data, &cqes)?;
    let conn2 = accepted(results[3], "second ACCEPT")?;
    drop((conn1, conn2, client2));

    let mut report = Report::new("idle-server").ring(&ring);
    report.as_expected = results[0] >= 0
        && results[1] == REQUEST.len() as i32
        && buf[..REQUEST.len()] == REQUEST[..]
        && results[2] == i32::from(libc::POLLIN)
        && results[3] >= 0
        && wait.ms >= IDLE.as_millis() as u64 * 9 / 10;
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.user_data = Some(user_data);
    report.results = Some(results);
    report.waits = Some(vec![wait]);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// Four SEND_ZC requests (ud 1..4) of 4 KiB each on a TCP loopback
/// connection, submitted together. Each posts two CQEs: the send result
/// (res 4096, IORING_CQE_F_MORE set, since a notification follows), then the
/// notification that the kernel no longer uses the buffer (res 0,
/// IORING_CQE_F_NOTIF). The peer reads all 16 KiB.
///
/// `user_data`/`results` list each member's two CQEs in the order they came.
pub fn send_zc() -> Result<Report> {
    const SENDS: usize = 4;
    const LEN: usize = 4096;
    let start = Instant::now();
    let (client, mut server) = tcp_pair()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;

    let data = leaked_buffer(SENDS * LEN);
    for (i, chunk) in data.chunks_mut(LEN).enumerate() {
        chunk.fill(b'a' + i as u8);
    }
    let sqes: Vec<_> = data
        .chunks(LEN)
        .zip(1u64..)
        .map(|(chunk, ud)| {
            opcode::SendZc::new(Fd(client.as_raw_fd()), chunk.as_ptr(), LEN as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(ud)
        })
        .collect();
    // SAFETY: the payload is leaked, so it outlives the notifications.
    unsafe { ring.push(&sqes)? };
    let submitted = ring.uring.submit().context("io_uring_enter(SEND_ZC x4)")?;

    server
        .set_read_timeout(Some(Duration::from_secs(2)))
        .context("SO_RCVTIMEO on the peer")?;
    let mut got = vec![0u8; SENDS * LEN];
    server
        .read_exact(&mut got)
        .context("peer reading the SEND_ZC payload")?;

    let mut cqes = Vec::new();
    if !ring.reap(2 * SENDS, Duration::from_secs(2), &mut cqes)? {
        bail!(
            "only {} of {} SEND_ZC CQEs arrived: {cqes:?}",
            cqes.len(),
            2 * SENDS
        );
    }
    // Order per member; members may interleave.
    let mut user_data = Vec::new();
    let mut results = Vec::new();
    let mut well_formed = true;
    for ud in 1..=SENDS as u64 {
        let mine: Vec<&Cqe> = cqes.iter().filter(|c| c.user_data == ud).collect();
        well_formed &= mine.len() == 2
            && cqueue::more(mine[0].flags)
            && !cqueue::notif(mine[0].flags)
            && cqueue::notif(mine[1].flags)
            && !cqueue::more(mine[1].flags);
        for c in mine {
            user_data.push(ud);
            results.push(c.res);
        }
    }
    let expected: Vec<i32> = (0..SENDS).flat_map(|_| [LEN as i32, 0]).collect();
    let mut report = Report::new("send-zc")
        .ring(&ring)
        .members(user_data, results, expected);
    report.as_expected &= well_formed && got[..] == data[..];
    report.submitted = Some(submitted as u64);
    report.completed = Some(cqes.len() as u64);
    report.peer_received = Some(got.len() as u64);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// A keep-alive server handling one request with a linked pair on its
/// connection: RECV(conn, 64, MSG_WAITALL) (ud 1) -IO_LINK-> SEND(conn, 128-byte
/// response) (ud 2), submitted while the client is idle. The client sends its
/// 64-byte request only after 1.3 s; the RECV completes in full (64, so the
/// link holds), the SEND runs (128) and the client reads the response. The
/// server blocks in one io_uring_enter(GETEVENTS, min_complete = 2) all along.
pub fn keepalive_chain() -> Result<Report> {
    const IDLE: Duration = Duration::from_millis(1300);
    const REQUEST: &[u8; 64] = &[b'q'; 64];
    static RESPONSE: [u8; 128] = [b'r'; 128];
    let start = Instant::now();
    let (client, server) = tcp_pair()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;

    let req_buf = leaked_buffer(REQUEST.len());
    let sqes = [
        opcode::Recv::new(
            Fd(server.as_raw_fd()),
            req_buf.as_mut_ptr(),
            req_buf.len() as u32,
        )
        .flags(libc::MSG_WAITALL)
        .build()
        .flags(Flags::IO_LINK)
        .user_data(1),
        opcode::Send::new(
            Fd(server.as_raw_fd()),
            RESPONSE.as_ptr(),
            RESPONSE.len() as u32,
        )
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(2),
    ];
    // SAFETY: the RECV buffer is leaked and the response is static.
    unsafe { ring.push(&sqes)? };
    let submitted = ring
        .uring
        .submit()
        .context("io_uring_enter(RECV -> SEND)")?;

    let (wait, response) = thread::scope(|s| -> Result<_> {
        let client = s.spawn(|| -> Result<Vec<u8>> {
            let mut client = client;
            sleep(IDLE);
            client.write_all(REQUEST).context("client send")?;
            client
                .set_read_timeout(Some(Duration::from_secs(2)))
                .context("SO_RCVTIMEO on the client")?;
            let mut response = vec![0u8; RESPONSE.len()];
            client
                .read_exact(&mut response)
                .context("client reading the response")?;
            Ok(response)
        });
        let wait = ring.timed_wait(2, Duration::from_secs(4), "RECV -> SEND")?;
        Ok((wait, joined(client, "client")?))
    })?;
    let mut cqes = Vec::new();
    if !ring.reap(2, Duration::from_secs(2), &mut cqes)? {
        bail!("the RECV -> SEND pair did not finish: {cqes:?}");
    }
    let user_data = vec![1, 2];
    let results = results_for(&user_data, &cqes)?;
    let mut report = Report::new("keepalive-chain").ring(&ring).members(
        user_data,
        results,
        vec![REQUEST.len() as i32, RESPONSE.len() as i32],
    );
    report.as_expected &= req_buf[..] == REQUEST[..]
        && response[..] == RESPONSE[..]
        && wait.ms >= IDLE.as_millis() as u64 * 9 / 10;
    report.submitted = Some(submitted as u64);
    report.completed = Some(cqes.len() as u64);
    report.waits = Some(vec![wait]);
    report.peer_received = Some(response.len() as u64);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}

/// Close a TCP socket with SO_LINGER {on, 0}: the kernel sends RST instead of FIN.
fn reset(stream: TcpStream) -> Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: linger is a valid struct linger for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("setsockopt(SO_LINGER 0)");
    }
    drop(stream);
    Ok(())
}

/// Block (outside io_uring) until the peer's RST has been processed on `fd`.
fn wait_for_reset(fd: RawFd) -> Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 2000) };
    ensure!(
        n == 1 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0,
        "the peer's reset did not arrive (poll returned {n}, revents {:#x})",
        pfd.revents
    );
    Ok(())
}

/// Chains broken by a peer that goes away, as any server sees daily:
///
/// 1. Connection 1: RECV(64) (ud 1) -IO_LINK-> SEND(response) (ud 2). After a
///    100 ms wait that sees nothing, the peer closes with SO_LINGER 0, so an
///    RST arrives: the RECV fails with -ECONNRESET (-104) and the SEND is
///    cancelled (-125).
/// 2. Connection 2: the peer resets it first; then two chains
///    SEND(MSG_NOSIGNAL) -IO_LINK-> NOP are submitted together (ud 3, 4 and
///    5, 6). The first SEND consumes the socket's pending error and gets
///    -ECONNRESET; the second finds the socket shut down and gets -EPIPE (-32),
///    with no SIGPIPE thanks to MSG_NOSIGNAL. Both NOPs are cancelled.
pub fn chain_reset() -> Result<Report> {
    static RESPONSE: [u8; 32] = [b'r'; 32];
    let start = Instant::now();
    let (client1, server1) = tcp_pair()?;
    let (client2, server2) = tcp_pair()?;
    let mut ring = Ring::new(RingOpts::entries(8))?;

    let buf = leaked_buffer(64);
    let send = |fd: RawFd, ud: u64, flags: Flags| {
        opcode::Send::new(Fd(fd), RESPONSE.as_ptr(), RESPONSE.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .flags(flags)
            .user_data(ud)
    };
    let sqes = [
        opcode::Recv::new(Fd(server1.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .flags(Flags::IO_LINK)
            .user_data(1),
        send(server1.as_raw_fd(), 2, Flags::empty()),
    ];
    // SAFETY: the RECV buffer is leaked and the response is static.
    unsafe { ring.push(&sqes)? };
    let mut submitted = ring
        .uring
        .submit()
        .context("io_uring_enter(RECV -> SEND)")? as u64;
    let wait = ring.timed_wait(1, Duration::from_millis(100), "RECV, quiet peer")?;
    reset(client1)?;
    let mut cqes = Vec::new();
    if !ring.reap(2, Duration::from_secs(2), &mut cqes)? {
        bail!("RECV -> SEND did not finish after the reset: {cqes:?}");
    }

    reset(client2)?;
    wait_for_reset(server2.as_raw_fd())?;
    let nop = |ud: u64| opcode::Nop::new().build().user_data(ud);
    let sqes = [
        send(server2.as_raw_fd(), 3, Flags::IO_LINK),
        nop(4),
        send(server2.as_raw_fd(), 5, Flags::IO_LINK),
        nop(6),
    ];
    // SAFETY: the response is static.
    unsafe { ring.push(&sqes)? };
    submitted += ring
        .uring
        .submit()
        .context("io_uring_enter(2 x SEND -> NOP)")? as u64;
    if !ring.reap(4, Duration::from_secs(2), &mut cqes)? {
        bail!("SEND -> NOP chains did not finish: {cqes:?}");
    }

    let user_data: Vec<u64> = (1..=6).collect();
    let results = results_for(&user_data, &cqes)?;
    let (econnreset, epipe) = (-libc::ECONNRESET, -libc::EPIPE);
    let expected = vec![
        econnreset, ECANCELED, econnreset, ECANCELED, epipe, ECANCELED,
    ];
    let mut report = Report::new("chain-reset")
        .ring(&ring)
        .members(user_data, results, expected);
    report.as_expected &= wait.ret == -i64::from(libc::ETIME);
    report.submitted = Some(submitted);
    report.completed = Some(cqes.len() as u64);
    report.waits = Some(vec![wait]);
    report.completions = Some(cqes);
    report.elapsed_ms = Some(ms_since(start));
    Ok(report)
}
