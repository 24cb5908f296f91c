#!/usr/bin/env bash
# install-test-deps: what `make test` needs besides ONNX Runtime. server's web-page test drives Debian's
# headless Chromium (it skips without one); installed here when we may (root with apt-get), else a note.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if apt-get install -y chromium >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1; }; then
    echo "install-test-deps: installed chromium"
    exit 0
  fi
fi
echo "install-test-deps: chromium is not installed and could not be (needs root and apt-get); server's page test will skip" >&2
exit 0
