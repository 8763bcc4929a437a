#!/bin/sh
# Install Debian's Chromium for the back office's browser tests (tests/backoffice/: Playwright for Python launches it
# through executable_path=/usr/bin/chromium; `playwright install` is never used: it downloads a browser of its own).
# Idempotent: does nothing when /usr/bin/chromium is already there. Called by `make test`.
# Without root or apt-get it only explains: the browser tests then skip locally with the reason (and fail when CI=true).
set -eu

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get here; install Chromium by hand (Debian package chromium)" >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-chromium: not root and no password-less sudo; run: sudo apt-get install -y chromium" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Fonts so that screenshots show text in every language the back office speaks.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
