//! One module per subcommand; each turns parsed arguments into work and an exit code.

pub mod agent;
pub mod check;
pub mod completions;
pub mod diagnose;
pub mod doctor;
pub mod dump;
pub mod export;
pub mod inventory;
pub mod record;
pub mod rules;
pub mod schema;
pub mod top;
