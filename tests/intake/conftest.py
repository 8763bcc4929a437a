"""Fixtures of the intake tests over real parts (NATS comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require_or_skip
from tests.intake.dovecot import Dovecot, dovecot_binary


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot IMAP server on a free port with one user; skipped locally (failed in CI) when unavailable."""
    binary = dovecot_binary()
    if binary is None:
        require_or_skip("Dovecot is not installed (deploy/test-deps/install-dovecot.sh installs dovecot-imapd)")
    server = Dovecot(binary)
    try:
        server.start()
    except RuntimeError as error:
        server.stop()
        require_or_skip(f"Dovecot cannot start here: {error}")
    yield server
    server.stop()
