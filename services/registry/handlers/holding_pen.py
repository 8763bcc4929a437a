"""Staff decisions on the holding pen: attach a held message to a case, register it as a new complaint, or discard
it. Each resolves the held message once: a second decision on it is refused (`Conflict`)."""

from __future__ import annotations

from services.registry.commands import AttachHeld, DiscardHeld, RegisterHeld
from services.registry.handlers.filing import append_message, register_complaint, screen_message
from services.registry.handlers.ports import Conflict, NotFound, Outcome, RegisterClock, RegistryPolicy
from services.registry.handlers.records import log_change
from services.registry.models import HeldMessage
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from shared.events import MessageReceived


async def _pending_held(tx: Transaction, held_id: int) -> HeldMessage:
    held = await tx.held_by_id(held_id, for_update=True)
    if held is None:
        raise NotFound(f"no held message {held_id}")
    if held.status != "pending":
        raise Conflict(f"held message {held_id} was already {held.status}")
    return held


def _resolve(held: HeldMessage, status: str, actor: str, number: str | None, clock: RegisterClock) -> None:
    held.status = status
    held.resolved_by = actor
    held.resolved_at = clock.now()
    held.resolved_number = number


async def attach_held(command: AttachHeld, *, uow: UnitOfWork, policy: RegistryPolicy, clock: RegisterClock
                      ) -> Outcome:
    """File the held message in the case, optionally admitting its sender as a correspondent (only then does the
    sender hear back: a receipt names the case)."""
    number = command.number.strip().upper()

    async def attach(tx: Transaction) -> Outcome:
        held = await _pending_held(tx, command.held_id)
        event = MessageReceived.model_validate_json(held.event)
        complaint = await append_message(tx, number, event, policy=policy, clock=clock, new_status=None,
                                         explanation="", actor=command.actor,
                                         notify_sender=command.add_correspondent, change=None)
        if command.add_correspondent and held.sender_email:
            await tx.add_party(complaint.id, held.sender_email, "correspondent", command.actor)
        log_change(tx, complaint, "follow_up_attached", command.actor, f"from holding pen ({held.reason})",
                   {"message_key": held.message_key, "sender": held.sender_email,
                    "correspondent_added": command.add_correspondent}, at=clock.now())
        _resolve(held, "attached", command.actor, complaint.number, clock)
        return Outcome("appended", complaint.number)

    return await uow.run(f"held message {command.held_id}", attach)


async def register_held(command: RegisterHeld, *, uow: UnitOfWork, policy: RegistryPolicy, clock: RegisterClock
                        ) -> Outcome:
    """Register the held message as a new complaint (screened like any other)."""

    async def register(tx: Transaction) -> Outcome:
        held = await _pending_held(tx, command.held_id)
        event = MessageReceived.model_validate_json(held.event)
        complaint = await register_complaint(tx, event, screen_message(event, policy, clock), policy=policy,
                                             clock=clock, actor=command.actor)
        _resolve(held, "registered", command.actor, complaint.number, clock)
        return Outcome("registered", complaint.number)

    return await uow.run(f"held message {command.held_id}", register)


async def discard_held(command: DiscardHeld, *, uow: UnitOfWork, clock: RegisterClock) -> Outcome:
    async def discard(tx: Transaction) -> Outcome:
        _resolve(await _pending_held(tx, command.held_id), "discarded", command.actor, None, clock)
        return Outcome("discarded", None)

    return await uow.run(f"held message {command.held_id}", discard)
