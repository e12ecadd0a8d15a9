//! Which tracepoints exist on this kernel, their layouts, and what that means for the
//! detectors. Pure functions over `format` files, so any kernel can be simulated.

use std::collections::BTreeMap;

use serde::Serialize;
use uringtrace_common::{EventKind, KindLayout, Slot};

use super::btf::Btf;
use super::catalog;
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
    /// Laid out over the tracepoint's arguments from BTF (no tracefs): attached as a
    /// raw tracepoint (`catalog::raw_program`).
    pub raw: bool,
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
    /// Resolved from BTF because tracefs could not be used: why (the tracefs error).
    pub without_tracefs: Option<String>,
    /// Tracepoints this kernel has (its BTF says so) that could not be attached
    /// without tracefs: their arguments match no prototype uringtrace knows.
    pub need_tracefs: Vec<(EventKind, String)>,
    /// Optional programs that failed to load or attach on this host: their events
    /// are not traced (`name` is None), and the detectors that need them say why.
    pub failed: Vec<FailedProgram>,
}

/// An optional program the loader gave up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedProgram {
    pub kind: EventKind,
    /// "tp_queue_async_work (io_uring:io_uring_queue_async_work)"
    pub program: String,
    /// The loader's error.
    pub error: String,
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
                            raw: false,
                        };
                    }
                }
                Resolved {
                    spec,
                    name: None,
                    format: None,
                    layout: KindLayout::default(),
                    raw: false,
                }
            })
            .collect();
        KernelEvents {
            resolved,
            ..KernelEvents::default()
        }
    }

    /// Resolves every event from the kernel's BTF alone, for hosts where tracefs
    /// cannot be used (`why`: the tracefs error). `tp_btf(kind)`: the kind has a
    /// tp_btf program on this kernel (`loader::attach_type_for`). Existence comes from
    /// the `btf_trace_<name>` typedefs; layouts from [`catalog::layout_from_btf`].
    pub fn resolve_btf(btf: &Btf, tp_btf: impl Fn(EventKind) -> bool, why: String) -> KernelEvents {
        let mut need_tracefs = Vec::new();
        let resolved = CATALOG
            .iter()
            .map(|spec| {
                let unresolved = Resolved {
                    spec,
                    name: None,
                    format: None,
                    layout: KindLayout::default(),
                    raw: false,
                };
                // The per-syscall tracepoints are no BTF tracepoints: io_uring_enter
                // is seen through raw_syscalls as tp_btf, or not hooked at all.
                let name = if spec.category == "syscalls" {
                    tp_btf(spec.kind).then_some(spec.names[0])
                } else {
                    spec.names.iter().copied().find(|n| btf.has_tracepoint(n))
                };
                let Some(name) = name else {
                    if spec.category == "syscalls" {
                        need_tracefs.push((spec.kind, format!("syscalls:{}", spec.names[0])));
                    }
                    return unresolved;
                };
                if tp_btf(spec.kind) {
                    // The tp_btf program fills what the record would hold.
                    let mut layout = KindLayout::default();
                    for m in spec.fields {
                        layout.fields[m.slot as usize] = uringtrace_common::FieldSpec {
                            offset: 0,
                            size: 8,
                            signed: 0,
                        };
                    }
                    return Resolved {
                        name: Some(name),
                        layout,
                        ..unresolved
                    };
                }
                match catalog::layout_from_btf(btf, spec, name) {
                    Some(layout) if catalog::raw_program(spec.kind).is_some() => Resolved {
                        name: Some(name),
                        layout,
                        raw: true,
                        ..unresolved
                    },
                    _ => {
                        need_tracefs.push((spec.kind, format!("{}:{name}", spec.category)));
                        unresolved
                    }
                }
            })
            .collect();
        KernelEvents {
            resolved,
            without_tracefs: Some(why),
            need_tracefs,
            ..KernelEvents::default()
        }
    }

    /// The program of `kind` failed to load or attach: its event is not traced from
    /// now on, and the detectors needing it are degraded with this reason.
    pub fn mark_failed(&mut self, kind: EventKind, program: String, error: String) {
        for r in self.resolved.iter_mut().filter(|r| r.spec.kind == kind) {
            r.name = None;
        }
        self.failed.push(FailedProgram {
            kind,
            program,
            error,
        });
    }

    /// The program of `kind` failed to load or attach.
    pub fn has_failed(&self, kind: EventKind) -> bool {
        self.failed.iter().any(|f| f.kind == kind)
    }

    /// Why a rule with these needs is degraded when a failed program is the cause.
    fn failure_reason(&self, needs: &[Need]) -> Option<String> {
        needs.iter().find_map(|n| {
            let kind = match *n {
                Need::Event(k) | Need::Field(k, _) => k,
                Need::FdinfoSqTimes => return None,
            };
            self.failed.iter().find(|f| f.kind == kind).map(|f| {
                format!(
                    "program {} failed to load or attach: {}",
                    f.program, f.error
                )
            })
        })
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
                reason: self
                    .failure_reason(r.needs)
                    .or_else(|| self.tracefs_reason(r.needs))
                    .unwrap_or_else(|| r.degraded_reason.to_string()),
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

    /// When an unmet need is a tracepoint this kernel has but that needs tracefs:
    /// that, not the kernel, is the reason.
    fn tracefs_reason(&self, needs: &[Need]) -> Option<String> {
        let kinds: Vec<&str> = needs
            .iter()
            .filter(|n| !self.meets(**n))
            .filter_map(|n| match n {
                Need::Event(k) | Need::Field(k, _) => Some(*k),
                Need::FdinfoSqTimes => None,
            })
            .filter_map(|k| {
                self.need_tracefs
                    .iter()
                    .find(|(nk, _)| *nk == k)
                    .map(|(_, tp)| tp.as_str())
            })
            .collect();
        (!kinds.is_empty()).then(|| {
            format!(
                "{} needs tracefs, which this process cannot use (see doctor's tracefs line)",
                kinds.join(", ")
            )
        })
    }

    fn meets(&self, need: Need) -> bool {
        match need {
            Need::Event(kind) => self.has(kind) && !self.has_failed(kind),
            Need::Field(kind, slot) => self.has_slot(kind, slot) && !self.has_failed(kind),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A tracepoint the kernel has but this process cannot attach (needs tracefs) is
    /// reported as that, never with the kernel-version reason.
    #[test]
    fn a_tracepoint_that_needs_tracefs_is_not_blamed_on_the_kernel() {
        let events = KernelEvents {
            need_tracefs: vec![(
                EventKind::CqeOverflow,
                "io_uring:io_uring_cqe_overflow".into(),
            )],
            ..KernelEvents::default()
        };
        let d = events.degraded();
        let reason = |slug: &str| d.iter().find(|d| d.rule == slug).unwrap().reason.clone();
        assert_eq!(
            reason("cq-overflow"),
            "io_uring:io_uring_cqe_overflow needs tracefs, which this process cannot use \
             (see doctor's tracefs line)"
        );
        assert_eq!(
            reason("invalid-sqe"),
            RuleId::InvalidSqe.rule().degraded_reason
        );
    }
}
