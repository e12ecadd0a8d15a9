//! `uringtrace completions SHELL` (clap_complete) and the hidden `uringtrace man-pages DIR`
//! that `cargo xtask man` runs: both are generated from the CLI definition.

use std::io::{self, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{CompletionsArgs, ManPagesArgs};
use crate::manual;

pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    match io::stdout().lock().write_all(&script(args.shell)) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut manual::command(), "uringtrace", &mut script);
    script
}

pub fn run_man_pages(args: ManPagesArgs) -> anyhow::Result<ExitCode> {
    let written = manual::write_man_pages(&args.dir)
        .with_context(|| format!("writing man pages into {}", args.dir.display()))?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
