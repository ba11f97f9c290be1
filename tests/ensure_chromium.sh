#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (/usr/bin/chromium) with playwright-core; no test
# tool ever downloads a browser of its own. As root (CI), install the package when missing;
# otherwise say how, and tests/test_browser.py skips (or fails when CI is set).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
else
  echo "WARNING: /usr/bin/chromium is missing: run 'apt-get install chromium' as root," \
    "or tests/test_browser.py is skipped (and fails when CI is set)"
fi
