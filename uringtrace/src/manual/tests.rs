use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::*;
use crate::analyzer::check::Verdict;

fn visible_subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect()
}

fn codes_of(command: &str) -> Vec<(u8, u8)> {
    page(command)
        .unwrap()
        .exit
        .iter()
        .map(|s| (s.code, s.last))
        .collect()
}

#[test]
fn every_visible_subcommand_has_exactly_one_page() {
    let mut subs = visible_subcommands();
    subs.insert(0, "uringtrace".into());
    let pages: Vec<_> = PAGES.iter().map(|p| p.command.to_string()).collect();
    let (mut a, mut b) = (subs.clone(), pages);
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "every visible subcommand needs a manual::PAGES entry (examples, exit statuses)"
    );
    assert!(subs.contains(&"completions".to_string()));
    assert!(
        !subs.contains(&"man-pages".to_string()),
        "man-pages is hidden"
    );
}

#[test]
fn exit_table_matches_the_codes_the_commands_return() {
    // check: its verdicts.
    assert_eq!(Verdict::Pass.exit_code(), SUCCESS);
    assert_eq!(Verdict::Fail.exit_code(), FAILED);
    assert_eq!(Verdict::Inconclusive.exit_code(), ERROR);
    assert_eq!(codes_of("check"), [(0, 0), (1, 1), (2, 2)]);
    // doctor returns ExitCode::FAILURE when something is missing.
    assert!(ExitCode::FAILURE == ExitCode::from(FAILED));
    assert_eq!(codes_of("doctor"), [(0, 0), (1, 1), (2, 2)]);
    // diagnose reports (0) or fails (main turns every error into ERROR).
    assert_eq!(codes_of("diagnose"), [(0, 0), (2, 2)]);
    // record passes the traced command's status through, clamped to 1..=255.
    assert_eq!(codes_of("record"), [(0, 0), (1, 255), (2, 2)]);
    // clap's usage errors exit with 2 too, the code every page gives for errors.
    let err = Cli::command()
        .try_get_matches_from(["uringtrace", "--no-such-flag"])
        .unwrap_err();
    assert_eq!(err.exit_code(), i32::from(ERROR));
    for p in PAGES {
        let codes: Vec<_> = p.exit.iter().map(|s| s.code).collect();
        assert!(codes.contains(&SUCCESS), "{}: no 0", p.command);
        assert!(codes.contains(&ERROR), "{}: no error status", p.command);
    }
}

#[test]
fn long_help_has_examples_and_exit_status_for_every_command() {
    let mut cmd = command();
    cmd.build();
    let mut all = vec![cmd.clone()];
    // build() adds clap's own `help` subcommand, which has no page.
    all.extend(
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .cloned(),
    );
    for mut c in all {
        let help = c.render_long_help().to_string();
        let name = c.get_name().to_string();
        assert!(
            help.contains("\nExamples:\n") || help.contains("\nExample:\n"),
            "{name}: {help}"
        );
        assert!(help.contains("\nExit status:\n  0      "), "{name}: {help}");
        // Examples come either from the derived help or from the page, never both.
        let derived = Cli::command()
            .find_subcommand(&name)
            .and_then(|s| s.get_after_help().map(|h| h.to_string()))
            .unwrap_or_default();
        let own = page(if name == "uringtrace" {
            "uringtrace"
        } else {
            &name
        })
        .unwrap();
        if name != "uringtrace" {
            assert_ne!(
                split_after_help(&derived).1.is_empty(),
                own.examples.is_empty(),
                "{name}: examples in --help and in manual::PAGES"
            );
        }
        // -h stays short.
        assert!(
            !c.render_help().to_string().contains("Exit status:"),
            "{name}"
        );
    }
}

#[test]
fn man_pages_for_every_subcommand_with_examples_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_man_pages(dir.path()).unwrap();
    let mut names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<_> = visible_subcommands()
        .iter()
        .map(|s| format!("uringtrace-{s}.1"))
        .chain(["uringtrace.1".to_string()])
        .collect();
    want.sort();
    assert_eq!(names, want);
    for path in &written {
        let text = std::fs::read_to_string(path).unwrap();
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS"] {
            assert!(text.contains(section), "{}: {section}", path.display());
        }
        assert!(text.contains(".SH EXAMPLES\n.nf\n"), "{}", path.display());
        assert!(
            text.contains(".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR"),
            "{}",
            path.display()
        );
        assert!(text.contains(".SH \"SEE ALSO\""), "{}", path.display());
        assert!(!text.contains(".SH EXTRA"), "{}", path.display());
    }
    let diagnose = std::fs::read_to_string(dir.path().join("uringtrace-diagnose.1")).unwrap();
    // The same text as --help: the options' long help, the notes and the examples.
    assert!(diagnose.contains("stall\\-threshold"));
    assert!(diagnose.contains("uringtrace diagnose \\-\\-input app.utr \\-\\-format json"));
    assert!(diagnose.contains("the report is written, whatever it found"));
    let check = std::fs::read_to_string(dir.path().join("uringtrace-check.1")).unwrap();
    assert!(check.contains(".SH NOTES\n.nf\n"));
    assert!(check.contains("max_in_flight = 256"));
    let top = std::fs::read_to_string(dir.path().join("uringtrace.1")).unwrap();
    assert!(top.contains("uringtrace\\-diagnose(1)"));
    assert!(top.contains("\\fB1\\-255\\fR"));
}

#[test]
fn completions_name_every_subcommand_in_every_shell() {
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let script = String::from_utf8(crate::commands::completions::script(shell)).unwrap();
        for sub in visible_subcommands() {
            assert!(script.contains(&sub), "{shell}: no {sub}");
        }
        assert!(script.contains("stall-threshold"), "{shell}");
    }
}

#[test]
fn after_help_splits_at_the_examples_line() {
    let (prose, ex) = split_after_help("Notes here.\n\nExamples:\n  a b\n  c\n\nMore:\n  d");
    assert_eq!(prose, "Notes here.");
    assert_eq!(ex, "a b\nc\n\nMore:\nd");
    assert_eq!(split_after_help("no examples").1, "");
}
