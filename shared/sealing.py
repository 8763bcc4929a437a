"""Sealing a citizen's personal link for the one service that mails it (issue 17).

The registry keeps only a hash of a personal link's token; yet the acknowledgment the notifier writes must carry the
link itself. It travels sealed (Fernet: AES-128-CBC and HMAC-SHA256, from the maintained `cryptography` library) in
the events the registry publishes (`ComplaintRegistered.citizen_link`, the `citizen_link` and `survey_invitation`
notices' context): the register's outbox rows and the JetStream streams, which are kept, hold only the sealed form;
the registry and the notifier share the key file (`OMBUDSDESK_CITIZEN_LINK_KEY_FILE`, made at the first start under
`VAR_DIR` when not configured: a deployment whose services do not share `VAR_DIR` installs the same file on both).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


def load_or_create_key(path: Path) -> bytes:
    """The Fernet key in `path`; made (mode 0600) when the file does not exist yet, never overwritten."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another service made it a moment ago: use theirs
            return path.read_bytes().strip()
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
        return key


class LinkSeal:
    """Seals and opens personal links with the key of `path` (read at the first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(load_or_create_key(self.path))
        return self._fernet

    def seal(self, link: str) -> str:
        return self._key().encrypt(link.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str | None:
        """The link, or None when it was sealed with another key or altered."""
        try:
            return self._key().decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            return None
