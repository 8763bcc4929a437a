"""Writes the AsyncAPI document of every subject the services publish or subscribe to (`docs/asyncapi.yaml`), from
the same FastStream declarations the services run with: `python -m ombudsdesk.asyncapi > docs/asyncapi.yaml`; a
test fails when the committed document is stale.

Each service's declarations go on a broker of its own, as in production; nothing connects and no handler runs.
"""

from __future__ import annotations

from typing import Any

import yaml
from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from services.intake.publishing import PUBLISHES as INTAKE_PUBLISHES
from services.notifier.consumer import register_consumers
from services.registry.consumer import subscribe_registry
from shared.messaging import declare_publishers
from shared.settings import CommonSettings

TITLE = "ombudsdesk events"
DESCRIPTION = (
    "Every JetStream subject of intake, registry and notifier, with the pydantic contract of shared/events.py it "
    "carries. Each event is published with a Nats-Msg-Id header (its dedup id); every subscription is a durable pull "
    "consumer with explicit acknowledgement, retries with back-off and a dead-letter subject "
    "(ombudsdesk.deadletter.<consumer>) that keeps the original payload whole."
)


class _NeverCalled:
    """Stands for a service's handlers while the document is made: declarations only, no event is delivered."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"handler {name} called while writing the AsyncAPI document")


def service_brokers() -> dict[str, NatsBroker]:
    settings = CommonSettings()
    brokers = {name: NatsBroker(description=f"The {name} service") for name in ("intake", "registry", "notifier")}
    declare_publishers(brokers["intake"], INTAKE_PUBLISHES)
    subscribe_registry(brokers["registry"], _NeverCalled(), settings)  # type: ignore[arg-type]
    register_consumers(brokers["notifier"], _NeverCalled(), settings)  # type: ignore[arg-type]
    return brokers


def render() -> str:
    document = AsyncAPI(*service_brokers().values(), title=TITLE, version="1", description=DESCRIPTION,
                        schema_version="3.0.0").to_specification().to_jsonable()
    # FastStream lists endpoints in the order it keeps them (partly a set): sorted, the file changes only with the code.
    for section in (document, document["components"]):
        for name in ("channels", "operations", "messages", "schemas"):
            if name in section:
                section[name] = dict(sorted(section[name].items()))
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


if __name__ == "__main__":
    print(render(), end="")
