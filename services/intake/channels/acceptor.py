"""What the channels need of intake: the one way in, `IntakePipeline.accept(raw, arrival)`, or the scan-to-email
router in front of it (which ends in the same call)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from services.intake.arrival import AcceptOutcome, Arrival


class MessageAcceptor(Protocol):
    async def accept(self, raw: bytes, arrival: Arrival | None = None, **details: Any) -> AcceptOutcome: ...
