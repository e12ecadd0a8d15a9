use std::process::ExitCode;

use anyhow::Context as _;

use crate::analyzer::check::{self, Config, Verdict};
use crate::cli::{use_color, CheckArgs, CheckFormat};
use crate::output;
use crate::pipeline::analyze_file;

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Config::parse(&text).with_context(|| format!("in {}", p.display()))?
        }
        None => Config::default(),
    };
    let mut results = Vec::new();
    let mut overall = Verdict::Pass;
    let mut json = Vec::new();
    let mut text = String::new();
    for file in &args.files {
        let mut report = analyze_file(file, args.analysis.analyzer_config())?;
        report.findings = check::apply(&config, &report);
        let verdict = check::verdict(&config, &report.findings, &report.lost_events);
        overall = overall.max(verdict);
        match args.format {
            CheckFormat::Text => {
                text.push_str(&output::text(&report, use_color(false)));
                text.push_str(&format!("{}: {}\n\n", file.display(), verdict.name()));
            }
            CheckFormat::Json => json.push(output::CheckedFile {
                file: file.display().to_string(),
                verdict,
                findings: report.findings.clone(),
                lost_events: report.lost_events.clone(),
            }),
            CheckFormat::Junit => {}
        }
        results.push((
            file.display().to_string(),
            report.findings,
            report.lost_events,
        ));
    }
    match args.format {
        CheckFormat::Text => print!("{text}"),
        CheckFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output::check_json(&output::CheckJson {
                verdict: overall,
                files: json,
            }))?
        ),
        CheckFormat::Junit => print!("{}", output::junit(&results, config.fail_on)),
    }
    Ok(ExitCode::from(overall.exit_code()))
}
