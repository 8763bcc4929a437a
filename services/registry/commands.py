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
    from shared.events import SurveyAnswers, SurveyState
    from services.registry.handlers.ports import Outcome
    from services.registry.models import Recommendation
    from services.registry.models import LegalHold  # issue 16
    from shared.events import PersonalDataErased  # issue 16
    from services.registry.models import Complaint, PositionRequest

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
    """A recommendation or improvement action drawn from the complaint (counted in the annual indicators): a
    `Recommendation` of the file (`IssueRecommendation`), addressed by default to the file's service."""

    number: str
    text: str
    actor: str
    _: KW_ONLY
    addressee: str | None = None
    administration_id: int | None = None
    review_date: date | None = None
    request_key: str = field(default_factory=lambda: new_request_key())


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


# --- the administration concerned (issue 15) -------------------------------------------------------------------------
@dataclass(frozen=True)
class SaveAdministration(Command[int]):
    """Add an entry of the directory of administrations, or change the one with the same `key`; returns its id.
    Checked by `administrations.checked_entry` (refused with every problem named)."""

    key: str
    name: str
    actor: str
    _: KW_ONLY
    emails: tuple[str, ...] = ()
    postal_address: str | None = None
    language: str = "fr"
    contact_person: str = ""
    answer_days: int = 30
    active: bool = True


@dataclass(frozen=True)
class RequestPosition(Command["PositionRequest"]):
    """Ask the administration `administration_id` for its position on the file: the `position_request` notice in its
    language (by email, else a printed letter), its addresses admitted as parties of this file only, its own
    deadline (its answer days) and a reminder `reminder_days` before it (the registry's setting). Once per
    `request_key`."""

    number: str
    administration_id: int
    text: str
    actor: str
    _: KW_ONLY
    reminder_days: int = 7
    request_key: str = field(default_factory=new_request_key)


@dataclass(frozen=True)
class ShareAdministrationMessage(Command[bool]):
    """Staff decide whether the citizen may see an administration's message of the file (by its thread key); False
    if it already was so."""

    number: str
    message_key: str
    visible: bool
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class SweepPositionRequests(Command[int]):
    """The watcher's sweep: the reminders and "no answer" warnings of position requests due on `today`, each once,
    `page` requests per transaction; returns how many went out."""

    today: date
    page: int = 200


# --- recommendations followed up (issue 15) --------------------------------------------------------------------------
@dataclass(frozen=True)
class IssueRecommendation(Command["Recommendation"]):
    """A recommendation to an administration: of the file `number`, or general (`number` None). `addressee` is its
    name as written; `administration_id` its entry in the directory of administrations, whose name is taken when
    `addressee` is blank. `issued_on`: the day it was made (default today); `review_date`: when to look again at
    what became of it (the handler is reminded then). Added once per `request_key`."""

    number: str | None
    text: str
    actor: str
    _: KW_ONLY
    addressee: str | None = None
    administration_id: int | None = None
    issued_on: date | None = None
    review_date: date | None = None
    request_key: str = field(default_factory=new_request_key)


@dataclass(frozen=True)
class FollowUpRecommendation(Command["Recommendation"]):
    """What the administration did with it: accepted, implemented, or refused (with its reason)."""

    recommendation_id: int
    status: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class SetRecommendationReview(Command["Recommendation"]):
    """Set (or clear, None) the date the recommendation is reviewed on; a new date gets its own reminder."""

    recommendation_id: int
    review_date: date | None
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class RemindRecommendationReviews(Command[int]):
    """The watcher's sweep: the review reminders due on `today`, each once per review date, `page` recommendations
    per transaction; returns how many reminders went out."""

    today: date
    page: int = 200



# --- requests for information to the citizen (issue 15) --------------------------------------------------------------
@dataclass(frozen=True)
class RequestInformation(Command["Complaint"]):
    """Ask the citizen for what is missing (`missing`: codes of `information_requests.MissingItem`, and/or staff's
    `text`): the `information_request` notice in the citizen's language, and the answer deadline paused until the
    citizen replies (an acknowledged file goes to in_review first; a file already waiting keeps its pause). Once per
    `request_key`."""

    number: str
    missing: tuple[str, ...]
    text: str
    actor: str
    reason: str | None = None
    _: KW_ONLY
    request_key: str = field(default_factory=new_request_key)


@dataclass(frozen=True)
class SweepInformationRequests(Command[int]):
    """The watcher's sweep: the reminders and closings for lack of answer due on `today`, each at most once, the
    open requests read a page at a time; returns how many went out."""

    today: date


# --- the citizen's personal link and the satisfaction survey (issue 17) ---------------------------------------------
@dataclass(frozen=True)
class ResendCitizenLink(Command[bool]):
    """The citizen's "send me my link again": a new personal link to the file's own address when `email` is that
    address, the file's link may still work and fewer than the day's allowance were sent; True when one was sent
    (the public page says the same either way)."""

    number: str
    email: str


@dataclass(frozen=True)
class SupersedeCitizenLinks(Command[int]):
    """A citizen opened the link `link_id`: the file's links issued before it stop working (a link the citizen asked
    for again replaces the lost one once it is used, not when anyone asks: someone who knows the number and the
    address must not be able to cut the citizen off). Returns how many were revoked."""

    link_id: int


@dataclass(frozen=True)
class RevokeCitizenLinks(Command[int]):
    """Staff revoke every personal link of a file (a lost or shared mail); returns how many were working."""

    number: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class IssueCitizenLink(Command[bool]):
    """Staff revoke the file's links and send a new one to its citizen; False when nobody can receive it."""

    number: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class InviteToSurveys(Command[int]):
    """The watcher's sweep: a survey invitation for each recently closed file not yet invited; returns how many."""

    today: date


@dataclass(frozen=True)
class AnswerSurvey(Command["SurveyState"]):
    """A citizen's answers through their survey link, stored once (pseudonymised, `survey.py`)."""

    token: str = field(repr=False)
    answers: "SurveyAnswers"


# --- privacy: retention, erasure, legal holds, rectification (issue 16, `privacy/`) ----------------------------------
@dataclass(frozen=True)
class PlaceLegalHold(Command["LegalHold"]):
    """Suspend the file's retention and erasure (litigation, an inspection...) until `ReleaseLegalHold`; a file
    already held keeps its hold (returned as it is)."""

    number: str
    actor: str
    reason: str


@dataclass(frozen=True)
class ReleaseLegalHold(Command[bool]):
    """Release the file's hold (the row stays, with who released it and why); False if it held none."""

    number: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class AnonymiseFile(Command["PersonalDataErased | None"]):
    """Replace the file's identity and free texts by placeholders, keeping what the statistics need, and publish
    `PersonalDataErased` in the same transaction; `reason` "retention" (the schedule's `rule`) or "request" (a
    citizen's erasure: mode "erased"). None: already anonymised. Refused (Conflict) while a legal hold is on."""

    number: str
    actor: str
    reason: str = "retention"
    rule: str | None = None


@dataclass(frozen=True)
class EraseCorrespondent(Command["PersonalDataErased | None"]):
    """A citizen's erasure on a file where they are only a correspondent: their messages' identity and texts and
    their admission as a party are removed, the complainant's data stay. None: nothing of theirs was left."""

    number: str
    email: str
    actor: str


@dataclass(frozen=True)
class PurgeHeldMessage(Command["PersonalDataErased | None"]):
    """Delete a message of the holding pen (never attached past the schedule, or a citizen's erasure), and publish
    `PersonalDataErased` for its copies. None: already gone."""

    held_id: int
    actor: str
    reason: str = "retention"


@dataclass(frozen=True)
class RectifyContact(Command["Complaint"]):
    """Correct the complainant's contact details (GDPR art. 16); None leaves a field as it is, "" clears it. The
    change log and the audit trail name the fields changed, never their values."""

    number: str
    actor: str
    reason: str | None = None
    _: KW_ONLY
    name: str | None = None
    email: str | None = None
    postal_address: str | None = None
    language: str | None = None
