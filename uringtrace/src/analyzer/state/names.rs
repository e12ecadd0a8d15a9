//! Names of what fds refer to (`fd_name` runs, see `view::FdName`), and the text
//! evidence uses for an fd.

use super::*;
use uringtrace_common::view::FdName;

/// A name being assembled from its pieces.
#[derive(Clone, Debug)]
struct NameRun {
    key: (u32, i32),
    len: u32,
    next: u8,
    bytes: Vec<u8>,
}

/// Names of (process, fd), assembled from `fd_name` runs: the one reader of the pieces,
/// for the analyzer's state and for anything else that follows an event stream (the
/// Perfetto export).
#[derive(Clone, Debug, Default)]
pub struct FdNames {
    names: Map<(u32, i32), Box<str>>,
    run: Option<NameRun>,
}

impl FdNames {
    pub fn get(&self, tgid: u32, fd: i32) -> Option<&str> {
        self.names.get(&(tgid, fd)).map(|n| &**n)
    }

    /// The fd refers to something new (an `fd_object`): its old name goes; a new one,
    /// if any, follows in `fd_name` events.
    pub fn forget(&mut self, tgid: u32, fd: i32) {
        self.names.remove(&(tgid, fd));
    }

    pub fn forget_process(&mut self, tgid: u32) {
        self.names.retain(|k, _| k.0 != tgid);
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// One piece of a name (an `fd_name` event of process `tgid`). Pieces come in
    /// order, 0 first, all with the same fd and length; anything else (a lost or
    /// reordered piece, a corrupt length) drops the run, and the fd stays unnamed
    /// rather than wrongly named.
    pub fn on_piece(&mut self, tgid: u32, p: &FdName) {
        let key = (tgid, p.fd);
        if p.index == 0 {
            self.run = (p.len as usize <= FdName::MAX && p.len > 0).then(|| NameRun {
                key,
                len: p.len,
                next: 0,
                bytes: Vec::with_capacity(p.len as usize),
            });
        }
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if run.key != key || run.len != p.len || run.next != p.index {
            self.run = None;
            return;
        }
        run.bytes.extend_from_slice(&p.bytes[..p.used()]);
        run.next += 1;
        if run.bytes.len() == run.len as usize {
            let name = String::from_utf8_lossy(&run.bytes).into_owned();
            self.names.insert(key, name.into_boxed_str());
            self.run = None;
        }
    }
}

impl State {
    /// The name of what fd `fd` of process `tgid` refers to (a path,
    /// `socket:127.0.0.1:8080->127.0.0.1:51234`, `pipe:[inode]`, ...), when the
    /// trace named it (recordings before names existed never do).
    pub fn fd_name(&self, tgid: u32, fd: i32) -> Option<&str> {
        self.fd_names.get(tgid, fd)
    }
    /// How evidence names an fd: `fd 7 (socket:...)`, `fd 7` when it has no name, or
    /// `fixed slot 3` for a registered file (IOSQE_FIXED_FILE: the number is an index
    /// into the ring's file table, which no tracepoint maps to an fd).
    pub fn fd_text(&self, tgid: u32, fd: i32, fixed: bool) -> String {
        if fixed {
            return format!("fixed slot {fd}");
        }
        match self.fd_name(tgid, fd) {
            Some(n) => format!("fd {fd} ({n})"),
            None => format!("fd {fd}"),
        }
    }

    /// How evidence names the file of a request whose SQE fd is `fd`, when there is
    /// more to say than the number: `fd 7 (pipe:[123])` when the fd is named,
    /// `fixed slot 3` for a registered file; None for an unnamed fd (recordings made
    /// before names, or an fd that closed before it was looked up), so that texts
    /// without names read as they always did.
    pub fn fd_label(&self, tgid: u32, fd: Option<i32>, fixed: bool) -> Option<String> {
        let fd = fd?;
        (fixed || self.fd_name(tgid, fd).is_some()).then(|| self.fd_text(tgid, fd, fixed))
    }

    pub(super) fn on_fd_name(&mut self, ev: &RawEvent) {
        self.fd_names.on_piece(ev.tgid, &FdName::read(ev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uringtrace_common::view::FdObject;

    fn base(tgid: u32) -> RawEvent {
        RawEvent {
            ts_ns: 10,
            pid: tgid,
            tgid,
            ..RawEvent::default()
        }
    }

    fn name(st: &mut State, tgid: u32, fd: i32, n: &str) {
        st.apply(&FdObject::new(fd, FdType::Pipe, 1).into_raw(base(tgid)));
        for p in FdName::pieces(fd, n.as_bytes()) {
            st.apply(&p.into_raw(base(tgid)));
        }
    }

    #[test]
    fn names_are_kept_per_process_and_fd_and_dropped_with_the_fd() {
        let mut st = State::default();
        let long = format!("/srv/{}", "x".repeat(100));
        name(&mut st, 1, 7, "pipe:[12]");
        name(&mut st, 2, 7, &long);
        assert_eq!(st.fd_name(1, 7), Some("pipe:[12]"));
        assert_eq!(st.fd_name(2, 7), Some(long.as_str()));
        assert_eq!(st.fd_text(1, 7, false), "fd 7 (pipe:[12])");
        assert_eq!(st.fd_text(1, 8, false), "fd 8");
        assert_eq!(st.fd_text(1, 7, true), "fixed slot 7");
        assert_eq!(st.fd_label(1, Some(8), false), None);
        // The fd now refers to something else: the old name goes at once.
        st.apply(&FdObject::new(7, FdType::Closed, 0).into_raw(base(1)));
        assert_eq!(st.fd_name(1, 7), None);
        // The process exits: its names go (at the next event).
        st.apply(&RawEvent {
            kind: EventKind::ProcessExit as u16,
            ..base(2)
        });
        st.apply(&base(3));
        assert_eq!(st.fd_name(2, 7), None);
        assert!(st.fd_names.is_empty());
    }

    #[test]
    fn a_run_interrupted_by_another_fd_names_neither() {
        let mut st = State::default();
        let a: Vec<FdName> = FdName::pieces(3, &[b'a'; 40]).collect();
        st.apply(&a[0].into_raw(base(1)));
        for p in FdName::pieces(4, b"pipe:[1]") {
            st.apply(&p.into_raw(base(1)));
        }
        st.apply(&a[1].into_raw(base(1)));
        assert_eq!(st.fd_name(3, 3), None);
        assert_eq!(st.fd_name(1, 3), None);
        assert_eq!(st.fd_name(1, 4), Some("pipe:[1]"));
        // A corrupt length names nothing.
        let mut p = FdName::pieces(5, b"x").next().unwrap();
        p.len = 300;
        st.apply(&p.into_raw(base(1)));
        assert_eq!(st.fd_name(1, 5), None);
    }
}
