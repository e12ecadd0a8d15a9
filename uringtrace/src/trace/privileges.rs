//! What the current process may do: root, or CAP_BPF + CAP_PERFMON (5.8+).

use serde::Serialize;
use thiserror::Error;

const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Privileges {
    pub euid: u32,
    pub cap_sys_admin: bool,
    pub cap_bpf: bool,
    pub cap_perfmon: bool,
    /// Reading /proc/PID/fdinfo of another user's process (the ring-state samples of
    /// other users' rings) needs both: ptrace read access (CAP_SYS_PTRACE) and
    /// passing the 0500 fd/fdinfo directories and 0400 files (CAP_DAC_READ_SEARCH).
    pub cap_sys_ptrace: bool,
    pub cap_dac_read_search: bool,
}

impl Privileges {
    pub fn current() -> Privileges {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        Privileges::from_status(euid, &status)
    }

    /// Parses `CapEff:` from /proc/<pid>/status.
    pub fn from_status(euid: u32, status: &str) -> Privileges {
        let caps = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        let has = |c: u32| caps & (1u64 << c) != 0;
        Privileges {
            euid,
            cap_sys_admin: has(CAP_SYS_ADMIN),
            cap_bpf: has(CAP_BPF),
            cap_perfmon: has(CAP_PERFMON),
            cap_sys_ptrace: has(CAP_SYS_PTRACE),
            cap_dac_read_search: has(CAP_DAC_READ_SEARCH),
        }
    }

    /// Ok when tracing can work; otherwise the capabilities that are missing.
    pub fn check(&self) -> Result<(), MissingPrivileges> {
        if self.cap_sys_admin || (self.cap_bpf && self.cap_perfmon) {
            return Ok(());
        }
        let mut lacks = Vec::new();
        if !self.cap_bpf {
            lacks.push("CAP_BPF");
        }
        if !self.cap_perfmon {
            lacks.push("CAP_PERFMON");
        }
        Err(MissingPrivileges { lacks })
    }

    /// None when tracing can work; otherwise what is missing, in words.
    pub fn missing(&self) -> Option<String> {
        self.check().err().map(|e| e.to_string())
    }
}

/// Tracing needs root, or CAP_BPF and CAP_PERFMON.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "uringtrace needs root, or CAP_BPF and CAP_PERFMON; this process lacks {} \
     (try: sudo uringtrace ..., or setcap cap_bpf,cap_perfmon+ep $(which uringtrace))",
    lacks.join(" and ")
)]
pub struct MissingPrivileges {
    /// The capabilities this process lacks, e.g. `CAP_BPF`.
    pub lacks: Vec<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_caps_are_enough() {
        let p = Privileges::from_status(0, "Name:\tx\nCapEff:\t000001ffffffffff\n");
        assert!(p.cap_bpf && p.cap_perfmon && p.cap_sys_admin);
        assert_eq!(p.missing(), None);
    }

    #[test]
    fn names_the_missing_capability() {
        let bpf_only = format!("CapEff:\t{:016x}\n", 1u64 << 39);
        let p = Privileges::from_status(1000, &bpf_only);
        let msg = p.missing().unwrap();
        assert!(msg.contains("lacks CAP_PERFMON"), "{msg}");
        let none = Privileges::from_status(1000, "CapEff:\t0000000000000000\n");
        assert!(none
            .missing()
            .unwrap()
            .contains("lacks CAP_BPF and CAP_PERFMON"));
    }
}
