//! Findings as they are collected: one per cause, and, for consumers that run for
//! days, handed over and let go.
//!
//! A one-shot consumer (`diagnose`, `check`, `top`) reads [`super::Analyzer::report`]:
//! every finding of the trace. A long-running one (the agent) calls
//! [`super::Analyzer::take_new_findings`] now and then instead: it gets each finding
//! once, when it is first recorded (and again if its severity rises later, so that
//! what it wrote and counted reaches the worst severity), and the analyzer lets go of
//! findings nothing can
//! add to any more (their process is gone), so its memory stays bounded on a host
//! where processes come and go forever. Nothing changes for a consumer that never
//! calls it.

use std::collections::HashSet;
use std::hash::BuildHasher;

use super::detect::Hit;
use super::finding::{self, Finding, Severity};
use super::state::{Map, State};

/// Findings kept per process and ring. Past this (a host where programs come and go
/// all day, each with the same problem), new ones are counted per program name
/// instead (pid and ring 0), so a host-wide trace of hours stays bounded.
pub const MAX_FINDINGS: usize = 1024;

/// Findings a consumer of [`super::Analyzer::take_new_findings`] leaves in the
/// analyzer at most after each call: past this, the oldest handed-over ones are let
/// go even though their process lives on (counted in [`FindingsKept::evicted`]). A
/// cause that recurs after its finding was let go is recorded (and handed over) again.
pub const MAX_RETAINED: usize = 2 * MAX_FINDINGS;

/// How many findings the analyzer holds and has let go of (see
/// [`super::Analyzer::take_new_findings`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FindingsKept {
    /// Held now.
    pub retained: usize,
    /// Handed over, ever: each finding once.
    pub handed_over: u64,
    /// Handed over again because their severity rose after they were handed over.
    pub raised: u64,
    /// Let go because their process was gone.
    pub released: u64,
    /// Let go at [`MAX_RETAINED`] while their process lived on.
    pub evicted: u64,
}

/// One finding per cause (rule and cause key, process, ring): repeated hits collapse
/// as they come, counting occurrences, widening the time span, and keeping a bounded
/// number of example requests. So memory grows with the distinct causes of a trace,
/// not with its length or its number of connections.
#[derive(Clone, Default)]
pub(super) struct Findings {
    /// In order of first occurrence.
    pub(super) list: Vec<Finding>,
    /// The key of each of `list`'s findings (same positions), and whether the state
    /// knew its process when it was recorded: only then does the process's absence
    /// later mean that it is gone.
    keys: Vec<(u64, bool)>,
    /// (rule and cause, process, ring) → index in `list`.
    index: Map<u64, usize>,
    /// `list[..handed]` were handed over, each last with `told[i]`'s severity.
    handed: usize,
    told: Vec<Severity>,
    kept: FindingsKept,
}

impl Findings {
    /// The key of a hit, and the hit folded per program name when the list is full.
    fn key(&self, h: &mut Hit) -> u64 {
        let hasher = foldhash::fast::FixedState::default();
        let f = &h.finding;
        let key = hasher.hash_one((h.cause, f.pid, f.ring));
        if self.index.contains_key(&key) || self.list.len() < MAX_FINDINGS {
            return key;
        }
        let key = hasher.hash_one((h.cause, &f.comm));
        h.finding.pid = 0;
        h.finding.ring = 0;
        key
    }

    pub(super) fn add(&mut self, mut h: Hit, st: &State) {
        let key = self.key(&mut h);
        let Some(&i) = self.index.get(&key) else {
            self.push(key, h.finding, st);
            return;
        };
        let (prev, f) = (&mut self.list[i], h.finding);
        prev.occurrences += f.occurrences;
        prev.severity = prev.severity.max(f.severity);
        prev.evidence.first_ns = prev.evidence.first_ns.min(f.evidence.first_ns);
        prev.evidence.last_ns = prev.evidence.last_ns.max(f.evidence.last_ns);
        let room = finding::MAX_EXAMPLE_REQUESTS.saturating_sub(prev.evidence.requests.len());
        prev.evidence
            .requests
            .extend(f.evidence.requests.into_iter().take(room));
    }

    /// Records a hit about the current state (a stall still going on, an overflow
    /// list not flushed yet) once: the state is looked at again at every call, and
    /// the same ongoing cause must not count as a new occurrence each time. Its
    /// severity may still rise.
    pub(super) fn add_ongoing(&mut self, mut h: Hit, st: &State) {
        let key = self.key(&mut h);
        match self.index.get(&key) {
            Some(&i) => {
                let prev = &mut self.list[i];
                prev.severity = prev.severity.max(h.finding.severity);
            }
            None => self.push(key, h.finding, st),
        }
    }

    fn push(&mut self, key: u64, f: Finding, st: &State) {
        let known = f.pid == 0 || knows(st, f.pid);
        self.index.insert(key, self.list.len());
        self.list.push(f);
        self.keys.push((key, known));
    }

    /// The findings recorded since the previous call, and those handed over before
    /// whose severity rose since (with what they counted so far), with `inconclusive`
    /// set; then lets go of those whose process `st` no longer knows, and of the
    /// oldest beyond [`MAX_RETAINED`].
    pub(super) fn take_new(&mut self, st: &State, inconclusive: bool) -> Vec<Finding> {
        let hand = |f: &Finding| Finding {
            inconclusive,
            ..f.clone()
        };
        let mut new = Vec::new();
        for (f, told) in self.list[..self.handed].iter().zip(&mut self.told) {
            if f.severity > *told {
                *told = f.severity;
                new.push(hand(f));
            }
        }
        self.kept.raised += new.len() as u64;
        let fresh = &self.list[self.handed..];
        self.kept.handed_over += fresh.len() as u64;
        new.extend(fresh.iter().map(hand));
        self.told.extend(fresh.iter().map(|f| f.severity));
        let (tgids, comms) = live(st);
        let before = self.list.len();
        let mut keep: Vec<bool> = self
            .list
            .iter()
            .zip(&self.keys)
            .map(|(f, (_, known))| {
                !known
                    || if f.pid == 0 {
                        comms.contains(f.comm.as_str())
                    } else {
                        tgids.contains(&f.pid)
                    }
            })
            .collect();
        let alive = keep.iter().filter(|k| **k).count();
        self.kept.released += (before - alive) as u64;
        // Oldest first: they were handed over longest ago.
        let mut over = alive.saturating_sub(MAX_RETAINED);
        for k in keep.iter_mut().filter(|k| **k) {
            if over == 0 {
                break;
            }
            *k = false;
            over -= 1;
            self.kept.evicted += 1;
        }
        if keep.iter().any(|k| !*k) {
            let mut it = keep.iter();
            self.list.retain(|_| *it.next().unwrap_or(&true));
            let mut it = keep.iter();
            self.keys.retain(|_| *it.next().unwrap_or(&true));
            let mut it = keep.iter();
            self.told.retain(|_| *it.next().unwrap_or(&true));
            self.index = self
                .keys
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (*k, i))
                .collect();
        }
        self.handed = self.list.len();
        self.kept.retained = self.list.len();
        new
    }

    pub(super) fn kept(&self) -> FindingsKept {
        FindingsKept {
            retained: self.list.len(),
            ..self.kept
        }
    }
}

/// Whether the state knows process `tgid` (one compare for most; a scan of the
/// threads for a process seen only through its other threads). Only for a new
/// finding, which is rare.
fn knows(st: &State, tgid: u32) -> bool {
    st.comms.contains_key(&tgid)
        || st.procs.contains_key(&tgid)
        || st.rings.values().any(|r| r.tgid == tgid)
        || st.comms.values().any(|(t, _)| *t == tgid)
}

/// The processes the state still knows (their threads, rings or counters), and
/// their names: a finding about anything else can grow no more.
fn live(st: &State) -> (HashSet<u32>, HashSet<&str>) {
    let mut tgids: HashSet<u32> = st.procs.keys().copied().collect();
    let mut comms: HashSet<&str> = HashSet::new();
    for (tgid, comm) in st.comms.values() {
        tgids.insert(*tgid);
        comms.insert(comm.as_str());
    }
    for r in st.rings.values() {
        tgids.insert(r.tgid);
        comms.insert(r.owner_comm.as_str());
    }
    (tgids, comms)
}

#[cfg(test)]
#[path = "collect_tests.rs"]
pub(crate) mod tests;
