#!/usr/bin/env bash
# Prepare the VAS offline build of the mediasoup-sys crate.
#
# Usage: packaging/mediasoup/prepare.sh [DEST]
#   DEST defaults to <repo>/vendor/mediasoup-sys, which the project's
#   Cargo.toml uses through [patch.crates-io] mediasoup-sys = { path = ... }.
#
# Steps: check the Debian build packages; get the pristine
# mediasoup-sys-<version>.crate through cargo (checksum pinned below); unpack
# it; replace its meson wraps (which download sources at build time) with our
# stub subprojects; apply our patch; write a stamp holding the sha256 of every
# recipe input. With the same stamp already in DEST it does nothing.
# See README.md beside this script.
set -euo pipefail

MS_SYS_VERSION=0.24.0
# sha256 of mediasoup-sys-0.24.0.crate as published on crates.io (the
# "checksum" of its Cargo.lock entry).
MS_SYS_SHA256=91cec10d4689181c97017ca8b8733c2831c50ca03d26fa9d33d1df5e9c941ae7

# Debian packages needed to build the worker against the system libraries.
# (python3 with a working `-m pip` is checked separately: the crate's build.rs
# pip-installs invoke, meson and ninja from PyPI.)
DEB_PACKAGES=(g++ gcc pkg-config patch libuv1-dev libssl-dev libsrtp2-dev
              libflatbuffers-dev flatbuffers-compiler)

STAMP_NAME=.vas-recipe-stamp

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DEST=${1:-$REPO/vendor/mediasoup-sys}
PATCH_FILE=$HERE/mediasoup-sys-$MS_SYS_VERSION.patch

log() { printf 'prepare-mediasoup: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# sha256 over every input that shapes DEST: this script (with the pins), the
# patch and the subproject stubs. README.md, check-shims.sh and tests/ do not
# change DEST and are left out, so editing them costs no worker rebuild.
recipe_hash() {
    {
        printf 'mediasoup-sys %s %s\n' "$MS_SYS_VERSION" "$MS_SYS_SHA256"
        cd "$HERE"
        find prepare.sh "${PATCH_FILE##*/}" subprojects -type f ! -name '*~' -print0 \
            | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}

check_debian_packages() {
    local missing=() pkg status
    if ! command -v dpkg-query >/dev/null 2>&1; then
        log "warning: dpkg-query not found, cannot check for: ${DEB_PACKAGES[*]}"
        return 0
    fi
    for pkg in "${DEB_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ $status == installed ]] || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "missing Debian packages: ${missing[*]}"
        log "install them with:"
        log "  apt-get update && apt-get install -y ${DEB_PACKAGES[*]} python3-pip"
        exit 1
    fi
    local py=${PYTHON:-python3}
    if ! "$py" -m pip --version >/dev/null 2>&1; then
        log "'$py -m pip' does not work; mediasoup-sys's build.rs needs it."
        log "install it with: apt-get update && apt-get install -y python3-pip"
        log "(or set PYTHON to an interpreter that has pip)"
        exit 1
    fi
}

# Print the path of the pristine .crate in cargo's cache if its checksum is
# the pinned one.
find_cached_crate() {
    local cargo_home=${CARGO_HOME:-$HOME/.cargo} f
    for f in "$cargo_home"/registry/cache/*/"mediasoup-sys-$MS_SYS_VERSION.crate"; do
        [[ -f $f ]] || continue
        if [[ $(sha256sum "$f" | cut -d' ' -f1) == "$MS_SYS_SHA256" ]]; then
            printf '%s\n' "$f"
            return 0
        fi
        log "warning: $f does not match the pinned sha256, ignoring it"
    done
    return 1
}

# Let cargo download (and checksum-verify) the crate with a throwaway
# manifest outside any workspace: the project's own Cargo.toml cannot be used
# because it points at DEST, which does not exist yet.
fetch_crate() {
    local tmp=$1
    mkdir -p "$tmp/fetch/src"
    cat >"$tmp/fetch/Cargo.toml" <<EOF
[package]
name = "vas-mediasoup-sys-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
mediasoup-sys = "=$MS_SYS_VERSION"

[workspace]
EOF
    : >"$tmp/fetch/src/lib.rs"
    log "fetching mediasoup-sys $MS_SYS_VERSION with cargo"
    cargo fetch --manifest-path "$tmp/fetch/Cargo.toml" >&2
}

# ---- main -------------------------------------------------------------------

HASH=$(recipe_hash)
if [[ -f $DEST/$STAMP_NAME && $(<"$DEST/$STAMP_NAME") == "$HASH" ]]; then
    log "$DEST is up to date (recipe $HASH)"
    exit 0
fi

check_debian_packages
command -v cargo >/dev/null 2>&1 || die "cargo not found in PATH"
[[ -f $PATCH_FILE ]] || die "patch not found: $PATCH_FILE"

# Refuse to replace a directory that is not a previous result of this script.
if [[ -e $DEST && ! -f $DEST/$STAMP_NAME ]]; then
    if [[ -d $DEST && -z $(ls -A "$DEST") ]]; then
        : # empty directory: fine
    else
        die "$DEST exists but was not made by this script; remove it yourself"
    fi
fi

DEST_PARENT=$(dirname "$DEST")
mkdir -p "$DEST_PARENT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vas-mediasoup-prepare.XXXXXX")
# The staging directory sits beside DEST so the final rename is atomic.
STAGE=$(mktemp -d "$DEST_PARENT/.mediasoup-sys.staging.XXXXXX")
OLD=""
cleanup() {
    rm -rf "$TMP" "$STAGE"
    [[ -z $OLD ]] || rm -rf "$OLD"
}
trap cleanup EXIT

CRATE=$(find_cached_crate || true)
if [[ -z $CRATE ]]; then
    fetch_crate "$TMP"
    CRATE=$(find_cached_crate) \
        || die "cargo fetch did not leave a mediasoup-sys-$MS_SYS_VERSION.crate with sha256 $MS_SYS_SHA256 in its cache"
fi
log "using $CRATE"

# -m: give every file the current time, so that cargo (which fingerprints a
# path dependency by file mtimes) rebuilds the worker after a re-prepare.
tar -xzf "$CRATE" -C "$STAGE" --strip-components=1 --no-same-owner -m
[[ -f $STAGE/meson.build && -f $STAGE/build.rs ]] || die "unexpected crate layout"

rm -f "$STAGE"/subprojects/*.wrap
cp -R "$HERE/subprojects/." "$STAGE/subprojects/"

patch -d "$STAGE" -p1 --forward --batch --no-backup-if-mismatch --quiet <"$PATCH_FILE" \
    || die "patch does not apply to mediasoup-sys $MS_SYS_VERSION"
if [[ -n $(find "$STAGE" -name '*.rej') ]]; then
    die "patch left .rej files"
fi

printf '%s\n' "$HASH" >"$STAGE/$STAMP_NAME"
chmod 755 "$STAGE"

if [[ -e $DEST ]]; then
    OLD=$(mktemp -d "$DEST_PARENT/.mediasoup-sys.old.XXXXXX")
    mv "$DEST" "$OLD/"
fi
mv "$STAGE" "$DEST"
log "prepared $DEST (recipe $HASH)"
