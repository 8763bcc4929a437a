"""Where an incoming message goes (pure): a new complaint, a follow-up attached to a case, or the holding pen.

Issue 4, "Follow-ups and the holding pen": a message that refers to a case (In-Reply-To/References naming a message of
its thread, or a case number) is attached only when its sender is a party to that case (the complainant or a known
correspondent). Knowing a number must never let a stranger write into someone else's file, so anything else is held
for staff with the reason and ranked suggestions. What a party's message does to its case (attach, resume, reopen
within the window, or a new linked complaint after it) is `workflow.decide_follow_up`'s decision.

Issue 10, "Trust at the door", comes first: a message whose sender failed authentication (DMARC fail recorded by a
trusted server) never enters a file nor becomes a complaint on its own; one intake asks staff to confirm (a staff
forward nobody proved, a scanned letter dated long ago) is held with that reason, so nobody receives anything
before staff decide; a read receipt (RFC 8098) of one of our notices is recorded in the file that sent the notice,
never registered as a complaint, and only when it comes from the very address the notice went to: our Message-IDs
travel with every thread a citizen forwards or copies, so knowing one proves nothing (anyone else's receipt is held,
`RECEIPT_SENDER_NOT_RECIPIENT`). An `unverified` sender is no reason to hold: the message is handled as before and
its verdict is stored with it, for staff to see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from services.registry.workflow import FollowUpAction, ReopenPolicy, decide_follow_up


class MatchedBy(StrEnum):
    HEADER = "header"  # In-Reply-To / References name a message of the case's thread: the strongest link
    NUMBER = "number"  # the case number appears in the subject or text
    SENDER = "sender"  # only a suggestion: another case of the same sender


class HoldReason(StrEnum):
    SENDER_NOT_PARTY = "sender_not_party"
    UNKNOWN_CASE_NUMBER = "unknown_case_number"
    AMBIGUOUS_REFERENCE = "ambiguous_reference"
    AUTOMATED_UNMATCHED = "automated_unmatched"
    SENDER_FAILED_AUTHENTICATION = "sender_failed_authentication"
    RECEIPT_SENDER_NOT_RECIPIENT = "receipt_sender_not_recipient"
    # Reasons intake gives for a staff confirmation (`MessageReceived.needs_confirmation`); any other code it may
    # give is held as NEEDS_CONFIRMATION (the code itself stays in the held event).
    STAFF_FORWARD_NOT_VERIFIED = "staff_forward_not_verified"
    LETTER_DATE_TOO_OLD = "letter_date_too_old"
    NEEDS_CONFIRMATION = "needs_confirmation"
    # Mail from an address admitted as an administration of some file that refers to no file (issue 15): never a
    # complaint of its own (`handlers/administrations.hold_unreferenced`).
    ADMINISTRATION_UNREFERENCED = "administration_unreferenced"


_CONFIRMATION_REASONS = frozenset({HoldReason.STAFF_FORWARD_NOT_VERIFIED, HoldReason.LETTER_DATE_TOO_OLD})


def confirmation_reason(code: str) -> HoldReason:
    """The hold reason for intake's `needs_confirmation` code."""
    try:
        reason = HoldReason(code)
    except ValueError:
        return HoldReason.NEEDS_CONFIRMATION
    return reason if reason in _CONFIRMATION_REASONS else HoldReason.NEEDS_CONFIRMATION


@dataclass(frozen=True)
class CaseFacts:
    """What the decision needs to know about one case the message may belong to."""

    number: str
    matched_by: MatchedBy
    parties: frozenset[str]
    status: str = "received"
    ended_on: date | None = None  # the day it reached its current final status (closed, inadmissible, ...)
    received_at: datetime | None = None


@dataclass(frozen=True)
class Suggestion:
    number: str
    score: int
    why: str

    def as_dict(self) -> dict[str, object]:
        return {"number": self.number, "score": self.score, "why": self.why}


@dataclass(frozen=True)
class RegisterNew:
    linked_number: str | None = None


@dataclass(frozen=True)
class Attach:
    number: str
    new_status: str | None = None  # resume (waiting_for_citizen) or reopen (closed, inadmissible): in_review
    explanation: str = ""


@dataclass(frozen=True)
class NoticeFacts:
    """One of our notices a read receipt names: the case whose thread holds it, and the address it went to."""

    number: str
    recipient: str | None
    notice_kind: str | None = None


@dataclass(frozen=True)
class RecordReceipt:
    """A read receipt of a notice of this case: an entry in its thread, nothing else (no status, no notice)."""

    number: str
    notice_kind: str | None = None


# RFC 8098 3.2.6.2: the disposition-type of a read receipt; anything else is not recorded.
DISPOSITION_TYPES = frozenset({"displayed", "deleted", "dispatched", "processed"})


def receipt_disposition(value: str | None) -> str | None:
    """The RFC 8098 disposition-type intake read in a receipt (`MessageReceived.disposition`, "displayed"; from an
    older intake, its reason "read receipt (RFC 8098): displayed"), or None: only one of the four known words is
    ever kept, never text the receipt's sender wrote."""
    word = (value or "")[-40:].rpartition(":")[2].strip().lower()
    return word if word in DISPOSITION_TYPES else None


@dataclass(frozen=True)
class Hold:
    reason: HoldReason
    suggestions: tuple[Suggestion, ...] = field(default_factory=tuple)


Decision = RegisterNew | Attach | RecordReceipt | Hold

_SCORES = {MatchedBy.HEADER: 3, MatchedBy.NUMBER: 2, MatchedBy.SENDER: 1}


def rank_suggestions(cases: Sequence[CaseFacts], sender_cases: Sequence[CaseFacts] = ()) -> tuple[Suggestion, ...]:
    """Referenced cases first (header over number), then the sender's own cases; newest first within a rank."""
    best: dict[str, CaseFacts] = {}
    for case in [*cases, *sender_cases]:
        known = best.get(case.number)
        if known is None or _SCORES[case.matched_by] > _SCORES[known.matched_by]:
            best[case.number] = case
    ordered = sorted(
        best.values(),
        key=lambda c: (-_SCORES[c.matched_by], -(c.received_at.timestamp() if c.received_at else 0), c.number),
    )
    return tuple(Suggestion(c.number, _SCORES[c.matched_by], c.matched_by.value) for c in ordered)


def decide(
    *,
    sender_email: str | None,
    referenced: Sequence[CaseFacts],
    unknown_numbers: Sequence[str] = (),
    sender_cases: Sequence[CaseFacts] = (),
    automated: bool = False,
    today: date,
    policy: ReopenPolicy,
    sender_failed: bool = False,
    needs_confirmation: str | None = None,
    receipt: bool = False,
    receipt_notices: Sequence[NoticeFacts] = (),
) -> Decision:
    """Decide the fate of one incoming message; `referenced` are the existing cases it refers to.

    `sender_failed`: a trusted server recorded that the sender failed authentication. `needs_confirmation`: intake's
    reason to have staff confirm it. `receipt`: it is an automated read receipt, and `receipt_notices` our notices
    with the Message-ID it reports on (RFC 8098 3.2.5 Original-Message-ID). That id is no secret (it is quoted in
    every reply, forward and copy of the thread), so the receipt is recorded only when its sender is the address
    the notice went to.
    """
    if sender_failed:
        return Hold(HoldReason.SENDER_FAILED_AUTHENTICATION, rank_suggestions(referenced, sender_cases))
    if receipt:
        cases = list(dict.fromkeys(notice.number for notice in receipt_notices))
        if len(cases) != 1:
            return Hold(HoldReason.AUTOMATED_UNMATCHED, rank_suggestions(referenced, sender_cases))
        sender = (sender_email or "").strip().lower()
        sent_to_sender = [notice for notice in receipt_notices
                          if sender and (notice.recipient or "").strip().lower() == sender]
        if not sent_to_sender:
            return Hold(HoldReason.RECEIPT_SENDER_NOT_RECIPIENT, rank_suggestions(referenced, sender_cases))
        return RecordReceipt(cases[0], sent_to_sender[0].notice_kind)
    if needs_confirmation:
        return Hold(confirmation_reason(needs_confirmation), rank_suggestions(referenced, sender_cases))
    if not referenced:
        if unknown_numbers:
            return Hold(HoldReason.UNKNOWN_CASE_NUMBER, rank_suggestions((), sender_cases))
        if automated:
            # An auto-reply or bounce that refers to nothing of ours must not burn a complaint number.
            return Hold(HoldReason.AUTOMATED_UNMATCHED, rank_suggestions((), sender_cases))
        return RegisterNew()
    sender = (sender_email or "").strip().lower()
    eligible = [case for case in referenced if sender and sender in case.parties]
    if not eligible:
        return Hold(HoldReason.SENDER_NOT_PARTY, rank_suggestions(referenced, sender_cases))
    strongest = max(_SCORES[case.matched_by] for case in eligible)
    chosen = {case.number: case for case in eligible if _SCORES[case.matched_by] == strongest}
    if len(chosen) > 1:
        return Hold(HoldReason.AMBIGUOUS_REFERENCE, rank_suggestions(referenced, sender_cases))
    [case] = chosen.values()
    follow_up = decide_follow_up(case.status, ended_on=case.ended_on, today=today, policy=policy, automated=automated)
    if follow_up.action is FollowUpAction.NEW_LINKED_COMPLAINT:
        return RegisterNew(linked_number=case.number)
    new_status = follow_up.new_status.value if follow_up.new_status else None
    return Attach(case.number, new_status, follow_up.explanation)
