//! The tracer's own cost: CPU time the kernel spent in our BPF programs.
//!
//! The kernel counts run time per program only while BPF statistics are on
//! (`sysctl kernel.bpf_stats_enabled`, or a BPF_ENABLE_STATS fd, which turns them on
//! for as long as it is open: that is what [`BpfStats::enable`] holds). The counts of
//! exactly our programs come from the kernel's program info of each program the
//! tracer loaded ([`Tracer::program_run_stats`]).

use std::os::fd::OwnedFd;

use crate::trace::loader::Tracer;

use super::app::CostSample;

pub struct BpfStats {
    /// Keeps statistics on while `top` runs; closing it turns them off again.
    _enabled: Option<OwnedFd>,
}

impl BpfStats {
    /// Turns statistics on, or says why they are unavailable.
    pub fn enable() -> Result<BpfStats, String> {
        match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
            Ok(fd) => Ok(BpfStats { _enabled: Some(fd) }),
            // Already on host-wide: nothing to hold.
            Err(_) if sysctl_enabled() => Ok(BpfStats { _enabled: None }),
            Err(e) => Err(format!("n/a ({e}; try sysctl kernel.bpf_stats_enabled=1)")),
        }
    }

    /// Cumulative run time and count of the BPF programs `tracer` has loaded.
    pub fn sample(&self, tracer: &Tracer, at_ns: u64) -> CostSample {
        let (run_time_ns, run_count) = tracer.program_run_stats();
        CostSample {
            at_ns,
            run_time_ns,
            run_count,
        }
    }
}

fn sysctl_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|s| s.trim() == "1")
}
