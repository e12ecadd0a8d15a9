//! The inventory of io_uring use (`uringtrace inventory`, the agent's `/inventory`):
//! which programs, in which cgroups, created or used rings, with which setup flags
//! and opcodes, on which files and sockets. For security teams: syscall monitors do
//! not see the operations io_uring carries.
//!
//! Accumulated from the analyzer's state at each [`Inventory::update`]: the analyzer
//! forgets processes and closed fds, the inventory keeps what it saw. Bounded: one
//! entry per (comm, cgroup), at most [`MAX_ENTRIES`], each with at most
//! [`MAX_FILES`] files and [`MAX_PIDS`] pids.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;
use uringtrace_common::FdType;

use crate::analyzer::state::State;
use crate::names::{opcode_name, setup_flags};

pub const MAX_ENTRIES: usize = 1024;
pub const MAX_FILES: usize = 64;
pub const MAX_PIDS: usize = 16;

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
    /// path, `socket:ADDR->ADDR`, `pipe:[INODE]`), else `socket inode N` etc.
    pub files: BTreeSet<String>,
    /// More files than [`MAX_FILES`] were seen.
    pub files_truncated: bool,
}

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct Inventory {
    pub host: String,
    pub entries: Vec<Entry>,
    /// More programs than [`MAX_ENTRIES`] were seen; the rest are not listed.
    pub truncated: bool,
    #[serde(skip)]
    by_id: BTreeMap<(String, String), Entry>,
    #[serde(skip)]
    rings_seen: BTreeSet<(u64, u64)>,
}

impl Inventory {
    pub fn new(host: &str) -> Inventory {
        Inventory {
            host: host.into(),
            ..Inventory::default()
        }
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
                e.setup_flags.insert(setup_flags(f));
            }
            for op in r.latency.keys().chain(r.errors_by_op.keys()) {
                e.opcodes.insert(opcode_name(*op).into_owned());
            }
        }
        for ((tgid, fd), (kind, ino)) in st.fds.iter() {
            let Some(key) = owners.get(tgid) else {
                continue;
            };
            if matches!(kind, FdType::Closed | FdType::Ring) {
                continue;
            }
            let name = match st.fd_name(*tgid, *fd) {
                Some(n) => n.to_string(),
                None => format!("{} inode {ino}", kind_name(*kind)),
            };
            if let Some(e) = self.by_id.get_mut(key) {
                if e.files.len() < MAX_FILES {
                    e.files.insert(name);
                } else if !e.files.contains(&name) {
                    e.files_truncated = true;
                }
            }
        }
        self.entries = self.by_id.values().cloned().collect();
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
        if self.entries.is_empty() {
            let _ = writeln!(s, "no io_uring use seen on {}", self.host);
        }
        for e in &self.entries {
            let pids: Vec<String> = e.pids.iter().map(u32::to_string).collect();
            let _ = writeln!(s, "{} in {} (pids {})", e.comm, e.cgroup, pids.join(", "));
            let flags: Vec<&str> = e
                .setup_flags
                .iter()
                .map(|f| if f.is_empty() { "none" } else { f.as_str() })
                .collect();
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

fn kind_name(k: FdType) -> &'static str {
    match k {
        FdType::File => "file",
        FdType::Pipe => "pipe",
        FdType::Socket => "socket",
        _ => "fd",
    }
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
