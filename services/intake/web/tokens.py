"""The form's token: a random submission id signed with the service's secret and the time it was issued
(itsdangerous). It proves the form came from our page (a forged cross-site post has none), expires after
`public_form_token_hours`, and is the submission's identity: the message key is derived from it, so a form sent
twice (a double click, a reload of the POST) is one complaint — JetStream drops the second publish (Nats-Msg-Id)
and the pipeline's seen-set the later ones.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "ombudsdesk.public-form"
SECRET_BYTES = 32


class FormTokens:
    def __init__(self, secret: bytes, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age_seconds = max_age_seconds

    def issue(self) -> str:
        return self._serializer.dumps(secrets.token_hex(16))

    def submission_id(self, token: str) -> str | None:
        """The submission id of a valid, unexpired token of ours; None otherwise (forged, altered, expired)."""
        if not token or len(token) > 200:
            return None
        try:
            value = self._serializer.loads(token, max_age=self.max_age_seconds)
        except (SignatureExpired, BadSignature):
            return None
        return value if isinstance(value, str) and len(value) == 32 and value.isalnum() else None


def message_key(submission_id: str) -> str:
    return f"web-{submission_id}"


def load_or_create_secret(path: Path) -> bytes:
    """The secret in `path`; created (random, mode 0600) when the file does not exist yet."""
    try:
        secret = path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(SECRET_BYTES).encode()
        try:
            with open(path, "xb") as handle:  # never overwrite another process's fresh secret
                path.chmod(0o600)
                handle.write(secret)
        except FileExistsError:
            secret = path.read_bytes().strip()
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"the secret in {path} is shorter than {SECRET_BYTES} bytes")
    return secret
