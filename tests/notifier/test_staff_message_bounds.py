"""The text of a staff message is bounded and cleaned before it is rendered (pure: `shared.events.clean_staff_text`,
which the registry applies too, and the notifier's notices module)."""

from __future__ import annotations

import pytest

from services.notifier.notices import ContextMismatch, NoticeKind, UnknownNoticeKind, draft_requested_notice
from shared.events import (
    STAFF_MESSAGE_MAX_CHARS,
    STAFF_MESSAGE_MAX_LINES,
    NoticeRequested,
    Party,
    clean_staff_text,
)


def draft(context: dict, kind: str = "staff_message", language: str | None = "nl"):
    return draft_requested_notice(NoticeRequested(
        request_key="k", complaint_number="MED-2026-00001", notice_kind=kind,
        recipient=Party(name="Jan", email="jan@example.be", language=language), context=context), "fr")


def test_line_breaks_are_normalised_and_control_characters_dropped():
    made = draft({"text": "Ligne un\r\nLigne\x00 deux\x1b[31m\rLigne trois\u2028quatre\x0cfin\t!  \n\n\n"})
    assert made.kind is NoticeKind.STAFF_MESSAGE
    assert made.variables["message_text"] == "Ligne un\nLigne deux[31m\nLigne trois\nquatre\nfin\t!"


@pytest.mark.parametrize("text", ["", "   \n\t\r\n", "\x00\x07"])
def test_a_blank_message_is_refused(text: str):
    with pytest.raises(ContextMismatch) as refused:
        draft({"text": text})
    assert refused.value.problems == "text: Value error, a staff message needs its text"


def test_a_missing_text_is_refused_naming_the_field():
    with pytest.raises(ContextMismatch) as refused:
        draft({"language": "fr"})
    assert refused.value.problems.startswith("text: ")


def test_length_and_lines_are_bounded_at_their_limits():
    assert len(draft({"text": "a" * STAFF_MESSAGE_MAX_CHARS}).variables["message_text"]) == STAFF_MESSAGE_MAX_CHARS
    with pytest.raises(ContextMismatch, match="characters"):
        draft({"text": "a" * (STAFF_MESSAGE_MAX_CHARS + 1)})
    lines = "\n".join(["x"] * STAFF_MESSAGE_MAX_LINES)
    assert draft({"text": lines}).variables["message_text"].count("\n") == STAFF_MESSAGE_MAX_LINES - 1
    with pytest.raises(ContextMismatch, match="lines") as refused:
        draft({"text": lines + "\nx"})
    assert "xxx" not in refused.value.problems  # the staff text itself is never repeated in the reason


@pytest.mark.parametrize(("chosen", "recipient", "expected"), [
    (None, "nl", "nl"), ("de", "nl", "de"), ("EN-gb", None, "en"), ("it", "nl", "nl"), ("it", "it", "fr"),
])
def test_the_language_staff_chose_wins_over_the_recipients(chosen, recipient, expected):
    assert draft({"text": "Bonjour", "language": chosen}, language=recipient).language == expected


def test_the_language_is_not_a_template_variable():
    assert set(draft({"text": "Bonjour", "language": "de"}).variables) == {"subject_line", "message_text"}


def test_unknown_and_unrequestable_kinds_are_refused():
    with pytest.raises(UnknownNoticeKind):
        draft({"text": "x"}, kind="love_letter")
    with pytest.raises(UnknownNoticeKind):
        draft({"text": "x"}, kind="acknowledgment")


def test_what_the_shared_cleaning_accepts_the_notifier_renders_as_is():
    """A text the registry accepted (through the same function) is never refused or changed by the notifier."""
    for raw in ("a\u2028" * (STAFF_MESSAGE_MAX_LINES - 1) + "a", "  Bonjour\r\n\r\n\tMerci  \x07"):
        accepted = clean_staff_text(raw)
        assert draft({"text": accepted}).variables["message_text"] == accepted == clean_staff_text(accepted)
    with pytest.raises(ValueError, match="lines"):
        clean_staff_text("a\u2028" * STAFF_MESSAGE_MAX_LINES + "a")
