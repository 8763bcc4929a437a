"""Fixtures of the intake tests over real parts (NATS comes from tests/conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import require_or_skip
from tests.intake.dovecot import Dovecot, dovecot_binary


def running_dovecot(tls: bool) -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        require_or_skip("Dovecot is not installed (deploy/test-deps/install-system-packages.sh installs dovecot-imapd)")
    if tls and shutil.which("openssl") is None:
        require_or_skip("openssl is needed to make the test certificate of Dovecot's IMAPS listener")
    server = Dovecot(binary, tls=tls)
    try:
        server.start()
    except RuntimeError as error:
        server.stop()
        require_or_skip(f"Dovecot cannot start here: {error}")
    yield server
    server.stop()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot IMAP server on a free port with one user; skipped locally (failed in CI) when unavailable."""
    yield from running_dovecot(tls=False)


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    """The same with an IMAPS listener (self-signed certificate) on `tls_port`."""
    yield from running_dovecot(tls=True)
