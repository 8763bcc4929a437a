"""A citizen's erasure on request (GDPR art. 17, `ombudsdesk privacy erase EMAIL`): through the same code as
retention (`AnonymiseFile`, `PurgeHeldMessage`), with the reason "request" (mode "erased" in `PersonalDataErased`).

`plan_erasure` finds, by indexed columns, every file where the address is the complainant's (`complaints.
complainant_email`, and the complainant's party rows), every file where it is only a correspondent's
(`case_parties.email`) and every file that holds a message it sent though it is no party there (staff attached
the message without admitting its sender: `thread_messages` by sender, on the index the personal-data export seeks
with), plus the held messages it sent (the holding pen is small: read by its sender column),
and lists every copy the register holds of each (`anonymise.Copies`: the whole file of a complainant, only the
person's part of someone else's file) — what `--dry-run` prints. On a file that is someone else's, the erasure
removes their part only (`EraseCorrespondent`), records it in that file's change log (`correspondent_erased`, the
erasure's id and nothing of the person) and publishes `PersonalDataErased` with scope `messages`: their messages'
keys, raw originals and attachments, and the hash of their address, so that intake and the notifier erase their
copies of those messages and of the notices sent to them, and nothing of the file's complainant. A file under a legal
hold is listed and left alone (art. 17(3)(e): the establishment, exercise or defence of legal claims). An open file
is erased like an ended one: its number, dates and status stay, so its deadlines still show to staff, who close it.

In the register, erasure anonymises rather than deletes rows: the file's number stays taken (numbers are gap-free)
and the annual indicators stay what they were. What identifies the person is gone from every table (docs/privacy.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from services.registry.access.audit import AuditTrail
from services.registry.commands import AnonymiseFile, EraseCorrespondent, PurgeHeldMessage
from services.registry.handlers import Conflict, NotFound, Registry
from services.registry.handlers.records import sender_address
from services.registry.models import CaseParty, Complaint, HeldMessage, LegalHold, ThreadMessage
from services.registry.privacy.anonymise import Copies, copies_of, copies_of_correspondent
# The expression migration 0018 indexes, as the personal-data export seeks a person's messages with it: one lookup.
from services.registry.privacy.anonymise import ADMINISTRATION_PARTY
from services.registry.privacy.export import SENDER_PREFIX as SENDER_INDEXED
from services.registry.privacy.retention import compact
from services.registry.repository import Transaction
from shared import observability

__all__ = ["ErasurePlan", "FileToErase", "carry_out", "plan_erasure"]


@dataclass(frozen=True)
class FileToErase:
    number: str
    role: str  # complainant, correspondent
    status: str
    on_hold: bool
    anonymised: bool
    copies: Copies

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "role": self.role, "status": self.status, "on_hold": self.on_hold,
                "anonymised": self.anonymised, "copies": self.copies.as_dict()}


@dataclass
class ErasurePlan:
    email: str
    files: list[FileToErase]
    held_messages: list[int]
    done: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # number -> why not erased (a hold...)

    def as_dict(self) -> dict[str, Any]:
        return {"files": [f.as_dict() for f in self.files], "held_messages": self.held_messages,
                "done": self.done, "kept": self.kept}


async def _files_written_to(tx: Transaction, address: str) -> set[int]:
    """The files holding a message `address` sent, by the index on the sender's address; the whole address is
    compared here, as the export does (in the WHERE clause, SQLite's planner scans instead of seeking)."""
    rows = await tx.session.execute(select(ThreadMessage.complaint_id, ThreadMessage.sender_email,
                                           ThreadMessage.direction, ThreadMessage.party).where(SENDER_INDEXED == address))
    # An administration's answers are the official correspondence of someone else's file, not a person's data to
    # erase on their request there (GDPR art. 17(3)(b), (e)): an official's address leaves them in place.
    return {complaint_id for complaint_id, sender, direction, party in rows
            if sender == address and direction == "in" and party != ADMINISTRATION_PARTY}


async def plan_erasure(registry: Registry, email: str) -> ErasurePlan:
    address = sender_address(email)
    if address is None or "@" not in address:
        raise Conflict("an erasure names the person's email address")
    async with registry.store.transaction() as tx:  # read with the writers' lock: a consistent list of copies
        as_party = select(CaseParty.complaint_id, CaseParty.role).where(CaseParty.email == address)
        roles: dict[int, str] = {}
        for complaint_id, role in (await tx.session.execute(as_party)).all():
            if roles.get(complaint_id) != "complainant":
                roles[complaint_id] = "complainant" if role == "complainant" else "correspondent"
        for complaint_id in (await tx.session.execute(
                select(Complaint.id).where(Complaint.complainant_email == address))).scalars():
            roles[complaint_id] = "complainant"
        # Files that hold their messages though they are no party there: their part is theirs as a correspondent's.
        for complaint_id in await _files_written_to(tx, address):
            roles.setdefault(complaint_id, "correspondent")
        complaints = list((await tx.session.execute(
            select(Complaint).where(Complaint.id.in_(list(roles))).order_by(Complaint.year, Complaint.sequence)
        )).scalars()) if roles else []
        held = set((await tx.session.execute(select(LegalHold.complaint_id).where(
            LegalHold.complaint_id.in_(list(roles)), LegalHold.released_at.is_(None)))).scalars()) if roles else set()
        files = [FileToErase(c.number, roles[c.id], c.status, c.id in held, c.anonymised_at is not None,
                             await copies_of(tx, c) if roles[c.id] == "complainant"
                             else await copies_of_correspondent(tx, c, address)) for c in complaints]
        messages = list((await tx.session.execute(
            select(HeldMessage.id).where(HeldMessage.sender_email == address).order_by(HeldMessage.id))).scalars())
    return ErasurePlan(address, files, messages)


async def carry_out(registry: Registry, audit: AuditTrail, plan: ErasurePlan, *, actor: str) -> ErasurePlan:
    """Erase what the plan lists, one transaction per file or message; each recorded in the audit trail (the
    number and the erasure id, never the address) and counted."""
    for entry in plan.files:
        if entry.on_hold:
            plan.kept[entry.number] = "legal hold"
            continue
        command = (AnonymiseFile(entry.number, actor, "request") if entry.role == "complainant"
                   else EraseCorrespondent(entry.number, plan.email, actor))
        try:
            event = await registry.handle(command)
        except (Conflict, NotFound) as error:  # a hold placed since the plan was read
            plan.kept[entry.number] = str(error)
            continue
        if event is None:
            continue
        action = "anonymised" if entry.role == "complainant" else "correspondent_erased"
        plan.done.append(entry.number)
        observability.privacy_action(action, "request")
        await audit.append(f"change.{action}", actor=actor, number=entry.number,
                           details={"erasure_id": event.erasure_id, "reason": "request"})
    for held_id in plan.held_messages:
        event = await registry.handle(PurgeHeldMessage(held_id, actor, "request"))
        if event is not None:
            plan.done.append(f"held:{held_id}")
            observability.privacy_action("held_deleted", "request")
            await audit.append("change.held_deleted", actor=actor, number=event.complaint_number or None,
                               details={"erasure_id": event.erasure_id, "reason": "request",
                                        "subject": f"held:{held_id}"})
    await compact(registry.store.engine)
    return plan
