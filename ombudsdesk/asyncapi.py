"""Writes the AsyncAPI document of every subject the services publish or subscribe to (`docs/asyncapi.yaml`), from
the same FastStream declarations the services run with: `python -m ombudsdesk.asyncapi > docs/asyncapi.yaml`; a
test fails when the committed document is stale.

Each service's declarations go on a broker of its own, as in production; nothing connects and no handler runs.
FastStream documents what a subscriber receives, not what it answers: the answer of a core NATS request/reply
subscriber (`REPLIES`) is added as the operation's AsyncAPI 3 `reply`, on a channel whose address is the request's
reply subject (null: chosen by each requester).
"""

from __future__ import annotations

from typing import Any

import yaml
from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from services.intake.publishing import PUBLISHES as INTAKE_PUBLISHES
from services.notifier.consumer import register_consumers
from services.intake.privacy import subscribe_privacy as subscribe_intake_privacy
from services.notifier.privacy import subscribe_privacy as subscribe_notifier_privacy
from services.registry.consumer import subscribe_registry
from shared import streams
from shared.events import Contract, NoticePreview
from shared.messaging import declare_publishers
from shared.settings import CommonSettings

TITLE = "ombudsdesk events"
DESCRIPTION = (
    "Every JetStream subject of intake, registry and notifier, with the pydantic contract of shared/events.py it "
    "carries. Each event is published with a Nats-Msg-Id header (its dedup id); every subscription is a durable pull "
    "consumer with explicit acknowledgement, retries with back-off and a dead-letter subject "
    "(ombudsdesk.deadletter.<consumer>) that keeps the original payload whole. The notice preview "
    f"({streams.SUBJECT_NOTICE_PREVIEW}) is core NATS request/reply instead, outside every stream: its operation's "
    "reply is the answer."
)

# What each request/reply subscriber answers, by the subject it serves.
REPLIES: dict[str, type[Contract]] = {streams.SUBJECT_NOTICE_PREVIEW: NoticePreview}


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
    subscribe_intake_privacy(brokers["intake"], settings, _NeverCalled())  # type: ignore[arg-type]
    subscribe_notifier_privacy(brokers["notifier"], settings, _NeverCalled())  # type: ignore[arg-type]
    return brokers


def _add_replies(document: dict[str, Any]) -> None:
    for name, operation in list(document["operations"].items()):
        channel_name = operation["channel"]["$ref"].rsplit("/", 1)[-1].replace("~1", "/").replace("%2A", "*")
        answer = REPLIES.get(document["channels"][channel_name]["address"])
        if answer is None or operation["action"] != "receive":
            continue
        reply_channel, message = f"{name}:Reply", f"{name}:Reply:{answer.__name__}"
        document["components"]["schemas"][answer.__name__] = answer.model_json_schema(
            ref_template="#/components/schemas/{model}")
        document["components"]["messages"][message] = {
            "title": message, "payload": {"$ref": f"#/components/schemas/{answer.__name__}"}}
        document["channels"][reply_channel] = {
            "address": None, "description": "The reply subject the requester gave (NATS inbox)",
            "messages": {answer.__name__: {"$ref": f"#/components/messages/{message}"}}}
        operation["reply"] = {"channel": {"$ref": f"#/channels/{reply_channel}"},
                              "messages": [{"$ref": f"#/channels/{reply_channel}/messages/{answer.__name__}"}]}


def render() -> str:
    document = AsyncAPI(*service_brokers().values(), title=TITLE, version="1", description=DESCRIPTION,
                        schema_version="3.0.0").to_specification().to_jsonable()
    _add_replies(document)
    # FastStream lists endpoints in the order it keeps them (partly a set): sorted, the file changes only with the code.
    for section in (document, document["components"]):
        for name in ("channels", "operations", "messages", "schemas"):
            if name in section:
                section[name] = dict(sorted(section[name].items()))
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


if __name__ == "__main__":
    print(render(), end="")
