"""The back office's actions on a file (issue 13): an internal note, a link between two files, a message of staff to
the citizen. Each, like every staff action, reads the complaint locked in its transaction, records who, when and why
in the change log (published as `ComplaintChanged`) and is idempotent: a note or a message is added once per
`request_key`, a link that exists is not added again, one that does not is not removed.

The change log names a note by its id (its text is in the file's notes) and keeps the text of a message sent to the
citizen (it left the office: the file must show what it said).
"""

from __future__ import annotations

import hashlib

from services.registry.commands import AddNote, LinkComplaints, SendMessage, UnlinkComplaints
from services.registry.handlers.ports import Conflict, RegisterClock
from services.registry.handlers.records import locked_complaint, log_change, on_complaint, request_notice
from services.registry.models import Complaint, ComplaintLink, ComplaintNote
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from services.registry.vocabulary import LANGUAGES, primary_language
from shared.events import Party, clean_staff_text

# Bounds of what staff type: a note is for colleagues; a message is cleaned and bounded by the very rule the notifier
# applies (`shared.events.clean_staff_text`), so that it is refused here rather than dead-lettered there.
NOTE_MAX_CHARS = 20_000
REQUEST_KEY_MAX = 100


def request_key(value: str) -> str:
    """A caller's request key as stored: as given when short, else its digest (a key is compared, never read)."""
    value = value.strip()
    if not value:
        raise Conflict("a request needs a key")
    return value if len(value) <= REQUEST_KEY_MAX else hashlib.sha256(value.encode()).hexdigest()


def _text(value: str, what: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise Conflict(f"{what} needs its text")
    if len(text) > limit:
        raise Conflict(f"{what} has at most {limit} characters")
    return text


async def add_note(command: AddNote, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """An internal note on the file (once per request key)."""
    text = _text(command.text, "a note", NOTE_MAX_CHARS)
    key = request_key(command.request_key)

    async def apply(tx: Transaction, complaint: Complaint) -> None:
        if await tx.note_by_request_key(key) is not None:
            return
        note = ComplaintNote(complaint_id=complaint.id, request_key=key, author=command.actor, text=text,
                             created_at=clock.now())
        await tx.add(note)
        complaint.updated_at = clock.now()
        log_change(tx, complaint, "note_added", command.actor, None, {"note_id": note.id}, at=clock.now())

    return await on_complaint(uow, command.number, apply)


async def _pair(tx: Transaction, number: str, other: str) -> tuple[Complaint, Complaint]:
    """Both files, locked in the order of their numbers (two staff linking the same pair both ways cannot
    deadlock)."""
    first, second = number.strip().upper(), other.strip().upper()
    if first == second:
        raise Conflict("a file cannot be linked to itself")
    locked = {n: await locked_complaint(tx, n) for n in sorted((first, second))}
    return locked[first], locked[second]


async def link_complaints(command: LinkComplaints, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """Link two files; both change logs record it. Linking a linked pair changes nothing."""

    async def link(tx: Transaction) -> Complaint:
        complaint, other = await _pair(tx, command.number, command.other)
        if await tx.link_between(complaint.id, other.id) is None:
            low, high = sorted((complaint.id, other.id))
            await tx.add(ComplaintLink(first_id=low, second_id=high, linked_by=command.actor, linked_at=clock.now()))
            for this, that in ((complaint, other), (other, complaint)):
                this.updated_at = clock.now()
                log_change(tx, this, "link_added", command.actor, command.reason, {"other": that.number},
                           at=clock.now())
        return complaint

    return await uow.run(f"complaint {command.number}", link)


async def unlink_complaints(command: UnlinkComplaints, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """Remove the link of two files; both change logs record it. Unlinking files not linked changes nothing."""

    async def unlink(tx: Transaction) -> Complaint:
        complaint, other = await _pair(tx, command.number, command.other)
        link = await tx.link_between(complaint.id, other.id)
        if link is not None:
            await tx.delete_row(link)
            for this, that in ((complaint, other), (other, complaint)):
                this.updated_at = clock.now()
                log_change(tx, this, "link_removed", command.actor, command.reason,
                           {"other": that.number, "linked_by": link.linked_by, "linked_at": link.linked_at},
                           at=clock.now())
        return complaint

    return await uow.run(f"complaint {command.number}", unlink)


def _language(value: str | None, complaint: Complaint) -> str | None:
    if value is None:
        return complaint.complainant_language
    language = primary_language(value)
    if language not in LANGUAGES:
        raise Conflict(f"unknown language {value!r}; expected one of: {', '.join(LANGUAGES)}")
    return language


async def send_message(command: SendMessage, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """Ask the notifier for a `staff_message` notice to the complainant (by email, else a printed letter), once per
    request key: the outbox's unique dedup id makes a second handling find the first."""
    try:
        text = clean_staff_text(command.text)
    except ValueError as error:
        raise Conflict(str(error)) from error
    key = request_key(command.request_key)

    async def apply(tx: Transaction, complaint: Complaint) -> None:
        if await tx.outbox_by_dedup_id(f"notice:staff_message:{complaint.number}:{key}") is not None:
            return
        if not complaint.complainant_email and not complaint.complainant_postal_address:
            raise Conflict("the complainant has neither an email nor a postal address to write to")
        language = _language(command.language, complaint)
        recipient = Party(name=complaint.complainant_name, email=complaint.complainant_email,
                          postal_address=complaint.complainant_postal_address, language=language)
        await request_notice(tx, complaint, "staff_message", key, {"text": text, "language": language},
                             recipient=recipient)
        complaint.updated_at = clock.now()
        log_change(tx, complaint, "staff_message", command.actor, None,
                   {"request_key": key, "language": language, "text": text}, at=clock.now())

    return await on_complaint(uow, command.number, apply)
