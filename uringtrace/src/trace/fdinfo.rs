//! Ring state that no tracepoint shows (SQ head/tail, SQPOLL thread times), sampled
//! from /proc/<pid>/fdinfo/<ring fd> and turned into `ring_state` events, so live
//! analysis and replay of a recording see the same thing.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use uringtrace_common::view::{Create, FdName, FdObject, FileGet, RingClosed, RingState, Submit};
use uringtrace_common::{EventKind, EventView, FdType, RawEvent};

pub mod names;

/// IOSQE_FIXED_FILE, in the low byte of req->flags: the SQE's fd is an index into the
/// ring's registered files, not an fd.
const IOSQE_FIXED_FILE: u64 = 1;

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
    /// CQEs waiting in the overflow list (`CqOverflowList:`), when printed.
    pub overflow_list: Option<u32>,
}

/// Parses fdinfo text; None when it is not an io_uring ring's (6.18 omits the ring
/// fields when the ring lock is contended).
pub fn parse_fdinfo(text: &str) -> Option<RingInfo> {
    let mut info = RingInfo::default();
    let mut saw_sq = false;
    let mut in_overflow = false;
    for line in text.lines() {
        // The overflow list is the last section: one indented line per CQE.
        if in_overflow {
            if line.starts_with(' ') {
                *info.overflow_list.get_or_insert(0) += 1;
                continue;
            }
            in_overflow = false;
        }
        if line.trim_end() == "CqOverflowList:" {
            in_overflow = true;
            info.overflow_list = Some(0);
            continue;
        }
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
    RingState {
        fd,
        sq_head: info.sq_head,
        sq_tail: info.sq_tail,
        cq_ready: info.cq_tail.wrapping_sub(info.cq_head),
        sq_thread: info.sq_thread,
        sq_total_us: info.sq_total_us,
        sq_work_us: info.sq_work_us,
        overflow_list: info.overflow_list,
    }
    .into_raw(userspace_event(ts_ns, tgid))
}

/// The header of an event userspace makes about process `tgid` (no comm, no CPU).
fn userspace_event(ts_ns: u64, tgid: u32) -> RawEvent {
    RawEvent {
        ts_ns,
        pid: tgid,
        tgid,
        ..RawEvent::default()
    }
}

/// Whether this kernel's ring fdinfo shows the SQPOLL thread's times (SqTotalTime,
/// SqWorkTime; 6.9+), from a small ring of our own (no SQPOLL needed: the lines are
/// printed for every ring). None when no ring can be made (io_uring disabled). The
/// ring lives on a thread of its own: see [`super::scratch_ring`].
pub fn has_sq_times() -> Option<bool> {
    super::scratch_ring::with_scratch_ring(2, |ring| {
        let fd = std::os::fd::AsRawFd::as_raw_fd(ring.ok()?);
        let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
        Some(text.contains("SqTotalTime:"))
    })
    .flatten()
}

/// What the fds of processes using io_uring refer to (pipes, sockets, files, rings),
/// and which of their rings and the processes themselves went away: turned into
/// `fd_object` (followed by the `fd_name` events of its name), `ring_closed` and
/// `process_exit` events in the same stream, so that replay sees what live saw. The
/// analyzer needs objects, not fd numbers: the two ends of a pipe are two fds, and a
/// short read ends a chain by design only at the end of a regular file. People need
/// names: the path, the socket's addresses (see `names`).
#[derive(Default)]
pub struct FdWatch {
    /// (tgid, fd) → the link text last seen and what it was reported as.
    known: HashMap<(u32, i32), (String, FdType, u64)>,
    /// Ring fds per process at the last sample.
    rings: HashMap<u32, BTreeSet<u32>>,
    /// The last (tgid, fd) looked up by `observe` (fio, a NOP storm: the same again).
    last: Option<(u32, i32)>,
    /// (tgid, ring fd) → ctx, from create events: a ring's name carries its address.
    ring_ctx: HashMap<(u32, i32), u64>,
    /// Socket tables read in the current pass (emptied at the start of each).
    sockets: names::SocketTables,
}

impl FdWatch {
    /// (process, fd) pairs whose object is known.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Resolves, right away, fds that events name and that are new: an event's fd is
    /// known to the analyzer before the request can matter. The `fd_object` event gets
    /// the naming event's time minus 1 ns, so it is applied first.
    pub fn observe(&mut self, batch: &mut Vec<RawEvent>) {
        self.sockets = names::SocketTables::default();
        let mut new = Vec::new();
        for ev in batch.iter() {
            if let Some(c) = Create::of(ev) {
                // The ring is named now, with its address (a sample may have named
                // it before the create was seen).
                let key = (ev.tgid, c.fd as i32);
                self.ring_ctx.insert(key, ev.ctx);
                self.known.remove(&key);
                if self.last == Some(key) {
                    self.last = None;
                }
                new.extend(self.resolve(key, ev.ts_ns));
                continue;
            }
            let fd = match Submit::of(ev) {
                // A registered file's index is no fd of the process.
                Some(s) if s.req_flags & IOSQE_FIXED_FILE != 0 => None,
                Some(s) => s.fd(),
                None => FileGet::of(ev).map(|f| f.fd),
            };
            let Some(fd) = fd else {
                continue;
            };
            let key = (ev.tgid, fd);
            if fd < 0 || ev.tgid == 0 || self.last == Some(key) {
                continue;
            }
            self.last = Some(key);
            if self.known.contains_key(&key) {
                continue;
            }
            new.extend(self.resolve(key, ev.ts_ns.saturating_sub(1)));
        }
        batch.extend(new);
    }

    /// Looks `fd` of `tgid` up in /proc; events when it is new or changed.
    fn resolve(&mut self, (tgid, fd): (u32, i32), ts: u64) -> Vec<RawEvent> {
        let path = format!("/proc/{tgid}/fd/{fd}");
        let Ok(link) = std::fs::read_link(&path) else {
            return Vec::new();
        };
        let link = link.to_string_lossy().into_owned();
        self.update((tgid, fd), link, &path, ts)
    }

    /// An `fd_object` event and the `fd_name` events of its name, when the link
    /// changed.
    fn update(&mut self, key: (u32, i32), link: String, path: &str, ts: u64) -> Vec<RawEvent> {
        if self.known.get(&key).is_some_and(|k| k.0 == link) {
            return Vec::new();
        }
        let (kind, ino) = classify(&link, path);
        let ring = self.ring_ctx.get(&key).copied();
        let name = names::name(key.0, &link, ring, &mut self.sockets);
        self.known.insert(key, (link, kind, ino));
        let mut out = vec![fd_object_event(ts, key.0, key.1, kind, ino)];
        out.extend(fd_name_events(ts, key.0, key.1, &name));
        out
    }

    /// The periodic sample: ring state of every ring of `tgids` (see [`sample`]), fds
    /// that changed or closed, rings whose fd vanished, and processes that exited
    /// (which leave `tgids`).
    pub fn sample(&mut self, tgids: &mut BTreeSet<u32>, now_ns: u64) -> Vec<RawEvent> {
        self.sockets = names::SocketTables::default();
        let mut out = Vec::new();
        let gone: Vec<u32> = tgids
            .iter()
            .copied()
            .filter(|t| !std::path::Path::new(&format!("/proc/{t}")).exists())
            .collect();
        for t in gone {
            tgids.remove(&t);
            self.known.retain(|k, _| k.0 != t);
            self.ring_ctx.retain(|k, _| k.0 != t);
            self.rings.remove(&t);
            out.push(RawEvent {
                kind: EventKind::ProcessExit as u16,
                ..userspace_event(now_ns, t)
            });
        }
        self.last = None;
        for &tgid in tgids.iter() {
            let Ok(dir) = std::fs::read_dir(format!("/proc/{tgid}/fd")) else {
                continue;
            };
            let mut seen = BTreeSet::new();
            let mut rings = BTreeSet::new();
            for e in dir.flatten() {
                let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                let Ok(link) = std::fs::read_link(e.path()) else {
                    continue;
                };
                let link = link.to_string_lossy().into_owned();
                seen.insert(fd);
                if link == "anon_inode:[io_uring]" {
                    rings.insert(fd as u32);
                    if let Ok(text) = std::fs::read_to_string(format!("/proc/{tgid}/fdinfo/{fd}")) {
                        if let Some(info) = parse_fdinfo(&text) {
                            out.push(ring_state_event(now_ns, tgid, fd as u32, &info));
                        }
                    }
                }
                let path = format!("/proc/{tgid}/fd/{fd}");
                out.extend(self.update((tgid, fd), link, &path, now_ns));
            }
            let closed: Vec<i32> = self
                .known
                .keys()
                .filter(|k| k.0 == tgid && !seen.contains(&k.1))
                .map(|k| k.1)
                .collect();
            for fd in closed {
                self.known.remove(&(tgid, fd));
                self.ring_ctx.remove(&(tgid, fd));
                out.push(fd_object_event(now_ns, tgid, fd, FdType::Closed, 0));
            }
            let before = self.rings.insert(tgid, rings.clone()).unwrap_or_default();
            for fd in before.difference(&rings) {
                out.push(RingClosed { fd: *fd }.into_raw(userspace_event(now_ns, tgid)));
            }
        }
        out
    }
}

/// What a /proc fd link names: anon inodes by their name; anything else by the type
/// and inode of what it points to (both ends of a pipe share an inode).
fn classify(link: &str, path: &str) -> (FdType, u64) {
    if link == "anon_inode:[io_uring]" {
        return (FdType::Ring, 0);
    }
    if link.starts_with("anon_inode:") {
        return (FdType::Other, 0);
    }
    let Ok(md) = std::fs::metadata(path) else {
        return (FdType::Other, 0);
    };
    let ft = md.file_type();
    let kind = if ft.is_fifo() {
        FdType::Pipe
    } else if ft.is_socket() {
        FdType::Socket
    } else if ft.is_file() || ft.is_block_device() {
        FdType::File
    } else {
        FdType::Other
    };
    (kind, md.ino())
}

/// The `fd_name` events that carry `name` (see [`FdName`]), all at `ts`.
pub fn fd_name_events(ts_ns: u64, tgid: u32, fd: i32, name: &str) -> Vec<RawEvent> {
    FdName::pieces(fd, name.as_bytes())
        .map(|p| p.into_raw(userspace_event(ts_ns, tgid)))
        .collect()
}

pub fn fd_object_event(ts_ns: u64, tgid: u32, fd: i32, kind: FdType, ino: u64) -> RawEvent {
    FdObject::new(fd, kind, ino).into_raw(userspace_event(ts_ns, tgid))
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
                sq_work_us: 7,
                overflow_list: None,
            }
        );
        let ev = ring_state_event(9, 100, 3, &i);
        assert_eq!(ev.args, [3, 0, 4, 2]);
        assert_eq!(ev.aux, 19359);
    }

    #[test]
    fn counts_the_overflow_list() {
        let text = "SqHead:\t0\nSqTail:\t0\nCqHead:\t0\nCqTail:\t4\nPollList:\nCqOverflowList:\n  \
                    user_data=5, res=0, flags=0\n  user_data=6, res=0, flags=0\n";
        let i = parse_fdinfo(text).unwrap();
        assert_eq!(i.overflow_list, Some(2));
        let ev = ring_state_event(1, 2, 3, &i);
        assert_eq!((ev.opcode, ev.res), (1, 2));
        let empty = parse_fdinfo("SqHead:\t0\nSqTail:\t0\nCqOverflowList:\n").unwrap();
        assert_eq!(empty.overflow_list, Some(0));
    }

    #[test]
    fn no_sqpoll_and_not_a_ring() {
        let i = parse_fdinfo("SqHead:\t1\nSqTail:\t1\nSqThread:\t-1\n").unwrap();
        assert_eq!(i.sq_thread, None);
        assert_eq!(parse_fdinfo("pos:\t0\nflags:\t0\n"), None);
    }

    #[test]
    fn pipes_and_files_are_told_apart_by_inode() {
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let me = std::process::id();
        let mut w = FdWatch::default();
        let mut batch = vec![
            RawEvent {
                kind: EventKind::FileGet as u16,
                tgid: me,
                ts_ns: 100,
                args: [fds[0] as u32, 0, 0, 0],
                ..RawEvent::default()
            },
            RawEvent {
                kind: EventKind::Submit as u16,
                tgid: me,
                ts_ns: 200,
                args: [0, 0, fds[1] as u32, 0],
                ..RawEvent::default()
            },
        ];
        w.observe(&mut batch);
        // Each new fd: its fd_object, then its name ("pipe:[inode]": one piece).
        assert_eq!(batch.len(), 6);
        let (a, b) = (batch[2], batch[4]);
        let name = FdName::read(&batch[3]);
        assert_eq!(batch[3].kind, EventKind::FdName as u16);
        assert_eq!(
            (batch[3].ts_ns, name.fd, &name.bytes[..name.used()]),
            (99, fds[0], format!("pipe:[{}]", a.aux).as_bytes())
        );
        assert_eq!(
            (a.kind, a.ts_ns, a.args[0]),
            (EventKind::FdObject as u16, 99, fds[0] as u32)
        );
        assert_eq!(a.args[1], FdType::Pipe as u32);
        assert_eq!(b.args[1], FdType::Pipe as u32);
        assert_eq!(a.aux, b.aux, "both ends of a pipe: one inode");
        // Seen once: not again.
        let mut again = vec![batch[0]];
        w.observe(&mut again);
        assert_eq!(again.len(), 1);
        // SAFETY: closing our own pipe.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        let mut tgids: BTreeSet<u32> = [me].into();
        let ev = w.sample(&mut tgids, 500);
        // Closed, or (other tests run in this process) reused for something else:
        // either way the change is reported.
        let changed: Vec<_> = ev
            .iter()
            .filter(|e| e.kind == EventKind::FdObject as u16)
            .filter(|e| e.args[1] == FdType::Closed as u32 || e.aux != a.aux)
            .map(|e| e.args[0] as i32)
            .collect();
        assert!(
            changed.contains(&fds[0]) && changed.contains(&fds[1]),
            "{changed:?}"
        );
    }
}
