//! Replacing a large output file (an export, a recording) without waiting for its
//! blocks to be freed.
//!
//! Creating a file over an earlier one truncates it first, and ext4 frees its blocks
//! there and then: measured on Linux 6.18 (ext4 on virtio-blk), 88 ms for a 629 MiB
//! export and 0.8 s for a 3.1 GiB one, all before the first byte is written and with
//! both CPUs idle (for `record`, while the traced command already runs and its events
//! pile up in the kernel's ring buffer). So a large regular file is renamed aside and
//! deleted by a thread of its own while the new one is written; the new file takes over its owner and
//! permissions, as a truncated one would keep them. Anything unusual (hard links, not
//! a regular file, a file the caller may not write, a rename refused) gets the ordinary
//! truncation.

use std::fs::{File, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// Files smaller than this are truncated in place: that takes no time to speak of.
const ASIDE_FROM_BYTES: u64 = 16 << 20;

/// An earlier file renamed aside, being deleted in the background.
pub struct Aside {
    meta: Metadata,
    deleting: Option<JoinHandle<()>>,
}

impl Aside {
    /// Renames a large earlier file at `path` aside and starts deleting it; None when
    /// there is none (or it is better truncated).
    pub fn take(path: &Path) -> Option<Aside> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if !meta.file_type().is_file() || meta.nlink() != 1 || meta.len() < ASIDE_FROM_BYTES {
            return None;
        }
        // Only a file the caller could have truncated: replacing one it may not write
        // (a directory it may write, as a non-root user) would be new behaviour.
        drop(std::fs::OpenOptions::new().write(true).open(path).ok()?);
        let aside = aside_path(path)?;
        std::fs::rename(path, &aside).ok()?;
        let deleting = std::thread::Builder::new()
            .name("perfetto-unlink".into())
            .spawn({
                let aside = aside.clone();
                move || {
                    let _ = std::fs::remove_file(&aside);
                }
            });
        let deleting = match deleting {
            Ok(t) => Some(t),
            Err(_) => {
                let _ = std::fs::remove_file(&aside);
                None
            }
        };
        Some(Aside { meta, deleting })
    }

    /// Gives the new file the earlier one's owner and permissions (best effort: as
    /// another user, changing the owner is refused and the file stays the caller's).
    pub fn restore_owner(&self, file: &File) {
        let _ = std::os::unix::fs::fchown(file, Some(self.meta.uid()), Some(self.meta.gid()));
        let mode = self.meta.permissions().mode() & 0o7777;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
    }

    /// Waits for the deletion (long done, unless the new file was written quickly).
    pub fn finish(self) {}
}

impl Drop for Aside {
    /// The deletion is never left to die with the process: the aside file would stay.
    fn drop(&mut self) {
        if let Some(t) = self.deleting.take() {
            let _ = t.join();
        }
    }
}

/// `.NAME.uringtrace-old-PID` beside `path`: hidden, and named for what it is should a
/// crash leave it behind.
fn aside_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy();
    Some(path.with_file_name(format!(".{name}.uringtrace-old-{}", std::process::id())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("uringtrace-aside-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_large_file_is_set_aside_and_deleted_keeping_its_mode() {
        let d = dir("large");
        let out = d.join("trace.pftrace");
        let f = File::create(&out).unwrap();
        f.set_len(ASIDE_FROM_BYTES).unwrap();
        f.set_permissions(std::fs::Permissions::from_mode(0o640))
            .unwrap();
        drop(f);
        let aside = Aside::take(&out).expect("set aside");
        assert!(!out.exists(), "the path is free for the new file");
        let mut new = File::create(&out).unwrap();
        aside.restore_owner(&new);
        new.write_all(b"new").unwrap();
        aside.finish();
        let left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("trace.pftrace")],
            "the old file is gone"
        );
        let meta = std::fs::metadata(&out).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn small_files_links_and_missing_paths_are_left_to_truncation() {
        let d = dir("small");
        let small = d.join("small.pftrace");
        std::fs::write(&small, b"x").unwrap();
        assert!(Aside::take(&small).is_none());
        assert!(small.exists());
        let linked = d.join("linked.pftrace");
        File::create(&linked)
            .unwrap()
            .set_len(ASIDE_FROM_BYTES)
            .unwrap();
        std::fs::hard_link(&linked, d.join("other-name")).unwrap();
        assert!(
            Aside::take(&linked).is_none(),
            "another name would lose its content"
        );
        assert!(Aside::take(&d.join("missing")).is_none());
        assert!(Aside::take(Path::new("/dev/null")).is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
