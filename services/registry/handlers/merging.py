"""Merging two files, and undoing it (issue 13).

`MergeComplaints(source, target)`: every thread entry of the source moves into the target's file (so a reply to any
of those messages now finds the target by its Message-ID), the source's parties are admitted to the target (so their
replies attach there), and the source ends as "merged", `merged_into` the target. Both change logs record it. What
the merge changed is kept in `complaint_merges`: the moved entries, the party rows it added, the source's status and
end date before.

`UndoMerge(source)` restores exactly that: the moved entries go back (entries that reached the target since stay
there), the party rows the merge added are removed, the source gets its status and end date back. Both change logs
record it too.

Why a status ("merged") rather than a flag beside the former status: a merged file is ended, and everything that
reads an ended file already does the right thing with it: no deadline alerts, not overdue, not open at year end, no
workflow transition out of it (`workflow.TRANSITIONS`), a follow-up naming it goes to the target (`incoming._route`).

Refused: merging a file into itself, into a merged file, a file others were merged into (undo those first: merges
never chain, so each undo restores a file whole), and a data-protection file into one that is not (its content
would become visible to people who may not see it).
"""

from __future__ import annotations

from services.registry.commands import MergeComplaints, UndoMerge
from services.registry.handlers.ports import Conflict, RegisterClock
from services.registry.handlers.records import locked_complaint, log_change
from services.registry.models import CaseParty, Complaint, ComplaintMerge
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from services.registry.vocabulary import Status


async def merge_complaints(command: MergeComplaints, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """Merge the source into the target; returns the target. Merging again into the same target changes nothing."""
    source_number, target_number = command.source.strip().upper(), command.target.strip().upper()
    if source_number == target_number:
        raise Conflict("a file cannot be merged into itself")

    async def merge(tx: Transaction) -> Complaint:
        # Locked in the order of their numbers: two merges of the same pair cannot deadlock.
        locked = {n: await locked_complaint(tx, n) for n in sorted((source_number, target_number))}
        source, target = locked[source_number], locked[target_number]
        if source.merged_into == target.number:
            return target
        if source.merged_into is not None:
            raise Conflict(f"{source.number} is already merged into {source.merged_into}")
        if target.merged_into is not None:
            raise Conflict(f"{target.number} is merged into {target.merged_into}: merge into that file instead")
        if await tx.active_merge(target_id=source.id):
            raise Conflict(f"other files are merged into {source.number}: undo those merges first")
        if source.data_protection and not target.data_protection:
            raise Conflict("a data-protection file can only be merged into another data-protection file")
        now = clock.now()
        moved = [message.id for message in await tx.thread(source.id)]
        await tx.move_thread(moved, target.id)
        target_parties = await tx.party_ids(target.id)
        added: list[CaseParty] = []
        for email in sorted(set(await tx.party_ids(source.id)) - set(target_parties)):
            party = CaseParty(complaint_id=target.id, email=email, role="correspondent", added_by=command.actor,
                              added_at=now)
            added.append(party)
        await tx.add(*added)
        record = ComplaintMerge(source_id=source.id, target_id=target.id, moved_message_ids=moved,
                                added_party_ids=[party.id for party in added], previous_status=source.status,
                                previous_closed_at=source.closed_at, merged_by=command.actor, reason=command.reason,
                                merged_at=now)
        await tx.add(record)
        previous_status = source.status
        source.status, source.closed_at, source.merged_into = Status.MERGED.value, now, target.number
        source.updated_at = target.updated_at = now
        log_change(tx, source, "merged_into", command.actor, command.reason,
                   {"target": target.number, "from": previous_status, "messages": len(moved), "merge_id": record.id},
                   at=now)
        log_change(tx, target, "merged_from", command.actor, command.reason,
                   {"source": source.number, "messages": len(moved),
                    "parties_added": [party.email for party in added], "merge_id": record.id}, at=now)
        return target

    return await uow.run(f"merge of {source_number} into {target_number}", merge)


async def undo_merge(command: UndoMerge, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """Undo the source's merge; returns the source as it was before. A file not merged is returned unchanged."""
    source_number = command.source.strip().upper()

    async def undo(tx: Transaction) -> Complaint:
        source = await locked_complaint(tx, source_number)
        if source.merged_into is None:
            return source
        target = await locked_complaint(tx, source.merged_into)
        [record] = await tx.active_merge(source_id=source.id)
        now = clock.now()
        await tx.move_thread(list(record.moved_message_ids), source.id)
        await tx.delete_parties(list(record.added_party_ids))
        source.status, source.closed_at, source.merged_into = record.previous_status, record.previous_closed_at, None
        source.updated_at = target.updated_at = now
        record.undone_at, record.undone_by = now, command.actor
        details = {"source": source.number, "target": target.number, "to": record.previous_status,
                   "messages": len(record.moved_message_ids), "merge_id": record.id}
        log_change(tx, source, "merge_undone", command.actor, command.reason, details, at=now)
        log_change(tx, target, "merge_undone", command.actor, command.reason, details, at=now)
        return source

    return await uow.run(f"undoing the merge of {source_number}", undo)
