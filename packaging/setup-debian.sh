#!/usr/bin/env bash
# Installs what building, testing and running VAS from source needs on Debian 12, then
# prepares the offline mediasoup build. Idempotent: a second run installs nothing.
# Usage: packaging/setup-debian.sh   (as root, or with sudo available)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

packages=(
  # build: Rust bindings to Debian's FFmpeg 5.1 (bindgen needs libclang)
  pkg-config clang libclang-dev
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev
  # tests and benchmarks: ffmpeg/x264 make the media, GStreamer serves it over RTSP
  ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gir1.2-gst-rtsp-server-1.0 python3-gi python3-numpy
  # the people model (vas-model-people): OpenCV's HOG person detector, and vtest.avi, the
  # real pedestrian footage its test and the demo play (PyPI's OpenCV wheels lack HOG)
  python3-opencv opencv-doc
  # man pages are checked with man -l
  man-db groff-base curl
  # mediasoup's C++ worker, built offline against Debian's libraries (packaging/mediasoup)
  g++ patch libuv1-dev libssl-dev libsrtp2-dev libflatbuffers-dev flatbuffers-compiler
  python3-pip python3-venv
  # live view tests: the viewer page in headless Chromium (aiortc comes from PyPI, see
  # tests/live_support)
  chromium
  # /metrics is checked with the Prometheus project's own text parser
  python3-prometheus-client
  # the Debian package: built by cargo-deb (below), checked by lintian, units by
  # systemd-analyze, the programs' system calls recorded by strace for the units' filters
  lintian systemd dpkg-dev strace
  # network faults in tests: loss made by nftables inside a network namespace; rtsps
  # certificates for the TLS fixture
  iproute2 nftables openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present"
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found: install Rust 1.85 or newer (rustup) and run this again" >&2
  exit 1
fi

if ! command -v cargo-deb >/dev/null; then
  echo "setup: installing cargo-deb (about 2 minutes)"
  nice cargo install cargo-deb --locked --version "^3.8" --quiet
fi

# Cargo reads the [patch] path of mediasoup-sys for every command, so this comes first.
bash "$here/mediasoup/prepare.sh"
