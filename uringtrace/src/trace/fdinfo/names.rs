//! The name of what an fd refers to, for people: a path, `pipe:[inode]`,
//! `socket:127.0.0.1:8080->127.0.0.1:51234`, a unix socket's path, or
//! `anon_inode:[io_uring]` with the ring's address. Read from /proc when the fd is
//! first seen; the parsers are pure and tested on text.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use uringtrace_common::view::FdName;

/// The name for fd link text `link` of process `tgid` (`ring` = the ring's ctx when
/// the fd is a ring whose create was seen). Socket names come from the process's own
/// network namespace (`/proc/<tgid>/net/...`); an unresolved socket keeps its link
/// text (`socket:[inode]`).
pub fn name(tgid: u32, link: &str, ring: Option<u64>) -> String {
    let n = if link == "anon_inode:[io_uring]" {
        match ring {
            Some(ctx) => format!("{link} ring {ctx:#x}"),
            None => link.to_string(),
        }
    } else if let Some(ino) = socket_inode(link) {
        socket_name(tgid, ino).unwrap_or_else(|| link.to_string())
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

fn socket_name(tgid: u32, ino: u64) -> Option<String> {
    for (file, proto) in [("tcp", ""), ("tcp6", ""), ("udp", "udp:"), ("udp6", "udp:")] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{tgid}/net/{file}")) {
            if let Some(n) = inet_name(&text, ino, file.ends_with('6')) {
                return Some(format!("socket:{proto}{n}"));
            }
        }
    }
    let text = std::fs::read_to_string(format!("/proc/{tgid}/net/unix")).ok()?;
    unix_name(&text, ino).map(|p| format!("socket:{p}"))
}

/// `local->remote` for socket inode `ino` in a /proc/net/{tcp,tcp6,udp,udp6} table
/// (just `local` while the remote end is unset: a listener, an unconnected UDP
/// socket). Lines: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`,
/// addresses as hex of the kernel's 32-bit words in host byte order, ports big-endian
/// hex.
pub fn inet_name(table: &str, ino: u64, v6: bool) -> Option<String> {
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(9).and_then(|s| s.parse::<u64>().ok()) != Some(ino) {
            continue;
        }
        let local = inet_addr(f.get(1)?, v6)?;
        let remote = inet_addr(f.get(2)?, v6)?;
        return Some(if remote.port() == 0 && remote.ip().is_unspecified() {
            local.to_string()
        } else {
            format!("{local}->{remote}")
        });
    }
    None
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

/// The path a unix socket with inode `ino` is bound to, from /proc/net/unix
/// (`Num RefCount Protocol Flags Type St Inode Path`; abstract names start with `@`).
/// None when it is not listed or not bound: unbound ones (a connected client, a
/// socketpair) have no name but their inode.
pub fn unix_name(table: &str, ino: u64) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let mut f = line.split_whitespace();
        (f.nth(6)?.parse::<u64>().ok()? == ino)
            .then(|| f.next().map(str::to_string))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn unix_names() {
        assert_eq!(unix_name(UNIX, 5001).as_deref(), Some("/run/app.sock"));
        assert_eq!(unix_name(UNIX, 5002), None, "unbound");
        assert_eq!(unix_name(UNIX, 5003).as_deref(), Some("@abstract"));
    }

    #[test]
    fn rings_pipes_and_long_paths() {
        assert_eq!(
            name(1, "anon_inode:[io_uring]", Some(0xffff_8881_0000_1000)),
            "anon_inode:[io_uring] ring 0xffff888100001000"
        );
        assert_eq!(name(1, "pipe:[99]", None), "pipe:[99]");
        let long = format!("/{}é", "a".repeat(254));
        assert_eq!(name(1, &long, None).len(), 255, "cut before the 2-byte é");
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
            name(me, &link.to_string_lossy(), None),
            format!("socket:127.0.0.1:{cport}->127.0.0.1:{port}")
        );
    }
}
