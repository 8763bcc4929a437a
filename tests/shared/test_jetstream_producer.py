"""The FastStream internals `shared.jetstream_producer` relies on: if an upgrade moves them, this fails loudly
(rather than the services silently publishing through FastStream's slower request-per-event producer)."""

from __future__ import annotations

import inspect

from faststream.nats import TestNatsBroker
from faststream.nats.publisher.producer import NatsFastProducer
from faststream.nats.response import NatsPublishCommand

from shared.jetstream_producer import PipelinedJetStreamProducer
from shared.messaging import make_broker, publish_event
from shared.settings import CommonSettings
from tests.shared.test_messaging import sample_registered


def test_the_broker_config_still_holds_the_jetstream_producer_that_publishers_use():
    broker = make_broker(CommonSettings(nats_url="nats://127.0.0.1:1"))
    assert isinstance(broker.config.broker_config.js_producer, PipelinedJetStreamProducer)
    abstract = {name for name, member in inspect.getmembers(NatsFastProducer)
                if getattr(member, "__isabstractmethod__", False)}
    assert abstract <= {"publish", "request"}, f"FastStream's producer protocol changed: {abstract}"
    assert list(inspect.signature(NatsFastProducer.connect).parameters) == ["self", "connection", "serializer",
                                                                             "codec"]
    assert "js" in inspect.signature(NatsPublishCommand.headers_to_publish).parameters


async def test_test_nats_broker_swaps_it_out_and_back():
    broker = make_broker(CommonSettings(nats_url="nats://127.0.0.1:1"))
    async with TestNatsBroker(broker) as test_broker:
        assert not isinstance(broker.config.broker_config.js_producer, PipelinedJetStreamProducer)
        assert await publish_event(test_broker, sample_registered()) is True
    assert isinstance(broker.config.broker_config.js_producer, PipelinedJetStreamProducer)


async def test_on_connect_it_is_handed_the_connections_jetstream_context(nats_server):
    broker = make_broker(CommonSettings(nats_url=nats_server.url))
    async with broker:
        await broker.connect()
        producer = broker.config.broker_config.js_producer
        assert producer._jetstream is broker.config.broker_config.connection_state.stream
