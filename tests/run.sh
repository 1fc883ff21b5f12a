#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian 12), then formats-check and tests every
# crate of the workspace, unit and integration (real RTSP server, real processes), then the
# model check of the seqlock (loom), the seqlock stress test at full speed (release), and the
# Debian package (build, lintian, install, run, purge: tests/package.sh).
# Usage: bash tests/run.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/setup-debian.sh
cargo fmt --all -- --check
cargo test --workspace --no-fail-fast "$@"
# 10^6 reads against a writer at full speed: release, where races are likeliest.
cargo test -p frames --release --test stress
# loom needs its own cfg; a separate target directory keeps it from rebuilding the rest.
target="${CARGO_TARGET_DIR:-target}"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$target/loom" cargo test -p frames --release --test loom
# Installs and purges the package: needs root, as CI has.
bash tests/package.sh
