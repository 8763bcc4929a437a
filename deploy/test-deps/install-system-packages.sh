#!/bin/sh
# Install the Debian packages the tests run beyond Python packages and PostgreSQL (expected on the machine):
# - Chromium, for the back office's and the public pages' browser tests (Playwright for Python launches it through
#   executable_path=/usr/bin/chromium; `playwright install` is never used: it downloads a browser of its own), with
#   fonts so that screenshots show text in every language;
# - Dovecot's IMAP server, which tests/intake/dovecot.py starts with a throwaway configuration on a free port
#   (nothing here configures or starts a system-wide Dovecot);
# - poppler-utils (pdftoppm, pdftotext), with which the tests render and read the PDFs we produce.
# Idempotent: installs only what is missing, nothing when all is there. Called by `make test`.
# Without root or apt-get it only explains: the tests that need a missing program then skip locally with the reason
# (and fail when CI=true).
set -eu

# Each line: a program that shows the packages are installed, then the packages.
NEEDED='/usr/bin/chromium chromium fonts-dejavu-core
/usr/sbin/dovecot dovecot-core dovecot-imapd
/usr/bin/pdftoppm poppler-utils'

MISSING=$(printf '%s\n' "$NEEDED" | while read -r program packages; do
    [ -x "$program" ] || printf '%s ' "$packages"
done)
if [ -z "$MISSING" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-packages: no apt-get here; install by hand (Debian names): $MISSING" >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-system-packages: not root and no password-less sudo; run: sudo apt-get install -y $MISSING" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Dovecot's post-install tries to start the system service; in a container without an init it cannot, which is
# fine: the tests run their own instance. policy-rc.d (exit 101) tells invoke-rc.d not to start anything.
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    CREATED_POLICY=1
fi
cleanup() {
    if [ -n "$CREATED_POLICY" ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT

$SUDO apt-get update -qq
# shellcheck disable=SC2086 # one word per package
$SUDO apt-get install -y -qq --no-install-recommends $MISSING
