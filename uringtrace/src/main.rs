use std::process::ExitCode;

use clap::Parser;
use uringtrace::cli::{Cli, Command};
use uringtrace::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uringtrace: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
