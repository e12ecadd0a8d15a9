//! `uringtrace top`: io_uring activity and findings, live or replayed from a recording.
//!
//! The shape is the Elm architecture, so that every screen can be tested without a
//! terminal:
//! - [`app::App`] holds all state: the analyzer, the per-tick [`snapshot`], the
//!   bounded [`history`] behind rates and sparklines, and the UI state;
//! - [`view::draw`] renders an `&App` and changes nothing;
//! - [`app::App::handle_key`] turns one key into a state change and an [`app::Action`]
//!   for the loop (quit, pause the replay, step it);
//! - one channel ([`event`]) carries event batches (from the tracing thread,
//!   [`live`], or the replay thread, [`replay`]), ticks and keys to the loop in
//!   [`run`], which renders once per tick whatever the event rate.
//!
//! [`terminal`] restores the terminal on every way out (quit, Ctrl-C, SIGTERM, panic).

pub mod app;
pub mod cost;
pub mod detail;
pub mod event;
pub mod format;
pub mod history;
mod input;
pub mod live;
pub mod replay;
pub mod run;
pub mod snapshot;
pub mod sort;
pub mod terminal;
pub mod theme;
pub mod view;

pub use app::{Action, App, Source};
