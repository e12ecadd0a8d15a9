//! Getting events out of the kernel: tracefs, the tracepoint catalog, loading the
//! eBPF programs, and live sessions.

pub mod aggregate;
pub mod availability;
pub mod btf;
pub mod catalog;
pub mod fdinfo;
pub mod format;
pub mod loader;
pub mod occupancy;
pub mod owner_state;
pub mod privileges;
pub mod probe;
pub mod release;
pub mod ring;
pub mod ring_watch;
pub mod scratch_ring;
pub mod session;
pub mod sweep;
pub mod tracefs;
pub mod wire;
