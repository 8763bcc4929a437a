"""The actions of the file page: each POSTed form becomes one command of `services.registry.commands`, handled by
`Registry.handle` with the acting person's identity as `actor` (never a form field).

`ACTIONS` maps the last segment of `/backoffice/files/{number}/actions/{name}` to an `Action`: the permission it
needs, how its form becomes a command (`FormError` for a form the page refuses before the register sees it, named by
a message of `messages/file.toml`), and whether it is irreversible — those are done only once the person confirmed
them (`confirmed=1`, after a confirmation step that repeats the form): closing, inadmissible, withdrawn, a redirect,
a screening decision that ends the file, the final answer, the extension (announced to the citizen, once) and a
merge. `other_file` names the second file a merge or a link changes (the page checks it is visible too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.registry import commands
from services.registry.access.accounts import normalise_email
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.pages.file_access import is_handler
from services.registry.vocabulary import Status

TEXT_MAX_CHARS = 20_000  # a note, a recommendation, a message to the citizen (the notifier's bound for messages)
LINE_MAX_CHARS = 500  # a reason, a handler, a number


class FormError(ValueError):
    """A form the page refuses; `key` names its message in `messages/file.toml`."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class ActionInput:
    """One submitted form of the file page, with who submits it and the file as it was read."""

    number: str
    fields: dict[str, list[str]]
    principal: Principal
    complaint: Any

    def text(self, name: str, *, limit: int = LINE_MAX_CHARS) -> str:
        values = self.fields.get(name) or [""]
        value = values[0].replace("\r\n", "\n").strip()
        if len(value) > limit:
            raise FormError("file.error.too_long")
        return value

    def line(self, name: str) -> str | None:
        """A one-line value (reason, address, number), None when blank."""
        return " ".join(self.text(name).split()) or None

    def required(self, name: str, *, limit: int = LINE_MAX_CHARS, error: str = "file.error.required") -> str:
        value = self.text(name, limit=limit)
        if not value:
            raise FormError(error)
        return value

    def values(self, name: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in self.fields.get(name, ()) if v.strip())

    def flag(self, name: str) -> bool:
        return self.text(name) in {"1", "on", "true", "yes"}

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def reason(self) -> str | None:
        return self.line("reason")


@dataclass(frozen=True)
class Action:
    permission: Permission
    build: Callable[[ActionInput], commands.Command[Any]]
    irreversible: Callable[[ActionInput], bool] = lambda _: False
    # What the page says once done, from the command's result: a key under `file.done.` among `outcomes` (None: the
    # action's own name). Only for commands that may do less than asked (no link to revoke, nobody to send one to).
    outcome: Callable[[Any], str] | None = None
    outcomes: tuple[str, ...] = ()

    def done(self, name: str, result: Any) -> str:
        return self.outcome(result) if self.outcome is not None else name


def _request_key(form: ActionInput) -> str:
    """The form's own key (a hidden field written when the page was rendered), so that submitting the same form twice
    (a double click, a reload) adds the note or sends the message once; scoped to the person. A fresh key if none."""
    key = form.text("request_key")
    if not re.fullmatch(r"[0-9a-f]{16,64}", key):
        key = commands.new_request_key()
    return f"{form.principal.account_id}:{key}"


# --- assignment, status, screening, classification ------------------------------------------------------------------
def _assign(form: ActionInput) -> commands.Command[Any]:
    principal, complaint = form.principal, form.complaint
    if form.flag("to_me"):
        # Taking a file: an unassigned one with TAKE_FILES; someone else's only with REASSIGN.
        if complaint.handler and not is_handler(principal, complaint) and not principal.can(Permission.REASSIGN):
            raise FormError("file.error.assigned_to_other")
        return commands.Assign(form.number, principal.actor, form.actor, form.reason)
    if not principal.can(Permission.REASSIGN):
        raise FormError("file.error.reassign_permission")
    handler = form.line("handler")
    # Stored as the account's address is (lower case): `is_handler` and the deadline digests compare it so.
    return commands.Assign(form.number, normalise_email(handler) if handler else None, form.actor, form.reason)


ENDING_TARGETS = frozenset({Status.CLOSED, Status.INADMISSIBLE, Status.WITHDRAWN, Status.REDIRECTED, Status.ANSWERED})


def _transition(form: ActionInput) -> commands.Command[Any]:
    return commands.Transition(form.number, form.required("target"), form.actor, form.reason,
                               outcome=form.line("outcome"), category=form.line("category"),
                               reasons=form.values("reasons"))


def _ends_file(form: ActionInput) -> bool:
    return form.text("target") in ENDING_TARGETS


def _screening(form: ActionInput) -> commands.Command[Any]:
    decision = form.required("decision")
    if decision == "confirm":
        return commands.DecideScreening(form.number, form.actor, form.reason)
    if decision == "admissible":
        return commands.DecideScreening(form.number, form.actor, form.reason, admissible=True)
    if decision == "inadmissible":
        return commands.DecideScreening(form.number, form.actor, form.reason, admissible=False,
                                        reasons=form.values("reasons"), redirect_to=form.line("redirect_to"))
    raise FormError("file.error.required")


def _screening_ends_file(form: ActionInput) -> bool:
    proposal = form.complaint.screening_proposal or {}
    decision = form.text("decision")
    return decision == "inadmissible" or (decision == "confirm" and not proposal.get("admissible", True))


def _classify(form: ActionInput) -> commands.Command[Any]:
    extra: dict[str, Any] = {}
    if "data_protection_shown" in form.fields or "data_protection" in form.fields:
        # Whether a file is a data-protection complaint is the DPO's call alone (it hides it from everyone else).
        if not form.principal.can(Permission.READ_DATA_PROTECTION):
            raise FormError("file.error.dpo_only")
        extra["data_protection"] = form.flag("data_protection")
    return commands.Classify(form.number, form.actor, form.reason, kind=form.line("kind"), theme=form.line("theme"),
                             service=form.line("service"), **extra)


def _date(form: ActionInput, name: str) -> date | None:
    value = form.text(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FormError("file.error.date") from None


def _facts(form: ActionInput) -> commands.Command[Any]:
    complaint = form.complaint
    facts_date, last_step_date = _date(form, "facts_date"), _date(form, "last_step_date")
    contacted = {"yes": True, "no": False}.get(form.text("first_line_contacted"))
    # A fact on file whose field was emptied (or set back to "unknown") becomes unknown again.
    forget = tuple(name for name, value in (("facts_date", facts_date), ("last_step_date", last_step_date),
                                            ("first_line_contacted", contacted))
                   if value is None and getattr(complaint, name) is not None)
    return commands.RecordFacts(form.number, form.actor, form.reason, facts_date=facts_date,
                                last_step_date=last_step_date, first_line_contacted=contacted, forget=forget)


def _redirect(form: ActionInput) -> commands.Command[Any]:
    ombudsman = form.required("redirect_to", error="file.error.ombudsman_required")
    return commands.Transition(form.number, Status.REDIRECTED.value, form.actor, form.reason, redirect_to=ombudsman)


# --- deadlines, notes, correspondence --------------------------------------------------------------------------------
def _extend(form: ActionInput) -> commands.Command[Any]:
    return commands.Extend(form.number, form.actor, form.reason)


def _recommendation(form: ActionInput) -> commands.Command[Any]:
    return commands.AddRecommendation(form.number, form.required("text", limit=TEXT_MAX_CHARS), form.actor)


def _note(form: ActionInput) -> commands.Command[Any]:
    return commands.AddNote(form.number, form.required("text", limit=TEXT_MAX_CHARS), form.actor,
                            request_key=_request_key(form))


def _correspondent(form: ActionInput) -> commands.Command[Any]:
    return commands.AddCorrespondent(form.number, form.required("email"), form.actor, form.reason)


def _answer(form: ActionInput) -> commands.Command[Any]:
    text = form.required("text", limit=TEXT_MAX_CHARS)
    if form.text("kind") == "final":
        return commands.Transition(form.number, Status.ANSWERED.value, form.actor, form.reason, answer_text=text)
    return commands.SendMessage(form.number, text, form.actor, language=form.line("language"),
                                request_key=_request_key(form))


def _final_answer(form: ActionInput) -> bool:
    return form.text("kind") == "final"


# --- merges and links ------------------------------------------------------------------------------------------------
def _other(form: ActionInput, name: str) -> str:
    other = form.required(name, error="file.error.number_required").upper()
    if other == form.number:
        raise FormError("file.error.same_file")
    return other


def _merge(form: ActionInput) -> commands.Command[Any]:
    return commands.MergeComplaints(form.number, _other(form, "target"), form.actor, form.reason)


def _undo_merge(form: ActionInput) -> commands.Command[Any]:
    return commands.UndoMerge(form.number, form.actor, form.reason)


def _link(form: ActionInput) -> commands.Command[Any]:
    return commands.LinkComplaints(form.number, _other(form, "other"), form.actor, form.reason)


def _unlink(form: ActionInput) -> commands.Command[Any]:
    return commands.UnlinkComplaints(form.number, _other(form, "other"), form.actor, form.reason)


# --- the citizen's personal link (issue 17) --------------------------------------------------------------------------
def _link_reason(form: ActionInput) -> str:
    """The reason, required: it is the change log's only word on why a citizen lost their link or got a new one."""
    return " ".join(form.required("reason", error="file.error.reason_required").split())


def _revoke_links(form: ActionInput) -> commands.Command[Any]:
    return commands.RevokeCitizenLinks(form.number, form.actor, _link_reason(form))


def _send_link(form: ActionInput) -> commands.Command[Any]:
    return commands.IssueCitizenLink(form.number, form.actor, _link_reason(form))


def _links_revoked(revoked: Any) -> str:
    return "revoke_links" if revoked else "revoke_links_none"


def _link_sent(sent: Any) -> str:
    # False: links are off or the file has no address; the earlier links were revoked all the same.
    return "send_link" if sent else "send_link_unreachable"


def other_file(command: commands.Command[Any], complaint: Any) -> str | None:
    """The second file a command changes (merge: the target; link, unlink: the other; undoing a merge: the file it
    was merged into), or None. The page checks that the person may see it too, and audits the change under both."""
    if isinstance(command, commands.MergeComplaints):
        return command.target
    if isinstance(command, (commands.LinkComplaints, commands.UnlinkComplaints)):
        return command.other
    if isinstance(command, commands.UndoMerge):
        return getattr(complaint, "merged_into", None)
    return None


def _always(_form: ActionInput) -> bool:
    return True


ACT = Permission.ACT_ON_FILES
ACTIONS: dict[str, Action] = {
    "assign": Action(Permission.TAKE_FILES, _assign),
    "transition": Action(ACT, _transition, _ends_file),
    "screening": Action(ACT, _screening, _screening_ends_file),
    "classify": Action(ACT, _classify),
    "facts": Action(ACT, _facts),
    "redirect": Action(ACT, _redirect, _always),
    "extend": Action(ACT, _extend, _always),
    "recommendation": Action(ACT, _recommendation),
    "note": Action(ACT, _note),
    "correspondent": Action(ACT, _correspondent),
    "answer": Action(ACT, _answer, _final_answer),
    "merge": Action(ACT, _merge, _always),
    "undo_merge": Action(ACT, _undo_merge),
    "link": Action(ACT, _link),
    "unlink": Action(ACT, _unlink),
    # Both reach the citizen (a link stops working, a mail goes out) and cannot be taken back: confirmed first.
    "revoke_links": Action(ACT, _revoke_links, _always, _links_revoked, ("revoke_links_none",)),
    "send_link": Action(ACT, _send_link, _always, _link_sent, ("send_link_unreachable",)),
}
# Every `file.done.<key>` an action may end with (the page's `?done=` after a plain POST names one of them).
DONE_KEYS = frozenset(ACTIONS) | {key for action in ACTIONS.values() for key in action.outcomes}
