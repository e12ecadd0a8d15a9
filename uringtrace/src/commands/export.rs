//! `uringtrace export`: a recording as a Perfetto trace, and the `--perfetto OUT` of
//! `diagnose` and `record`. The encoder is `output::perfetto`; this module opens files
//! and drives it with the events replay or a live trace delivers.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use crate::analyzer::report::Report;
use crate::analyzer::AnalyzerConfig;
use crate::cli::ExportArgs;
use crate::output::perfetto::{Background, Exporter, OutFile, Written};
use crate::pipeline::replay_file_beside;
use crate::units::human_bytes;

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (report, written) = export_file(&args.file, &args.output, AnalyzerConfig::default())?;
    if !args.quiet {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "uringtrace: {} events → {} packets, {} in {:.2}s ({:.0} events/s): {}",
            report.events,
            written.packets,
            human_bytes(written.bytes),
            secs,
            report.events as f64 / secs,
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens `out` for an export of a live trace, encoded on a thread of its own (see
/// `Background`).
pub fn create(out: &Path) -> anyhow::Result<Background<OutFile>> {
    let f = OutFile::create(out).with_context(|| format!("creating {}", out.display()))?;
    let ex = Exporter::new(f).context("perfetto protos")?;
    Background::spawn(ex).context("starting the export thread")
}

/// Ends an export with the report of the same events.
pub fn finish(ex: Background<OutFile>, report: &Report, out: &Path) -> anyhow::Result<Written> {
    let (file, written) = ex
        .finish(report)
        .with_context(|| format!("writing {}", out.display()))?;
    file.finish()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(written)
}

/// Replays `input` through the analyzer and the exporter together: the exporter on the
/// thread that decodes the recording, the analyzer on this one (see
/// `replay_file_beside`), so neither thread does more than a replay does.
pub fn export_file(
    input: &Path,
    out: &Path,
    cfg: AnalyzerConfig,
) -> anyhow::Result<(Report, Written)> {
    let f = OutFile::create(out).with_context(|| format!("creating {}", out.display()))?;
    let ex = Exporter::new(f).context("perfetto protos")?;
    let (report, ex) = replay_file_beside(input, cfg, ex, |ex, ev| ex.push(ev))
        .with_context(|| format!("exporting to {}", out.display()))?;
    let (file, written) = ex
        .finish(&report)
        .with_context(|| format!("writing {}", out.display()))?;
    file.finish()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok((report, written))
}
