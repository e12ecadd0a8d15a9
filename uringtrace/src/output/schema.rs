//! JSON schemas (draft 2020-12) of every JSON document the tool prints, derived from the
//! Rust types that produce them, so a schema cannot drift from its output.
//! `uringtrace schema NAME` prints them; `docs/schemas/NAME.json` are the committed
//! copies (a test keeps them equal).

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::Value;

use super::check_json::CheckJson;
use super::top::TopDocument;
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
    /// Headless `top --format json`: one snapshot per line (the schema is of one line).
    Top,
}

impl Document {
    pub const ALL: [Document; 4] = [
        Document::Diagnose,
        Document::Check,
        Document::Dump,
        Document::Top,
    ];

    /// The name used by `uringtrace schema` and in `docs/schemas/NAME.json`.
    pub fn name(self) -> &'static str {
        match self {
            Document::Diagnose => "diagnose",
            Document::Check => "check",
            Document::Dump => "dump",
            Document::Top => "top",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Document::Diagnose => "uringtrace diagnose --format json",
            Document::Check => "uringtrace check --format json",
            Document::Dump => "uringtrace dump --format jsonl (one line)",
            Document::Top => "uringtrace top --format json (one line)",
        }
    }
}

/// The schema of `doc`, as a JSON value (print it pretty, with a final newline).
pub fn schema(doc: Document) -> Value {
    match doc {
        Document::Diagnose => root::<Report>(doc),
        Document::Check => root::<CheckJson>(doc),
        Document::Dump => root::<EventJson>(doc),
        Document::Top => root::<TopDocument>(doc),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_has_a_titled_draft_2020_12_schema_of_an_object() {
        let names: Vec<&str> = Document::ALL.map(Document::name).to_vec();
        assert_eq!(names, ["diagnose", "check", "dump", "top"]);
        for doc in Document::ALL {
            let s = schema(doc);
            assert_eq!(
                s["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{doc:?}"
            );
            assert_eq!(s["title"], doc.title());
            assert_eq!(s["type"], "object");
            assert!(schema_text(&s).unwrap().ends_with("}\n"));
        }
    }

    /// The serde attributes the output types use, or may use, come out in the schema as
    /// serde writes them: rename(_all), skip_serializing_if (not required), flatten, and
    /// tagged enums. Instances are the real serde output.
    #[test]
    fn schemars_follows_serde_attributes() {
        use serde::Serialize;

        #[derive(Serialize, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            #[serde(rename = "n")]
            number: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            maybe_not: Option<u32>,
            #[serde(flatten)]
            inner: Inner,
            tagged: Tagged,
            #[serde(flatten)]
            fact: crate::analyzer::finding::FactValue,
        }
        #[derive(Serialize, JsonSchema)]
        struct Inner {
            deep_field: bool,
        }
        #[derive(Serialize, JsonSchema)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Tagged {
            OneThing { a: u8 },
            Other,
        }

        let schema = SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<Probe>()
            .to_value();
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort();
        assert_eq!(required, ["deep_field", "n", "tagged"]);
        let mut closed = schema.clone();
        closed["unevaluatedProperties"] = false.into();
        let v = jsonschema::validator_for(&closed).unwrap();
        let fact = crate::analyzer::finding::FactValue::Ns(5);
        for probe in [
            Probe {
                number: 1,
                maybe_not: None,
                inner: Inner { deep_field: true },
                tagged: Tagged::OneThing { a: 2 },
                fact: fact.clone(),
            },
            Probe {
                number: 1,
                maybe_not: Some(3),
                inner: Inner { deep_field: false },
                tagged: Tagged::Other,
                fact,
            },
        ] {
            let json = serde_json::to_value(&probe).unwrap();
            assert!(v.is_valid(&json), "{json}");
        }
        let bad =
            serde_json::json!({"n": 1, "deep_field": true, "tagged": {"type": "Other"}, "ns": 5});
        assert!(!v.is_valid(&bad), "variant names are snake_case");
    }
}
