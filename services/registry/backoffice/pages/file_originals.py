"""Where the file page reads what intake stored whole: the raw original of each message and its attachments.

Intake keeps them in JetStream object stores every service may read (`shared.streams.BUCKET_RAW_MESSAGES`, named by
`ThreadMessage.raw_object` / `Complaint.raw_object`; `BUCKET_ATTACHMENTS`, content-addressed `sha256-<hex>`, named by
each attachment's `object_name`), in the standard object-store layout, so any client's `get` reads them: no copy in
the registry's database. The registry's API reaches them through `app.state.originals` (an `OriginalStore` over the
service's NATS connection, wired with the API); without it a download answers that the store is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError

from shared import streams


class OriginalMissing(LookupError):
    """No such object (never stored, or removed by retention)."""


class OriginalStore:
    """Reads raw originals and attachments by name; `js` gives the JetStream context (the connection may be
    re-established by the service, so it is asked for at each read)."""

    def __init__(self, js: Callable[[], JetStreamContext]) -> None:
        self._js = js

    async def _read(self, bucket: str, name: str) -> bytes:
        try:
            store = await self._js().object_store(bucket)
            result = await store.get(name)
        except (ObjectNotFoundError, BucketNotFoundError, NotFoundError) as error:
            raise OriginalMissing(name) from error
        return bytes(result.data or b"")

    async def raw(self, name: str) -> bytes:
        return await self._read(streams.BUCKET_RAW_MESSAGES, name)

    async def attachment(self, object_name: str) -> bytes:
        return await self._read(streams.BUCKET_ATTACHMENTS, object_name)
