//! The recording file format (specified in docs/recording-format.md).
//!
//! ```text
//! 0   8  magic "URTRACE\0"
//! 8   4  format version (u32 LE): 2 (1 is still read)
//! 12  4  header capacity H (u32 LE)
//! 16  H  header: JSON, padded with spaces (rewritten in place when recording ends)
//! 16+H   records: version 2: tag (u8) then a self-delimiting body (codec2);
//!                 version 1: type (u8), payload length (varint), payload (codec)
//! ```
//! Records are appended as events arrive, so a file cut short by a crash reads back up
//! to its last complete record.

mod codec2;
mod header;
mod reader;
mod upgrade;
mod v1;
pub mod varint;
mod writer;

pub use header::{ClockBase, Drops, Filter, Header, TracepointInfo};
pub use reader::{ReadStatus, Reader, RecordingError};
pub use upgrade::{upgrade, UpgradeError};
pub use v1::{decode_event, encode_event, TaskTable, REC_END, REC_EVENT, REC_TASK};
pub use writer::Writer;

pub const MAGIC: &[u8; 8] = b"URTRACE\0";
/// The version [`Writer`] writes.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version [`Reader`] reads.
pub const FORMAT_VERSION_V1: u32 = 1;
pub const PREAMBLE_LEN: u64 = 16;
/// Largest payload a valid record (v1 record, v2 end record) can have; larger lengths
/// mean corruption.
pub const MAX_PAYLOAD: u64 = 1 << 20;
