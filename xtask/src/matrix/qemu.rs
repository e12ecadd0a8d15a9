//! Booting a kernel under qemu (TCG) and bringing the guest's results out.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use super::sh;

/// Boots one kernel; the console goes to a file (follow it with `tail -f` while it
/// runs), the results come out on the second serial port.
pub(super) fn boot(
    vmlinuz: &Path,
    initrd: &Path,
    work: &Path,
) -> anyhow::Result<(String, PathBuf)> {
    let data = work.join("ttyS1.b64");
    let console = work.join("console.txt");
    let _ = fs::remove_file(&data);
    let _ = fs::remove_file(&console);
    Command::new("timeout")
        // Single-threaded TCG: with multi-threaded TCG, the kernel's int3-based code
        // patching (static keys flipped when tracepoints attach) raced with the other
        // vCPU and oopsed in try_to_wake_up ("Oops: int3", 6.12 guest, busy host).
        .args([
            "900",
            "qemu-system-x86_64",
            "-accel",
            "tcg,thread=single",
            "-cpu",
            "max",
            "-m",
            "2G",
            "-smp",
            "2",
        ])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-serial",
        ])
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", data.display()))
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .output()
        .context("starting qemu")?;
    Ok((fs::read_to_string(&console).unwrap_or_default(), data))
}

pub(super) fn extract(data: &Path, dest: &Path) -> anyhow::Result<()> {
    let _ = fs::remove_dir_all(dest);
    fs::create_dir_all(dest)?;
    // The guest's tty turns \n into \r\n.
    let cmd = format!(
        "tr -d '\\r' < {} | base64 -d | tar xzf - -C {}",
        data.display(),
        dest.display()
    );
    sh(Command::new("sh").args(["-c", &cmd])).map(|_| ())
}
