"""What a rule is and what it reads (pure): `Rule`, its `Outcome`, and the `Facts` of one message.

A rule's check takes the facts and returns why it hits (a short technical English text, e.g. the header value
that decided), or None. Facts that cost work (the delivery-status reading, the report reading, the forwarded
original) are computed once, on first use, so that a rule the chain skips costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from enum import StrEnum
from functools import cached_property

from services.intake.message.automation import fold
from services.intake.message.bounces import DeliveryNotice, read_delivery_notice
from services.intake.message.context import ParseContext, Person, is_staff
from services.intake.message.forwarding import ForwardedOriginal, find_forwarded_original
from services.intake.message.mime import MimeContent
from services.intake.message.regex_bounds import bounded_subject
from services.intake.message.reports import MachineReport, find_report


class Outcome(StrEnum):
    """What a hit decides. The first three say what kind of message it is: the first rule of those kinds that hits
    decides, and the chain skips the other rules of those kinds (a bounce is not also an auto-reply)."""

    BOUNCE = "bounce"
    AUTOMATED = "automated"
    FORWARD = "forward"
    ACKNOWLEDGMENT_SUPPRESSED = "acknowledgment-suppressed"

    @property
    def decides_kind(self) -> bool:
        return self in {Outcome.BOUNCE, Outcome.AUTOMATED, Outcome.FORWARD}


@dataclass(frozen=True)
class Rule:
    """One named rule: `name` is unique and stable (it is stored with each message); `order` is its place in the
    chain (lower first); `check` returns why it hits, or None; `not_after` lists the outcomes after which the rule
    does not run (a rule of a kind never runs once the kind is decided)."""

    name: str
    order: int
    outcome: Outcome
    description: str
    check: Callable[[Facts], str | None] = field(repr=False)
    not_after: frozenset[Outcome] = frozenset()

    def skipped_after(self, decided: Outcome | None) -> bool:
        if decided is None:
            return False
        return self.outcome.decides_kind or decided in self.not_after


@dataclass
class Facts:
    """One message as the rules read it: headers with lower-case names (first occurrence, decoded), the MIME
    content, the text, the subject as written, the From author (before any forward is unwrapped)."""

    message: Message
    headers: Mapping[str, str]
    content: MimeContent
    text: str
    subject: str
    sender: Person
    message_id: str | None
    context: ParseContext

    @cached_property
    def folded_subject(self) -> str:
        """The subject bounded (regex_bounds) and case-folded, as the subject patterns read it."""
        return fold(bounded_subject(self.subject))

    @cached_property
    def delivery_notice(self) -> DeliveryNotice | None:
        return read_delivery_notice(self.message, self.headers, self.content, self.sender.email)

    @cached_property
    def report(self) -> MachineReport | None:
        return find_report(self.message, self.headers, self.content)

    @cached_property
    def from_staff(self) -> bool:
        return is_staff(self.sender, self.context)

    @cached_property
    def forwarded_original(self) -> ForwardedOriginal | None:
        """The citizen's original a staff member forwarded: only from staff, and only when its own sender is not
        staff (a colleague's mail forwarded is not a complaint's original)."""
        if not self.from_staff:
            return None
        original = find_forwarded_original(self.content, self.text)
        if original is None or not original.sender.email:
            return None
        if is_staff(Person(email=original.sender.email), self.context):
            return None
        return original
