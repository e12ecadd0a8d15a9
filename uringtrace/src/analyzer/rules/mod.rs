//! The rule engine's catalog: one module per rule, named by [`RuleId`]. Each module
//! holds the rule's metadata (slug, default severity, title, fix), the long explanation
//! `uringtrace explain RULE` prints, what the detector needs from the kernel, and the
//! detector itself. `rules`, `explain`, `check`'s config, `doctor`'s degraded-detector
//! list and the TUI all derive from [`RuleId::ALL`]. Slugs exist for people (CLI,
//! config, JSON); code paths use the enum.
//!
//! Explanations are plain text wrapped at 90 columns (a test enforces it), so they print
//! as they are in a terminal. Kernel versions come from the facts checked against the
//! kernel source, 5.10 to 6.18.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uringtrace_common::{EventKind, Slot};

use super::finding::Severity;

pub mod budget_in_flight;
pub mod budget_iowq_workers;
pub mod budget_p99_latency;
pub mod buffer_exhausted;
pub mod cq_overflow;
pub mod cqe_dropped;
pub mod drain_blocked;
pub mod enter_error;
pub mod fixed_buffer_misuse;
pub mod fixed_file_misuse;
pub mod invalid_sqe;
pub mod io_uring_unavailable;
pub mod iowq_punt_storm;
pub mod link_chain_broken;
pub mod multishot_terminated;
pub mod overflow_not_flushed;
pub mod request_stalled;
pub mod short_write;
pub mod sqpoll_chain_split;
pub mod sqpoll_idle_spin;
pub mod sqpoll_missed_wakeup;
pub mod sqpoll_proliferation;
pub mod task_work_stalled;
pub mod unsatisfiable_wait;
pub mod wait_cycle;

/// Every rule, by name. The order is the catalog's (`uringtrace rules`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    CqOverflow,
    CqeDropped,
    SqpollMissedWakeup,
    SqpollIdleSpin,
    SqpollChainSplit,
    LinkChainBroken,
    InvalidSqe,
    WaitCycle,
    UnsatisfiableWait,
    RequestStalled,
    MultishotTerminated,
    BufferExhausted,
    IowqPuntStorm,
    BudgetP99Latency,
    BudgetInFlight,
    BudgetIowqWorkers,
    FixedFileMisuse,
    FixedBufferMisuse,
    ShortWrite,
    DrainBlocked,
    EnterError,
    IoUringUnavailable,
    OverflowNotFlushed,
    SqpollProliferation,
    TaskWorkStalled,
}

impl RuleId {
    pub const ALL: [RuleId; 25] = [
        RuleId::CqOverflow,
        RuleId::CqeDropped,
        RuleId::SqpollMissedWakeup,
        RuleId::SqpollIdleSpin,
        RuleId::SqpollChainSplit,
        RuleId::LinkChainBroken,
        RuleId::InvalidSqe,
        RuleId::WaitCycle,
        RuleId::UnsatisfiableWait,
        RuleId::RequestStalled,
        RuleId::MultishotTerminated,
        RuleId::BufferExhausted,
        RuleId::IowqPuntStorm,
        RuleId::BudgetP99Latency,
        RuleId::BudgetInFlight,
        RuleId::BudgetIowqWorkers,
        RuleId::FixedFileMisuse,
        RuleId::FixedBufferMisuse,
        RuleId::ShortWrite,
        RuleId::DrainBlocked,
        RuleId::EnterError,
        RuleId::IoUringUnavailable,
        RuleId::OverflowNotFlushed,
        RuleId::SqpollProliferation,
        RuleId::TaskWorkStalled,
    ];

    /// The rule's metadata and explanation.
    pub fn rule(self) -> &'static Rule {
        match self {
            RuleId::CqOverflow => &cq_overflow::RULE,
            RuleId::CqeDropped => &cqe_dropped::RULE,
            RuleId::SqpollMissedWakeup => &sqpoll_missed_wakeup::RULE,
            RuleId::SqpollIdleSpin => &sqpoll_idle_spin::RULE,
            RuleId::SqpollChainSplit => &sqpoll_chain_split::RULE,
            RuleId::LinkChainBroken => &link_chain_broken::RULE,
            RuleId::InvalidSqe => &invalid_sqe::RULE,
            RuleId::WaitCycle => &wait_cycle::RULE,
            RuleId::UnsatisfiableWait => &unsatisfiable_wait::RULE,
            RuleId::RequestStalled => &request_stalled::RULE,
            RuleId::MultishotTerminated => &multishot_terminated::RULE,
            RuleId::BufferExhausted => &buffer_exhausted::RULE,
            RuleId::IowqPuntStorm => &iowq_punt_storm::RULE,
            RuleId::BudgetP99Latency => &budget_p99_latency::RULE,
            RuleId::BudgetInFlight => &budget_in_flight::RULE,
            RuleId::BudgetIowqWorkers => &budget_iowq_workers::RULE,
            RuleId::FixedFileMisuse => &fixed_file_misuse::RULE,
            RuleId::FixedBufferMisuse => &fixed_buffer_misuse::RULE,
            RuleId::ShortWrite => &short_write::RULE,
            RuleId::DrainBlocked => &drain_blocked::RULE,
            RuleId::EnterError => &enter_error::RULE,
            RuleId::IoUringUnavailable => &io_uring_unavailable::RULE,
            RuleId::OverflowNotFlushed => &overflow_not_flushed::RULE,
            RuleId::SqpollProliferation => &sqpoll_proliferation::RULE,
            RuleId::TaskWorkStalled => &task_work_stalled::RULE,
        }
    }

    pub fn slug(self) -> &'static str {
        self.rule().slug
    }

    pub fn from_slug(slug: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.slug() == slug)
    }
}

impl RuleId {
    /// The slug (for views and tests that compare with names).
    pub fn as_str(self) -> &'static str {
        self.slug()
    }
}

/// A rule compares equal to its slug, so views and tests can name rules as people do.
impl PartialEq<&str> for RuleId {
    fn eq(&self, other: &&str) -> bool {
        self.slug() == *other
    }
}

impl PartialEq<str> for RuleId {
    fn eq(&self, other: &str) -> bool {
        self.slug() == other
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.slug())
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RuleId, D::Error> {
        let s = String::deserialize(d)?;
        RuleId::from_slug(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown rule {s:?}")))
    }
}

/// In JSON schemas a rule is one of the catalog's slugs, as [`Serialize`] writes it.
impl schemars::JsonSchema for RuleId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RuleId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let slugs: Vec<&str> = RuleId::ALL.iter().map(|r| r.slug()).collect();
        schemars::json_schema!({
            "description": "The rule, by slug (`uringtrace rules` lists them, `uringtrace explain RULE` explains one).",
            "type": "string",
            "enum": slugs,
        })
    }
}

/// What a detector needs from the traced kernel.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// The tracepoint (or injected event) exists.
    Event(EventKind),
    /// The tracepoint exists and has the field that feeds this slot.
    Field(EventKind, Slot),
    /// A ring's /proc fdinfo shows the SQPOLL thread's SqTotalTime and SqWorkTime (6.9+).
    FdinfoSqTimes,
}

pub struct Rule {
    pub id: RuleId,
    pub slug: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    /// What to change, in one line (`explain` has the long form).
    pub fix: &'static str,
    /// All of these must hold for the detector to work fully.
    pub needs: &'static [Need],
    /// Why the detector is degraded when a need is missing (for `doctor` and reports).
    pub degraded_reason: &'static str,
    /// Kernel mechanism, how it shows up in a trace, and the fix.
    pub explanation: &'static str,
}

/// The catalog, in [`RuleId::ALL`] order.
pub fn all() -> impl Iterator<Item = &'static Rule> {
    RuleId::ALL.into_iter().map(RuleId::rule)
}

pub fn rule(slug: &str) -> Option<&'static Rule> {
    RuleId::from_slug(slug).map(RuleId::rule)
}

/// The known slug nearest to `slug` by edit distance, when it is close enough to be a
/// plausible typo (at most a third of the slug's length).
pub fn closest(slug: &str) -> Option<&'static str> {
    let (best, dist) = all()
        .map(|r| (r.slug, edit_distance(slug, r.slug)))
        .min_by_key(|(_, d)| *d)?;
    (dist <= slug.chars().count().max(3) / 3).then_some(best)
}

/// Levenshtein distance over chars, with one row of memory.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = diag + usize::from(ca != *cb);
            diag = row[j + 1];
            row[j + 1] = subst.min(row[j] + 1).min(diag + 1);
        }
    }
    row[b.len()]
}

/// All slugs, comma separated, for error messages.
pub fn slug_list() -> String {
    all().map(|r| r.slug).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn kebab(s: &str) -> bool {
        !s.is_empty()
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn slugs_are_unique_kebab_case() {
        let mut seen = HashSet::new();
        for r in all() {
            assert!(kebab(r.slug), "{} is not kebab-case", r.slug);
            assert!(seen.insert(r.slug), "duplicate slug {}", r.slug);
        }
    }

    #[test]
    fn explanations_are_real_and_wrapped() {
        for r in all() {
            let e = r.explanation;
            assert!(
                !e.trim().is_empty() && !e.contains("TODO"),
                "{}: no explanation",
                r.slug
            );
            let lines = e.lines().count();
            assert!((8..=30).contains(&lines), "{}: {lines} lines", r.slug);
            for line in e.lines() {
                assert!(
                    line.chars().count() <= 92,
                    "{}: line too long: {line}",
                    r.slug
                );
                assert!(!line.starts_with('#'), "{}: markdown header", r.slug);
                assert_eq!(line, line.trim_end(), "{}: trailing space", r.slug);
            }
            assert!(!r.title.is_empty(), "{}: no title", r.slug);
        }
    }

    #[test]
    fn budget_rules_are_errors() {
        for slug in [
            "budget-p99-latency",
            "budget-in-flight",
            "budget-iowq-workers",
        ] {
            assert_eq!(
                rule(slug).map(|r| r.severity),
                Some(Severity::Error),
                "{slug}"
            );
        }
    }

    #[test]
    fn ids_match_their_modules() {
        for id in RuleId::ALL {
            assert_eq!(id.rule().id, id, "{id:?}");
            assert_eq!(RuleId::from_slug(id.slug()), Some(id));
            assert!(!id.rule().fix.is_empty(), "{id}: no fix");
            assert_eq!(
                id.rule().needs.is_empty(),
                id.rule().degraded_reason.is_empty(),
                "{id}"
            );
        }
    }

    #[test]
    fn closest_slug() {
        assert_eq!(closest("cq-overflw"), Some("cq-overflow"));
        assert_eq!(closest("link-chain-brokne"), Some("link-chain-broken"));
        assert_eq!(closest("something-else-entirely"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
