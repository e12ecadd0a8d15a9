use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{use_color, DiagnoseArgs, ReportFormat};
use crate::commands::export;
use crate::output;
use crate::pipeline::{analyze_file, analyze_live, analyze_live_with};
use crate::stats::RunStats;

pub fn run(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.analysis.analyzer_config();
    let report = match (&args.input, &args.perfetto.perfetto) {
        (Some(path), None) => analyze_file(path, cfg)?,
        (Some(path), Some(out)) => export::export_file(path, out, cfg)?.0,
        (None, out) => {
            let opts = args
                .trace
                .analysis_session_options(&args.kernel, &args.analysis);
            match out {
                None => analyze_live(&opts, cfg, args.quiet)?.0,
                Some(out) => {
                    let mut ex = export::create(out)?;
                    let report = analyze_live_with(&opts, cfg, args.quiet, |ev| ex.push(ev))?.0;
                    export::finish(ex, &report, out)?;
                    report
                }
            }
        }
    };
    args.stats.write(&RunStats::of_report(&report))?;
    let text = match args.format {
        ReportFormat::Text => output::text(&report, use_color(args.output.is_some())),
        ReportFormat::Markdown => output::markdown(&report),
        ReportFormat::Json => serde_json::to_string_pretty(&output::json(&report))? + "\n",
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
