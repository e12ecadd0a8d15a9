//! The guest's root: busybox, uringtrace, the workload generator and their shared
//! libraries, and an init script that runs every scenario and sends the results out
//! on the second serial port.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use super::{sh, AGGREGATE_SCENARIOS, NOPS, SCENARIOS};

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mkdir -p /out
echo "MATRIX-BEGIN $(uname -r)"
uringtrace doctor > /out/doctor.txt 2>&1
uringtrace doctor --format json > /out/doctor.json 2>/dev/null
cat /out/doctor.txt
for s in $SCENARIOS; do
  args=$s
  [ "$s" = nop-storm ] && args="nop-storm --count $NOPS"
  timeout 120 uringtrace record -q -o /out/$s.utr -- uringtrace-workload $args > /out/$s.json 2> /out/$s.err
  rc=$?
  echo "MATRIX-RECORD $s exit=$rc"
  if [ $rc -ge 124 ]; then echo "MATRIX-HUNG $s"; ps; cat /out/$s.err; fi
done
for s in $AGGREGATE; do
  timeout 120 uringtrace diagnose -q --kernel-mode aggregate --syscall-hooks off --format json -o /out/agg-$s.json -- uringtrace-workload $s > /dev/null 2> /out/agg-$s.err
  echo "MATRIX-AGGREGATE $s exit=$?"
done
tar czf /tmp/out.tgz -C /out .
base64 /tmp/out.tgz > /dev/ttyS1
echo "MATRIX-END"
sync
sleep 1
poweroff -f
"#;

pub(super) fn build_initramfs(work: &Path, bins: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let root = work.join("initramfs");
    let _ = fs::remove_dir_all(&root);
    for d in [
        "bin",
        "usr/bin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "lib64",
        "lib/x86_64-linux-gnu",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::copy("/bin/busybox", root.join("bin/busybox"))?;
    let scenarios: Vec<&str> = SCENARIOS.iter().map(|s| s.0).collect();
    let init = INIT
        .replace("$SCENARIOS", &scenarios.join(" "))
        .replace("$AGGREGATE", &AGGREGATE_SCENARIOS.join(" "))
        .replace("$NOPS", &NOPS.to_string());
    fs::write(root.join("init"), init)?;
    sh(Command::new("chmod").arg("755").arg(root.join("init")))?;
    let mut libs = BTreeSet::new();
    for b in bins {
        fs::copy(
            b,
            root.join("usr/bin")
                .join(b.file_name().context("binary name")?),
        )?;
        for line in sh(Command::new("ldd").arg(b))?.lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
                libs.insert(path.to_string());
            }
        }
    }
    for lib in libs {
        let dest = root.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().context("lib dir")?)?;
        fs::copy(&lib, &dest).with_context(|| format!("copying {lib}"))?;
    }
    let out = work.join("initrd.cpio.gz");
    let cmd = format!(
        "cd {} && find . | cpio -o -H newc --quiet | gzip -1 > {}",
        root.display(),
        out.display()
    );
    sh(Command::new("sh").args(["-c", &cmd]))?;
    Ok(out)
}
