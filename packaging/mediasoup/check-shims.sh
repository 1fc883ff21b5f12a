#!/usr/bin/env bash
# Compile and run the self-tests of the VAS mediasoup shims (libsrtp3 over
# libsrtp2, unordered_dense over the standard library) against Debian's
# packages, in a few seconds, without building mediasoup. See README.md.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SP=$HERE/subprojects
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vas-mediasoup-shims.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

read -r -a SRTP2_FLAGS <<<"$(pkg-config --cflags --libs libsrtp2)"
cc -std=gnu17 -Wall -Wextra -Werror -I"$SP/libsrtp3/include" \
    "$SP/libsrtp3/src/srtp3_compat.c" "$HERE/tests/srtp3_roundtrip.c" \
    "${SRTP2_FLAGS[@]}" -o "$TMP/srtp3_roundtrip"
"$TMP/srtp3_roundtrip"

c++ -std=c++20 -Wall -Wextra -Werror -I"$SP/unordered_dense/include" \
    "$HERE/tests/unordered_dense_check.cpp" -o "$TMP/unordered_dense_check"
"$TMP/unordered_dense_check"
