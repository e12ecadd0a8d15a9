//! `uringtrace rules` and `uringtrace explain RULE`: the rule catalog for people.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use crate::analyzer::rules::{self, Rule};
use crate::cli::{DoctorFormat, ExplainArgs, RulesArgs};
use crate::output::table;

/// Lists every rule: slug, default severity, title (a table, or a JSON array).
pub fn run_rules(args: RulesArgs) -> anyhow::Result<ExitCode> {
    let out = match args.format {
        DoctorFormat::Json => rules_json(),
        DoctorFormat::Text => rules_table(),
    };
    print(&out)
}

/// Prints one rule's title, severity and long explanation.
pub fn run_explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let r = rules::rule(&args.rule).ok_or_else(|| unknown_rule(&args.rule))?;
    print(&explain_text(r))
}

fn rules_table() -> String {
    let rows: Vec<Vec<String>> = rules::all()
        .map(|r| {
            vec![
                r.slug.to_string(),
                r.severity.name().to_string(),
                r.title.to_string(),
            ]
        })
        .collect();
    let mut out = table(&["rule", "severity", "title"], &rows, "");
    out.push_str("\nuringtrace explain RULE prints what the kernel does, how it shows in a trace, and the fix.\n");
    out
}

fn rules_json() -> String {
    let list: Vec<_> = rules::all()
        .map(|r| json!({ "rule": r.slug, "severity": r.severity, "title": r.title, "explanation": r.explanation }))
        .collect();
    format!("{:#}\n", serde_json::Value::Array(list))
}

fn explain_text(r: &Rule) -> String {
    format!(
        "{} ({})\n{}\n\n{}\n",
        r.slug,
        r.severity.name(),
        r.title,
        r.explanation.trim_end()
    )
}

fn unknown_rule(rule: &str) -> anyhow::Error {
    let hint = rules::closest(rule)
        .map(|s| format!("; did you mean {s:?}?"))
        .unwrap_or_default();
    anyhow::anyhow!(
        "unknown rule {rule:?}{hint}\nknown rules: {}",
        rules::slug_list()
    )
}

/// Writes to stdout; a closed pipe (`uringtrace rules | head`) is normal use.
fn print(text: &str) -> anyhow::Result<ExitCode> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_every_rule() {
        let t = rules_table();
        for r in rules::all() {
            assert!(t.contains(r.slug) && t.contains(r.title), "{}", r.slug);
        }
        assert!(t.starts_with("rule"));
    }

    #[test]
    fn json_is_an_array_of_rules() {
        let v: serde_json::Value = serde_json::from_str(&rules_json()).expect("json");
        let list = v.as_array().expect("array");
        assert_eq!(list.len(), rules::RuleId::ALL.len());
        assert_eq!(list[0]["rule"], rules::RuleId::ALL[0].slug());
        assert!(["info", "warning", "error"].contains(&list[0]["severity"].as_str().unwrap_or("")));
    }

    #[test]
    fn explain_and_unknown() {
        let r = rules::rule("cq-overflow").expect("known");
        let t = explain_text(r);
        assert!(t.starts_with("cq-overflow (warning)\n") && t.contains("IORING_SETUP_CQSIZE"));
        let e = unknown_rule("cq-overflw").to_string();
        assert!(
            e.contains("did you mean \"cq-overflow\"") && e.contains("wait-cycle"),
            "{e}"
        );
        let e = unknown_rule("zzz").to_string();
        assert!(
            !e.contains("did you mean") && e.contains("known rules:"),
            "{e}"
        );
    }
}
