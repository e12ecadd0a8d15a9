//! io_uring opcode numbers that the programs and the analyzer name (the kernel UAPI's,
//! include/uapi/linux/io_uring.h; append-only, so one table serves every kernel).
//! Every opcode's name is in `uringtrace/src/names.rs`.

pub const NOP: u8 = 0;
pub const READV: u8 = 1;
pub const WRITEV: u8 = 2;
pub const READ_FIXED: u8 = 4;
pub const WRITE_FIXED: u8 = 5;
pub const POLL_ADD: u8 = 6;
pub const SENDMSG: u8 = 9;
pub const RECVMSG: u8 = 10;
pub const TIMEOUT: u8 = 11;
pub const ACCEPT: u8 = 13;
pub const ASYNC_CANCEL: u8 = 14;
pub const LINK_TIMEOUT: u8 = 15;
pub const CONNECT: u8 = 16;
pub const READ: u8 = 22;
pub const WRITE: u8 = 23;
pub const SEND: u8 = 26;
pub const RECV: u8 = 27;
pub const SPLICE: u8 = 30;
pub const TEE: u8 = 33;
pub const MSG_RING: u8 = 40;
pub const URING_CMD: u8 = 46;
pub const SEND_ZC: u8 = 47;
pub const SENDMSG_ZC: u8 = 48;
pub const READ_MULTISHOT: u8 = 49;
pub const WAITID: u8 = 50;
pub const FUTEX_WAIT: u8 = 51;
pub const FUTEX_WAKE: u8 = 52;
pub const FUTEX_WAITV: u8 = 53;
pub const RECV_ZC: u8 = 58;
pub const EPOLL_WAIT: u8 = 59;
pub const READV_FIXED: u8 = 60;
pub const WRITEV_FIXED: u8 = 61;
