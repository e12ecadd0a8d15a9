//! JSON schemas (draft 2020-12) of every JSON document the tool prints, derived from the
//! Rust types that produce them, so a schema cannot drift from its output.
//! `uringtrace schema NAME` prints them; `docs/schemas/NAME.json` are the committed
//! copies (a test keeps them equal).

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::Value;

use super::check_json::CheckJson;
use crate::analyzer::report::Report;
use crate::display::EventJson;

/// A JSON output with a schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Document {
    /// `diagnose --format json`: one report.
    Diagnose,
    /// `check --format json`: the verdicts and the judged findings.
    Check,
    /// `dump --format jsonl`: one event per line (the schema is of one line).
    Dump,
}

impl Document {
    pub const ALL: [Document; 3] = [Document::Diagnose, Document::Check, Document::Dump];

    /// The name used by `uringtrace schema` and in `docs/schemas/NAME.json`.
    pub fn name(self) -> &'static str {
        match self {
            Document::Diagnose => "diagnose",
            Document::Check => "check",
            Document::Dump => "dump",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Document::Diagnose => "uringtrace diagnose --format json",
            Document::Check => "uringtrace check --format json",
            Document::Dump => "uringtrace dump --format jsonl (one line)",
        }
    }
}

/// The schema of `doc`, as a JSON value (print it pretty, with a final newline).
pub fn schema(doc: Document) -> Value {
    match doc {
        Document::Diagnose => root::<Report>(doc),
        Document::Check => root::<CheckJson>(doc),
        Document::Dump => root::<EventJson>(doc),
    }
}

fn root<T: JsonSchema>(doc: Document) -> Value {
    let mut s = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    s.insert("title".into(), doc.title().into());
    s.to_value()
}

/// A schema as `uringtrace schema` prints it and `docs/schemas/` stores it: pretty, with
/// a final newline.
pub fn schema_text(schema: &Value) -> serde_json::Result<String> {
    Ok(serde_json::to_string_pretty(schema)? + "\n")
}
