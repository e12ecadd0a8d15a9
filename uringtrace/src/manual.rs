//! The CLI's manual: each command's exit statuses (and examples, where its `--help` has
//! none), added to its `--help` by [`command`] and rendered with the rest of `--help` into
//! man pages by [`write_man_pages`] (clap_mangen). One table feeds both, so `--help` and
//! `man uringtrace-COMMAND` cannot disagree. `cargo xtask man` and `cargo xtask dist`
//! run the hidden `uringtrace man-pages DIR`, which calls [`write_man_pages`].

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;

use crate::cli::Cli;

/// Success.
pub const SUCCESS: u8 = 0;
/// `check`: a finding at or above `fail_on`; `doctor`: something tracing needs is missing.
pub const FAILED: u8 = 1;
/// uringtrace's own error, with a message on stderr (clap's usage errors use 2 as well);
/// also `check`'s inconclusive verdict.
pub const ERROR: u8 = 2;

/// Exit statuses `code..=last` and what they mean.
#[derive(Debug)]
pub struct ExitStatus {
    pub code: u8,
    pub last: u8,
    pub meaning: &'static str,
}

/// One man page: a command (`uringtrace` or a subcommand), its examples when its
/// `--help` has no "Examples:" block, and its exit statuses.
#[derive(Debug)]
pub struct Page {
    pub command: &'static str,
    pub examples: &'static str,
    pub exit: &'static [ExitStatus],
}

const fn status(code: u8, meaning: &'static str) -> ExitStatus {
    ExitStatus {
        code,
        last: code,
        meaning,
    }
}

const ERROR_MEANING: &str =
    "error: bad arguments, missing privileges, an unreadable file (a message on stderr says which)";
const PLAIN: &[ExitStatus] = &[status(SUCCESS, "success"), status(ERROR, ERROR_MEANING)];

/// Every page; the test below checks that it names every visible subcommand.
pub const PAGES: &[Page] = &[
    Page {
        command: "uringtrace",
        examples: "",
        exit: &[
            status(SUCCESS, "success"),
            status(
                FAILED,
                "check: findings at or above fail_on; doctor: something tracing needs is missing",
            ),
            status(ERROR, "error (see stderr); check: inconclusive trace"),
            ExitStatus {
                code: 1,
                last: 255,
                meaning: "record: the traced command's non-zero exit status",
            },
        ],
    },
    Page {
        command: "record",
        examples: "",
        exit: &[
            status(
                SUCCESS,
                "recorded: CMD exited with 0, --duration ended, or Ctrl-C/SIGTERM",
            ),
            ExitStatus {
                code: 1,
                last: 255,
                meaning: "CMD exited with this status; the recording is complete",
            },
            status(ERROR, ERROR_MEANING),
        ],
    },
    Page {
        command: "dump",
        examples: "uringtrace dump app.utr | less
uringtrace dump app.utr --format jsonl | jq 'select(.kind == \"complete\")'",
        exit: PLAIN,
    },
    Page {
        command: "doctor",
        examples: "sudo uringtrace doctor
uringtrace doctor --format json | jq .privileges_missing",
        exit: &[
            status(
                SUCCESS,
                "tracing works here: privileges, eBPF load and io_uring tracepoints",
            ),
            status(
                FAILED,
                "something tracing needs is missing (the report says what)",
            ),
            status(ERROR, ERROR_MEANING),
        ],
    },
    Page {
        command: "diagnose",
        examples: "",
        exit: &[
            status(
                SUCCESS,
                "the report is written, whatever it found (gate on findings with `check`)",
            ),
            status(ERROR, ERROR_MEANING),
        ],
    },
    Page {
        command: "check",
        examples: "",
        exit: &[
            status(SUCCESS, "every file passes"),
            status(FAILED, "a finding at or above fail_on"),
            status(
                ERROR,
                "inconclusive (lost events, or a recording not ended cleanly) without \
                 failing findings; or an error",
            ),
        ],
    },
    Page {
        command: "rules",
        examples: "uringtrace rules
uringtrace rules --format json | jq -r '.[].rule'",
        exit: PLAIN,
    },
    Page {
        command: "explain",
        examples: "uringtrace explain cq-overflow",
        exit: &[
            status(SUCCESS, "success"),
            status(
                ERROR,
                "an unknown rule (the message lists them), or another error",
            ),
        ],
    },
    Page {
        command: "top",
        examples: "",
        exit: PLAIN,
    },
    Page {
        command: "schema",
        examples: "uringtrace schema diagnose > diagnose.schema.json
uringtrace schema top | jq .properties",
        exit: PLAIN,
    },
    Page {
        command: "export",
        examples: "",
        exit: PLAIN,
    },
    Page {
        command: "agent",
        examples: "sudo uringtrace agent --findings /var/log/uringtrace/findings.jsonl
sudo uringtrace agent --listen 0.0.0.0:9464 --findings -
curl -s localhost:9464/metrics | grep uringtrace_requests_total",
        exit: PLAIN,
    },
    Page {
        command: "inventory",
        examples: "sudo uringtrace inventory --duration 30s
sudo uringtrace inventory --format json | jq '.entries[].comm'",
        exit: PLAIN,
    },
    Page {
        command: "completions",
        examples: "",
        exit: PLAIN,
    },
];

/// The page of `command` (`uringtrace` for the top level).
pub fn page(command: &str) -> Option<&'static Page> {
    PAGES.iter().find(|p| p.command == command)
}

/// The whole CLI, with each page's examples and exit statuses appended to its long help
/// (`--help`; `-h` stays short). Parse with this, so `--help` shows them.
pub fn command() -> clap::Command {
    let mut cmd = annotate(Cli::command(), "uringtrace");
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, |s| annotate(s, &name));
    }
    cmd
}

fn annotate(cmd: clap::Command, name: &str) -> clap::Command {
    let Some(page) = page(name) else {
        return cmd;
    };
    let mut parts = Vec::new();
    if let Some(after) = cmd.get_after_help() {
        parts.push(after.to_string());
    }
    if !page.examples.is_empty() {
        parts.push(format!("Examples:\n{}", indent(page.examples)));
    }
    parts.push(format!("Exit status:\n{}", exit_text(page.exit)));
    cmd.after_long_help(parts.join("\n\n"))
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn codes(s: &ExitStatus) -> String {
    if s.code == s.last {
        s.code.to_string()
    } else {
        format!("{}-{}", s.code, s.last)
    }
}

/// The statuses as `--help` lines, wrapped at 80 columns under their meaning (clap
/// would wrap them at the terminal's width, without the indent).
fn exit_text(statuses: &[ExitStatus]) -> String {
    const WIDTH: usize = 80;
    const INDENT: usize = 9;
    let mut out = Vec::new();
    for s in statuses {
        let mut line = format!("  {:<7}", codes(s));
        for word in s.meaning.split(' ') {
            if line.len() > INDENT && line.len() + 1 + word.len() > WIDTH {
                out.push(line);
                line = " ".repeat(INDENT);
            } else if line.len() > INDENT {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push(line);
    }
    out.join("\n")
}

/// `--help`'s text after the options, split into the prose and the examples: the
/// examples start at a line "Examples:" or "Example:".
fn split_after_help(after: &str) -> (String, String) {
    let mut prose = Vec::new();
    let mut examples = Vec::new();
    let mut in_examples = false;
    for line in after.lines() {
        if matches!(line.trim_end(), "Examples:" | "Example:") {
            in_examples = true;
            continue;
        }
        if in_examples {
            examples.push(line.strip_prefix("  ").unwrap_or(line));
        } else {
            prose.push(line);
        }
    }
    let trim = |v: Vec<&str>| v.join("\n").trim_matches('\n').to_string();
    (trim(prose), trim(examples))
}

/// Writes `uringtrace.1` and `uringtrace-COMMAND.1` for every visible subcommand into
/// `dir` (created if missing); returns the paths written.
pub fn write_man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    // Built with the derived help text (no exit statuses appended): the man page renders
    // the page's table itself, as its own section.
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let subs: Vec<clap::Command> = root
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let sub_pages: Vec<String> = subs
        .iter()
        .map(|s| format!("uringtrace-{}", s.get_name()))
        .collect();
    let mut written = Vec::new();
    let mut render = |cmd: &clap::Command, name: &str, see_also: Vec<String>| {
        let page = page(name).ok_or_else(|| {
            io::Error::other(format!(
                "no manual page entry for `{name}` in manual::PAGES"
            ))
        })?;
        let file = dir.join(format!("{}.1", display_name(name)));
        let mut out = Vec::new();
        render_page(cmd, page, &see_also, &mut out)?;
        std::fs::write(&file, out)?;
        written.push(file);
        Ok::<_, io::Error>(())
    };
    render(&root, "uringtrace", sub_pages.clone())?;
    for sub in &subs {
        let name = sub.get_name().to_string();
        let mut see = vec!["uringtrace".to_string()];
        see.extend(
            sub_pages
                .iter()
                .filter(|p| **p != display_name(&name))
                .cloned(),
        );
        render(sub, &name, see)?;
    }
    Ok(written)
}

fn display_name(command: &str) -> String {
    if command == "uringtrace" {
        command.to_string()
    } else {
        format!("uringtrace-{command}")
    }
}

fn render_page(
    cmd: &clap::Command,
    page: &Page,
    see_also: &[String],
    w: &mut dyn io::Write,
) -> io::Result<()> {
    use clap_mangen::roff::{bold, roman, Roff};
    // The derived after-help goes to NOTES and EXAMPLES below (clap_mangen's own EXTRA
    // section, which `render` would add, is not rendered).
    let source = format!("uringtrace {}", env!("CARGO_PKG_VERSION"));
    let man = clap_mangen::Man::new(cmd.clone())
        .title(display_name(page.command).to_uppercase())
        .source(source)
        .manual("uringtrace manual");
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    let (prose, mut examples) = split_after_help(
        &cmd.get_after_help()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    );
    if !page.examples.is_empty() {
        examples = page.examples.to_string();
    }
    let mut roff = Roff::new();
    // No hyphenation: command and page names are typed, not read.
    roff.control("nh", []);
    let verbatim = |roff: &mut Roff, heading: &str, text: &str| {
        roff.control("SH", [heading]);
        roff.control("nf", []);
        for line in text.lines() {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
    };
    if !prose.is_empty() {
        verbatim(&mut roff, "NOTES", &prose);
    }
    if !examples.is_empty() {
        verbatim(&mut roff, "EXAMPLES", &examples);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for s in page.exit {
        roff.control("TP", []);
        roff.text([bold(codes(s))]);
        roff.text([roman(s.meaning)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let refs: Vec<_> = see_also.iter().map(|p| format!("{p}(1)")).collect();
    roff.text([roman(refs.join(", "))]);
    roff.to_writer(w)?;
    if cmd.get_version().is_some() {
        man.render_version_section(w)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests;
