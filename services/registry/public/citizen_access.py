"""The citizen's personal link to their file (issue 17): tokens, what the link shows, and how the register knows a
message came through it. Pure rules first, then the few reads and writes inside a register transaction.

**Tokens.** A token is a selector (64 random bits, hex: finds the row) and a verifier (192 random bits, base64url:
proves the link) — `shared.events.citizen_token_parts`. The register stores the selector and the SHA-256 of the
verifier (`citizen_links`), never the token; a presented verifier is hashed and compared with `hmac.compare_digest`
(constant time), so neither a lookup by the secret part nor a comparison that stops at the first difference tells
an attacker how close they are. The token leaves the registry only sealed for the notifier (`shared.sealing`).

**Validity.** A link works while it is not revoked (staff, `RevokeCitizenLinks`) and until `link_days_after_close`
days after the file reached its final status (`complaints.closed_at`); a reopened file makes it work again. A merged
file's link shows nothing (its thread lives on in another file, whose own link its citizen has).

**What it shows** (`citizen_thread`): the citizen's own messages (the complainant's address; a letter's complainant
has none, nor do their letters) and the notices sent to that address — never internal notes (not in the thread),
never the administration's messages nor our requests to it (`administrations.hidden_from_citizen`), never a
correspondent's messages, read receipts or auto-replies, never the screening proposal, the handler, the change log.

**A message sent through the link** (`vouch`): intake's page publishes `MessageReceived(channel=web_form)` with the
file's number as candidate and `citizen_link_proof` = selector + HMAC-SHA256(key = the verifier's hash, message key).
The registry recomputes the HMAC from the hash it stores, in constant time, and checks the link is still valid and
belongs to that file; only then is the message the complainant's (sender = the file's complainant, verdict
`verified`, evidence "personal link"), and the usual follow-up rules attach it (or reopen, or start a linked file).
A mail cannot carry the proof: intake's mail path never sets the field, and the proof needs the token. A proof that
does not verify (revoked meanwhile, forged) holds the message for staff (`citizen_link_invalid`).

**A link quoted back** (`without_own_links`): a citizen who answers our acknowledgment quotes it, link included, and
whoever reads the register would then hold a working link to the file. Every message the register takes has our own
links (the public web's `my-file/` and `survey/` addresses with a token) replaced by a placeholder in its subject and
texts before it is routed, registered or held. The raw original in intake's object store keeps the mail as it came
(it is the evidence); a link rewritten by a mail filter (URL-encoded inside another address) is not recognised.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select

from services.registry.mediation.administrations import hidden_from_citizen
from services.registry.models import CitizenLink, Complaint, ThreadMessage, filed_in
from services.registry.repository import Transaction
from services.registry.vocabulary import Status
from shared.events import (
    CITIZEN_SELECTOR_CHARS,
    CITIZEN_VERIFIER_CHARS,
    CitizenFile,
    CitizenThreadEntry,
    MessageReceived,
    Party,
    SenderVerdict,
    citizen_proof_mac,
    citizen_token_parts,
    citizen_verifier_hash,
)
from shared.sealing import LinkSeal
from shared.settings import LANGUAGES

# What a thread entry shows of a message's text (the page is not the archive: staff's file is).
MAX_TEXT_CHARS = 20_000
# Why a message sent through a link that no longer verifies is held (`followups.confirmation_reason` keeps the
# code in the held event; the holding pen shows it as "needs confirmation").
INVALID_LINK_REASON = "citizen_link_invalid"
LINK_PATH = "my-file/"
SURVEY_PATH = "survey/"
# What a message's text shows in place of one of our links (stored: the same in the office's four languages).
LINK_REMOVED = ("[lien personnel retiré · persoonlijke link verwijderd · persönlicher Link entfernt · "
                "personal link removed]")


@dataclass(frozen=True)
class CitizenPolicy:
    """The registry's settings of the personal link and the survey (`RegistrySettings.citizen_policy`)."""

    public_url: str = ""  # the public web's address (ends with "/"); empty: no links are issued
    link_days_after_close: int = 180
    resends_per_day: int = 3
    survey_kinds: tuple[str, ...] = ()  # kinds whose closing invites to the survey; empty: no survey
    survey_days: int = 60  # how long a survey link may be answered
    survey_window_days: int = 14  # only files closed this recently are invited (not a whole history at once)
    seal: LinkSeal | None = None

    @property
    def issues_links(self) -> bool:
        return bool(self.public_url) and self.seal is not None


@dataclass(frozen=True)
class NewToken:
    token: str
    selector: str
    verifier_hash: str


def new_token() -> NewToken:
    selector = secrets.token_hex(CITIZEN_SELECTOR_CHARS // 2)
    verifier = secrets.token_urlsafe(24)  # 24 bytes: 32 base64url characters, 192 bits
    return NewToken(selector + verifier, selector, citizen_verifier_hash(verifier))


def verifier_matches(stored_hash: str, verifier: str) -> bool:
    """Whether `verifier` hashes to `stored_hash`, compared in constant time."""
    return hmac.compare_digest(stored_hash.encode("ascii"), citizen_verifier_hash(verifier).encode("ascii"))


def link_expires_on(complaint: Complaint, policy: CitizenPolicy, zone: ZoneInfo) -> date | None:
    """The last day the link works: `link_days_after_close` after the day the file was closed; None while open."""
    if complaint.closed_at is None:
        return None
    return complaint.closed_at.astimezone(zone).date() + timedelta(days=policy.link_days_after_close)


def link_usable(link: CitizenLink, complaint: Complaint, policy: CitizenPolicy, today: date, zone: ZoneInfo) -> bool:
    if link.revoked_at is not None or complaint.status == Status.MERGED:
        return False
    expires = link_expires_on(complaint, policy, zone)
    return expires is None or today <= expires


def _bounded(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + " […]"


def citizen_thread(messages: Iterable[ThreadMessage], complainant_email: str | None,
                   zone: ZoneInfo) -> list[CitizenThreadEntry]:
    """The entries of a thread the file's citizen may see, oldest first, timed in the service's zone (the page shows
    their days as the file's other dates; see the module's docstring)."""
    own = (complainant_email or "").strip().lower() or None
    shown: list[CitizenThreadEntry] = []
    for message in messages:
        if message.party is not None or message.automated or message.disposition_of:
            continue
        if hidden_from_citizen(party=message.party, citizen_visible=message.citizen_visible,
                               notice_kind=message.notice_kind):
            continue
        if message.direction == "in" and (message.sender_email or None) == own:
            shown.append(CitizenThreadEntry(
                direction="in", at=message.occurred_at.astimezone(zone), subject=message.subject_line,
                text=_bounded(message.new_text if message.new_text else message.body),
                attachments=tuple(str(a.get("filename") or "") for a in message.attachments or ())))
        elif (message.direction == "out" and message.message_key.startswith("out:") and own
              and (message.recipient or "").strip().lower() == own):
            shown.append(CitizenThreadEntry(direction="out", at=message.occurred_at.astimezone(zone),
                                            subject=message.subject_line, notice_kind=message.notice_kind))
    return sorted(shown, key=lambda entry: entry.at)


def citizen_file(complaint: Complaint, thread: Iterable[ThreadMessage], policy: CitizenPolicy,
                 zone: ZoneInfo) -> CitizenFile:
    """The file as its citizen's link shows it: no handler, no screening, no notes, no other party."""
    return CitizenFile(
        found=True, number=complaint.number, kind=complaint.kind, status=complaint.status,
        received_on=complaint.legal_start, acknowledgment_due=complaint.acknowledgment_due,
        answer_due=complaint.answer_due, answer_extended=bool(complaint.answer_extended),
        waiting_for_citizen=complaint.status == Status.WAITING_FOR_CITIZEN,
        answered_on=complaint.answered_at.astimezone(zone).date() if complaint.answered_at else None,
        closed_on=complaint.closed_at.astimezone(zone).date() if complaint.closed_at else None,
        language=complaint.complainant_language,
        messages=tuple(citizen_thread(thread, complaint.complainant_email, zone)),
        link_expires_on=link_expires_on(complaint, policy, zone))


@lru_cache(maxsize=8)
def _own_links(public_url: str) -> re.Pattern[str]:
    """Our links under `public_url`: a literal address first, so the search stays linear on any text."""
    paths = "|".join(re.escape(path) for path in (LINK_PATH, SURVEY_PATH))
    token = f"[0-9a-f]{{{CITIZEN_SELECTOR_CHARS}}}[A-Za-z0-9_-]{{{CITIZEN_VERIFIER_CHARS}}}"
    return re.compile(f"{re.escape(public_url)}(?:{paths}){token}(?:\\?lang=[a-z]{{2}})?", re.IGNORECASE)


def without_own_links(event: MessageReceived, policy: CitizenPolicy) -> MessageReceived:
    """`event` with our personal and survey links replaced by `LINK_REMOVED` in its subject and texts (see the
    module's docstring); unchanged when links are off or none is there."""
    if not policy.public_url:
        return event
    pattern = _own_links(policy.public_url)
    changed = {name: pattern.sub(LINK_REMOVED, value) for name in ("subject_line", "text", "new_text")
               if isinstance(value := getattr(event, name), str) and pattern.search(value)}
    return event.model_copy(update=changed) if changed else event


# --- inside a register transaction -----------------------------------------------------------------------------------
def issue_link(tx: Transaction, complaint: Complaint, policy: CitizenPolicy, *, issued_by: str,
               now: datetime) -> str | None:
    """A new personal link for `complaint` (its row staged), sealed for the notifier; None when links are off or
    nobody could receive it (an automated message, no address at all)."""
    if not policy.issues_links or complaint.automated:
        return None
    if not complaint.complainant_email and not complaint.complainant_postal_address:
        return None
    token = new_token()
    tx.stage(CitizenLink(**filed_in(complaint), selector=token.selector, verifier_hash=token.verifier_hash,
                         issued_by=issued_by, issued_at=now))
    assert policy.seal is not None
    return policy.seal.seal(public_link(policy, LINK_PATH, token.token, complaint))


def public_link(policy: CitizenPolicy, path: str, token: str, complaint: Complaint) -> str:
    """The page's address for `token`, in the citizen's language when known (the page's own default otherwise)."""
    language = complaint.complainant_language
    return f"{policy.public_url}{path}{token}" + (f"?lang={language}" if language in LANGUAGES else "")


def earlier_working_links(link: CitizenLink) -> Select[tuple[int]]:
    """The ids of the file's links issued before `link` (by id: the order they were issued in, whatever the clocks
    of several registry processes say) and not revoked: what `link`, once opened, replaces."""
    return select(CitizenLink.id).where(CitizenLink.complaint_id == link.complaint_id,
                                        CitizenLink.revoked_at.is_(None), CitizenLink.id < link.id)


async def link_of(tx: Transaction, token: str, *, for_update: bool = False
                  ) -> tuple[CitizenLink, Complaint] | None:
    """The link row of a presented token and its file, when the token's verifier matches (nothing else is read)."""
    parts = citizen_token_parts(token)
    if parts is None:
        return None
    selector, verifier = parts
    query = select(CitizenLink, Complaint).join(Complaint, Complaint.id == CitizenLink.complaint_id) \
        .where(CitizenLink.selector == selector)
    row = (await tx.session.execute(query.with_for_update() if for_update else query)).first()
    if row is None or not verifier_matches(row[0].verifier_hash, verifier):
        return None
    return row[0], row[1]


async def recent_requests(tx: Transaction, complaint_id: int, issued_by: str, since: datetime) -> int:
    return int((await tx.session.execute(
        select(func.count()).select_from(CitizenLink)
        .where(CitizenLink.complaint_id == complaint_id, CitizenLink.issued_by == issued_by,
               CitizenLink.issued_at >= since))).scalar_one())


async def vouch(tx: Transaction, event: MessageReceived, policy: CitizenPolicy, *, today: date,
                zone: ZoneInfo) -> MessageReceived:
    """`event` as the register takes it: a message without a citizen-link proof unchanged; one whose proof verifies
    becomes the file's complainant's, verified; one whose proof does not is held for staff."""
    if event.citizen_link_proof is None:
        return event
    selector, _, mac = event.citizen_link_proof.partition(".")
    row = (await tx.session.execute(
        select(CitizenLink, Complaint).join(Complaint, Complaint.id == CitizenLink.complaint_id)
        .where(CitizenLink.selector == selector[:CITIZEN_SELECTOR_CHARS]))).first()
    valid = row is not None and hmac.compare_digest(
        citizen_proof_mac(row[0].verifier_hash, event.message_key).encode("ascii"), mac.encode("ascii", "replace"))
    if valid and row is not None and link_usable(row[0], row[1], policy, today, zone):
        complaint = row[1]
        return event.model_copy(update={
            "sender": Party(name=complaint.complainant_name, email=complaint.complainant_email,
                            postal_address=complaint.complainant_postal_address,
                            language=event.language or complaint.complainant_language),
            "candidate_case_numbers": (complaint.number,),
            "sender_verdict": SenderVerdict.VERIFIED,
            "sender_evidence": f"personal link of file {complaint.number} (issue 17), checked by the registry",
            "needs_confirmation": event.needs_confirmation,
        })
    return event.model_copy(update={"needs_confirmation": INVALID_LINK_REASON,
                                    "sender_evidence": "personal link that did not verify"})
