use std::process::ExitCode;

use clap::FromArgMatches as _;
use uringtrace::cli::{Cli, Command};
use uringtrace::{commands, manual};

fn main() -> ExitCode {
    // manual::command(): the derived CLI plus each command's examples and exit statuses
    // in `--help`.
    let cli = Cli::from_arg_matches(&manual::command().get_matches()).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Record(args) => commands::record::run(args),
        Command::Dump(args) => commands::dump::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Diagnose(args) => commands::diagnose::run(args),
        Command::Check(args) => commands::check::run(args),
        Command::Rules(args) => commands::rules::run_rules(args),
        Command::Explain(args) => commands::rules::run_explain(args),
        Command::Top(args) => commands::top::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Schema(args) => commands::schema::run(args),
        Command::Agent(args) => commands::agent::run(args),
        Command::Inventory(args) => commands::inventory::run(args),
        Command::Completions(args) => commands::completions::run(args),
        Command::ManPages(args) => commands::completions::run_man_pages(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uringtrace: error: {e:#}");
            ExitCode::from(manual::ERROR)
        }
    }
}
