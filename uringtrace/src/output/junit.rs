//! JUnit XML for CI: what `uringtrace check --format junit` prints.

use std::fmt::Write as _;

use super::text::finding_text;
use crate::analyzer::check::fails;
use crate::analyzer::finding::{Finding, Severity};
use crate::analyzer::report::LostEvents;
use crate::analyzer::rules::RuleId;

/// Escapes text for XML attributes and content. Characters XML 1.0 forbids (most
/// control characters, which a comm can hold) become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// One testcase: its XML, and whether it failed / errored.
struct Case {
    xml: String,
    failed: bool,
    errored: bool,
}

fn rule_case(slug: &str, findings: &[&Finding], fail_on: Severity) -> Case {
    let (failing, other): (Vec<&Finding>, Vec<&Finding>) =
        findings.iter().partition(|f| fails(f, fail_on));
    let mut xml = format!(
        "    <testcase classname=\"uringtrace\" name=\"{}\"",
        xml_escape(slug)
    );
    if failing.is_empty() && other.is_empty() {
        xml.push_str("/>\n");
        return Case {
            xml,
            failed: false,
            errored: false,
        };
    }
    xml.push_str(">\n");
    if let Some(first) = failing.first() {
        let message = match failing.len() {
            1 => first.message.clone(),
            n => format!("{n} findings; first: {}", first.message),
        };
        let severity = failing.iter().map(|f| f.severity).max().unwrap_or(fail_on);
        let _ = writeln!(
            xml,
            "      <failure message=\"{}\" type=\"{}\">{}</failure>",
            xml_escape(&message),
            severity.name(),
            xml_escape(&findings_body(&failing))
        );
    }
    if !other.is_empty() {
        // Below fail_on: shown, not failing.
        let _ = writeln!(
            xml,
            "      <system-out>{}</system-out>",
            xml_escape(&findings_body(&other))
        );
    }
    xml.push_str("    </testcase>\n");
    Case {
        xml,
        failed: !failing.is_empty(),
        errored: false,
    }
}

fn findings_body(findings: &[&Finding]) -> String {
    findings
        .iter()
        .map(|f| finding_text(f))
        .collect::<Vec<_>>()
        .join("\n")
}

fn lost_case(lost: &LostEvents) -> Case {
    let mut xml = String::from("    <testcase classname=\"uringtrace\" name=\"lost-events\"");
    if !lost.inconclusive() {
        xml.push_str("/>\n");
        return Case {
            xml,
            failed: false,
            errored: false,
        };
    }
    let message = match lost.known {
        false => {
            "lost events unknown: the recording did not end cleanly; verdicts are inconclusive"
                .to_string()
        }
        true => format!(
            "{} events were lost in the kernel ring buffer; verdicts are inconclusive",
            lost.total
        ),
    };
    let body = format!(
        "total: {}\nper_cpu: {:?}\nknown: {}",
        lost.total, lost.per_cpu, lost.known
    );
    let _ = writeln!(
        xml,
        ">\n      <error message=\"{}\" type=\"inconclusive\">{}</error>\n    </testcase>",
        xml_escape(&message),
        xml_escape(&body)
    );
    Case {
        xml,
        failed: false,
        errored: true,
    }
}

/// The testcases of one file: every rule of the catalog (so a rule that stops firing
/// shows as fixed), then lost-events.
fn file_cases(findings: &[Finding], lost: &LostEvents, fail_on: Severity) -> Vec<Case> {
    let mut cases: Vec<Case> = RuleId::ALL
        .iter()
        .map(|id| {
            let of_rule: Vec<&Finding> = findings.iter().filter(|f| f.rule == *id).collect();
            rule_case(id.slug(), &of_rule, fail_on)
        })
        .collect();
    cases.push(lost_case(lost));
    cases
}

#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
}

impl Counts {
    fn of(cases: &[Case]) -> Counts {
        Counts {
            tests: cases.len(),
            failures: cases.iter().filter(|c| c.failed).count(),
            errors: cases.iter().filter(|c| c.errored).count(),
        }
    }

    fn attrs(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\"",
            self.tests, self.failures, self.errors
        )
    }
}

/// JUnit XML for CI: one testsuite per checked file, one testcase per rule (failing
/// when the rule has findings at or above `fail_on`) and a `lost-events` testcase that
/// errors when lost events make the trace inconclusive. `findings` should be the output
/// of [`apply`](crate::analyzer::check::apply).
pub fn junit(results: &[(String, Vec<Finding>, LostEvents)], fail_on: Severity) -> String {
    let mut total = Counts::default();
    let mut suites = String::new();
    for (file, findings, lost) in results {
        let cases = file_cases(findings, lost, fail_on);
        let counts = Counts::of(&cases);
        total.tests += counts.tests;
        total.failures += counts.failures;
        total.errors += counts.errors;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" {} skipped=\"0\">",
            xml_escape(file),
            counts.attrs()
        );
        for c in &cases {
            suites.push_str(&c.xml);
        }
        suites.push_str("  </testsuite>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"uringtrace check\" {}>\n{suites}</testsuites>\n",
        total.attrs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::check::fixtures::finding;

    #[test]
    fn xml_escaping() {
        assert_eq!(
            xml_escape(r#"a&b<c>d"e'f"#),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f"
        );
        assert_eq!(xml_escape("x\u{1}y\nz"), "x\u{FFFD}y\nz");
    }

    #[test]
    fn junit_counts_and_escapes() {
        let findings = vec![
            finding("wait-cycle", Severity::Error),
            finding("wait-cycle", Severity::Error),
            finding("multishot-terminated", Severity::Info),
        ];
        let lossy = LostEvents {
            total: 3,
            per_cpu: vec![3],
            known: true,
        };
        let clean = LostEvents {
            total: 0,
            per_cpu: vec![0],
            known: true,
        };
        let results = vec![
            ("traces/a&b.utr".to_string(), findings, lossy),
            ("clean.utr".to_string(), vec![], clean),
        ];
        let x = junit(&results, Severity::Warning);
        let n = RuleId::ALL.len() + 1;
        assert!(
            x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"),
            "{x}"
        );
        assert!(
            x.contains(&format!(
                "<testsuites name=\"uringtrace check\" tests=\"{}\" failures=\"1\" errors=\"1\">",
                2 * n
            )),
            "{x}"
        );
        assert!(
            x.contains(&format!(
                "<testsuite name=\"traces/a&amp;b.utr\" tests=\"{n}\" failures=\"1\" errors=\"1\""
            )),
            "{x}"
        );
        assert!(
            x.contains(&format!(
                "<testsuite name=\"clean.utr\" tests=\"{n}\" failures=\"0\" errors=\"0\""
            )),
            "{x}"
        );
        assert!(x.contains("<failure message=\"2 findings; first: wait-cycle happened | with a pipe &amp; &lt;angle&gt; &quot;quotes&quot;\" type=\"error\">"), "{x}");
        assert!(x.contains("<testcase classname=\"uringtrace\" name=\"cq-overflow\"/>"));
        assert!(x.contains("<error message=\"3 events were lost"), "{x}");
        // Info is below fail_on: reported, not failing.
        assert!(
            x.contains("<system-out>  INFO    multishot-terminated"),
            "{x}"
        );
        // No raw specials survive in the message text.
        assert!(!x.contains("<angle>"));
        assert_eq!(x.matches("<testcase ").count(), 2 * n);
    }
}
