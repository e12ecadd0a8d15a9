//! The inventory of io_uring use (`uringtrace inventory`, the agent's `/inventory`):
//! which programs, in which cgroups, created or used rings, with which setup flags
//! and opcodes, on which files and sockets. For security teams: syscall monitors do
//! not see the operations io_uring carries.
//!
//! Accumulated from the analyzer's state at each [`Inventory::update`]: the analyzer
//! forgets processes and closed fds, the inventory keeps what it saw. Bounded: one
//! entry per (comm, cgroup), at most [`MAX_ENTRIES`], each with at most
//! [`MAX_FILES`] files and [`MAX_PIDS`] pids.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;
use uringtrace_common::view::{FdName, FdObject, FileGet, Submit};
use uringtrace_common::{EventKind, EventView as _, RawEvent};

use crate::analyzer::state::{FdNames, State};
use crate::names::{opcode_name, setup_flags};

pub const MAX_ENTRIES: usize = 1024;
pub const MAX_FILES: usize = 64;
pub const MAX_PIDS: usize = 16;
const MAX_NAMED: usize = 100_000;
/// An fd a request used is looked for in the state's names this many updates at most.
const NAME_TRIES: u8 = 50;

/// One program (comm) in one cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Entry {
    pub comm: String,
    pub cgroup: String,
    /// Some of its pids (the first seen).
    pub pids: BTreeSet<u32>,
    /// Distinct rings seen.
    pub rings: u64,
    /// Setup flags of its rings, one string per distinct combination ("" = none).
    pub setup_flags: BTreeSet<String>,
    pub opcodes: BTreeSet<String>,
    /// Files and sockets its io_uring requests used, as named when first seen (a
    /// path, `socket:ADDR->ADDR`, `pipe:[INODE]`).
    pub files: BTreeSet<String>,
    /// More files than [`MAX_FILES`] were seen.
    pub files_truncated: bool,
}

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct Inventory {
    pub host: String,
    /// One per (comm, cgroup), in that order. Serialized straight from the map: the
    /// agent updates the inventory every second and is asked for it rarely.
    #[serde(rename = "entries", serialize_with = "map_values")]
    #[schemars(rename = "entries", with = "Vec<Entry>")]
    by_id: BTreeMap<(String, String), Entry>,
    /// More programs than [`MAX_ENTRIES`] were seen; the rest are not listed.
    pub truncated: bool,
    #[serde(skip)]
    rings_seen: BTreeSet<(u64, u64)>,
    /// (tgid, fd) that requests used, not named yet → tries left.
    #[serde(skip)]
    touched: BTreeMap<(u32, i32), u8>,
    /// (tgid, fd) named already: a busy fd is looked up once, not per request.
    #[serde(skip)]
    named: HashSet<(u32, i32)>,
    /// Names from the event stream itself: the state forgets a process's names when
    /// it exits, which a short-lived one does before the next update.
    #[serde(skip)]
    names: FdNames,
    /// Names of fds that requests used, per process, until the next update.
    #[serde(skip)]
    files: BTreeMap<u32, BTreeSet<String>>,
}

impl Inventory {
    pub fn new(host: &str) -> Inventory {
        Inventory {
            host: host.into(),
            ..Inventory::default()
        }
    }

    /// Notes the fds requests use (the kernel streams the submits the detectors need,
    /// and `file_get`; a fast request it only counted names no fd), and their names
    /// (the session resolves an fd when an event first names it).
    #[inline]
    pub fn observe(&mut self, ev: &RawEvent) {
        if let Some(o) = FdObject::of(ev) {
            self.names.forget(ev.tgid, o.fd);
            self.named.remove(&(ev.tgid, o.fd));
            return;
        }
        if let Some(p) = FdName::of(ev) {
            self.names.on_piece(ev.tgid, &p);
            self.name_touched(ev.tgid, p.fd);
            return;
        }
        if ev.kind == EventKind::ProcessExit as u16 {
            self.names.forget_process(ev.tgid);
            return;
        }
        let fd = match Submit::of(ev) {
            // A registered file's index is no fd of the process.
            Some(s) if s.req_flags & crate::names::IOSQE_FIXED_FILE != 0 => None,
            Some(s) => s.fd(),
            None => FileGet::of(ev).map(|f| f.fd),
        };
        if let Some(fd) = fd.filter(|fd| *fd >= 0 && !self.named.contains(&(ev.tgid, *fd))) {
            self.touched.entry((ev.tgid, fd)).or_insert(NAME_TRIES);
            self.name_touched(ev.tgid, fd);
        }
    }

    /// Moves a used fd whose name is known to `files`.
    fn name_touched(&mut self, tgid: u32, fd: i32) {
        if !self.touched.contains_key(&(tgid, fd)) {
            return;
        }
        let Some(name) = self.names.get(tgid, fd) else {
            return;
        };
        if self.named.len() > MAX_NAMED {
            // Bounded; a forgotten pair is only named once more.
            self.named.clear();
        }
        self.files.entry(tgid).or_default().insert(name.to_string());
        self.touched.remove(&(tgid, fd));
        self.named.insert((tgid, fd));
    }

    /// Takes in what the state shows now; `cgroup_of` names a process's cgroup.
    pub fn update(&mut self, st: &State, cgroup_of: &mut dyn FnMut(u32) -> String) {
        let rings = st.rings.values().map(|r| (r, st.ring_comm(r)));
        let retired = st.retired.iter().map(|r| (r, r.owner_comm.clone()));
        let mut owners = BTreeMap::new();
        for (r, comm) in rings.chain(retired) {
            if !crate::analyzer::ring_is_shown(r) {
                continue;
            }
            let new_ring = self.rings_seen.insert((r.ctx, r.created_ns));
            let Some(e) = self.entry(comm, cgroup_of(r.tgid)) else {
                continue;
            };
            owners.insert(r.tgid, (e.comm.clone(), e.cgroup.clone()));
            if e.pids.len() < MAX_PIDS {
                e.pids.insert(r.tgid);
            }
            if new_ring {
                e.rings += 1;
            }
            if let Some(f) = r.setup_flags {
                e.setup_flags.insert(if f == 0 {
                    "none".into()
                } else {
                    setup_flags(f)
                });
            }
            for op in r.latency.keys().chain(r.errors_by_op.keys()) {
                e.opcodes.insert(opcode_name(*op).into_owned());
            }
        }
        // Unnamed after this many updates: an fd closed before it was looked up.
        self.touched.retain(|_, tries| {
            *tries -= 1;
            *tries > 0
        });
        for (tgid, files) in std::mem::take(&mut self.files) {
            // A process that used a ring it does not own (shared ring): not listed.
            let Some(e) = owners.get(&tgid).and_then(|k| self.by_id.get_mut(k)) else {
                continue;
            };
            for name in files {
                if e.files.len() < MAX_FILES {
                    e.files.insert(name);
                } else if !e.files.contains(&name) {
                    e.files_truncated = true;
                }
            }
        }
    }

    fn entry(&mut self, comm: String, cgroup: String) -> Option<&mut Entry> {
        let key = (comm, cgroup);
        if !self.by_id.contains_key(&key) {
            if self.by_id.len() >= MAX_ENTRIES {
                self.truncated = true;
                return None;
            }
            let e = Entry {
                comm: key.0.clone(),
                cgroup: key.1.clone(),
                ..Entry::default()
            };
            self.by_id.insert(key.clone(), e);
        }
        self.by_id.get_mut(&key)
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        if self.by_id.is_empty() {
            let _ = writeln!(s, "no io_uring use seen on {}", self.host);
        }
        for e in self.by_id.values() {
            let pids: Vec<String> = e.pids.iter().map(u32::to_string).collect();
            let _ = writeln!(s, "{} in {} (pids {})", e.comm, e.cgroup, pids.join(", "));
            let flags: Vec<&str> = e.setup_flags.iter().map(String::as_str).collect();
            let _ = writeln!(
                s,
                "  rings:   {} (setup flags: {})",
                e.rings,
                flags.join("; ")
            );
            let ops: Vec<&str> = e.opcodes.iter().map(String::as_str).collect();
            let _ = writeln!(s, "  opcodes: {}", ops.join(", "));
            for f in &e.files {
                let _ = writeln!(s, "  file:    {f}");
            }
            if e.files_truncated {
                let _ = writeln!(s, "  (more files than {MAX_FILES}; not listed)");
            }
        }
        if self.truncated {
            let _ = writeln!(s, "(more programs than {MAX_ENTRIES}; not listed)");
        }
        s
    }
}

fn map_values<S: serde::Serializer>(
    m: &BTreeMap<(String, String), Entry>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(m.values())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::report::Environment;
    use crate::analyzer::synthetic::nop_storm;
    use crate::analyzer::{Analyzer, AnalyzerConfig};

    #[test]
    fn a_nop_storm_is_one_program_with_one_ring_and_its_opcode() {
        let mut an = Analyzer::new(AnalyzerConfig::default(), Environment::default());
        for ev in nop_storm(1 + 130) {
            an.push(ev);
        }
        an.flush();
        let mut inv = Inventory::new("h");
        inv.update(an.state(), &mut |_| "/a.slice".into());
        inv.update(an.state(), &mut |_| "/a.slice".into());
        assert_eq!(
            inv.text(),
            "uringtrace-work in /a.slice (pids 4242)\n  rings:   1 (setup flags: none)\n  opcodes: NOP\n"
        );
        let v = serde_json::to_value(&inv).unwrap();
        assert_eq!(v["entries"][0]["opcodes"], serde_json::json!(["NOP"]));
        assert_eq!(v["entries"][0]["rings"], 1);
    }
}
