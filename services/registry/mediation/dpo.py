"""The DPO's notice of a data-protection complaint (issue 15), pure: which `NoticeRequested` tells the Data
Protection Officer that a file was registered for them.

The DPO is the one of the screening rules (`[dpo] email`, `screening_config.DpoContact`), the same person the file
is assigned to: one place configures the DPO, for routing and for notices. The notice carries the number and the
file's dates only — no name, address, subject or text: the DPO reads those in the register, where the reading is
audited. Its request key is the file's number, so a file is announced once however often its registration is
replayed or its event redelivered (the notifier sends each key once, JetStream drops a repeated id).
"""

from __future__ import annotations

from datetime import date

from services.registry.screening_config import DpoContact
from shared.events import NoticeRequested, Party

DPO_NOTICE = "dpo_notification"


def dpo_notification(number: str, legal_start: date, answer_due: date | None, dpo: DpoContact | None
                     ) -> NoticeRequested | None:
    """The notice to the DPO of a data-protection file just registered; None when no DPO address is configured.
    Its language is the notifier's staff language (none is named here)."""
    if dpo is None or not dpo.email:
        return None
    return NoticeRequested(
        request_key=f"{DPO_NOTICE}:{number}",
        complaint_number=number,
        notice_kind=DPO_NOTICE,
        recipient=Party(email=dpo.email),
        context={"legal_start": legal_start.isoformat(),
                 "answer_due": answer_due.isoformat() if answer_due else None},
    )
