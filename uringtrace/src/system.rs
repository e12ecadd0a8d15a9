//! Facts about the host: kernel release, hostname, clocks, io_uring availability.

use serde::Serialize;

fn uts_field(f: impl Fn(&libc::utsname) -> &[libc::c_char]) -> String {
    // SAFETY: zeroed utsname is valid; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let field = f(&u);
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn kernel_release() -> String {
    uts_field(|u| &u.release)
}

pub fn hostname() -> String {
    uts_field(|u| &u.nodename)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

pub fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// CPU time the calling thread has used.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

pub fn ncpus() -> u32 {
    aya::util::nr_cpus().map(|n| n as u32).unwrap_or(1)
}

pub fn has_btf() -> bool {
    std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
}

/// `kernel.io_uring_disabled` (6.6+).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum IoUringDisabled {
    /// The sysctl does not exist (before 6.6): io_uring is allowed.
    Absent,
    Value(u32),
}

impl IoUringDisabled {
    pub fn read() -> IoUringDisabled {
        match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
            Ok(s) => s
                .trim()
                .parse()
                .map(IoUringDisabled::Value)
                .unwrap_or(IoUringDisabled::Absent),
            Err(_) => IoUringDisabled::Absent,
        }
    }

    pub fn explain(&self) -> String {
        match self {
            IoUringDisabled::Absent => {
                "sysctl absent (kernel before 6.6): io_uring allowed for everyone".into()
            }
            IoUringDisabled::Value(0) => "0: io_uring allowed for everyone".into(),
            IoUringDisabled::Value(1) => {
                "1: io_uring only for privileged tasks and members of kernel.io_uring_group".into()
            }
            IoUringDisabled::Value(2) => "2: io_uring_setup fails with EPERM for everyone".into(),
            IoUringDisabled::Value(v) => format!("{v}: unknown value"),
        }
    }
}

/// Tries io_uring_setup, to tell "disabled", "blocked by seccomp" and "works" apart.
pub fn probe_io_uring() -> Result<(), String> {
    match io_uring::IoUring::new(2) {
        Ok(_) => Ok(()),
        Err(e) => Err(match e.raw_os_error() {
            Some(libc::ENOSYS) => "io_uring_setup: ENOSYS (kernel without io_uring, or a seccomp filter such as Docker's default profile)".into(),
            Some(libc::EPERM) => "io_uring_setup: EPERM (kernel.io_uring_disabled, io_uring_group, or a seccomp filter)".into(),
            _ => format!("io_uring_setup failed: {e}"),
        }),
    }
}

/// The cgroup of process `pid` (the v2 path, e.g. `/system.slice/nginx.service`; on a
/// v1-only host the first hierarchy's), "unknown" once the process is gone.
pub fn cgroup_of(pid: u32) -> String {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return "unknown".into();
    };
    let path_of = |l: &str| l.splitn(3, ':').nth(2).map(str::to_string);
    s.lines()
        .find(|l| l.starts_with("0::"))
        .or_else(|| s.lines().next())
        .and_then(path_of)
        .unwrap_or_else(|| "unknown".into())
}
