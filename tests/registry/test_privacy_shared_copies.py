"""An erasure erases only what is the person's alone (issue 16, security review): an attachment is stored once per
content, so a document that another file also holds (the same decision letter sent by two citizens, or by one in
two files, one under a legal hold) is named in neither `PersonalDataErased` nor erased from the object store; and
the erased file's personal links stop working. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from sqlalchemy import select

from services.registry.commands import AnonymiseFile
from services.registry.models import CitizenLink
from shared.events import AttachmentRef
from tests.registry.conftest import received


def document(content: bytes, name: str) -> AttachmentRef:
    digest = hashlib.sha256(content).hexdigest()
    return AttachmentRef(filename=name, content_type="application/pdf", size=len(content), sha256=digest,
                         object_name=f"sha256-{digest}")


async def test_an_attachment_another_file_holds_is_not_erased_with_this_one(registry_on_db) -> None:
    registry, _published, clock = registry_on_db
    shared = document(b"%PDF-1.4 the same decision", "decision.pdf")
    own = document(b"%PDF-1.4 only in the first file", "mine.pdf")
    first = await registry.on_message_received(received(key="first", email="alix@example.be", subject="Une",
                                                        at=clock.now).model_copy(
        update={"attachments": (shared, own)}))
    await registry.on_message_received(received(key="second", email="bert@example.be", name="Bert", subject="Deux",
                                                at=clock.now).model_copy(update={"attachments": (shared,)}))
    async with registry.store.transaction() as tx:
        complaint = await tx.complaint_by_number(first.number)
        tx.session.add(CitizenLink(complaint_id=complaint.id, selector="0123456789abcdef", verifier_hash="0" * 64,
                                   issued_by="test", issued_at=datetime(2026, 11, 24, tzinfo=timezone.utc)))

    erased = await registry.handle(AnonymiseFile(first.number, "dpo@med.be", "request"))

    assert erased.attachment_objects == (own.object_name,)  # the shared document stays for the other file
    async with registry.store.transaction() as tx:
        links = (await tx.session.execute(select(CitizenLink))).scalars().all()
    assert [link.revoked_at is not None for link in links] == [True]
