//! Which tracepoints exist on this kernel, their layouts, and what that means for the
//! detectors. Pure functions over `format` files, so any kernel can be simulated.

use std::collections::BTreeMap;

use serde::Serialize;
use uringtrace_common::{EventKind, KindLayout, Slot};

use super::catalog::{layout_for, TracepointSpec, CATALOG};
use super::format::Format;
use crate::analyzer::rules::{Need, RuleId};

/// One catalog entry resolved against the running (or a simulated) kernel.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub spec: &'static TracepointSpec,
    /// The tracepoint name found, None when the kernel has none of the candidates.
    pub name: Option<&'static str>,
    pub format: Option<Format>,
    pub layout: KindLayout,
}

impl Resolved {
    pub fn has_slot(&self, slot: Slot) -> bool {
        self.layout.fields[slot as usize].size != 0
    }
}

/// The set of resolved tracepoints for one kernel.
#[derive(Clone, Debug, Default)]
pub struct KernelEvents {
    pub resolved: Vec<Resolved>,
    /// Whether a ring's fdinfo shows SqTotalTime/SqWorkTime (6.9+): learnt by looking
    /// at a ring of this kernel (`fdinfo::has_sq_times`); None when not looked.
    pub fdinfo_sq_times: Option<bool>,
    /// io_uring_enter is read at io_uring_cqring_wait, not hooked (host-wide tracing):
    /// see [`WITHOUT_ENTER_HOOKS`].
    pub enter_at_wait: bool,
}

/// What detectors lose when io_uring_enter is not hooked (host-wide tracing by
/// default: a syscall hook slows every syscall of the host). Only enters that sleep
/// are seen, read at their wait, and none has an exit.
pub const WITHOUT_ENTER_HOOKS: &[(RuleId, &str)] = &[
    (
        RuleId::UnsatisfiableWait,
        "less precise host-wide (io_uring_enter not hooked): a wait's end is known when its thread next submits or waits",
    ),
    (
        RuleId::CqOverflow,
        "less precise host-wide (io_uring_enter not hooked): flushes by enters that do not sleep show in fdinfo samples, up to 100 ms late",
    ),
    (
        RuleId::EnterError,
        "not seen host-wide (io_uring_enter not hooked): enters read at their wait have no exit; trace with --pid or a command",
    ),
    (
        RuleId::IoUringUnavailable,
        "not seen host-wide (syscalls not hooked): io_uring_setup's exit needs the hook; trace with --pid or a command",
    ),
];

impl KernelEvents {
    /// `lookup(category, name)` returns the format of a tracepoint, or None if absent.
    pub fn resolve(mut lookup: impl FnMut(&str, &str) -> Option<Format>) -> KernelEvents {
        let resolved = CATALOG
            .iter()
            .map(|spec| {
                for name in spec.names {
                    if let Some(format) = lookup(spec.category, name) {
                        let layout = layout_for(spec, &format);
                        return Resolved {
                            spec,
                            name: Some(name),
                            format: Some(format),
                            layout,
                        };
                    }
                }
                Resolved {
                    spec,
                    name: None,
                    format: None,
                    layout: KindLayout::default(),
                }
            })
            .collect();
        KernelEvents {
            resolved,
            fdinfo_sq_times: None,
            enter_at_wait: false,
        }
    }

    pub fn get(&self, kind: EventKind) -> Option<&Resolved> {
        self.resolved
            .iter()
            .find(|r| r.spec.kind == kind && r.name.is_some())
    }

    pub fn has(&self, kind: EventKind) -> bool {
        self.get(kind).is_some()
    }

    fn has_slot(&self, kind: EventKind, slot: Slot) -> bool {
        self.get(kind).is_some_and(|r| r.has_slot(slot))
    }

    /// io_uring tracepoints present (the "17 on 6.18").
    pub fn io_uring_count(&self) -> usize {
        self.resolved
            .iter()
            .filter(|r| r.spec.category == "io_uring" && r.name.is_some())
            .count()
    }

    /// Detectors that cannot work fully on this kernel, with the reason: each rule's
    /// needs (`rules/*.rs`) checked against what this kernel has.
    pub fn degraded(&self) -> Vec<Degraded> {
        RuleId::ALL
            .iter()
            .map(|id| id.rule())
            .filter(|r| !r.needs.iter().all(|n| self.meets(*n)))
            .map(|r| Degraded {
                rule: r.slug,
                reason: r.degraded_reason.to_string(),
            })
            .chain(
                WITHOUT_ENTER_HOOKS
                    .iter()
                    .filter(|_| self.enter_at_wait)
                    .map(|(id, why)| Degraded {
                        rule: id.rule().slug,
                        reason: (*why).to_string(),
                    }),
            )
            .collect()
    }

    fn meets(&self, need: Need) -> bool {
        match need {
            Need::Event(kind) => self.has(kind),
            Need::Field(kind, slot) => self.has_slot(kind, slot),
            // Unknown (formats of another kernel, no ring to look at): not degraded.
            Need::FdinfoSqTimes => self.fdinfo_sq_times != Some(false),
        }
    }

    /// Tracepoint name → attach type, for recording headers and `doctor`.
    pub fn attached_names(&self) -> BTreeMap<String, String> {
        self.resolved
            .iter()
            .filter_map(|r| {
                r.name.map(|n| {
                    (
                        format!("{}:{}", r.spec.category, n),
                        "tracepoint".to_string(),
                    )
                })
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Degraded {
    pub rule: &'static str,
    pub reason: String,
}
