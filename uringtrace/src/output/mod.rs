//! Output formats: a [`Report`](crate::analyzer::report::Report) as terminal text, GitHub
//! markdown or JSON, a check's findings as JSON or JUnit XML, headless `top`'s document
//! ([`top::TopDocument`]) as JSON lines or a text table, and the JSON schemas of every
//! JSON output. The analyzer produces data; laying it out for a reader happens here.
//! Pure functions: they build strings and values, the commands decide where they go.

mod cells;
mod check_json;
pub mod inventory;
mod json;
mod junit;
mod markdown;
pub mod metrics;
pub mod perfetto;
pub mod schema;
#[cfg(test)]
mod tests;
mod text;
pub mod top;

pub use cells::{summary, table, who, who_or_dash};
pub use check_json::{check_json, CheckJson, CheckedFile};
pub use json::json;
pub use junit::{junit, xml_escape};
pub use markdown::markdown;
pub use text::{finding_text, text};
pub use top::{top_json, top_text, TopDocument};
