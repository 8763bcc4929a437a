"""The registry's handlers, one per command or event, and the bus (`Registry`) that hands each its message.

Which handler takes what (`HANDLERS`):

- `incoming.py`: `MessageReceived` (a new complaint, a follow-up, a read receipt, or the holding pen);
- `notifications.py`: `NotificationSent`, `NotificationFailed`;
- `holding_pen.py`: `AttachHeld`, `RegisterHeld`, `DiscardHeld`;
- `staff.py`: `Transition`, `DecideScreening`, `Extend`, `Assign`, `Classify`, `RecordFacts`, `AddRecommendation`,
  `AddCorrespondent`;
- `backoffice.py`: `AddNote`, `LinkComplaints`, `UnlinkComplaints`, `SendMessage`; `merging.py`: `MergeComplaints`,
  `UndoMerge`; `manual_entry.py`: `RegisterManual` (the back office, issue 13);
- `deadline_alerts.py`: `RaiseDeadlineAlerts` (sent by the deadline watcher);
- `filing.py` and `records.py`: what several of them write the same way; `ports.py`: the policy, the clock, the
  errors (`NotFound`, `Conflict`) and `Outcome`.

A handler is `async def name(message, *, <the ports it needs>)`, its ports among `uow` (`unit_of_work.UnitOfWork`, the
one transactional path, with the retry on unique-key races), `policy` (`RegistryPolicy`) and `clock`
(`RegisterClock`); `Registry.handle(message)` finds the handler of the message's type and passes it the ports it
names: the message bus of cosmicpython's service layer, with its dependency injection, minus the queue (a handler's
events go to other services, through the outbox, not back into this bus).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar, overload

from services.registry import commands
from services.registry.handlers import (
    backoffice,
    deadline_alerts,
    holding_pen,
    incoming,
    manual_entry,
    merging,
    notifications,
    staff,
)
from services.registry.handlers.ports import (
    Conflict,
    NotFound,
    Outcome,
    RegisterClock,
    RegistryPolicy,
    utc_now,
)
from services.registry.repository import RegistryStore
from services.registry.unit_of_work import EventPublisher, UnitOfWork
from shared.events import MessageReceived, NotificationFailed, NotificationSent

__all__ = ["HANDLERS", "Conflict", "NotFound", "Outcome", "Registry", "RegistryPolicy"]

ResultT = TypeVar("ResultT")
Handler = Callable[..., Awaitable[Any]]

HANDLERS: Mapping[type, Handler] = {
    # events of the other services
    MessageReceived: incoming.message_received,
    NotificationSent: notifications.notification_sent,
    NotificationFailed: notifications.notification_failed,
    # staff on the holding pen
    commands.AttachHeld: holding_pen.attach_held,
    commands.RegisterHeld: holding_pen.register_held,
    commands.DiscardHeld: holding_pen.discard_held,
    # staff on a complaint
    commands.Transition: staff.transition,
    commands.DecideScreening: staff.decide_screening,
    commands.Extend: staff.extend,
    commands.Assign: staff.assign,
    commands.Classify: staff.classify,
    commands.RecordFacts: staff.record_facts,
    commands.AddRecommendation: staff.add_recommendation,
    commands.AddCorrespondent: staff.add_correspondent,
    # the back office
    commands.AddNote: backoffice.add_note,
    commands.LinkComplaints: backoffice.link_complaints,
    commands.UnlinkComplaints: backoffice.unlink_complaints,
    commands.SendMessage: backoffice.send_message,
    commands.MergeComplaints: merging.merge_complaints,
    commands.UndoMerge: merging.undo_merge,
    commands.RegisterManual: manual_entry.register_manual,
    # the deadline watcher
    commands.RaiseDeadlineAlerts: deadline_alerts.raise_deadline_alerts,
}


def _with_ports(handler: Handler, ports: Mapping[str, object]) -> Handler:
    """The handler with the ports it names as keyword parameters already given."""
    wanted = inspect.signature(handler).parameters
    return functools.partial(handler, **{name: port for name, port in ports.items() if name in wanted})


class Registry:
    """The register's message bus over a store (database port) and a publisher (event port)."""

    def __init__(self, store: RegistryStore, policy: RegistryPolicy, publisher: EventPublisher,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.policy = policy
        self.clock = RegisterClock(clock, policy.timezone)
        self.uow = UnitOfWork(store, publisher)
        ports = {"uow": self.uow, "policy": policy, "clock": self.clock}
        self._handlers = {kind: _with_ports(handler, ports) for kind, handler in HANDLERS.items()}

    def today(self) -> date:
        return self.clock.today()

    @overload
    async def handle(self, message: MessageReceived) -> Outcome: ...

    @overload
    async def handle(self, message: NotificationSent | NotificationFailed) -> bool: ...

    @overload
    async def handle(self, message: commands.Command[ResultT]) -> ResultT: ...

    async def handle(self, message: Any) -> Any:
        """Handle one event or command by its handler; returns what the handler returns."""
        handler = self._handlers.get(type(message))
        if handler is None:
            raise TypeError(f"the registry has no handler for {type(message).__name__}")
        return await handler(message)

    # One entry per event type the registry subscribes to (`consumer.RegistryEntries`), for its typed subscribers.
    async def on_message_received(self, event: MessageReceived) -> Outcome:
        return await self.handle(event)

    async def on_notification_sent(self, event: NotificationSent) -> bool:
        return await self.handle(event)

    async def on_notification_failed(self, event: NotificationFailed) -> bool:
        return await self.handle(event)
