//! uringtrace-workload: deterministic io_uring work for tests, demos and
//! benchmarks of the tracer. See `uringtrace-workload --help`.

// Included by path so this binary builds independently of the library crate.
#[path = "../workload/mod.rs"]
mod workload;

use std::process::ExitCode;

use clap::Parser;

use workload::{Scenario, ABOUT};

#[derive(Debug, Parser)]
#[command(name = "uringtrace-workload", version, about = ABOUT)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut failed = 0;
    for scenario in cli.scenario.expand() {
        match workload::run(&scenario) {
            Ok(report) => match serde_json::to_string(&report) {
                Ok(line) => {
                    println!("{line}");
                    if !report.as_expected {
                        eprintln!(
                            "{}: kernel behaviour differs from the design (see the JSON)",
                            scenario.name()
                        );
                    }
                }
                Err(e) => {
                    eprintln!("{}: cannot serialise report: {e}", scenario.name());
                    failed += 1;
                }
            },
            Err(e) => {
                eprintln!("uringtrace-workload: {e:#}");
                failed += 1;
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
