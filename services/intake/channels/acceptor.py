"""What the channels need of the pipeline: `IntakePipeline.accept`, or the scan-to-email router in front of it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from shared.events import Channel, Provenance


class MessageAcceptor(Protocol):
    async def accept(
        self,
        raw: bytes,
        *,
        channel: Channel,
        received_at: datetime,
        envelope_sender: str | None,
        envelope_recipients: Sequence[str],
        source: str,
        provenance: Provenance = ...,
    ) -> Any: ...
