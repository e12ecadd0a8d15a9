//! Output formats: a [`Report`](crate::analyzer::report::Report) as terminal text, GitHub
//! markdown or JSON, and a check's findings as JUnit XML. The analyzer produces data;
//! laying it out for a reader happens here. Pure functions: they build strings and
//! values, the commands decide where they go.

mod cells;
mod json;
mod junit;
mod markdown;
pub mod perfetto;
#[cfg(test)]
mod tests;
mod text;

pub use cells::{summary, table, who, who_or_dash};
pub use json::json;
pub use junit::{junit, xml_escape};
pub use markdown::markdown;
pub use text::{finding_text, text};
