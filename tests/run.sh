#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian 12), then formats-check and tests every
# crate of the workspace, unit and integration (real RTSP server, real processes).
# Usage: bash tests/run.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/setup-debian.sh
cargo fmt --all -- --check
cargo test --workspace --no-fail-fast "$@"
