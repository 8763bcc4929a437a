"""The registry's handlers, one per command or event, and the bus (`Registry`) that hands each its message.

Which handler takes what (`HANDLERS`):

- `incoming.py`: `MessageReceived` (a new complaint, a follow-up, a read receipt, or the holding pen);
- `notifications.py`: `NotificationSent`, `NotificationFailed`;
- `holding_pen.py`: `AttachHeld`, `RegisterHeld`, `DiscardHeld`;
- `staff.py`: `Transition`, `DecideScreening`, `Extend`, `Assign`, `Classify`, `RecordFacts`, `AddCorrespondent`;
- `backoffice.py`: `AddNote`, `LinkComplaints`, `UnlinkComplaints`, `SendMessage`; `merging.py`: `MergeComplaints`,
  `UndoMerge`; `manual_entry.py`: `RegisterManual` (the back office, issue 13);
- `deadline_alerts.py`: `RaiseDeadlineAlerts` (sent by the deadline watcher);
- `administrations.py`: `SaveAdministration`, `RequestPosition`, `ShareAdministrationMessage`,
  `SweepPositionRequests` (the administration concerned, issue 15; its reply is filed by `incoming.py`);
- `information_requests.py`: `RequestInformation`, `SweepInformationRequests` (requests for information to the
  citizen, issue 15; the reply that ends the pause is filed by `incoming.py`);
- `recommendations.py`: `AddRecommendation`, `IssueRecommendation`, `FollowUpRecommendation`,
  `SetRecommendationReview`, `RemindRecommendationReviews` (recommendations followed up, issue 15);
- `citizen_access.py`: `ResendCitizenLink`, `SupersedeCitizenLinks`, `RevokeCitizenLinks`, `IssueCitizenLink`, `InviteToSurveys`,
  `AnswerSurvey` (the citizen's personal link and the satisfaction survey, issue 17);
- `privacy/handlers.py`: `PlaceLegalHold`, `ReleaseLegalHold`, `AnonymiseFile`, `EraseCorrespondent`,
  `PurgeHeldMessage`, `RectifyContact` (retention, erasure and rectification, issue 16);
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
    administrations,
    backoffice,
    citizen_access,
    deadline_alerts,
    holding_pen,
    incoming,
    information_requests,
    manual_entry,
    merging,
    notifications,
    recommendations,
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
from services.registry.privacy import handlers as privacy  # issue 16 (after `handlers.records` is importable)
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
    # recommendations followed up (issue 15)
    commands.AddRecommendation: recommendations.add_recommendation,
    commands.IssueRecommendation: recommendations.issue_recommendation,
    commands.FollowUpRecommendation: recommendations.follow_up_recommendation,
    commands.SetRecommendationReview: recommendations.set_recommendation_review,
    commands.RemindRecommendationReviews: recommendations.remind_recommendation_reviews,
    # the administration concerned (issue 15)
    commands.SaveAdministration: administrations.save_administration,
    commands.RequestPosition: administrations.request_position,
    commands.ShareAdministrationMessage: administrations.share_administration_message,
    commands.SweepPositionRequests: administrations.sweep_position_requests,
    # requests for information to the citizen (issue 15)
    commands.RequestInformation: information_requests.request_information,
    commands.SweepInformationRequests: information_requests.sweep_information_requests,
    # privacy: legal holds, anonymisation and erasure, rectification (issue 16)
    commands.PlaceLegalHold: privacy.place_legal_hold,
    commands.ReleaseLegalHold: privacy.release_legal_hold,
    commands.AnonymiseFile: privacy.anonymise_file,
    commands.EraseCorrespondent: privacy.erase_correspondent_of,
    commands.PurgeHeldMessage: privacy.purge_held_message,
    commands.RectifyContact: privacy.rectify_contact,
    # the citizen's personal link and the satisfaction survey (issue 17)
    commands.ResendCitizenLink: citizen_access.resend_citizen_link,
    commands.SupersedeCitizenLinks: citizen_access.supersede_citizen_links,
    commands.RevokeCitizenLinks: citizen_access.revoke_citizen_links,
    commands.IssueCitizenLink: citizen_access.issue_citizen_link,
    commands.InviteToSurveys: citizen_access.invite_to_surveys,
    commands.AnswerSurvey: citizen_access.answer_survey,
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
