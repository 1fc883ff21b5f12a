#!/usr/bin/env bash
# Builds the Debian package `vas` with cargo-deb: every binary of the workspace in release,
# then the .deb (stripped; man pages gzipped by cargo-deb) in $CARGO_TARGET_DIR/debian.
# Prints the path of the .deb on its last line.
# Usage: bash packaging/build-deb.sh   (after packaging/setup-debian.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deb >/dev/null; then
  echo "build-deb: cargo-deb not found: run packaging/setup-debian.sh" >&2
  exit 1
fi
# cargo-deb builds only the package's own binaries; ruth, vas-frames and vas-model-example
# belong to other crates of the workspace.
nice cargo build --release --workspace --bins
cargo deb -p vasd --no-build --strip | tail -n 1
