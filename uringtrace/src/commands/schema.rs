use std::process::ExitCode;

use crate::cli::{SchemaArgs, SchemaDocument};
use crate::output::schema::{schema, schema_text, Document};

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let doc = match args.document {
        SchemaDocument::Diagnose => Document::Diagnose,
        SchemaDocument::Check => Document::Check,
        SchemaDocument::Dump => Document::Dump,
        SchemaDocument::Top => Document::Top,
    };
    print!("{}", schema_text(&schema(doc))?);
    Ok(ExitCode::SUCCESS)
}
