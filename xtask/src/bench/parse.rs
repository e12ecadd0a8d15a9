//! Reading the numbers out of what the tools print: the workload's own rate line,
//! uringtrace's `--stats-json` file, bpftrace's histogram and fio's JSON.

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

/// What `uringtrace record|diagnose --stats-json FILE` wrote (see uringtrace's
/// stats.rs): events, losses, and for `record` the size on disk and the consumer.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct RunStats {
    pub(super) events: u64,
    pub(super) lost: u64,
    pub(super) bytes_on_disk: Option<u64>,
    pub(super) consumer: Option<ConsumerStats>,
}

#[derive(Clone, Debug, Deserialize)]
pub(super) struct ConsumerStats {
    pub(super) events_per_sec: f64,
}

/// Reads a `--stats-json` file that `tool` wrote.
pub(super) fn read_stats(path: &Path, tool: &str) -> anyhow::Result<RunStats> {
    let text =
        fs::read_to_string(path).with_context(|| format!("{tool} wrote no --stats-json file"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {tool}'s --stats-json file"))
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
    fn reads_uringtrace_stats() {
        let dir = std::env::temp_dir().join(format!("xtask-stats-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stats.json");
        fs::write(
            &file,
            r#"{"events": 10156281, "lost": 80799, "lost_known": true, "seconds": 2.54,
               "bytes_on_disk": 55574528,
               "consumer": {"events": 10156251, "cpu_ns": 395000000,
                            "events_per_sec": 25722238.0, "comms_from_proc": 0}}"#,
        )
        .unwrap();
        let s = read_stats(&file, "uringtrace record").unwrap();
        assert_eq!((s.events, s.lost), (10_156_281, 80_799));
        assert_eq!(s.bytes_on_disk, Some(55_574_528));
        assert_eq!(s.consumer.unwrap().events_per_sec, 25722238.0);
        fs::write(&file, r#"{"events": 3, "lost": 0, "lost_known": true}"#).unwrap();
        let s = read_stats(&file, "uringtrace diagnose").unwrap();
        assert!(s.bytes_on_disk.is_none() && s.consumer.is_none());
        fs::remove_dir_all(&dir).unwrap();
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
