//! Ring state that no tracepoint shows (SQ head/tail, SQPOLL thread times), sampled
//! from /proc/<pid>/fdinfo/<ring fd> and turned into `ring_state` events, so live
//! analysis and replay of a recording see the same thing.

use std::collections::BTreeSet;

use uringtrace_common::{EventKind, RawEvent};

/// Parsed fields of an io_uring fdinfo file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingInfo {
    pub sq_head: u32,
    pub sq_tail: u32,
    pub cq_head: u32,
    pub cq_tail: u32,
    /// SQPOLL thread tid (-1 / absent: no SQPOLL).
    pub sq_thread: Option<u32>,
    /// µs the SQPOLL thread ran, and ran with work (6.9+).
    pub sq_total_us: u64,
    pub sq_work_us: u64,
}

/// Parses fdinfo text; None when it is not an io_uring ring's (6.18 omits the ring
/// fields when the ring lock is contended).
pub fn parse_fdinfo(text: &str) -> Option<RingInfo> {
    let mut info = RingInfo::default();
    let mut saw_sq = false;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "SqHead" => {
                info.sq_head = v.parse().ok()?;
                saw_sq = true;
            }
            "SqTail" => info.sq_tail = v.parse().ok()?,
            "CqHead" => info.cq_head = v.parse().ok()?,
            "CqTail" => info.cq_tail = v.parse().ok()?,
            "SqThread" => {
                info.sq_thread = v.parse::<i64>().ok().filter(|t| *t > 0).map(|t| t as u32)
            }
            "SqTotalTime" => info.sq_total_us = v.parse().unwrap_or(0),
            "SqWorkTime" => info.sq_work_us = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    saw_sq.then_some(info)
}

pub fn ring_state_event(ts_ns: u64, tgid: u32, fd: u32, info: &RingInfo) -> RawEvent {
    RawEvent {
        ts_ns,
        pid: tgid,
        tgid,
        kind: EventKind::RingState as u16,
        args: [
            fd,
            info.sq_head,
            info.sq_tail,
            info.cq_tail.wrapping_sub(info.cq_head),
        ],
        aux: info.sq_thread.map_or(0, u64::from),
        aux2: info.sq_total_us,
        user_data: info.sq_work_us,
        ..RawEvent::default()
    }
}

/// The io_uring ring fds of a process.
pub fn ring_fds(tgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{tgid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:[io_uring]")
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Samples every ring of `tgids` (processes seen using io_uring).
pub fn sample(tgids: &BTreeSet<u32>, now_ns: u64) -> Vec<RawEvent> {
    let mut out = Vec::new();
    for &tgid in tgids {
        for fd in ring_fds(tgid) {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{tgid}/fdinfo/{fd}")) else {
                continue;
            };
            if let Some(info) = parse_fdinfo(&text) {
                out.push(ring_state_event(now_ns, tgid, fd, &info));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_618_fdinfo() {
        let text =
            "pos:\t0\nflags:\t02000002\nSqMask:\t0x7\nSqHead:\t0\nSqTail:\t4\nCachedSqHead:\t0\n\
                    CqMask:\t0xf\nCqHead:\t3\nCqTail:\t5\nSQEs:\t4\n    0: opcode:NOP, fd:-1\n\
                    SqThread:\t19359\nSqThreadCpu:\t1\nSqTotalTime:\t1200\nSqWorkTime:\t7\n";
        let i = parse_fdinfo(text).unwrap();
        assert_eq!(
            i,
            RingInfo {
                sq_head: 0,
                sq_tail: 4,
                cq_head: 3,
                cq_tail: 5,
                sq_thread: Some(19359),
                sq_total_us: 1200,
                sq_work_us: 7
            }
        );
        let ev = ring_state_event(9, 100, 3, &i);
        assert_eq!(ev.args, [3, 0, 4, 2]);
        assert_eq!(ev.aux, 19359);
    }

    #[test]
    fn no_sqpoll_and_not_a_ring() {
        let i = parse_fdinfo("SqHead:\t1\nSqTail:\t1\nSqThread:\t-1\n").unwrap();
        assert_eq!(i.sq_thread, None);
        assert_eq!(parse_fdinfo("pos:\t0\nflags:\t0\n"), None);
    }
}
