"""The privacy commands' handlers (issue 16), registered in `handlers.HANDLERS` like every other: legal holds,
anonymising a file, erasing a correspondent or a held message, rectifying contact details.

Each runs in one unit of work: the file is read locked, changed, the change logged (published as `ComplaintChanged`,
with no personal data in its details) and, for an erasure, `PersonalDataErased` queued in the same transaction
(`anonymise.py`). Each is idempotent: a file already anonymised, a held message already gone, a hold already placed
or released changes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.registry.commands import (
    AnonymiseFile,
    EraseCorrespondent,
    PlaceLegalHold,
    PurgeHeldMessage,
    RectifyContact,
    ReleaseLegalHold,
)
from services.registry.mediation.duplicates import citizen_key
from services.registry.handlers.ports import Conflict, RegisterClock
from services.registry.handlers.records import fit, locked_complaint, log_change, on_complaint, sender_address
from services.registry.models import CaseParty, Complaint, LegalHold
from services.registry.privacy.anonymise import anonymise_complaint, erase_correspondent, erase_held
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from services.registry.vocabulary import LANGUAGES, primary_language
from shared.events import PersonalDataErased

REASON_MAX = 2000


async def active_hold(tx: Transaction, complaint_id: int) -> LegalHold | None:
    query = (select(LegalHold).where(LegalHold.complaint_id == complaint_id, LegalHold.released_at.is_(None))
             .order_by(LegalHold.id).limit(1))
    return (await tx.session.execute(query)).scalar_one_or_none()


def _reason(value: str | None, *, required: bool) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise Conflict("a legal hold needs its reason")
    if len(text) > REASON_MAX:
        raise Conflict(f"a reason has at most {REASON_MAX} characters")
    return text or None


async def place_legal_hold(command: PlaceLegalHold, *, uow: UnitOfWork, clock: RegisterClock) -> LegalHold:
    reason = _reason(command.reason, required=True)

    async def place(tx: Transaction) -> LegalHold:
        complaint = await locked_complaint(tx, command.number)
        existing = await active_hold(tx, complaint.id)
        if existing is not None:
            return existing
        hold = LegalHold(complaint_id=complaint.id, reason=reason, placed_by=command.actor, placed_at=clock.now())
        await tx.add(hold)
        log_change(tx, complaint, "legal_hold_placed", command.actor, reason, {"hold_id": hold.id}, at=clock.now())
        return hold

    return await uow.run(f"complaint {command.number}", place)


async def release_legal_hold(command: ReleaseLegalHold, *, uow: UnitOfWork, clock: RegisterClock) -> bool:
    reason = _reason(command.reason, required=False)

    async def release(tx: Transaction) -> bool:
        complaint = await locked_complaint(tx, command.number)
        hold = await active_hold(tx, complaint.id)
        if hold is None:
            return False
        hold.released_by, hold.released_at, hold.release_reason = command.actor, clock.now(), reason
        log_change(tx, complaint, "legal_hold_released", command.actor, reason, {"hold_id": hold.id},
                   at=clock.now())
        return True

    return await uow.run(f"complaint {command.number}", release)


async def anonymise_file(command: AnonymiseFile, *, uow: UnitOfWork, clock: RegisterClock
                         ) -> PersonalDataErased | None:
    if command.reason not in ("retention", "request"):
        raise Conflict(f"unknown erasure reason {command.reason!r}; expected retention or request")

    async def anonymise(tx: Transaction) -> PersonalDataErased | None:
        complaint = await locked_complaint(tx, command.number)
        if complaint.anonymised_at is not None:
            return None
        if await active_hold(tx, complaint.id) is not None:
            raise Conflict(f"{complaint.number} is under a legal hold")
        event = await anonymise_complaint(tx, complaint, reason=command.reason, now=clock.now())
        log_change(tx, complaint, "anonymised", command.actor, None, {
            "erasure_id": event.erasure_id, "mode": event.mode, "reason": command.reason, "rule": command.rule},
            at=clock.now())
        return event

    return await uow.run(f"complaint {command.number}", anonymise)


async def erase_correspondent_of(command: EraseCorrespondent, *, uow: UnitOfWork, clock: RegisterClock
                                 ) -> PersonalDataErased | None:
    email = sender_address(command.email)
    if email is None:
        raise Conflict("an erasure names the person's email address")

    async def erase(tx: Transaction) -> PersonalDataErased | None:
        complaint = await locked_complaint(tx, command.number)
        if await active_hold(tx, complaint.id) is not None:
            raise Conflict(f"{complaint.number} is under a legal hold")
        event = await erase_correspondent(tx, complaint, email)
        if event is not None:
            complaint.updated_at = clock.now()
            log_change(tx, complaint, "correspondent_erased", command.actor, None,
                       {"erasure_id": event.erasure_id, "mode": event.mode, "reason": event.reason}, at=clock.now())
        return event

    return await uow.run(f"complaint {command.number}", erase)


async def purge_held_message(command: PurgeHeldMessage, *, uow: UnitOfWork) -> PersonalDataErased | None:
    if command.reason not in ("retention", "request"):
        raise Conflict(f"unknown erasure reason {command.reason!r}; expected retention or request")

    async def purge(tx: Transaction) -> PersonalDataErased | None:
        held = await tx.held_by_id(command.held_id, for_update=True)
        return None if held is None else await erase_held(tx, held, command.reason)

    return await uow.run(f"held message {command.held_id}", purge)


def _corrected(command: RectifyContact) -> dict[str, Any]:
    """The columns to change, as the register stores them; refused with the reason when a value cannot be one."""
    values: dict[str, Any] = {}
    if command.name is not None:
        values["complainant_name"] = " ".join(command.name.split())
        if len(values["complainant_name"]) > 500:
            raise Conflict("a name has at most 500 characters")
    if command.email is not None:
        address = sender_address(command.email)
        if address is not None and ("@" not in address or " " in address
                                    or fit(Complaint.complainant_email, address) != address):
            raise Conflict("not an email address")
        values["complainant_email"] = address
    if command.postal_address is not None:
        values["complainant_postal_address"] = command.postal_address.strip() or None
        if len(command.postal_address) > 2000:
            raise Conflict("a postal address has at most 2000 characters")
    if command.language is not None:
        language = primary_language(command.language) if command.language.strip() else None
        if language is not None and language not in LANGUAGES:
            raise Conflict(f"unknown language {command.language!r}; expected one of: {', '.join(LANGUAGES)}")
        values["complainant_language"] = language
    return values


async def rectify_contact(command: RectifyContact, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """Correct the complainant's contact details; the complainant's admission as a party follows a new address.
    The change log names the fields, not the values (the file shows the corrected ones; the old ones are gone)."""
    values = _corrected(command)

    async def rectify(tx: Transaction, complaint: Complaint) -> None:
        if complaint.anonymised_at is not None:
            raise Conflict(f"{complaint.number} is anonymised: there is nothing to rectify")
        changed = sorted(column for column, value in values.items() if getattr(complaint, column) != value)
        if not changed:
            return
        old_email = complaint.complainant_email
        for column in changed:
            setattr(complaint, column, values[column])
        complaint.citizen_key = citizen_key(complaint.complainant_name, complaint.complainant_postal_address)
        if "complainant_email" in changed:
            party = (await tx.session.execute(select(CaseParty).where(
                CaseParty.complaint_id == complaint.id, CaseParty.role == "complainant",
                CaseParty.email == (old_email or "")))).scalar_one_or_none()
            already = complaint.complainant_email in await tx.party_ids(complaint.id)
            if party is not None and complaint.complainant_email and not already:
                party.email = complaint.complainant_email
            elif party is not None:
                await tx.delete_row(party)
            elif complaint.complainant_email and not already:
                await tx.add_party(complaint.id, complaint.complainant_email, "complainant", command.actor)
        complaint.updated_at = clock.now()
        log_change(tx, complaint, "rectified", command.actor, command.reason, {"fields": changed}, at=clock.now())

    return await on_complaint(uow, command.number, rectify)
