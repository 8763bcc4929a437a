"""Use cases of the notifier, one per incoming event: turn it into notices in the outbox, or flag an address.

Each handler is idempotent (the outbox key) and raises `PermanentError` for an event that can never be rendered
(unknown kind, missing context, template error) so that it goes to the dead-letter stream instead of looping.

`preview` answers what a requested notice would look like through the very path a real one takes (draft, route,
`render_draft`), reading the recipient's flag but storing, sending and publishing nothing; what would make the
real notice fail becomes the preview's `error`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog
from jinja2 import TemplateError

from services.notifier.citizen_link import acknowledgment_with_link, opened
from services.notifier.headers import UnsafeAddress, clean_address, clean_header_text, clean_message_id, new_message_id
from services.notifier.letters import build_letter_pdf
from services.notifier.models import NoticeChannel, NoticeStatus
from services.notifier.notices import (
    SETTLES_DEADLINE,
    ContextMismatch,
    LimitWindow,
    NoticeDraft,
    UnknownNoticeKind,
    draft_acknowledgment,
    draft_deadline_warnings,
    draft_requested_notice,
)
from services.notifier.outbox import CountedNotices, Outbox, RecipientFacts, SettledRisk
from services.notifier.quota import limit_key
from services.notifier.reasons import ReasonCode, reason
from services.notifier.rendering import RenderedNotice, TemplateRenderer, pick_language
from services.notifier.routing import NoticeLimits, route_notice
from services.notifier.settings import NotifierSettings
from services.notifier.suppression import SuppressionRules
from shared.events import (
    ComplaintRegistered,
    DeadlineAlert,
    DeliveryFailed,
    NoticePreview,
    NoticePreviewRequest,
    NoticeRequested,
    PreviewProblem,
)
from shared.messaging import PermanentError
from shared.sealing import LinkSeal

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def organisation_variables(settings: NotifierSettings, language: str) -> dict[str, str]:
    """The organisation as a notice in `language` names it (per-language names fall back to the French ones)."""
    return {
        "name": settings.localized("organisation_name", language),
        "signature": settings.organisation_signature,
        "postal_address": settings.organisation_postal_address,
        "phone": settings.organisation_phone,
        "website": settings.organisation_website,
        "logo_url": settings.organisation_logo_url,
        "second_line_name": settings.localized("second_line_name", language),
        "second_line_contact": settings.localized("second_line_contact", language),
    }


def suppression_rules(settings: NotifierSettings) -> SuppressionRules:
    return SuppressionRules.build(
        own_addresses=[settings.sender_address, *settings.complaint_addresses],
        own_domains=[],
        staff_addresses=settings.staff_addresses,
        staff_domains=settings.staff_domains,
    )


class NotifierHandlers:
    def __init__(
        self,
        settings: NotifierSettings,
        outbox: Outbox,
        renderer: TemplateRenderer,
        on_new_notice: Callable[[], None] = lambda: None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.renderer = renderer
        self.rules = suppression_rules(settings)
        self.limits = NoticeLimits(follow_ups_per_day=settings.follow_up_notices_per_day,
                                   acknowledgments_per_24_hours=settings.acknowledgment_limit_per_recipient)
        self.on_new_notice = on_new_notice
        self.clock = clock
        # Opens the citizen's links the registry sealed (issue 17, `citizen_link.py`).
        self.seal = LinkSeal(settings.citizen_link_key_file or settings.var_dir / "citizen-link.key")

    async def complaint_registered(self, event: ComplaintRegistered) -> None:
        await self.write(acknowledgment_with_link(draft_acknowledgment(event, self.settings.default_language),
                                                  event.citizen_link, self.seal))

    async def notice_requested(self, event: NoticeRequested) -> None:
        await self.write(opened(draft_requested_notice(event, self.settings.default_language,
                                                       self.settings.staff_language), self.seal))

    async def preview(self, request: NoticePreviewRequest) -> NoticePreview:
        """The notice a `NoticeRequested` with these fields would send now (nothing stored, sent or published)."""
        context = {**request.context, **({"language": request.language} if request.language else {})}
        requested = NoticeRequested(request_key="preview", complaint_number=request.complaint_number,
                                    notice_kind=request.notice_kind, recipient=request.recipient, context=context)
        try:
            draft = draft_requested_notice(requested, self.settings.default_language, self.settings.staff_language)
        except UnknownNoticeKind as error:
            return NoticePreview.failure(PreviewProblem.UNKNOWN_KIND, str(error))
        except ContextMismatch as error:
            return NoticePreview.failure(PreviewProblem.INVALID_CONTEXT, error.problems)
        address = self._recipient_address(draft)
        # The route decides the channel, and the channel the text ("reply to this message" or "quote the number").
        route = route_notice(draft, address, await self.outbox.recipient_facts(address), self.rules, self.limits)
        try:
            rendered = self.render_draft(draft, route.channel)
        except TemplateError as error:
            return NoticePreview.failure(PreviewProblem.FAILED, f"template {draft.language}/{draft.kind}: {error}")
        return NoticePreview(subject=rendered.subject, text=rendered.text, html=rendered.html,
                             language=rendered.language)

    async def deadline_alert(self, event: DeadlineAlert) -> None:
        await self._remember_risk(event)
        drafts = draft_deadline_warnings(event, self.settings.supervisor_address, self.settings.staff_language)
        if not drafts:
            log.warning("deadline_alert.nobody_to_warn", complaint_number=event.complaint_number)
        for draft in drafts:
            await self.write(draft)

    async def _remember_risk(self, event: DeadlineAlert) -> None:
        """Keep the alert for the handler's daily digest (a file without a handler address has no digest)."""
        handler = event.handler
        try:
            handler_email = clean_address(handler.email).lower() if handler and handler.email else None
        except UnsafeAddress:
            handler_email = None
        if handler is None or handler_email is None:
            return
        await self.outbox.record_risk({
            "complaint_number": event.complaint_number,
            "deadline_kind": event.deadline_kind,
            "due": event.due,
            "state": "missed" if event.event_type == "deadline.missed" else "approaching",
            "handler_email": handler_email,
            "handler_name": clean_header_text(handler.name, 300),
            "language": pick_language(handler.language, self.settings.staff_language),
            "subject_line": clean_header_text(event.subject_line, 500),
            "updated_at": self.clock(),
            "cleared_at": None,
        })

    async def delivery_failed(self, event: DeliveryFailed) -> None:
        """A bounce of one of our notices: the address is flagged, the notice marked failed (and reported)."""
        message_id = clean_message_id(event.original_message_id)
        notice = await self.outbox.by_message_id(message_id) if message_id else None
        if notice is None:
            log.info("delivery_failed.not_ours", original_message_id=event.original_message_id)
            return
        try:
            failed = clean_address(event.failed_recipient).lower() if event.failed_recipient else None
        except UnsafeAddress:
            failed = None
        if not notice.recipient or failed != notice.recipient.lower():
            # Only a report about the very address the notice went to may flag it: a report naming another
            # address (or none) flags nothing, whoever sent it (issue 5).
            log.warning("delivery_failed.recipient_mismatch", complaint_number=notice.complaint_number,
                        notification_key=notice.notification_key)
            return
        why = reason(ReasonCode.BOUNCE, clean_header_text(f"{event.status or ''} {event.diagnostic or ''}", 500))
        # Read again under the notice's lock: its file may have been erased since it was read above.
        if not await self.outbox.flag_recipient(notice.id, why, self.clock()):
            log.info("delivery_failed.notice_erased", complaint_number=notice.complaint_number,
                     notification_key=notice.notification_key)
            return
        if notice.status != NoticeStatus.FAILED:
            await self.outbox.mark_failed(notice.id, why)
            self.on_new_notice()
        log.warning("address.flagged_undeliverable", complaint_number=notice.complaint_number,
                    notification_key=notice.notification_key)

    async def write(self, draft: NoticeDraft) -> bool:
        """Render and store one notice unless it is already in the outbox. True when stored now."""
        address = self._recipient_address(draft)
        now = self.clock()

        def compose(facts: RecipientFacts) -> dict[str, Any]:
            return self._compose(draft, address, facts, now)

        # A limit counts the recipient's mailbox (any spelling of it) in the quota of the sender answered.
        counted = CountedNotices(str(draft.kind), self._window_start(draft.limit_window, now),
                                 limit_key(address, draft.quota)) if draft.limit_window and address else None
        # The notice that answers a deadline clears its file-at-risk in the transaction that records it.
        settles = SettledRisk(draft.complaint_number, SETTLES_DEADLINE[draft.kind], now) \
            if draft.kind in SETTLES_DEADLINE else None
        try:
            stored = await self.outbox.record(draft.notification_key, address, compose, counted, settles)
        except TemplateError as error:
            raise PermanentError(f"template {draft.language}/{draft.kind}: {error}") from error
        if stored:
            log.info("notice.recorded", complaint_number=draft.complaint_number, notice_kind=str(draft.kind),
                     notification_key=draft.notification_key)
            self.on_new_notice()
        else:
            log.info("notice.already_recorded", complaint_number=draft.complaint_number,
                     notification_key=draft.notification_key)
        return stored

    @staticmethod
    def _recipient_address(draft: NoticeDraft) -> str | None:
        if not draft.recipient_email:
            return None
        try:
            return clean_address(draft.recipient_email).lower()
        except UnsafeAddress:
            log.warning("notice.unusable_address", complaint_number=draft.complaint_number)
            return None

    def _window_start(self, window: LimitWindow, now: datetime) -> datetime:
        """Where a limit's counting period starts: the follow-up limit counts per calendar day of the service
        (Brussels midnight, not UTC's); the acknowledgment limit over the last 24 hours."""
        if window is LimitWindow.LAST_24_HOURS:
            return now - timedelta(hours=24)
        local_now = now.astimezone(self.settings.timezone)
        return local_now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)

    def render_draft(self, draft: NoticeDraft, channel: NoticeChannel, at: datetime | None = None) -> RenderedNotice:
        """The notice's subject, text and HTML as `channel` carries it: what is stored, and what a preview shows.

        Its legal sentences are those in force on the day it is written (`at`, the service's calendar: the date a
        letter bears): a notice tells the reader the law that applies when they read it and act; a change of law
        applies to notices written from its date, and each notice records the version it carried."""
        organisation = organisation_variables(self.settings, draft.language)
        variables = {
            **draft.variables,
            "org": organisation,
            "case_number": draft.complaint_number,
            "recipient_name": clean_header_text(draft.recipient_name, 120),
            "channel": channel.value,
        }
        # Links only from configuration (the organisation, the ombudsman directory), never from a sender's text.
        trusted = [*organisation.values(), *(str(draft.variables.get(name) or "") for name in draft.trusted_variables)]
        written_on = (at or self.clock()).astimezone(self.settings.timezone).date()
        return self.renderer.render(draft.template_name, draft.language, variables, link_sources=trusted,
                                    legal_on=written_on)

    def _compose(self, draft: NoticeDraft, address: str | None, facts: RecipientFacts, now: datetime) -> dict[str, Any]:
        route = route_notice(draft, address, facts, self.rules, self.limits)
        rendered = self.render_draft(draft, route.channel, now)
        pdf = None
        if route.channel is NoticeChannel.LETTER:
            pdf = build_letter_pdf(
                organisation_name=self.settings.localized("organisation_name", draft.language),
                organisation_address=self.settings.organisation_postal_address,
                recipient_name=draft.recipient_name,
                postal_address=draft.postal_address or "",
                reference=draft.complaint_number,
                letter_date=now.astimezone(self.settings.timezone).date(),
                language=draft.language,
                subject=rendered.subject,
                body=rendered.text,
            )
        return {
            "complaint_number": draft.complaint_number,
            "notice_kind": str(draft.kind),
            "channel": route.channel.value,
            "recipient": address or "",
            "limit_key": limit_key(address, draft.quota) if address else None,
            "recipient_name": clean_header_text(draft.recipient_name, 300),
            "postal_address": draft.postal_address or "",
            "language": rendered.language,
            "subject": rendered.subject,
            "body_text": rendered.text,
            "body_html": rendered.html,
            # What reproduces the notice as sent besides its stored text (issue 15): its template and legal notice.
            "template": draft.template_name,
            "legal_notice_version": rendered.legal_notice_version,
            "letter_pdf": pdf,
            "message_id": new_message_id(self.settings.message_id_domain),
            "in_reply_to": clean_message_id(draft.in_reply_to),
            "references": " ".join(ref for ref in (clean_message_id(value) for value in draft.references) if ref),
            "status": route.status.value,
            "status_reason": route.reason,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
            "give_up_at": now + timedelta(seconds=self.settings.relay_retry_deadline_seconds),
            "created_at": now,
            "sent_at": None,
            # Email outcomes are reported (sent or failed, also when refused at once); letters and suppressed
            # notices have nothing to report on the notifier's stream.
            "outcome_published": route.status not in (NoticeStatus.PENDING, NoticeStatus.FAILED),
            "printed_by": None,
        }
