use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::analyzer::AnalyzerConfig;
use crate::cli::{DiagnoseArgs, ReportFormat};
use crate::output;

use super::analyze::{analyze_file, analyze_live};
use super::record::analysis_session_options;

pub fn analyzer_config(stall: std::time::Duration) -> AnalyzerConfig {
    AnalyzerConfig {
        stall_ns: stall.as_nanos() as u64,
        ..AnalyzerConfig::default()
    }
}

/// Colour only on a terminal, and never when NO_COLOR is set.
pub fn use_color(to_file: bool) -> bool {
    !to_file && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub fn run(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let cfg = analyzer_config(args.stall_threshold);
    let report = match &args.input {
        Some(path) => analyze_file(path, cfg)?,
        None => {
            let opts = analysis_session_options(&args.trace, &args.kernel, args.stall_threshold);
            analyze_live(&opts, cfg, args.quiet)?.0
        }
    };
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
