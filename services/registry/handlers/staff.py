"""Staff actions on one complaint: each reads the complaint locked inside its transaction, changes it, records the
change (who, when, why) in the change log, and asks for the notice to the citizen the change calls for.

Adding an action: a command in `commands.py`, its handler here (registered in `handlers.HANDLERS`), its change's
label in `vocabulary.VOCABULARIES["change"]` and summary in `views.change_summary`, and the API endpoint and the CLI
command that build the command.
"""

from __future__ import annotations

from typing import Any

from services.registry import deadlines
from services.registry.commands import (
    FACTS,
    AddCorrespondent,
    Assign,
    Classify,
    DecideScreening,
    Extend,
    RecordFacts,
    Transition,
)
from services.registry.handlers import information_requests
from services.registry.handlers.filing import apply_facts, set_changed
from services.registry.handlers.ports import Conflict, RegisterClock, RegistryPolicy
from services.registry.handlers.records import (
    change_status,
    fit,
    locked_complaint,
    log_change,
    on_complaint,
    request_notice,
    sender_address,
    state_of,
    store_state,
)
from services.registry.models import Complaint
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from services.registry.vocabulary import Kind, Status


# --- status ----------------------------------------------------------------------------------------------------------
def _check_notice_needs(target: str, redirect_to: str | None, answer_text: str | None) -> None:
    # Refused here rather than dead-lettered by the notifier later: the citizen must get a notice that says
    # something (the answer itself, the ombudsman to turn to).
    if target == Status.ANSWERED and not (answer_text or "").strip():
        raise Conflict("an answer needs its text (the final answer sent to the citizen)")
    if target == Status.REDIRECTED and not (redirect_to or "").strip():
        raise Conflict("a redirection needs the competent ombudsman (redirect_to, an id of the directory)")


def _ombudsman(ombudsman_id: str | None, complaint: Complaint, policy: RegistryPolicy) -> dict[str, Any] | None:
    """The competent ombudsman as the redirection notice names it (from the screening directory when configured)."""
    if not ombudsman_id or policy.screening is None:
        return {"id": ombudsman_id} if ombudsman_id else None
    for entry in policy.screening.directory:
        if entry.id == ombudsman_id:
            return {"id": entry.id, "name": entry.name(complaint.complainant_language), **entry.contact()}
    raise Conflict(f"unknown ombudsman {ombudsman_id!r} (not in the directory)")


async def _move(tx: Transaction, complaint: Complaint, command: Transition, policy: RegistryPolicy,
                clock: RegisterClock) -> None:
    """The status change of `command` and the notice it calls for."""
    before = state_of(complaint)
    entry = change_status(tx, complaint, command.target, command.actor, command.reason, clock=clock, policy=policy,
                          outcome=command.outcome, category=command.category, reasons=command.reasons,
                          redirect_to=command.redirect_to,
                          details={"redirect_to": command.redirect_to} if command.redirect_to else None)
    # Leaving a pause ends the requests for information that waited (issue 15), with the days paused.
    await information_requests.pause_ended(tx, complaint, before, actor=command.actor, clock=clock)
    if command.target == Status.INADMISSIBLE:
        await request_notice(tx, complaint, "inadmissible", entry.change_id,
                             {"reasons": list(command.reasons), "explanation": command.reason})
    elif command.target == Status.REDIRECTED:
        await request_notice(tx, complaint, "redirected", entry.change_id,
                             {"ombudsman": _ombudsman(command.redirect_to, complaint, policy),
                              "explanation": command.reason})
    elif command.target == Status.ANSWERED:
        await request_notice(tx, complaint, "final_answer", entry.change_id,
                             {"answer": command.answer_text or "", "explanation": command.reason})


async def transition(command: Transition, *, uow: UnitOfWork, policy: RegistryPolicy, clock: RegisterClock
                     ) -> Complaint:
    """A staff status change; inadmissible, redirected and answered also ask the notifier for their notice."""
    _check_notice_needs(command.target, command.redirect_to, command.answer_text)
    return await on_complaint(uow, command.number,
                               lambda tx, complaint: _move(tx, complaint, command, policy, clock))


async def decide_screening(command: DecideScreening, *, uow: UnitOfWork, policy: RegistryPolicy,
                           clock: RegisterClock) -> Complaint:
    """Staff confirm the screening proposal (no decision given) or override it; an inadmissible or redirect
    decision changes the status and asks for its notice. The proposal is read in the same transaction."""

    async def decide(tx: Transaction, complaint: Complaint) -> None:
        proposal = complaint.screening_proposal or {}
        reasons = (list(command.reasons) if command.reasons is not None
                   else [r["code"] for r in proposal.get("reasons", [])])
        admissible = not reasons if command.admissible is None else command.admissible
        if admissible:
            store_state(complaint, state_of(complaint).admitted())
            complaint.updated_at = clock.now()
            log_change(tx, complaint, "screening", command.actor, command.reason,
                       {"admissible": True, "proposal_admissible": proposal.get("admissible")}, at=clock.now())
            return
        if not reasons:
            raise Conflict("an inadmissibility decision must state its reasons")
        ombudsman = command.redirect_to
        if ombudsman is None and "out_of_competence" in reasons and proposal.get("redirect"):
            ombudsman = proposal["redirect"][0]["id"]
        if ombudsman:
            move = Transition(complaint.number, Status.REDIRECTED.value, command.actor, command.reason,
                              redirect_to=ombudsman)
        else:
            move = Transition(complaint.number, Status.INADMISSIBLE.value, command.actor, command.reason,
                              reasons=tuple(reasons))
        await _move(tx, complaint, move, policy, clock)

    return await on_complaint(uow, command.number, decide)


async def extend(command: Extend, *, uow: UnitOfWork, policy: RegistryPolicy, clock: RegisterClock) -> Complaint:
    """The one extension of the answer deadline, announced to the citizen before the original deadline."""

    async def apply(tx: Transaction, complaint: Complaint) -> None:
        try:
            state = state_of(complaint).extended(clock.today(), policy.rules)
        except deadlines.ExtensionRefused as error:
            raise Conflict(str(error)) from error
        previous = complaint.answer_due
        store_state(complaint, state)
        complaint.updated_at = clock.now()
        entry = log_change(tx, complaint, "extension", command.actor, command.reason,
                           {"from": previous, "to": state.answer_due}, at=clock.now())
        await request_notice(tx, complaint, "extension", entry.change_id,
                             {"previous_due": previous, "answer_due": state.answer_due,
                              "explanation": command.reason})

    return await on_complaint(uow, command.number, apply)


# --- the file's facts ------------------------------------------------------------------------------------------------
# A handler is a staff address, indexed for the back office's filter (migration 0010): bounded so that an index entry
# stays within PostgreSQL's B-tree limit (~2.7 kB) even in four-byte characters, far above any real address.
HANDLER_MAX = 600
# A theme is an id of the screening configuration; indexed too (migration 0010).
THEME_MAX = 200


async def assign(command: Assign, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """Assign the file to a handler; None or a blank one leaves it unassigned (the "unassigned" filter's NULL)."""
    handler = (command.handler or "").strip() or None
    if handler is not None and len(handler) > HANDLER_MAX:
        raise Conflict(f"a handler is named in at most {HANDLER_MAX} characters")

    async def apply(tx: Transaction, complaint: Complaint) -> None:
        previous, complaint.handler = complaint.handler, handler
        complaint.updated_at = clock.now()
        log_change(tx, complaint, "assignment", command.actor, command.reason,
                   {"from": previous, "to": handler}, at=clock.now())

    return await on_complaint(uow, command.number, apply)


async def classify(command: Classify, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """Confirm or override the kind, theme and service suggested by screening, and the data-protection flag."""
    if command.kind is not None and command.kind not in {k.value for k in Kind}:
        raise Conflict(f"unknown kind {command.kind!r}; expected one of: {', '.join(k.value for k in Kind)}")
    if command.service is not None and fit(Complaint.service_concerned, command.service) != command.service:
        raise Conflict(f"a service is named in at most {Complaint.service_concerned.type.length} characters")
    if command.theme is not None and len(command.theme) > THEME_MAX:
        raise Conflict(f"a theme is named in at most {THEME_MAX} characters")

    async def apply(tx: Transaction, complaint: Complaint) -> None:
        changes = set_changed(complaint, {"kind": command.kind, "theme": command.theme,
                                       "service_concerned": command.service,
                                       "data_protection": command.data_protection})
        if changes:
            complaint.updated_at = clock.now()
            log_change(tx, complaint, "classification", command.actor, command.reason, changes, at=clock.now())

    return await on_complaint(uow, command.number, apply)


async def record_facts(command: RecordFacts, *, uow: UnitOfWork, policy: RegistryPolicy, clock: RegisterClock
                       ) -> Complaint:
    """Record the facts screening weighs (facts date, last step, first-line contact) and screen again with them:
    the new proposal is what staff then confirm or override (`DecideScreening`)."""
    unknown = sorted(set(command.forget) - set(FACTS))
    if unknown:
        raise Conflict(f"unknown fact {', '.join(unknown)}; expected one of: {', '.join(FACTS)}")

    async def apply(tx: Transaction, complaint: Complaint) -> None:
        values = {name: None if name in command.forget else getattr(command, name) for name in FACTS}
        apply_facts(tx, complaint, values, actor=command.actor, reason=command.reason, policy=policy, clock=clock,
                    forget=command.forget)

    return await on_complaint(uow, command.number, apply)


async def add_correspondent(command: AddCorrespondent, *, uow: UnitOfWork, clock: RegisterClock) -> bool:
    """Accept the address as a party of the case (its follow-ups then attach); False if it already was one."""
    address = sender_address(command.email)
    if address is None:
        raise Conflict("a correspondent needs an email address")

    async def admit(tx: Transaction) -> bool:
        complaint = await locked_complaint(tx, command.number)
        added = await tx.add_party(complaint.id, address, "correspondent", command.actor)
        if added:
            log_change(tx, complaint, "correspondent_added", command.actor, command.reason, {"email": address},
                       at=clock.now())
        return added

    return await uow.run(f"complaint {command.number}", admit)
