"""docs/asyncapi.yaml is generated from the services' FastStream declarations: it must be current and complete."""

from __future__ import annotations

from pathlib import Path

import yaml

from ombudsdesk.asyncapi import render
from shared import events, streams

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_asyncapi_doc_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.yaml is stale: run `.venv/bin/python -m ombudsdesk.asyncapi > docs/asyncapi.yaml`")


def test_every_event_is_published_by_a_service_and_every_consumer_is_documented():
    document = yaml.safe_load(render())
    addresses = {(channel["address"], operation["action"])
                 for operation in document["operations"].values()
                 for channel in [document["channels"][operation["channel"]["$ref"].rsplit("/", 1)[-1]
                                 .replace("~1", "/").replace("%2A", "*")]]}
    contracts = [cls for cls in vars(events).values()
                 if isinstance(cls, type) and issubclass(cls, events.Event) and "subject" in vars(cls)
                 and cls is not events.DeadLettered]
    for contract in contracts:
        assert (contract.subject, "send") in addresses, f"{contract.__name__} has no publisher"
    consumers = [value for name, value in vars(streams).items()
                 if name.startswith("CONSUMER_") and value != streams.CONSUMER_INTAKE_SPOOL]
    titles = " ".join(document["channels"])
    for consumer in consumers:
        assert f":{consumer}" in titles, f"consumer {consumer} is not documented"
        assert (streams.dead_letter_subject(consumer), "send") in addresses
