//! Every JSON document the tool prints (diagnose, check, dump, top) validates against the schema `uringtrace schema`
//! prints for it, over every committed recording; the committed copies in docs/schemas/
//! equal what the binary prints. Refresh them after a type change with
//! `UPDATE_SCHEMAS=1 cargo test --release --test json_schemas`.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jsonschema::Validator;
use serde_json::{json, Value};
use uringtrace::output::schema::Document;

fn ut(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_uringtrace"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn schema(doc: &str) -> Value {
    let out = ut(&["schema", doc]);
    assert!(out.status.success(), "schema {doc}: {out:?}");
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The published schema leaves objects open (a consumer's old schema keeps accepting
/// output with new fields). The tests close every object the types define, so a key
/// the output has and the schema does not name fails here too.
fn strict(mut schema: Value) -> Value {
    fn close(s: &mut Value) {
        if let Some(o) = s.as_object_mut() {
            if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                o.insert("unevaluatedProperties".into(), json!(false));
            }
        }
    }
    close(&mut schema);
    if let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) {
        defs.values_mut().for_each(close);
    }
    schema
}

fn validator(doc: &str) -> Validator {
    let s = schema(doc);
    jsonschema::meta::validate(&s).unwrap_or_else(|e| panic!("{doc}: not a valid schema: {e}"));
    jsonschema::validator_for(&strict(s)).unwrap()
}

fn assert_valid(v: &Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

/// Every committed recording: the scenario fixtures and those made in other kernels.
fn recordings() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    let mut add = |dir: &Path| {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "utr") {
                out.push(p);
            }
        }
    };
    add(&root.join("recordings"));
    for k in std::fs::read_dir(root.join("kernels")).unwrap() {
        add(&k.unwrap().path());
    }
    out.sort();
    out
}

/// 17 scenario recordings and 8 from each of Debian's 5.10 and 6.1 kernels, plus the 7
/// request-misuse scenarios in each of the three, 4 of tests/rules_thread_root.rs, and
/// 6.1's recording with skewed CPU clocks; a fixture that goes missing would shrink
/// what is validated.
#[test]
fn every_committed_recording_is_validated() {
    assert_eq!(recordings().len(), 17 + 2 * 8 + 3 * 7 + 4 + 1);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn diagnose_json_validates() {
    let v = validator("diagnose");
    let mut rules = BTreeSet::new();
    for f in recordings() {
        let out = ut(&["diagnose", "--format", "json", "--input", s(&f)]);
        assert!(out.status.success(), "{f:?}: {out:?}");
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_valid(&v, &doc, &format!("diagnose {f:?}"));
        for finding in doc["findings"].as_array().unwrap() {
            rules.insert(finding["rule"].as_str().unwrap().to_string());
        }
    }
    // The documents validated carry real findings (evidence, facts, requests), not
    // only empty lists.
    assert!(rules.len() >= 8, "{rules:?}");
}

/// Budgets tight enough that every fixture exceeds one, so budget findings (facts of
/// every kind they use, unattributed ones) are validated too.
const BUDGETS: &str = r#"fail_on = "info"
[rules]
disable = ["cq-overflow"]
[rules.severity]
link-chain-broken = "info"
[budgets]
max_in_flight = 0
max_iowq_workers = 0
[budgets.p99_latency]
NOP = "1ns"
READ = "1ns"
WRITE = "1ns"
"#;

#[test]
fn check_json_validates_with_and_without_budgets() {
    let v = validator("check");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("uringtrace.toml");
    std::fs::write(&cfg, BUDGETS).unwrap();
    // A recording without its end record: lost events unknown, verdict inconclusive.
    let cut = dir.path().join("cut.utr");
    let clean = std::fs::read(
        recordings()
            .iter()
            .find(|p| p.ends_with("recordings/chain-ok.utr"))
            .unwrap(),
    )
    .unwrap();
    std::fs::write(&cut, &clean[..clean.len() - 40]).unwrap();

    let mut files: Vec<PathBuf> = recordings();
    files.push(cut.clone());
    let mut verdicts = BTreeSet::new();
    let mut budget_rules = BTreeSet::new();
    let mut check = |extra: &[&str], paths: &[&Path]| {
        let mut args = vec!["check", "--format", "json"];
        args.extend_from_slice(extra);
        args.extend(paths.iter().map(|p| s(p)));
        let out = ut(&args);
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_valid(&v, &doc, &format!("{args:?}"));
        verdicts.insert(doc["verdict"].as_str().unwrap().to_string());
        for f in doc["files"].as_array().unwrap() {
            for finding in f["findings"].as_array().unwrap() {
                let rule = finding["rule"].as_str().unwrap();
                if rule.starts_with("budget-") {
                    budget_rules.insert(rule.to_string());
                }
            }
        }
    };
    for f in &files {
        check(&[], &[f]);
        check(&["--config", s(&cfg)], &[f]);
    }
    // Several files in one document.
    let all: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    check(&[], &all);
    check(&["--config", s(&cfg)], &all);

    let want = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(verdicts, want(&["fail", "inconclusive", "pass"]));
    assert_eq!(
        budget_rules,
        want(&[
            "budget-in-flight",
            "budget-iowq-workers",
            "budget-p99-latency"
        ])
    );
}

#[test]
fn every_dump_line_validates() {
    let v = validator("dump");
    let mut kinds = BTreeSet::new();
    let mut lines = 0;
    for f in recordings() {
        let out = ut(&["dump", "--format", "jsonl", s(&f)]);
        assert!(out.status.success(), "{f:?}: {out:?}");
        for (i, line) in stdout(&out).lines().enumerate() {
            let doc: Value = serde_json::from_str(line).unwrap();
            assert_valid(&v, &doc, &format!("dump {f:?} line {}", i + 1));
            kinds.insert(doc["kind"].as_str().unwrap().to_string());
            lines += 1;
        }
    }
    assert!(lines > 1000, "{lines} lines");
    assert!(kinds.len() >= 15, "{kinds:?}");
}

/// Headless top, snapshot by snapshot through each replay, with rings that have a
/// latency and a worst finding and rings that have none (null).
#[test]
fn every_top_line_validates() {
    let v = validator("top");
    let mut nulls = BTreeSet::new();
    let mut set = BTreeSet::new();
    let mut docs = 0;
    for f in recordings() {
        let out = ut(&[
            "top",
            "--replay",
            s(&f),
            "--interval",
            "100ms",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{f:?}: {out:?}");
        for (i, line) in stdout(&out).lines().enumerate() {
            let doc: Value = serde_json::from_str(line).unwrap();
            assert_valid(&v, &doc, &format!("top {f:?} line {}", i + 1));
            for ring in doc["rings"].as_array().unwrap() {
                for key in ["p50_ns", "worst_severity"] {
                    if ring[key].is_null() {
                        nulls.insert(key)
                    } else {
                        set.insert(key)
                    };
                }
            }
            docs += 1;
        }
    }
    assert!(docs > 2 * recordings().len(), "{docs} documents");
    assert_eq!(nulls, set);
    assert_eq!(nulls.len(), 2);
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recordings")
        .join(format!("{name}.utr"))
}

fn errors(v: &Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The check bites: real documents, each broken in one way, fail validation.
#[test]
fn broken_documents_fail_validation() {
    let f = fixture("chain-broken-error");
    // The published schema, not the strict one: what a user validates with.
    let published = |doc: &str| jsonschema::validator_for(&schema(doc)).unwrap();

    let check: Value =
        serde_json::from_str(&stdout(&ut(&["check", "--format", "json", s(&f)]))).unwrap();
    let v = published("check");
    assert!(errors(&v, &check).is_empty());
    let mut no_verdict = check.clone();
    no_verdict["files"][0]
        .as_object_mut()
        .unwrap()
        .remove("verdict");
    assert_eq!(
        errors(&v, &no_verdict),
        ["/files/0: \"verdict\" is a required property"]
    );
    let mut bad_verdict = check.clone();
    bad_verdict["verdict"] = json!("maybe");
    assert_eq!(
        errors(&v, &bad_verdict).len(),
        1,
        "{:?}",
        errors(&v, &bad_verdict)
    );

    let report: Value = serde_json::from_str(&stdout(&ut(&[
        "diagnose",
        "--format",
        "json",
        "--input",
        s(&f),
    ])))
    .unwrap();
    let v = published("diagnose");
    assert!(errors(&v, &report).is_empty());
    let mut no_rule = report.clone();
    no_rule["findings"][0]
        .as_object_mut()
        .unwrap()
        .remove("rule");
    assert_eq!(
        errors(&v, &no_rule),
        ["/findings/0: \"rule\" is a required property"]
    );
    let mut unknown_rule = report.clone();
    unknown_rule["findings"][0]["rule"] = json!("no-such-rule");
    assert_eq!(errors(&v, &unknown_rule).len(), 1);
    let mut fact_without_value = report.clone();
    fact_without_value["findings"][0]["evidence"]["facts"][0] = json!({"name": "x"});
    assert_eq!(errors(&v, &fact_without_value).len(), 1);

    let line = stdout(&ut(&["dump", "--format", "jsonl", s(&f)]));
    let event: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let v = published("dump");
    assert!(errors(&v, &event).is_empty());
    let mut string_ts = event.clone();
    string_ts["ts_ns"] = json!("12");
    assert_eq!(
        errors(&v, &string_ts),
        ["/ts_ns: \"12\" is not of type \"integer\""]
    );

    // The tests' strict form also rejects a key the types do not name.
    let strict_v = jsonschema::validator_for(&strict(schema("dump"))).unwrap();
    let mut extra = event.clone();
    extra["surprise"] = json!(1);
    assert!(errors(&v, &extra).is_empty());
    assert_eq!(errors(&strict_v, &extra).len(), 1);

    let line = stdout(&ut(&[
        "top",
        "--replay",
        s(&f),
        "--once",
        "--format",
        "json",
    ]));
    let snapshot: Value = serde_json::from_str(&line).unwrap();
    let v = published("top");
    assert!(errors(&v, &snapshot).is_empty());
    let mut no_rings = snapshot.clone();
    no_rings.as_object_mut().unwrap().remove("rings");
    assert_eq!(
        errors(&v, &no_rings),
        [": \"rings\" is a required property"]
    );
}

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas")
}

/// docs/schemas/NAME.json is what `uringtrace schema NAME` prints, byte for byte.
#[test]
fn committed_schemas_are_current() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for doc in Document::ALL.map(Document::name) {
        let printed = stdout(&ut(&["schema", doc]));
        let path = schemas_dir().join(format!("{doc}.json"));
        if update {
            std::fs::create_dir_all(schemas_dir()).unwrap();
            std::fs::write(&path, &printed).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(printed.as_str()) {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from `uringtrace schema`; refresh with \
         UPDATE_SCHEMAS=1 cargo test --release --test json_schemas"
    );
}
