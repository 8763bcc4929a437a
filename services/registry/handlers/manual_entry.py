"""A complaint staff enter by hand (issue 13): received by phone, at the counter, or by post and typed in.

It takes the very path of a mailed complaint: the entry becomes the `MessageReceived` intake would have made of it
(channel phone, in_person or letter, no Message-ID), and `filing.register_complaint` screens, numbers (the same
gap-free counter), computes the deadlines, files the first thread entry and publishes `ComplaintRegistered`. The
notifier acknowledges it by email when an address was given, else by a printed letter when a postal address was
(as for any complaint without an email address).

The legal start is the day it was received (`received_on`, a day in the register's time zone, never in the
future): the receipt time is now when that day is today, else the start of that day in the register's zone. The
`request_key` makes a second submission of the same entry return the complaint the first registered.
"""

from __future__ import annotations

from datetime import datetime, time

from services.registry.commands import MANUAL_CHANNELS, RegisterManual
from services.registry.handlers.backoffice import request_key
from services.registry.handlers.filing import register_complaint, screen_message
from services.registry.handlers.ports import Conflict, RegisterClock, RegistryPolicy
from services.registry.handlers.records import sender_address
from services.registry.models import Complaint
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from services.registry.vocabulary import LANGUAGES, Kind, primary_language
from shared.events import Channel, MessageReceived, Party

# What staff type in, bounded (a subject line, a page or two of what the citizen said).
SUBJECT_MAX = 1000
BODY_MAX = 100_000


def _checked(command: RegisterManual, clock: RegisterClock) -> None:
    if command.channel not in MANUAL_CHANNELS:
        raise Conflict(f"a complaint entered by hand comes by {', '.join(MANUAL_CHANNELS)}, not {command.channel!r}")
    if command.kind not in {kind.value for kind in Kind}:
        raise Conflict(f"unknown kind {command.kind!r}; expected one of: {', '.join(k.value for k in Kind)}")
    if command.received_on > clock.today():
        raise Conflict("a complaint cannot have been received in the future")
    email = (command.email or "").strip()
    if email and ("@" not in email or any(c.isspace() for c in email)):
        raise Conflict(f"{email!r} is no email address")
    if command.language and primary_language(command.language) not in LANGUAGES:
        raise Conflict(f"unknown language {command.language!r}; expected one of: {', '.join(LANGUAGES)}")
    if len(command.subject) > SUBJECT_MAX or len(command.body) > BODY_MAX:
        raise Conflict(f"a subject has at most {SUBJECT_MAX} characters and a text at most {BODY_MAX}")
    if not (command.subject.strip() or command.body.strip()):
        raise Conflict("a complaint needs its subject or its text")


def manual_message(command: RegisterManual, clock: RegisterClock) -> MessageReceived:
    """The entry as the message intake would have made of it."""
    now = clock.now()
    received_at = now if clock.local_date(now) == command.received_on \
        else datetime.combine(command.received_on, time.min, tzinfo=clock.zone)
    return MessageReceived(
        message_key=f"manual:{request_key(command.request_key)}",
        channel=Channel(command.channel),
        received_at=received_at,
        sender=Party(name=" ".join(command.name.split()), email=sender_address(command.email),
                     postal_address=(command.postal_address or "").strip() or None,
                     language=primary_language(command.language) if command.language else None),
        subject_line=" ".join(command.subject.split()),
        text=command.body.strip(),
        language=primary_language(command.language) if command.language else None,
        letter_received_on=command.received_on if command.channel == Channel.LETTER else None,
        source="manual",
    )


async def register_manual(command: RegisterManual, *, uow: UnitOfWork, policy: RegistryPolicy,
                          clock: RegisterClock) -> Complaint:
    """Register the entry like a mailed complaint; the same request again returns the complaint it registered."""
    _checked(command, clock)
    event = manual_message(command, clock)
    proposal = screen_message(event, policy, clock)

    async def register(tx: Transaction) -> Complaint:
        found = await tx.find_message_key(event.message_key)
        if found is not None:
            return await tx.complaint_by_id(found[1])
        return await register_complaint(tx, event, proposal, policy=policy, clock=clock, actor=command.actor,
                                        kind=command.kind)

    return await uow.run(f"manual entry {event.message_key}", register)
