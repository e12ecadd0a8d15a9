//! Debian's kernels, fetched with apt through a private configuration (the host's
//! sources stay untouched), and the host tools the matrix needs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use super::{sh, KernelSpec};

pub(super) fn ensure_host_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("cpio", "cpio"),
    ]
    .iter()
    .filter(|(bin, _)| {
        Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .map_or(true, |o| !o.status.success())
    })
    .map(|(_, pkg)| *pkg)
    .collect();
    if !missing.is_empty() {
        eprintln!("kernel-matrix: installing {}", missing.join(" "));
        sh(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing))?;
    }
    Ok(())
}

/// A private apt configuration: the host's sources stay untouched.
pub(super) fn apt_config(dir: &Path) -> anyhow::Result<PathBuf> {
    let k = "/usr/share/keyrings/debian-archive-keyring.gpg";
    for d in [
        "state/lists/partial",
        "cache/archives/partial",
        "parts",
        "prefs",
    ] {
        fs::create_dir_all(dir.join(d))?;
    }
    let sources = format!(
        "deb [signed-by={k}] http://deb.debian.org/debian-security bullseye-security main\n\
         deb [signed-by={k}] http://deb.debian.org/debian-security bookworm-security main\n\
         deb [signed-by={k}] http://deb.debian.org/debian trixie-backports main\n"
    );
    fs::write(dir.join("sources.list"), sources)?;
    let d = dir.display();
    let conf = format!(
        "Dir::State \"{d}/state\";\nDir::State::status \"/var/lib/dpkg/status\";\nDir::Cache \"{d}/cache\";\n\
         Dir::Etc::sourcelist \"{d}/sources.list\";\nDir::Etc::sourceparts \"{d}/parts\";\n\
         Dir::Etc::preferencesparts \"{d}/prefs\";\nAPT::Get::List-Cleanup \"0\";\n"
    );
    let path = dir.join("apt.conf");
    fs::write(&path, conf)?;
    Ok(path)
}

pub(super) fn apt(conf: &Path, args: &[&str], cwd: &Path) -> anyhow::Result<String> {
    sh(Command::new(args[0])
        .args(&args[1..])
        .env("APT_CONFIG", conf)
        .current_dir(cwd))
}

/// `linux-image-X (= V)` names from a Depends line.
fn depends(show: &str) -> Vec<String> {
    show.lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .map(|d| {
            d.split(',')
                .map(|p| p.trim().split(' ').next().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Downloads (once) and unpacks the kernel; returns the vmlinuz path and its release.
pub(super) fn fetch_kernel(
    k: &KernelSpec,
    conf: &Path,
    cache: &Path,
) -> anyhow::Result<(PathBuf, String)> {
    let dir = cache.join(k.name);
    if let Some(found) = find_vmlinuz(&dir) {
        return Ok(found);
    }
    fs::create_dir_all(&dir)?;
    let madison = apt(conf, &["apt-cache", "madison", k.meta], &dir)?;
    let version = madison
        .lines()
        .find(|l| l.contains(&format!(" {}/", k.suite)))
        .and_then(|l| l.split('|').nth(1))
        .map(str::trim)
        .with_context(|| format!("{} not found in {}", k.meta, k.suite))?
        .to_string();
    let show = apt(
        conf,
        &["apt-cache", "show", &format!("{}={version}", k.meta)],
        &dir,
    )?;
    let image = depends(&show)
        .into_iter()
        .find(|d| d.starts_with("linux-image-") && d != k.meta)
        .context("no linux-image dependency")?;
    let show = apt(conf, &["apt-cache", "show", &image], &dir)?;
    // 7.x: linux-image-* is a stub; the kernel is in linux-binary-*.
    let pkg = depends(&show)
        .into_iter()
        .find(|d| d.starts_with("linux-binary-"))
        .unwrap_or(image);
    eprintln!("kernel-matrix: downloading {pkg}");
    apt(conf, &["apt-get", "download", "-qq", &pkg], &dir)?;
    let deb = fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("download produced no .deb")?;
    sh(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(dir.join("root")))?;
    fs::remove_file(&deb)?;
    find_vmlinuz(&dir).context("no vmlinuz in the package")
}

/// `boot/vmlinuz-<release>` up to 6.x; 7.x packages ship `usr/lib/modules/<release>/vmlinuz`.
fn find_vmlinuz(dir: &Path) -> Option<(PathBuf, String)> {
    let in_boot = fs::read_dir(dir.join("root/boot")).ok().and_then(|d| {
        d.flatten().find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("vmlinuz-")
                .map(|rel| (e.path(), rel.to_string()))
        })
    });
    in_boot.or_else(|| {
        fs::read_dir(dir.join("root/usr/lib/modules"))
            .ok()?
            .flatten()
            .find_map(|e| {
                let v = e.path().join("vmlinuz");
                v.is_file()
                    .then(|| (v, e.file_name().to_string_lossy().into_owned()))
            })
    })
}
