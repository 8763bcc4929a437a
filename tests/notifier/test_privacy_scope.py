"""The notifier's part of an erasure keeps to its scope (issue 16): erasing a correspondent (or a held message)
blanks only the notices that went to that person, never the file's complainant's — whose pending acknowledgment
still goes out —, while erasing the whole file blanks and withdraws them all. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, select

from services.notifier.models import Notice, NoticeStatus
from services.notifier.wiring import MIGRATIONS
from services.notifier.privacy import NotifierPrivacy
from shared.database import create_engine, upgrade_to_head
from shared.events import PersonalDataErased

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
NUMBER = "MED-2026-00042"


def notice(key: str, recipient: str, status: NoticeStatus) -> dict[str, object]:
    return {"notification_key": key, "complaint_number": NUMBER, "notice_kind": "acknowledgment", "channel": "email",
            "recipient": recipient, "recipient_name": f"Name of {recipient}", "language": "fr",
            "subject": f"About {recipient}", "body_text": f"Dear {recipient}", "message_id": f"<{key}@x>",
            "status": status.value, "next_attempt_at": NOW, "give_up_at": NOW + timedelta(days=3),
            "created_at": NOW, "attempts": 0, "outcome_published": False}


async def test_a_correspondents_erasure_leaves_the_complainants_notices(database_url) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        async with engine.begin() as connection:
            await connection.execute(insert(Notice), [
                notice("complainant-sent", "jeanne@example.org", NoticeStatus.SENT),
                notice("complainant-pending", "jeanne@example.org", NoticeStatus.PENDING),
                notice("correspondent-sent", "Lawyer@Example.org", NoticeStatus.SENT)])
        privacy = NotifierPrivacy(engine)
        await privacy.erase(PersonalDataErased(
            complaint_number=NUMBER, erasure_id="e1", mode="erased", reason="request", scope="messages",
            recipient_hashes=(PersonalDataErased.address_hash("lawyer@example.org"),)))

        async def rows() -> dict[str, tuple[str, str]]:
            async with engine.connect() as connection:
                found = (await connection.execute(select(Notice.notification_key, Notice.recipient,
                                                         Notice.status))).all()
            return {key: (recipient, status) for key, recipient, status in found}

        after = await rows()
        assert after["correspondent-sent"] == ("", NoticeStatus.SENT.value)
        assert after["complainant-sent"] == ("jeanne@example.org", NoticeStatus.SENT.value)
        assert after["complainant-pending"] == ("jeanne@example.org", NoticeStatus.PENDING.value)  # still goes out

        await privacy.erase(PersonalDataErased(complaint_number=NUMBER, erasure_id="e2", mode="erased",
                                               reason="request"))
        whole = await rows()
        assert {recipient for recipient, _status in whole.values()} == {""}
        assert whole["complainant-pending"][1] == NoticeStatus.SUPPRESSED.value
    finally:
        await engine.dispose()
