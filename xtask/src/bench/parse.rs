//! Reading the numbers out of what the tools print: the workload's own rate line,
//! record's summary, diagnose's JSON, bpftrace's histogram and fio's JSON.

use super::*;

pub(super) struct WorkloadRate {
    pub(super) completed: u64,
    pub(super) secs: f64,
    pub(super) ops_per_sec: f64,
}

/// `nop-storm: N submitted, N completed in X s (R ops/s, batch 64...)`
pub(super) fn parse_workload(stderr: &str) -> Option<WorkloadRate> {
    let line = stderr.lines().find(|l| l.starts_with("nop-storm: "))?;
    let (head, rest) = line.split_once(" completed in ")?;
    let completed = head.rsplit(' ').next()?.parse().ok()?;
    let (secs, rest) = rest.split_once(" s (")?;
    Some(WorkloadRate {
        completed,
        secs: secs.parse().ok()?,
        ops_per_sec: rest.split(' ').next()?.parse().ok()?,
    })
}

/// `uringtrace: N events in ..., D lost in the ring buffer; ...` -> (N, D)
pub(super) fn record_counts(stderr: &str) -> Option<(u64, u64)> {
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with("uringtrace: ") && l.contains(" lost in the ring buffer"))?;
    let events = line
        .strip_prefix("uringtrace: ")?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    let (head, _) = line.split_once(" lost in the ring buffer")?;
    let lost = head.rsplit(' ').next()?.parse().ok()?;
    Some((events, lost))
}

/// (events, lost events) from a `diagnose --format json` report file.
pub(super) fn diagnose_counts(report: &Path) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    let text = fs::read_to_string(report).context("uringtrace diagnose wrote no report")?;
    let v: Value =
        serde_json::from_str(&text).context("parsing uringtrace diagnose's JSON report")?;
    Ok((v["events"].as_u64(), v["lost_events"]["total"].as_u64()))
}

/// Samples in bpftrace's printed histograms (`[4K, 8K)  1059891 |@@@|`).
pub(super) fn hist_samples(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix('[')?;
            let (_, after) = rest.split_once([')', ']'])?;
            after.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Read IOPS summed over fio's jobs.
pub(super) fn fio_iops(text: &str) -> anyhow::Result<f64> {
    // fio may print notes before the JSON document.
    let start = text.find('{').context("no JSON object")?;
    let v: Value = serde_json::from_str(&text[start..])?;
    let jobs = v["jobs"].as_array().context("no `jobs` array")?;
    let iops: f64 = jobs.iter().filter_map(|j| j["read"]["iops"].as_f64()).sum();
    ensure!(iops > 0.0, "fio reported 0 read IOPS");
    Ok(iops)
}

/// (bytes, seconds) from dd's `3145728 bytes (3.1 MB, 3.0 MiB) copied, 1.46 s, 2.2 MB/s`.
pub(super) fn dd_copied(stderr: &str) -> Option<(u64, f64)> {
    let line = stderr.lines().find(|l| l.contains(" copied, "))?;
    let bytes = line.split(' ').next()?.parse().ok()?;
    let (_, rest) = line.split_once(" copied, ")?;
    Some((bytes, rest.split(' ').next()?.parse().ok()?))
}

/// (round trips, seconds) from `ping-pong: N round trips in X s on CPU C`.
pub(super) fn pingpong_secs(stderr: &str) -> Option<(u64, f64)> {
    let line = stderr.lines().find_map(|l| l.strip_prefix("ping-pong: "))?;
    let (n, rest) = line.split_once(" round trips in ")?;
    Some((n.parse().ok()?, rest.split(' ').next()?.parse().ok()?))
}

/// Hits summed over a bpftrace count map (`@[tracepoint:io_uring:io_uring_complete]: 12`).
pub(super) fn map_counts(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter(|l| l.starts_with("@["))
        .filter_map(|l| l.rsplit_once("]: ")?.1.trim().parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_workload_line() {
        let w = parse_workload(
            "nop-storm: 5000000 submitted, 5000000 completed in 0.256 s (19554940 ops/s, batch 64)\n",
        )
        .unwrap();
        assert_eq!(w.completed, 5_000_000);
        assert_eq!(w.secs, 0.256);
        assert_eq!(w.ops_per_sec, 19554940.0);
    }

    #[test]
    fn parses_record_summary() {
        let s = "uringtrace: 10075478 events in 4.00s (2520514/s), 80799 lost in the ring buffer; 301.1 MiB on disk (31.3 bytes/event)\nuringtrace: warning: ...";
        assert_eq!(record_counts(s), Some((10_075_478, 80_799)));
    }

    #[test]
    fn parses_dd_and_pingpong() {
        let dd = "3145728+0 records in\n3145728+0 records out\n3145728 bytes (3.1 MB, 3.0 MiB) copied, 1.46215 s, 2.2 MB/s\n";
        assert_eq!(dd_copied(dd), Some((3_145_728, 1.46215)));
        let pp = "ping-pong: 300000 round trips in 1.234567 s on CPU 1\n";
        assert_eq!(pingpong_secs(pp), Some((300_000, 1.234567)));
    }

    #[test]
    fn sums_bpftrace_count_map() {
        let s = "Attaching 17 probes...\n\n@[tracepoint:io_uring:io_uring_submit_req]: 7\n@[tracepoint:io_uring:io_uring_complete]: 5\n";
        assert_eq!(map_counts(s), 12);
        assert_eq!(map_counts(""), 0);
    }

    #[test]
    fn sums_bpftrace_histogram() {
        let s = "@lat: \n[4K, 8K)         1059891 |@@@@|\n[8K, 16K)        3830250 |@@@|\n[0]   5 |@|\n";
        assert_eq!(hist_samples(s), 1_059_891 + 3_830_250 + 5);
    }
}
