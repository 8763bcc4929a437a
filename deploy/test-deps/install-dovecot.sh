#!/bin/sh
# Install the Dovecot IMAP server the intake tests run against (tests/intake/dovecot.py starts it with a throwaway
# configuration on a free port; nothing here configures or starts a system-wide Dovecot).
# Idempotent: does nothing when `dovecot` is already installed. Called by `make test`.
# Without root or apt-get it only explains: the IMAP tests then skip locally with the reason (and fail when CI=true).
set -eu

if command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-dovecot: no apt-get here; install Dovecot's IMAP server by hand (package dovecot-imapd or equivalent)" >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-dovecot: not root and no password-less sudo; run: sudo apt-get install -y dovecot-imapd" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# The package's post-install tries to start the system service; in a container without an init it cannot, which is
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
$SUDO apt-get install -y -qq --no-install-recommends dovecot-core dovecot-imapd
