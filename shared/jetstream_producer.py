"""FastStream's JetStream producer, with nats-py's pipelined publish underneath: the one place that reaches into
FastStream's internals (tests/shared/test_jetstream_producer.py fails loudly on an upgrade that moves them).

Every event leaves through this producer: through a FastStream publisher (`broker.publisher(subject,
schema=Model)`, see `shared.messaging.publish_event`), or, for an event stored already encoded (the registry's
outbox), straight through `publish_encoded` (`shared.messaging.publish_stored`) with the same body and headers (but
FastStream's `correlation_id`, which nothing reads). FastStream's own JetStream producer sends each publish as a
request and waits for its reply before the next one; nats-py's `publish_async` shares one reply subscription per
connection, so several publishes awaited together (`asyncio.gather`: intake's raw original and event, the registry's
outbox) leave in one write. Measured in docs/benchmarks-intake.md ("publish_event async"): 0.19–0.23 → 0.15 ms of CPU
per publish. The acknowledgement is awaited all the same, so a publish still means "durable in JetStream".

Through a publisher, everything else is FastStream's: the codec encodes the body (a pydantic event), the command
carries the headers (`Nats-Msg-Id` among them), publisher middlewares run (the services declare none), and
`TestNatsBroker` swaps this producer for its in-memory one and back, as it does FastStream's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from faststream._internal.parser import DefaultCodec
from faststream.exceptions import FeatureNotSupportedException, IncorrectState
from faststream.nats import NatsBroker
from faststream.nats.parser import NatsParser
from faststream.nats.publisher.producer import NatsFastProducer

if TYPE_CHECKING:
    from fast_depends.library.serializer import SerializerProto
    from nats.js import JetStreamContext
    from nats.js.api import PubAck

    from faststream._internal.parser import CodecProto
    from faststream.nats.response import NatsPublishCommand


class PipelinedJetStreamProducer(NatsFastProducer):
    """Publishes to JetStream with `publish_async` and waits for the acknowledgement within the command's timeout."""

    def __init__(self) -> None:
        self._jetstream: JetStreamContext | None = None
        self.serializer: SerializerProto | None = None
        self.codec: CodecProto = DefaultCodec()
        # Only used by FastStream's request path, which this producer refuses; kept as FastStream's own producers do.
        default = NatsParser(pattern="", is_ack_disabled=True)
        self._parser = default.parse_message
        self._decoder = default.decode_message

    def connect(self, connection: Any, serializer: SerializerProto | None,
                codec: CodecProto | None = None) -> None:
        """Called by the broker on connect with its JetStream context (the one FastStream made for the connection)."""
        self._jetstream = connection
        self.serializer = serializer
        self.codec = codec or DefaultCodec()

    def disconnect(self) -> None:
        self._jetstream = None

    async def publish(self, cmd: NatsPublishCommand) -> PubAck:
        payload, content_type = await self.codec.encode(cmd.body, self.serializer)
        headers = {"content-type": content_type or "", **cmd.headers_to_publish(js=True)}
        return await self.publish_encoded(cmd.destination, payload, stream=cmd.stream, headers=headers,
                                          timeout=cmd.timeout)

    async def publish_encoded(self, subject: str, payload: bytes, *, stream: str | None, headers: dict[str, str],
                              timeout: float | None) -> PubAck:
        """Publish a body already encoded, with its headers, and wait for JetStream's acknowledgement: what
        `publish` does once FastStream's codec has run (`shared.messaging.publish_stored`)."""
        if self._jetstream is None:
            raise IncorrectState("the broker is not connected: connect it before publishing")
        ack = await self._jetstream.publish_async(subject, payload, stream=stream, headers=headers)
        try:
            async with asyncio.timeout(timeout):
                return await ack
        finally:
            ack.cancel()

    async def request(self, cmd: NatsPublishCommand) -> Any:
        raise FeatureNotSupportedException("events are published, never requested")


def use_pipelined_publishing(broker: NatsBroker) -> None:
    """Make `broker`'s JetStream publishes pipelined. Call before `broker.connect()`."""
    broker.config.broker_config.js_producer = PipelinedJetStreamProducer()
