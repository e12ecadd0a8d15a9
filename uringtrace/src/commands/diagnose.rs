use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{use_color, DiagnoseArgs, ReportFormat};
use crate::output;
use crate::pipeline::{analyze_file, analyze_live};
use crate::stats::RunStats;

pub fn run(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.analysis.analyzer_config();
    let report = match &args.input {
        Some(path) => analyze_file(path, cfg)?,
        None => {
            let opts = args
                .trace
                .analysis_session_options(&args.kernel, &args.analysis);
            analyze_live(&opts, cfg, args.quiet)?.0
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
