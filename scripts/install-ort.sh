#!/usr/bin/env bash
# Installs the pinned ONNX Runtime CPU library into .ort/ (git-ignored).
#
# The library comes from the npm package onnxruntime-node, the one registry package that ships the
# official prebuilt libonnxruntime for Linux x64/arm64 and macOS arm64. `npm pack` downloads the tarball
# without running its install scripts; we extract only the library for this host and check both the
# tarball and the library against pinned sha256 sums. Nothing is fetched when a verified copy is present.
set -euo pipefail

ORT_VERSION=1.24.3
TGZ_SHA256=aa1bb5fa261ea68de05dd53efbba210cd7adf2d2850f4c3a201054c74cc78040

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/.ort"

die() { echo "install-ort: $*" >&2; exit 1; }

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64)  member=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
                 lib=libonnxruntime.so.1
                 lib_sha=92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682 ;;
  Linux/aarch64) member=package/bin/napi-v6/linux/arm64/libonnxruntime.so.1
                 lib=libonnxruntime.so.1
                 lib_sha=33032cb5b91c12edbf028d7c69fa40a31848d66c0095448758af237d5e0b07db ;;
  Darwin/arm64)  member=package/bin/napi-v6/darwin/arm64/libonnxruntime.1.24.3.dylib
                 lib=libonnxruntime.1.24.3.dylib
                 lib_sha=76831409ce6eded92b4cb343cf422c458a60c1ea1d5f3cfa69692ab7fcc67f0f ;;
  *) die "no pinned ONNX Runtime $ORT_VERSION library for $(uname -s)/$(uname -m); install ONNX Runtime >= 1.24 yourself and set RFLOW_ORT_LIB to its library" ;;
esac

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

if [ -f "$dest/$lib" ] && [ "$(sha256 "$dest/$lib")" = "$lib_sha" ]; then
  echo "install-ort: ONNX Runtime $ORT_VERSION already installed at $dest/$lib"
  exit 0
fi

command -v npm >/dev/null 2>&1 ||
  die "npm not found: install Node.js and npm (Debian: apt-get install -y npm), or set RFLOW_ORT_LIB to an existing libonnxruntime >= 1.24"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "install-ort: fetching onnxruntime-node@$ORT_VERSION with npm pack"
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null) ||
  die "npm pack onnxruntime-node@$ORT_VERSION failed (is the npm registry reachable?)"
tgz="$tmp/onnxruntime-node-$ORT_VERSION.tgz"
[ -f "$tgz" ] || die "npm pack did not produce $tgz"

got=$(sha256 "$tgz")
[ "$got" = "$TGZ_SHA256" ] ||
  die "sha256 mismatch for onnxruntime-node-$ORT_VERSION.tgz: got $got, want $TGZ_SHA256; refusing to install"

tar -xzf "$tgz" -C "$tmp" "$member" || die "tarball has no $member"
got=$(sha256 "$tmp/$member")
[ "$got" = "$lib_sha" ] ||
  die "sha256 mismatch for $lib: got $got, want $lib_sha; refusing to install"

mkdir -p "$dest"
install -m 0755 "$tmp/$member" "$dest/$lib.tmp"
mv -f "$dest/$lib.tmp" "$dest/$lib"
echo "install-ort: installed ONNX Runtime $ORT_VERSION at $dest/$lib"
