//! The name of what an fd refers to, for people: a path, `pipe:[inode]`,
//! `socket:127.0.0.1:8080->127.0.0.1:51234`, a unix socket's path, or
//! `anon_inode:[io_uring]` with the ring's address. Read from /proc when the fd is
//! first seen; the parsers are pure and tested on text.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use uringtrace_common::view::FdName;

/// Socket names of the processes looked at in one pass (one `observe` or `sample`):
/// a server with 10,000 connections has 10,000 lines in /proc/net/tcp, read once per
/// pass rather than once per socket. Keyed by tgid (each may be in its own network
/// namespace).
#[derive(Default)]
pub struct SocketTables {
    by_tgid: HashMap<u32, HashMap<u64, String>>,
}

impl SocketTables {
    fn get(&mut self, tgid: u32, ino: u64) -> Option<String> {
        self.by_tgid
            .entry(tgid)
            .or_insert_with(|| load_sockets(tgid))
            .get(&ino)
            .cloned()
    }
}

/// The name for fd link text `link` of process `tgid` (`ring` = the ring's ctx when
/// the fd is a ring whose create was seen). Socket names come from the process's own
/// network namespace (`/proc/<tgid>/net/...`); an unresolved socket keeps its link
/// text (`socket:[inode]`).
pub fn name(tgid: u32, link: &str, ring: Option<u64>, sockets: &mut SocketTables) -> String {
    let n = if link == "anon_inode:[io_uring]" {
        match ring {
            Some(ctx) => format!("{link} ring {ctx:#x}"),
            None => link.to_string(),
        }
    } else if let Some(ino) = socket_inode(link) {
        sockets.get(tgid, ino).unwrap_or_else(|| link.to_string())
    } else {
        link.to_string()
    };
    cut(n)
}

/// Cuts a name to [`FdName::MAX`] bytes at a character boundary.
fn cut(mut n: String) -> String {
    if n.len() > FdName::MAX {
        let mut end = FdName::MAX;
        while !n.is_char_boundary(end) {
            end -= 1;
        }
        n.truncate(end);
    }
    n
}

fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every TCP, UDP and bound unix socket `tgid` can see: inode → name.
fn load_sockets(tgid: u32) -> HashMap<u64, String> {
    let mut out = HashMap::new();
    for (file, proto) in [("tcp", ""), ("tcp6", ""), ("udp", "udp:"), ("udp6", "udp:")] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{tgid}/net/{file}")) {
            for (ino, n) in inet_names(&text, file.ends_with('6')) {
                out.entry(ino)
                    .or_insert_with(|| format!("socket:{proto}{n}"));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{tgid}/net/unix")) {
        for (ino, p) in unix_names(&text) {
            out.entry(ino).or_insert_with(|| format!("socket:{p}"));
        }
    }
    out
}

/// (inode, `local->remote`) for each socket of a /proc/net/{tcp,tcp6,udp,udp6} table
/// (just `local` while the remote end is unset: a listener, an unconnected UDP
/// socket). Lines: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`,
/// addresses as hex of the kernel's 32-bit words in host byte order, ports big-endian
/// hex.
pub fn inet_names(table: &str, v6: bool) -> impl Iterator<Item = (u64, String)> + '_ {
    table.lines().skip(1).filter_map(move |line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let ino = f.get(9)?.parse::<u64>().ok()?;
        let local = inet_addr(f.get(1)?, v6)?;
        let remote = inet_addr(f.get(2)?, v6)?;
        let name = if remote.port() == 0 && remote.ip().is_unspecified() {
            local.to_string()
        } else {
            format!("{local}->{remote}")
        };
        Some((ino, name))
    })
}

fn inet_addr(s: &str, v6: bool) -> Option<SocketAddr> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let words: Vec<u32> = (0..a.len() / 8)
        .map(|i| u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    // Each word was printed from memory in host order: its bytes in memory are the
    // address bytes.
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match (v6, bytes.len()) {
        (false, 4) => {
            let b: [u8; 4] = bytes.try_into().ok()?;
            Some(SocketAddr::new(Ipv4Addr::from(b).into(), port))
        }
        (true, 16) => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(SocketAddr::new(Ipv6Addr::from(b).into(), port))
        }
        _ => None,
    }
}

/// (inode, path) of each bound unix socket in /proc/net/unix (`Num RefCount Protocol
/// Flags Type St Inode Path`; abstract names start with `@`). Unbound ones (a
/// connected client, a socketpair) have no name but their inode, and are left out.
pub fn unix_names(table: &str) -> impl Iterator<Item = (u64, String)> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let mut f = line.split_whitespace();
        let ino = f.nth(6)?.parse::<u64>().ok()?;
        Some((ino, f.next()?.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet_name(t: &str, ino: u64, v6: bool) -> Option<String> {
        inet_names(t, v6).find(|x| x.0 == ino).map(|x| x.1)
    }

    fn unix_name(t: &str, ino: u64) -> Option<String> {
        unix_names(t).find(|x| x.0 == ino).map(|x| x.1)
    }

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C812 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 0 10 -1
";
    const UNIX: &str = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 5001 /run/app.sock
0000000000000000: 00000003 00000000 00000000 0001 03 5002
0000000000000000: 00000002 00000000 00010000 0001 01 5003 @abstract
";

    #[test]
    #[cfg(target_endian = "little")]
    fn tcp_names() {
        assert_eq!(
            inet_name(TCP, 4242, false).as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            inet_name(TCP, 4243, false).as_deref(),
            Some("127.0.0.1:8080->127.0.0.1:51218")
        );
        assert_eq!(inet_name(TCP, 1, false), None);
        assert_eq!(
            inet_name(TCP6, 777, true).as_deref(),
            Some("[::1]:8080->[::1]:54321")
        );
    }

    #[test]
    fn unix_socket_names() {
        assert_eq!(unix_name(UNIX, 5001).as_deref(), Some("/run/app.sock"));
        assert_eq!(unix_name(UNIX, 5002), None, "unbound");
        assert_eq!(unix_name(UNIX, 5003).as_deref(), Some("@abstract"));
    }

    #[test]
    fn rings_pipes_and_long_paths() {
        assert_eq!(
            name(
                1,
                "anon_inode:[io_uring]",
                Some(0xffff_8881_0000_1000),
                &mut SocketTables::default()
            ),
            "anon_inode:[io_uring] ring 0xffff888100001000"
        );
        assert_eq!(
            name(1, "pipe:[99]", None, &mut SocketTables::default()),
            "pipe:[99]"
        );
        let long = format!("/{}é", "a".repeat(254));
        assert_eq!(
            name(1, &long, None, &mut SocketTables::default()).len(),
            255,
            "cut before the 2-byte é"
        );
    }

    #[test]
    fn a_real_socket_of_our_own() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let me = std::process::id();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&c);
        let link = std::fs::read_link(format!("/proc/{me}/fd/{fd}")).unwrap();
        let cport = c.local_addr().unwrap().port();
        assert_eq!(
            name(
                me,
                &link.to_string_lossy(),
                None,
                &mut SocketTables::default()
            ),
            format!("socket:127.0.0.1:{cport}->127.0.0.1:{port}")
        );
    }
}
