//! What each io_uring opcode is to the rules: does it wait for an outside event by
//! design, or should it complete on its own? One table, used by every rule.
//!
//! The numbers are in `uringtrace_common::opcode` (shared with the kernel programs).

pub use uringtrace_common::opcode::*;

/// How a request of an opcode comes to complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Waits for an outside event by design: a timer, a connection, readiness it asked
    /// for, another task (POLL_ADD, TIMEOUT, LINK_TIMEOUT, ACCEPT, CONNECT, FUTEX_WAIT,
    /// WAITID, EPOLL_WAIT, URING_CMD: ublk parks its commands in the kernel). Servers
    /// keep these in flight for minutes; taking long is not a stall.
    WaitsForEvent,
    /// Reads or writes a file, pipe or socket: immediate on regular files, and on
    /// pipes and sockets waits (poll-armed, `io_uring_poll_arm`) while not ready.
    Readiness,
    /// Should complete on its own, soon (NOP, fsync, openat, ... and blocking
    /// operations run in io-wq).
    OnItsOwn,
}

pub fn completion(op: u8) -> Completion {
    match op {
        POLL_ADD | TIMEOUT | LINK_TIMEOUT | ACCEPT | CONNECT | FUTEX_WAIT | FUTEX_WAITV
        | WAITID | EPOLL_WAIT | URING_CMD | RECV_ZC => Completion::WaitsForEvent,
        READV | READ_FIXED | RECVMSG | READ | RECV | READ_MULTISHOT | READV_FIXED | WRITEV
        | WRITE_FIXED | SENDMSG | WRITE | SEND | SEND_ZC | SENDMSG_ZC | WRITEV_FIXED => {
            Completion::Readiness
        }
        _ => Completion::OnItsOwn,
    }
}

/// Takes data in from its fd (a poll-armed one waits for a writer).
pub fn reads(op: u8) -> bool {
    matches!(
        op,
        READV | READ_FIXED | RECVMSG | READ | RECV | READ_MULTISHOT | READV_FIXED
    )
}

/// Puts data out to its fd.
pub fn writes(op: u8) -> bool {
    matches!(
        op,
        WRITEV
            | WRITE_FIXED
            | SENDMSG
            | WRITE
            | SEND
            | SPLICE
            | TEE
            | SEND_ZC
            | SENDMSG_ZC
            | WRITEV_FIXED
    )
}

/// Zero-copy sends: their first CQE carries IORING_CQE_F_MORE and is the request's
/// own; a notification CQE (IORING_CQE_F_NOTIF) follows from another kernel request
/// once the buffer is free again. Not multishot.
pub fn zero_copy_send(op: u8) -> bool {
    matches!(op, SEND_ZC | SENDMSG_ZC)
}

/// Can be set up as multishot (IORING_RECV_MULTISHOT, IORING_ACCEPT_MULTISHOT,
/// IORING_POLL_ADD_MULTI, IORING_TIMEOUT_MULTISHOT, READ_MULTISHOT): such a request
/// may post any number of CQEs, and the SQE flag that says so is not in any event.
pub fn can_be_multishot(op: u8) -> bool {
    matches!(
        op,
        RECV | RECVMSG | ACCEPT | POLL_ADD | TIMEOUT | READ_MULTISHOT | URING_CMD
    )
}

/// Results that end a chain by design rather than by a bug in the application.
pub fn peer_closed(res: i32) -> bool {
    res == -libc::ECONNRESET || res == -libc::EPIPE || res == -libc::ECONNABORTED
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::opcode_name;

    #[test]
    fn constants_match_the_names_table() {
        for (op, name) in [
            (POLL_ADD, "POLL_ADD"),
            (TIMEOUT, "TIMEOUT"),
            (LINK_TIMEOUT, "LINK_TIMEOUT"),
            (ACCEPT, "ACCEPT"),
            (MSG_RING, "MSG_RING"),
            (URING_CMD, "URING_CMD"),
            (SEND_ZC, "SEND_ZC"),
            (SENDMSG_ZC, "SENDMSG_ZC"),
            (WAITID, "WAITID"),
            (FUTEX_WAIT, "FUTEX_WAIT"),
            (FUTEX_WAKE, "FUTEX_WAKE"),
            (EPOLL_WAIT, "EPOLL_WAIT"),
            (READ, "READ"),
            (WRITE, "WRITE"),
            (RECV, "RECV"),
            (SEND, "SEND"),
            (SPLICE, "SPLICE"),
            (ASYNC_CANCEL, "ASYNC_CANCEL"),
            (RECV_ZC, "RECV_ZC"),
            (WRITEV_FIXED, "WRITEV_FIXED"),
        ] {
            assert_eq!(opcode_name(op), name);
        }
    }

    #[test]
    fn servers_and_timers_wait_by_design() {
        for op in [
            POLL_ADD,
            TIMEOUT,
            LINK_TIMEOUT,
            ACCEPT,
            FUTEX_WAIT,
            WAITID,
            EPOLL_WAIT,
            URING_CMD,
        ] {
            assert_eq!(
                completion(op),
                Completion::WaitsForEvent,
                "{}",
                opcode_name(op)
            );
        }
        assert_eq!(completion(RECV), Completion::Readiness);
        assert_eq!(completion(NOP), Completion::OnItsOwn);
        assert_eq!(completion(SPLICE), Completion::OnItsOwn);
    }
}
