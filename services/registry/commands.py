"""What staff, and the registry's own deadline watcher, ask of the register: one frozen command per action.

Each command is handled by exactly one handler (`handlers.HANDLERS`), through `Registry.handle(command)`; the HTTP API
and the CLI only build commands. `Command[R]` says what handling it returns: the complaint as changed, whether a
correspondent was added, what became of a held message, how many alerts went out.

`actor` is who decides (recorded in the change log with `reason`, why); case numbers are normalised by the handler.

A command that would add something each time it is handled (a note, a message to the citizen, a manual complaint)
carries a `request_key`, a fresh one per command object unless the caller gives one (a form's hidden field, so that
a second submission of the same form is the same request): handling the same request again changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import KW_ONLY, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from services.registry.handlers.ports import Outcome
    from services.registry.models import Complaint

ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class Command(Generic[ResultT]):
    """A request to change the register; `ResultT` is what its handler returns."""


# --- staff actions on a complaint ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transition(Command["Complaint"]):
    """A status change. Inadmissible, redirected and answered also ask the notifier for their notice to the
    citizen, which is why they need their reasons, the competent ombudsman and the answer's text."""

    number: str
    target: str
    actor: str
    reason: str | None = None
    _: KW_ONLY
    outcome: str | None = None
    category: str | None = None
    reasons: tuple[str, ...] = ()
    redirect_to: str | None = None
    answer_text: str | None = None


@dataclass(frozen=True)
class Assign(Command["Complaint"]):
    number: str
    handler: str | None
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class Classify(Command["Complaint"]):
    """Confirm or override the kind, theme and service screening suggested, and whether the file is a
    data-protection complaint (only a DPO sees those); None: unchanged."""

    number: str
    actor: str
    reason: str | None = None
    _: KW_ONLY
    kind: str | None = None
    theme: str | None = None
    service: str | None = None
    data_protection: bool | None = None


@dataclass(frozen=True)
class DecideScreening(Command["Complaint"]):
    """Confirm the screening proposal (no decision given) or override it; inadmissible or redirected changes the
    status and asks for its notice."""

    number: str
    actor: str
    reason: str | None = None
    _: KW_ONLY
    admissible: bool | None = None
    reasons: tuple[str, ...] | None = None
    redirect_to: str | None = None


# The facts screening weighs that staff record (`RecordFacts`), by their names on the complaint, in the order shown.
FACTS = ("facts_date", "last_step_date", "first_line_contacted")


@dataclass(frozen=True)
class RecordFacts(Command["Complaint"]):
    """The facts screening weighs that staff establish (from the citizen, a letter, a call): the date of the facts,
    of the last step the citizen took since, and whether the service concerned was contacted first. None leaves a
    fact as it is; a name in `forget` (facts_date, last_step_date, first_line_contacted) makes it unknown again.
    The screening proposal is made again with them."""

    number: str
    actor: str
    reason: str | None = None
    _: KW_ONLY
    facts_date: date | None = None
    last_step_date: date | None = None
    first_line_contacted: bool | None = None
    forget: tuple[str, ...] = ()


@dataclass(frozen=True)
class Extend(Command["Complaint"]):
    """The one extension of the answer deadline, announced to the citizen before the original deadline."""

    number: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class AddRecommendation(Command["Complaint"]):
    """A recommendation or improvement action drawn from the complaint (counted in the annual indicators)."""

    number: str
    text: str
    actor: str


@dataclass(frozen=True)
class AddCorrespondent(Command[bool]):
    """Admit an address as a party of the case (its mail then attaches); False if it already was one."""

    number: str
    email: str
    actor: str
    reason: str | None = None


def new_request_key() -> str:
    return uuid.uuid4().hex


# --- the back office (issue 13) --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AddNote(Command["Complaint"]):
    """An internal note of staff on the file: never sent to anyone, never part of the thread."""

    number: str
    text: str
    actor: str
    _: KW_ONLY
    request_key: str = field(default_factory=new_request_key)


@dataclass(frozen=True)
class MergeComplaints(Command["Complaint"]):
    """Merge `source` into `target` (returned): the source's thread moves into the target's file, its parties become
    the target's, and the source ends as "merged" (undone by `UndoMerge`, which restores exactly the state before)."""

    source: str
    target: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class UndoMerge(Command["Complaint"]):
    """Undo the merge of `source` (returned, restored): its thread, its parties' admission and its status back."""

    source: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class LinkComplaints(Command["Complaint"]):
    """Link two related files (each shows the other's number); linking them again changes nothing."""

    number: str
    other: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class UnlinkComplaints(Command["Complaint"]):
    number: str
    other: str
    actor: str
    reason: str | None = None


# Channels of a complaint staff enter by hand (`RegisterManual`): received by phone, at the counter, or by post
# and typed in rather than scanned.
MANUAL_CHANNELS = ("phone", "in_person", "letter")


@dataclass(frozen=True)
class RegisterManual(Command["Complaint"]):
    """A complaint received by phone, in person or by post, entered by staff: screened and numbered like mail,
    its legal start `received_on` (a day in the register's time zone, not in the future); acknowledged by email
    when an address is given, else by a printed letter when a postal address is."""

    channel: str
    actor: str
    _: KW_ONLY
    name: str = ""
    email: str | None = None
    postal_address: str | None = None
    language: str | None = None
    subject: str = ""
    body: str = ""
    received_on: date
    kind: str = "complaint"
    request_key: str = field(default_factory=new_request_key)


@dataclass(frozen=True)
class SendMessage(Command["Complaint"]):
    """A message of staff to the citizen (the notifier's `staff_message` notice, in `language` or the
    complainant's), sent once per `request_key`, recorded in the file's history."""

    number: str
    text: str
    actor: str
    language: str | None = None
    _: KW_ONLY
    request_key: str = field(default_factory=new_request_key)


# --- the holding pen -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttachHeld(Command["Outcome"]):
    """File a held message in a case; `add_correspondent` also admits its sender (who then hears back)."""

    held_id: int
    number: str
    actor: str
    _: KW_ONLY
    add_correspondent: bool = False


@dataclass(frozen=True)
class RegisterHeld(Command["Outcome"]):
    """Register a held message as a new complaint."""

    held_id: int
    actor: str


@dataclass(frozen=True)
class DiscardHeld(Command["Outcome"]):
    held_id: int
    actor: str


# --- the deadline watcher --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RaiseDeadlineAlerts(Command[int]):
    """Publish the deadline alerts now due for one complaint, each once (`lead_days`: days before a deadline)."""

    complaint_id: int
    lead_days: tuple[int, ...]
