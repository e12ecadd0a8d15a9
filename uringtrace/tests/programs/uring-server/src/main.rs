//! A healthy keep-alive TCP echo server on monoio's io_uring driver, and its client.
//!
//! The server (one monoio runtime, `IoUringDriver`: no epoll fallback) accepts
//! `CONNS` connections on 127.0.0.1 and echoes every message back on the same
//! connection until the peer closes it. The client (plain std sockets on a thread,
//! no io_uring) opens the connections, sends a request on each, then leaves them
//! all idle for `IDLE` (longer than uringtrace's 1 s stall threshold: a server's
//! RECV on an idle keep-alive connection is meant to wait), sends a second request
//! on each, and closes them. Once every connection has closed, the server closes
//! its listener, lingers 100 ms (a graceful shutdown's pause, nothing in flight)
//! and exits.
//! Reads carry a keep-alive timeout (monoio's timer), as a real server's do.
//! Prints one JSON line: {"conns":8,"requests":16,"echoed_bytes":N}.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::time::Duration;

use monoio::buf::IoBuf;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

const CONNS: usize = 8;
const IDLE: Duration = Duration::from_millis(1500);
/// How long the server keeps an idle connection (a real server's keep-alive
/// timeout, on monoio's timer); the client's idle time is well inside it.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
const LINGER: Duration = Duration::from_millis(100);
/// The whole run takes about 1.6 s; past this something hangs.
const WATCHDOG: Duration = Duration::from_secs(20);

fn main() {
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("uring-server: still running after {WATCHDOG:?}, giving up");
        std::process::exit(2);
    });
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio io_uring runtime (io_uring unavailable?)");
    let echoed = rt.block_on(serve());
    println!(
        "{{\"conns\":{CONNS},\"requests\":{},\"echoed_bytes\":{echoed}}}",
        2 * CONNS
    );
}

async fn serve() -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let client = std::thread::spawn(move || client(addr));
    let mut handlers = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let (stream, _) = listener.accept().await.expect("accept");
        handlers.push(monoio::spawn(echo(stream)));
    }
    drop(listener);
    let mut echoed = 0;
    for h in handlers {
        echoed += h.await;
    }
    // Graceful shutdown: linger a moment with nothing in flight, as servers do
    // before exiting (the runtime sleeps in io_uring_enter with a timeout).
    monoio::time::sleep(LINGER).await;
    client.join().expect("client thread");
    echoed
}

/// Echoes until the peer closes; returns the bytes echoed.
async fn echo(mut stream: TcpStream) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 4096];
    loop {
        let (res, b) = monoio::time::timeout(KEEP_ALIVE, stream.read(buf))
            .await
            .expect("keep-alive timeout: the client went quiet");
        let n = res.expect("read");
        if n == 0 {
            return total;
        }
        let (res, b) = stream.write_all(b.slice(..n)).await;
        res.expect("write");
        buf = b.into_inner();
        total += n;
    }
}

fn client(addr: SocketAddr) {
    let mut conns: Vec<StdStream> = (0..CONNS)
        .map(|_| {
            let s = StdStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .collect();
    for round in 0..2 {
        for (i, c) in conns.iter_mut().enumerate() {
            let msg = format!("GET /{round}/{i} HTTP/1.1\r\nConnection: keep-alive\r\n\r\n");
            c.write_all(msg.as_bytes()).expect("send");
            let mut back = vec![0u8; msg.len()];
            c.read_exact(&mut back).expect("echo");
            assert_eq!(back, msg.as_bytes(), "echo of connection {i}");
        }
        if round == 0 {
            std::thread::sleep(IDLE);
        }
    }
    drop(conns);
}
