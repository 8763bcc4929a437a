"""The dead-letter stream seen from an operator's side: list what consumers gave up on, show it, replay it.

A replay publishes the original payload again on its original subject. It cannot reuse the original `Nats-Msg-Id`
(JetStream would drop it as a duplicate inside the window), so it carries `replay:<dead-letter sequence>`; the
consumers are idempotent, so a replay of an event that did take effect meanwhile changes nothing. The dead letter
is deleted only after the replay was acknowledged by JetStream: a crash in between leaves it listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shared import streams
from shared.events import DeadLettered
from shared.messaging import PUBLISH_TIMEOUT_SECONDS, stream_for_subject


@dataclass(frozen=True)
class StoredDeadLetter:
    sequence: int
    record: DeadLettered


async def list_dead_letters(js: JetStreamContext, limit: int = 1000) -> list[StoredDeadLetter]:
    info = await js.stream_info(streams.STREAM_DEAD_LETTER)
    found: list[StoredDeadLetter] = []
    sequence = info.state.first_seq
    while sequence and sequence <= info.state.last_seq and len(found) < limit:
        stored = await get_dead_letter(js, sequence)
        if stored is not None:
            found.append(stored)
        sequence += 1
    return found


async def get_dead_letter(js: JetStreamContext, sequence: int) -> StoredDeadLetter | None:
    try:
        raw = await js.get_msg(streams.STREAM_DEAD_LETTER, seq=sequence)
    except NotFoundError:
        return None
    if raw.data is None:
        return None
    return StoredDeadLetter(sequence, DeadLettered.model_validate_json(raw.data))


async def replay_dead_letter(js: JetStreamContext, sequence: int) -> DeadLettered:
    stored = await get_dead_letter(js, sequence)
    if stored is None:
        raise LookupError(f"no dead letter with sequence {sequence}")
    record = stored.record
    await js.publish(
        record.original_subject,
        record.payload.encode("utf-8"),
        stream=stream_for_subject(record.original_subject),
        headers={"Nats-Msg-Id": f"replay:{sequence}"},
        timeout=PUBLISH_TIMEOUT_SECONDS,
    )
    await js.delete_msg(streams.STREAM_DEAD_LETTER, sequence)
    return record
