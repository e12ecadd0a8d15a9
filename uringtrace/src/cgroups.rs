//! Which cgroup (container, systemd unit) a process is in: the `cgroup` label of the
//! agent's metrics and findings, and of the inventory.
//!
//! The kernel records it: the create event of a ring carries the cgroup v2 id of the
//! task that created it (`bpf_get_current_cgroup_id`, in [`view::Create::cgroup_id`];
//! 0 in recordings made before it did). A cgroup v2 id is the inode number of the
//! cgroup's directory in cgroupfs, so the path is found by walking the cgroupfs tree
//! once and again when an id is not in it (a cgroup created since), at most every
//! [`WALK_EVERY`]. This works for a process that is gone by the time its events are
//! read, as long as its cgroup is not (a container's or a unit's cgroup outlives its
//! short-lived processes).
//!
//! A process whose rings were created before the trace started has no create event
//! in it: its cgroup is read from /proc/PID/cgroup while it runs ("unknown" when it
//! is gone already).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use uringtrace_common::view::{Create, EventView as _};
use uringtrace_common::RawEvent;

/// Pids whose cgroup is remembered; past this the cache starts over (a host that ran
/// this many io_uring processes since).
pub const MAX_PIDS: usize = 65_536;
/// cgroups whose path is remembered; the walk stops there.
pub const MAX_CGROUPS: usize = 65_536;
/// A walk takes a few ms on a host with a few thousand cgroups: not more often.
pub const WALK_EVERY: Duration = Duration::from_millis(200);
/// The cgroup of a process that is gone and was not recorded.
pub const UNKNOWN: &str = "unknown";
/// cgroupfs nesting followed at most.
const MAX_DEPTH: usize = 32;

/// What is known of a process's cgroup.
enum Known {
    Path(String),
    /// An id not found in cgroupfs yet (the walk is rate-limited), and the process
    /// was gone already: looked up again when asked for.
    Id(u64),
}

pub struct Cgroups {
    by_pid: HashMap<u32, Known>,
    by_id: HashMap<u64, String>,
    /// The cgroup v2 mount; None on a host without one (the ids mean nothing there).
    root: Option<PathBuf>,
    last_walk: Option<Instant>,
}

impl Cgroups {
    /// The host's cgroup v2 hierarchy: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a
    /// hybrid (v1 and v2) host.
    pub fn new() -> Cgroups {
        let root = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.controllers").exists())
            .map(Path::to_path_buf);
        Cgroups::with_root(root)
    }

    /// A cgroup v2 hierarchy mounted at `root` (tests).
    pub fn with_root(root: Option<PathBuf>) -> Cgroups {
        Cgroups {
            by_pid: HashMap::new(),
            by_id: HashMap::new(),
            root,
            last_walk: None,
        }
    }

    /// Takes in an event: a ring's creation names its creator's cgroup; any other
    /// event of a process not known yet has it read from /proc while the process
    /// runs. Call it for each event, or once per run of one process's events.
    pub fn see(&mut self, ev: &RawEvent) {
        if let Some(c) = Create::of(ev).filter(|c| c.cgroup_id != 0) {
            let known = match self.path_of_id(c.cgroup_id) {
                Some(path) => Known::Path(path),
                None => match crate::system::cgroup_of(ev.tgid) {
                    p if p != UNKNOWN => Known::Path(p),
                    _ => Known::Id(c.cgroup_id),
                },
            };
            self.remember(ev.tgid, known);
            return;
        }
        if ev.tgid != 0 && !self.by_pid.contains_key(&ev.tgid) {
            self.remember(ev.tgid, Known::Path(crate::system::cgroup_of(ev.tgid)));
        }
    }

    /// The cgroup of `pid`: as recorded, else read from /proc now ("unknown" when the
    /// process is gone).
    pub fn of(&mut self, pid: u32) -> String {
        match self.by_pid.get(&pid) {
            Some(Known::Path(p)) => return p.clone(),
            Some(Known::Id(id)) => {
                let id = *id;
                return match self.path_of_id(id) {
                    Some(p) => {
                        self.remember(pid, Known::Path(p.clone()));
                        p
                    }
                    None => UNKNOWN.into(),
                };
            }
            None => {}
        }
        let path = crate::system::cgroup_of(pid);
        self.remember(pid, Known::Path(path.clone()));
        path
    }

    fn remember(&mut self, pid: u32, path: Known) {
        if self.by_pid.len() >= MAX_PIDS && !self.by_pid.contains_key(&pid) {
            self.by_pid.clear();
        }
        self.by_pid.insert(pid, path);
    }

    /// The path of cgroup `id` (relative to the hierarchy's root, `/` for the root
    /// itself, as /proc/PID/cgroup shows it); None for 0 or an id not found.
    pub fn path_of_id(&mut self, id: u64) -> Option<String> {
        if id == 0 {
            return None;
        }
        if let Some(p) = self.by_id.get(&id) {
            return Some(p.clone());
        }
        let root = self.root.clone()?;
        if self.last_walk.is_some_and(|t| t.elapsed() < WALK_EVERY) {
            return None;
        }
        self.last_walk = Some(Instant::now());
        self.by_id.clear();
        walk(&root, "", 0, &mut self.by_id);
        self.by_id.get(&id).cloned()
    }
}

impl Default for Cgroups {
    fn default() -> Self {
        Cgroups::new()
    }
}

/// Every cgroup directory under `dir` (whose path is `rel`) by inode number.
fn walk(dir: &Path, rel: &str, depth: usize, out: &mut HashMap<u64, String>) {
    if out.len() >= MAX_CGROUPS {
        return;
    }
    // symlink_metadata: cgroupfs has no symlinks; never follow one out of it.
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    out.insert(
        meta.ino(),
        if rel.is_empty() {
            "/".into()
        } else {
            rel.into()
        },
    );
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let name = e.file_name();
            let child = format!("{rel}/{}", name.to_string_lossy());
            walk(&e.path(), &child, depth + 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any directory tree stands for cgroupfs: ids are inode numbers.
    #[test]
    fn an_id_is_the_inode_of_its_directory() {
        let tmp = std::env::temp_dir().join(format!("uringtrace-cg-{}", std::process::id()));
        let leaf = tmp.join("system.slice/nginx.service");
        std::fs::create_dir_all(&leaf).unwrap();
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        let mut cg = Cgroups::with_root(Some(tmp.clone()));
        assert_eq!(
            cg.path_of_id(ino(&leaf)).as_deref(),
            Some("/system.slice/nginx.service")
        );
        assert_eq!(cg.path_of_id(ino(&tmp)).as_deref(), Some("/"));
        assert_eq!(cg.path_of_id(0), None);
        // A cgroup created after the walk is found by the next one.
        let late = tmp.join("late.scope");
        std::fs::create_dir(&late).unwrap();
        std::thread::sleep(WALK_EVERY);
        assert_eq!(cg.path_of_id(ino(&late)).as_deref(), Some("/late.scope"));

        // A create event names its creator's cgroup, though the process is gone.
        let create = Create {
            fd: 3,
            sq_entries: 8,
            cq_entries: 16,
            flags: 0,
            cgroup_id: ino(&leaf),
        }
        .into_raw(RawEvent {
            tgid: u32::MAX - 1,
            ..RawEvent::default()
        });
        cg.see(&create);
        assert_eq!(cg.of(u32::MAX - 1), "/system.slice/nginx.service");
        assert_eq!(cg.of(u32::MAX - 2), "unknown");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
