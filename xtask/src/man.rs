//! `cargo xtask man [--out DIR]`: uringtrace.1 and one page per subcommand.
//!
//! The pages are rendered by the uringtrace binary itself (its hidden `man-pages DIR`,
//! clap_mangen over the same clap definition and exit-status table as `--help`). Linking
//! the uringtrace crate into xtask instead would compile its whole dependency tree (aya,
//! ratatui, the Perfetto protos, the eBPF build) in xtask's debug profile before every
//! `cargo xtask` command: minutes in a cold CI run, for pages the release binary that CI
//! builds anyway can write in milliseconds.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write the pages into
    #[arg(long, value_name = "DIR", default_value = "target/man")]
    pub out: PathBuf,
}

/// Runs `uringtrace man-pages DIR` and returns the pages written, checked to have the
/// sections the issue asks for.
pub fn generate(uringtrace: &Path, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing {}", out.display()))?;
    }
    let output = Command::new(uringtrace)
        .arg("man-pages")
        .arg(out)
        .output()
        .with_context(|| format!("running {}", uringtrace.display()))?;
    if !output.status.success() {
        bail!(
            "{} man-pages failed: {}",
            uringtrace.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let pages: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    for page in &pages {
        let text =
            std::fs::read_to_string(page).with_context(|| format!("reading {}", page.display()))?;
        for section in [".SH EXAMPLES", ".SH \"EXIT STATUS\""] {
            if !text.contains(section) {
                bail!("{} has no {section}", page.display());
            }
        }
    }
    if pages.len() < 2 {
        bail!("{} wrote {} man pages", uringtrace.display(), pages.len());
    }
    Ok(pages)
}

/// The subcommands that have a page (`uringtrace-NAME.1` → NAME).
pub fn subcommands(pages: &[PathBuf]) -> Vec<String> {
    let mut subs: Vec<String> = pages
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.strip_suffix(".1"))
        .filter_map(|n| n.strip_prefix("uringtrace-"))
        .map(String::from)
        .collect();
    subs.sort();
    subs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_come_from_the_page_names() {
        let pages = [
            "out/uringtrace.1",
            "out/uringtrace-top.1",
            "out/uringtrace-check.1",
        ]
        .map(PathBuf::from);
        assert_eq!(subcommands(&pages), ["check", "top"]);
    }
}
