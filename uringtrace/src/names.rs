//! Human names for io_uring numbers: opcodes, errnos, and flag sets.
//!
//! Opcode numbers are append-only in the kernel UAPI (include/uapi/linux/io_uring.h),
//! so one table serves every kernel; numbers past the table print as `OP_<n>`.

const OPCODES: &[&str] = &[
    "NOP",
    "READV",
    "WRITEV",
    "FSYNC",
    "READ_FIXED",
    "WRITE_FIXED",
    "POLL_ADD",
    "POLL_REMOVE",
    "SYNC_FILE_RANGE",
    "SENDMSG",
    "RECVMSG",
    "TIMEOUT",
    "TIMEOUT_REMOVE",
    "ACCEPT",
    "ASYNC_CANCEL",
    "LINK_TIMEOUT",
    "CONNECT",
    "FALLOCATE",
    "OPENAT",
    "CLOSE",
    "FILES_UPDATE",
    "STATX",
    "READ",
    "WRITE",
    "FADVISE",
    "MADVISE",
    "SEND",
    "RECV",
    "OPENAT2",
    "EPOLL_CTL",
    "SPLICE",
    "PROVIDE_BUFFERS",
    "REMOVE_BUFFERS",
    "TEE",
    "SHUTDOWN",
    "RENAMEAT",
    "UNLINKAT",
    "MKDIRAT",
    "SYMLINKAT",
    "LINKAT",
    "MSG_RING",
    "FSETXATTR",
    "SETXATTR",
    "FGETXATTR",
    "GETXATTR",
    "SOCKET",
    "URING_CMD",
    "SEND_ZC",
    "SENDMSG_ZC",
    "READ_MULTISHOT",
    "WAITID",
    "FUTEX_WAIT",
    "FUTEX_WAKE",
    "FUTEX_WAITV",
    "FIXED_FD_INSTALL",
    "FTRUNCATE",
    "BIND",
    "LISTEN",
    "RECV_ZC",
    "EPOLL_WAIT",
    "READV_FIXED",
    "WRITEV_FIXED",
    "PIPE",
];

pub fn opcode_name(op: u8) -> std::borrow::Cow<'static, str> {
    match OPCODES.get(op as usize) {
        Some(n) => (*n).into(),
        None => format!("OP_{op}").into(),
    }
}

pub fn opcode_from_name(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    OPCODES.iter().position(|n| *n == upper).map(|i| i as u8)
}

const ERRNO_NAMES: [&str; 133] = [
    "",
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP",
    "",
    "ENOMSG",
    "EIDRM",
    "ECHRNG",
    "EL2NSYNC",
    "EL3HLT",
    "EL3RST",
    "ELNRNG",
    "EUNATCH",
    "ENOCSI",
    "EL2HLT",
    "EBADE",
    "EBADR",
    "EXFULL",
    "ENOANO",
    "EBADRQC",
    "EBADSLT",
    "",
    "EBFONT",
    "ENOSTR",
    "ENODATA",
    "ETIME",
    "ENOSR",
    "ENONET",
    "ENOPKG",
    "EREMOTE",
    "ENOLINK",
    "EADV",
    "ESRMNT",
    "ECOMM",
    "EPROTO",
    "EMULTIHOP",
    "EDOTDOT",
    "EBADMSG",
    "EOVERFLOW",
    "ENOTUNIQ",
    "EBADFD",
    "EREMCHG",
    "ELIBACC",
    "ELIBBAD",
    "ELIBSCN",
    "ELIBMAX",
    "ELIBEXEC",
    "EILSEQ",
    "ERESTART",
    "ESTRPIPE",
    "EUSERS",
    "ENOTSOCK",
    "EDESTADDRREQ",
    "EMSGSIZE",
    "EPROTOTYPE",
    "ENOPROTOOPT",
    "EPROTONOSUPPORT",
    "ESOCKTNOSUPPORT",
    "EOPNOTSUPP",
    "EPFNOSUPPORT",
    "EAFNOSUPPORT",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ENETDOWN",
    "ENETUNREACH",
    "ENETRESET",
    "ECONNABORTED",
    "ECONNRESET",
    "ENOBUFS",
    "EISCONN",
    "ENOTCONN",
    "ESHUTDOWN",
    "ETOOMANYREFS",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EALREADY",
    "EINPROGRESS",
    "ESTALE",
    "EUCLEAN",
    "ENOTNAM",
    "ENAVAIL",
    "EISNAM",
    "EREMOTEIO",
    "EDQUOT",
    "ENOMEDIUM",
    "EMEDIUMTYPE",
    "ECANCELED",
    "ENOKEY",
    "EKEYEXPIRED",
    "EKEYREVOKED",
    "EKEYREJECTED",
    "EOWNERDEAD",
    "ENOTRECOVERABLE",
    "ERFKILL",
];

/// `-ECANCELED` for -125, `0` for 0, plain numbers for positive results.
pub fn result_name(res: i32) -> String {
    if res >= 0 {
        return res.to_string();
    }
    match errno_name(-res) {
        Some(n) => format!("-{n}"),
        None => res.to_string(),
    }
}

/// The inverse of [`result_name`]: "42" → 42, "-EBADF" → -9.
pub fn result_from_name(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let name = s.strip_prefix('-')?;
    if name == "ERESTARTSYS" {
        return Some(-ERESTARTSYS);
    }
    let code = ERRNO_NAMES
        .iter()
        .position(|n| !n.is_empty() && *n == name)?;
    Some(-(code as i32))
}

/// A kernel-internal errno (include/linux/errno.h), not in libc: a syscall to be
/// restarted. It should never reach userspace, but can leak into CQEs.
const ERESTARTSYS: i32 = 512;

pub fn errno_name(code: i32) -> Option<&'static str> {
    // Kernel-internal codes can leak into CQEs (e.g. 512 ERESTARTSYS never should).
    match code {
        ERESTARTSYS => Some("ERESTARTSYS"),
        _ => ERRNO_NAMES
            .get(usize::try_from(code).ok()?)
            .copied()
            .filter(|n| !n.is_empty()),
    }
}

fn flag_names(v: u64, table: &[(u64, &str)]) -> String {
    if v == 0 {
        return "0".into();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut rest = v;
    for &(bit, name) in table {
        if v & bit != 0 {
            parts.push(name.into());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

/// IOSQE_* (the low byte of req->flags at submit; stable across kernels).
pub fn sqe_flags(v: u64) -> String {
    flag_names(
        v & 0xff,
        &[
            (1, "FIXED_FILE"),
            (2, "IO_DRAIN"),
            (4, "IO_LINK"),
            (8, "IO_HARDLINK"),
            (16, "ASYNC"),
            (32, "BUFFER_SELECT"),
            (64, "CQE_SKIP_SUCCESS"),
        ],
    )
}

/// The SQE's fd is an index into the ring's registered file table.
pub const IOSQE_FIXED_FILE: u64 = 1;
pub const IOSQE_IO_LINK: u64 = 4;
pub const IOSQE_IO_HARDLINK: u64 = 8;
pub const IOSQE_ASYNC: u64 = 16;
/// The CQE is posted only on failure.
pub const IOSQE_CQE_SKIP_SUCCESS: u64 = 64;

/// IORING_CQE_F_* (the buffer id in the upper 16 bits is shown separately).
pub fn cqe_flags(v: u32) -> String {
    let s = flag_names(
        u64::from(v & 0xffff),
        &[
            (1, "BUFFER"),
            (2, "MORE"),
            (4, "SOCK_NONEMPTY"),
            (8, "NOTIF"),
            (16, "BUF_MORE"),
        ],
    );
    if v & 1 != 0 {
        format!("{s} bid={}", v >> 16)
    } else {
        s
    }
}

pub const CQE_F_MORE: u32 = 2;
/// The notification CQE of a zero-copy send (SEND_ZC, SENDMSG_ZC).
pub const CQE_F_NOTIF: u32 = 8;

/// IORING_SETUP_*.
pub fn setup_flags(v: u32) -> String {
    flag_names(
        u64::from(v),
        &[
            (1 << 0, "IOPOLL"),
            (1 << 1, "SQPOLL"),
            (1 << 2, "SQ_AFF"),
            (1 << 3, "CQSIZE"),
            (1 << 4, "CLAMP"),
            (1 << 5, "ATTACH_WQ"),
            (1 << 6, "R_DISABLED"),
            (1 << 7, "SUBMIT_ALL"),
            (1 << 8, "COOP_TASKRUN"),
            (1 << 9, "TASKRUN_FLAG"),
            (1 << 10, "SQE128"),
            (1 << 11, "CQE32"),
            (1 << 12, "SINGLE_ISSUER"),
            (1 << 13, "DEFER_TASKRUN"),
            (1 << 14, "NO_MMAP"),
            (1 << 15, "REGISTERED_FD_ONLY"),
            (1 << 16, "NO_SQARRAY"),
            (1 << 17, "HYBRID_IOPOLL"),
            (1 << 18, "CQE_MIXED"),
        ],
    )
}

pub const SETUP_SQPOLL: u32 = 1 << 1;

/// IORING_ENTER_*.
pub fn enter_flags(v: u32) -> String {
    flag_names(
        u64::from(v),
        &[
            (1, "GETEVENTS"),
            (2, "SQ_WAKEUP"),
            (4, "SQ_WAIT"),
            (8, "EXT_ARG"),
            (16, "REGISTERED_RING"),
            (32, "ABS_TIMER"),
            (64, "EXT_ARG_REG"),
            (128, "NO_IOWAIT"),
        ],
    )
}

pub const ENTER_GETEVENTS: u32 = 1;
pub const ENTER_SQ_WAKEUP: u32 = 2;
/// The enter carries an argument struct (a timeout, usually).
pub const ENTER_EXT_ARG: u32 = 8;
/// The enter's fd is an index into the task's registered ring fds, not an fd.
pub const ENTER_REGISTERED_RING: u32 = 0x10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(opcode_name(22), "READ");
        assert_eq!(opcode_name(40), "MSG_RING");
        assert_eq!(opcode_name(51), "FUTEX_WAIT");
        assert_eq!(opcode_name(200), "OP_200");
        assert_eq!(opcode_from_name("nop"), Some(0));
        assert_eq!(result_name(-125), "-ECANCELED");
        assert_eq!(result_name(-9), "-EBADF");
        assert_eq!(result_name(-105), "-ENOBUFS");
        assert_eq!(result_name(-11), "-EAGAIN");
        assert_eq!(result_name(-999), "-999");
        assert_eq!(result_name(4096), "4096");
        assert_eq!(sqe_flags(0x104), "IO_LINK");
        assert_eq!(cqe_flags(0x10003), "BUFFER|MORE bid=1");
        assert_eq!(setup_flags(0x22), "SQPOLL|ATTACH_WQ");
        assert_eq!(enter_flags(3), "GETEVENTS|SQ_WAKEUP");
        assert_eq!(enter_flags(0x1000), "0x1000");
    }
}
