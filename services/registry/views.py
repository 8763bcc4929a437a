"""JSON views of the register's records, shared by the HTTP API and the CLI's `--json` output (pure)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.registry.models import ChangeLogEntry, Complaint, HeldMessage, ThreadMessage


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value else None


def complaint_summary(c: Complaint) -> dict[str, Any]:
    return {
        "number": c.number,
        "status": c.status,
        "kind": c.kind,
        "channel": c.channel,
        "legal_start": _iso(c.legal_start),
        "complainant": c.complainant_name,
        "email": c.complainant_email,
        "subject": c.subject_line,
        "service": c.service_concerned,
        "theme": c.theme,
        "handler": c.handler,
        "acknowledgment_due": _iso(c.acknowledgment_due),
        "answer_due": _iso(c.answer_due),
    }


def thread_message(m: ThreadMessage) -> dict[str, Any]:
    return {
        "direction": m.direction,
        "occurred_at": _iso(m.occurred_at),
        "message_id": m.message_id,
        "sender": {"name": m.sender_name, "email": m.sender_email} if m.direction == "in" else None,
        "recipient": m.recipient,
        "subject": m.subject_line,
        "text": m.body,
        "notice_kind": m.notice_kind,
        "attachments": m.attachments,
        "raw_object": m.raw_object,
        "automated": m.automated,
    }


def change(entry: ChangeLogEntry) -> dict[str, Any]:
    return {"at": _iso(entry.at), "actor": entry.actor, "change": entry.change, "reason": entry.reason,
            "details": entry.details, "change_id": entry.change_id}


def complaint_file(c: Complaint, thread: list[ThreadMessage], changes: list[ChangeLogEntry],
                   parties: list[str]) -> dict[str, Any]:
    return {
        **complaint_summary(c),
        "received_at": _iso(c.received_at),
        "complainant": {"name": c.complainant_name, "email": c.complainant_email,
                        "postal_address": c.complainant_postal_address, "language": c.complainant_language},
        "text": c.body,
        "attachments": c.attachments,
        "raw_object": c.raw_object,
        "admissibility": {"decision": c.admissibility, "reasons": c.admissibility_reasons},
        "screening_proposal": c.screening_proposal,
        "deadlines": {
            "acknowledgment_due": _iso(c.acknowledgment_due),
            "acknowledged_at": _iso(c.acknowledged_at),
            "answer_due": _iso(c.answer_due),
            "answer_extended": c.answer_extended,
            "paused_days": c.paused_days,
            "paused_since": _iso(c.paused_since),
            "answered_at": _iso(c.answered_at),
        },
        "ended_at": _iso(c.closed_at),
        "outcome": {"outcome": c.outcome, "category": c.outcome_category},
        "recommendations": c.recommendations,
        "linked_number": c.linked_number,
        "redirected_to": c.redirected_to,
        "parties": parties,
        "thread": [thread_message(m) for m in thread],
        "changes": [change(e) for e in changes],
    }


def held_message(h: HeldMessage) -> dict[str, Any]:
    return {
        "id": h.id,
        "reason": h.reason,
        "sender": h.sender_email,
        "subject": h.subject_line,
        "received_at": _iso(h.received_at),
        "suggestions": h.suggestions,
        "status": h.status,
        "resolved_by": h.resolved_by,
        "resolved_number": h.resolved_number,
    }
