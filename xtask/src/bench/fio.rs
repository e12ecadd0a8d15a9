//! fio 4k random reads at QD32 with the io_uring engine: a file in the page cache
//! (CPU-bound, so tracing costs show) and O_DIRECT on disk (device-bound).

use super::*;

impl Bench {
    pub(super) fn fio_part(&self) -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        for (direct, group) in [
            (false, "fio 4k randread QD32, page cache"),
            (true, "fio 4k randread QD32, O_DIRECT"),
        ] {
            match self.fio_group(group, direct) {
                Ok(r) => rows.extend(r),
                Err(e) => {
                    progress(&format!("{group} failed: {e:#}"));
                    rows.push(Row::new(Part::Fio, group, "(all variants)", Unit::Ratio).failed(&e));
                }
            }
        }
        Ok(rows)
    }

    pub(super) fn fio_group(&self, group: &str, direct: bool) -> anyhow::Result<Vec<Row>> {
        let all: &[(Tracer, Option<Target>)] = match direct {
            true => &[
                (Tracer::Untraced, None),
                (Tracer::Aggregate, Some(Target::AtLeast(0.99))),
                (Tracer::Record, Some(Target::AtLeast(0.99))),
            ],
            // The whole host is how uringtrace is left on (no syscall hook); with
            // the command, io_uring_enter is hooked too (one more program pair per
            // fio request, and every syscall on the kernel's slow path).
            false => &[
                (Tracer::Untraced, None),
                (Tracer::Host, Some(Target::AtLeastAbove(0.90, "bpftrace"))),
                (Tracer::Aggregate, None),
                (Tracer::Record, Some(Target::AtLeast(0.90))),
                (Tracer::Bpftrace, None),
            ],
        };
        if let Err(why) = &self.fio {
            return Ok(all
                .iter()
                .map(|(t, _)| {
                    Row::new(Part::Fio, group, t.label(), Unit::Ratio).skipped(why.clone())
                })
                .collect());
        }
        let (name, mib) = match direct {
            true => ("fio-direct.dat", self.plan.fio_direct_file_mib),
            false => ("fio-cache.dat", self.plan.fio_cache_file_mib),
        };
        let file = self.work.join(name);
        fill_file(&file, mib).with_context(|| format!("creating {}", file.display()))?;
        let rows = self.compare(Part::Fio, group, all, Unit::Iops, |t| {
            self.fio_once(t, &file, mib, direct)
        });
        let _ = fs::remove_file(&file);
        rows.map(beat_bpftrace)
    }

    pub(super) fn fio_once(
        &self,
        tracer: Tracer,
        file: &Path,
        mib: u64,
        direct: bool,
    ) -> anyhow::Result<Sample> {
        if !direct {
            // fio would drop the cache (--invalidate=0 stops that), and idle pages
            // get reclaimed (DAMON): read the file back in before every run.
            read_file(file)
                .with_context(|| format!("reading {} into the page cache", file.display()))?;
        }
        let json = self.work.join("fio.json");
        let _ = fs::remove_file(&json);
        let mut cmd: Vec<OsString> = vec!["fio".into(), "--name=uringtrace-bench".into()];
        cmd.push(format!("--filename={}", file.display()).into());
        cmd.push(format!("--size={mib}M").into());
        for a in [
            "--ioengine=io_uring",
            "--rw=randread",
            "--bs=4k",
            "--iodepth=32",
            "--time_based",
            if direct {
                "--direct=1"
            } else {
                "--invalidate=0"
            },
            "--output-format=json",
        ] {
            cmd.push(a.into());
        }
        cmd.push(format!("--runtime={}", self.plan.fio_secs).into());
        cmd.push(format!("--output={}", json.display()).into());
        let timeout = Duration::from_secs(u64::from(self.plan.fio_secs) + 300);
        let run = self.traced(tracer, &cmd, timeout)?;
        let text = fs::read_to_string(&json).context("fio wrote no JSON output")?;
        // Under bpftrace the job process (fio forks one) must be the one timed.
        ensure!(
            tracer != Tracer::Bpftrace || run.events.unwrap_or(0) > 0,
            "bpftrace's histogram is empty: it timed none of fio's reads"
        );
        let iops = fio_iops(&text).context("parsing fio's JSON output")?;
        Ok(Sample::new(iops, &run))
    }
}

/// A file of `mib` MiB of non-zero data (kept when it already has that size).
pub(super) fn fill_file(path: &Path, mib: u64) -> anyhow::Result<()> {
    if fs::metadata(path).is_ok_and(|m| m.len() == mib << 20) {
        return Ok(());
    }
    let mut f = File::create(path)?;
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for w in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    Ok(())
}

pub(super) fn read_file(path: &Path) -> std::io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// Rows whose target is "above bpftrace" pass only if their ratio beats the
/// bpftrace row of the same group; without that row the note says so.
pub(super) fn beat_bpftrace(mut rows: Vec<Row>) -> Vec<Row> {
    let bpftrace = rows
        .iter()
        .find(|r| r.what == Tracer::Bpftrace.label() && r.status == "ok")
        .and_then(|r| r.value);
    for row in &mut rows {
        if !matches!(row.target, Some(Target::AtLeastAbove(..))) || row.value.is_none() {
            continue;
        }
        match (bpftrace, row.value) {
            (Some(b), Some(v)) => row.pass = row.pass.map(|ok| ok && v > b),
            _ => row
                .notes
                .push_str("; bpftrace not measured: compared with the ratio only"),
        }
    }
    rows
}
