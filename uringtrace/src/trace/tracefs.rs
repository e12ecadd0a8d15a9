//! Finding (and if needed mounting) tracefs, and reading tracepoint `format` files.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::format::{parse_format, Format, FormatError};

const CANDIDATES: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

#[derive(Debug, Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted and mounting it at /sys/kernel/tracing failed ({0}); \
         run as root, or mount it: mount -t tracefs tracefs /sys/kernel/tracing"
    )]
    MountFailed(std::io::Error),
    /// Mounted, but this user cannot read it: tracefs is root's and mode 0700 unless
    /// mounted with `gid=`/`mode=`.
    #[error(
        "tracefs is mounted at {0} but this user cannot read it (tracefs is root's, mode \
         0700, unless mounted with gid= and mode=)"
    )]
    NotReadable(PathBuf),
    // Not `source`: the message says the cause, and anyhow's `{:#}` would repeat it.
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {error}")]
    Parse { path: PathBuf, error: FormatError },
}

/// Where tracefs is, and whether uringtrace had to mount it.
#[derive(Clone, Debug)]
pub struct Tracefs {
    pub root: PathBuf,
    pub mounted_by_us: bool,
}

impl Tracefs {
    /// Finds tracefs; mounts it at /sys/kernel/tracing when it is missing.
    pub fn find_or_mount() -> Result<Tracefs, TracefsError> {
        if let Some(root) = Self::find() {
            return Ok(Tracefs {
                root,
                mounted_by_us: false,
            });
        }
        if let Err(e) = mount_tracefs() {
            // Without CAP_SYS_ADMIN the mount fails; one that exists is then simply
            // not readable by this user (what to grant differs).
            return Err(match Self::mount_point() {
                Some(p) => TracefsError::NotReadable(p),
                None => TracefsError::MountFailed(e),
            });
        }
        Ok(Tracefs {
            root: PathBuf::from(CANDIDATES[0]),
            mounted_by_us: true,
        })
    }

    /// Finds a mounted tracefs without changing anything.
    pub fn find() -> Option<PathBuf> {
        CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.join("events").is_dir())
    }

    /// Where tracefs is mounted according to /proc/self/mounts, readable or not
    /// (it is mode 0700: other users see an empty directory).
    pub fn mount_point() -> Option<PathBuf> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        mounts.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let (_, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "tracefs").then(|| PathBuf::from(dir))
        })
    }

    pub fn at(root: impl Into<PathBuf>) -> Tracefs {
        Tracefs {
            root: root.into(),
            mounted_by_us: false,
        }
    }

    pub fn exists(&self, category: &str, name: &str) -> bool {
        self.event_dir(category, name).join("format").is_file()
    }

    pub fn format(&self, category: &str, name: &str) -> Result<Format, TracefsError> {
        let path = self.event_dir(category, name).join("format");
        let text = std::fs::read_to_string(&path).map_err(|error| TracefsError::Read {
            path: path.clone(),
            error,
        })?;
        parse_format(&text).map_err(|error| TracefsError::Parse { path, error })
    }

    fn event_dir(&self, category: &str, name: &str) -> PathBuf {
        self.root.join("events").join(category).join(name)
    }
}

fn mount_tracefs() -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let target = Path::new(CANDIDATES[0]);
    let tgt =
        std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            tgt.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
