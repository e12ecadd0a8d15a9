//! The tracer's own cost: CPU time the kernel spent in our BPF programs.
//!
//! The kernel counts run time per program only while BPF statistics are on
//! (`sysctl kernel.bpf_stats_enabled`, or a BPF_ENABLE_STATS fd, which turns them on
//! for as long as it is open: that is what [`BpfStats::enable`] holds). The counts of
//! exactly our programs come from the fdinfo of the program fds this process holds.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;

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

    /// Cumulative run time and count of the BPF programs this process has loaded.
    pub fn sample(&self, at_ns: u64) -> CostSample {
        let mut progs: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/fdinfo") {
            for entry in dir.flatten() {
                let Ok(text) = std::fs::read_to_string(entry.path()) else {
                    continue;
                };
                if let Some((id, time, count)) = parse_prog_fdinfo(&text) {
                    progs.insert(id, (time, count));
                }
            }
        }
        let (run_time_ns, run_count) = progs.values().fold((0, 0), |(t, n), (a, b)| (t + a, n + b));
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

/// (prog_id, run_time_ns, run_cnt) of a BPF program fd's fdinfo; None for any other
/// fd (links name a prog_id too, but carry no run time).
pub fn parse_prog_fdinfo(text: &str) -> Option<(u64, u64, u64)> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(':')?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    Some((field("prog_id")?, field("run_time_ns")?, field("run_cnt")?))
}

#[cfg(test)]
mod tests {
    use super::parse_prog_fdinfo;

    #[test]
    fn parses_program_fdinfo_only() {
        let prog = "pos:\t0\nflags:\t02000002\nprog_type:\t5\nprog_id:\t46\nrun_time_ns:\t1200\nrun_cnt:\t7\n";
        assert_eq!(parse_prog_fdinfo(prog), Some((46, 1200, 7)));
        let link = "pos:\t0\nlink_type:\tperf\nlink_id:\t3\nprog_tag:\tabc\nprog_id:\t46\n";
        assert_eq!(parse_prog_fdinfo(link), None);
        assert_eq!(parse_prog_fdinfo("pos:\t0\nflags:\t0100000\n"), None);
    }
}
