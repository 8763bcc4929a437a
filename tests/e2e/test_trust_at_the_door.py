"""Issue 10's evidence end to end: each attack of tests/e2e/attacks/ sent over real SMTP into the whole system (real
NATS, the three services, a real relay catching every mail), then what the citizen, the file and the outbox show.

The deployment trusts `mx.mediation.example.be` as its MX's authserv-id (RFC 8601) and `mediation.example.be` as
its staff domain. A citizen, victim@example.org, files a genuine complaint (DMARC pass recorded by that MX); then a
stranger, eve@example.com, tries to speak in her name, to plant a complaint through a forged staff forward, and
machines send their reports. Expected values come from the scenario, not from the implementation: who may receive
mail, which file each message may enter, and why the others are held.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.stack import COMPLAINT_ADDRESS, InProcessStack, StackConfig, start_catcher
from tests.registry.access.helpers import token_headers_for_database

# The supervisor of these checks handles no file: each read through the API states why (issue 13).
READ = {"reason": "end-to-end check"}

ATTACKS = Path(__file__).parent / "attacks"
TRUSTED_MX = "mx.mediation.example.be"
VICTIM = "victim@example.org"
EVE = "eve@example.com"

GENUINE_COMPLAINT = (
    f"Authentication-Results: {TRUSTED_MX}; spf=pass smtp.mailfrom=example.org; "
    "dkim=pass header.d=example.org header.s=s1; dmarc=pass header.from=example.org\r\n"
    f"From: Victime <{VICTIM}>\r\nTo: {COMPLAINT_ADDRESS}\r\nSubject: Plainte : allocations suspendues\r\n"
    "Message-ID: <victim-genuine@example.org>\r\nDate: Fri, 04 Dec 2026 08:00:00 +0100\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour, mes allocations sont suspendues depuis deux mois.\r\n"
)

# Messages that must never produce a mail to anybody (In-Reply-To of any mail we send must not name them).
NEVER_ANSWERED = {
    "encoded_crlf_followup.eml": "<attack-followup@example.com>",
    "dmarc_fail_followup.eml": "<attack-dmarc-fail@example.com>",
    "unauthenticated_staff_forward.eml": "<attack-staff-forward@example.com>",
    "feedback_report.eml": "<arf-1@isp.example>",
    "read_receipt.eml": "<mdn-1@example.org>",
    "tls_report.eml": "<tlsrpt-1@provider.example>",
    "vacation_reply.eml": "<vacation-1@example.be>",
    "suppress_auto_response.eml": "<xars-1@example.fr>",
}


def attack(name: str, year: int, original_id: str) -> bytes:
    text = (ATTACKS / name).read_bytes().replace(b"MED-YEAR-", f"MED-{year}-".encode())
    text = text.replace(b"ORIGINAL-ID", original_id.encode())
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def send_raw(port: int, envelope_sender: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail(envelope_sender, [COMPLAINT_ADDRESS], raw)


async def wait_until(check, timeout: float = 30.0):  # noqa: ANN001, ANN201 - a coroutine function returning truthy
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.2)


async def drain(catcher, quiet: float = 3.0) -> list:  # noqa: ANN001
    """Every mail the relay caught until none came for `quiet` seconds."""
    mails = []
    while True:
        try:
            mails.append(await catcher.next_mail(timeout=quiet))
        except (asyncio.TimeoutError, TimeoutError):
            return mails


def run_cli(config: StackConfig, *arguments: str) -> str:
    environment = {**os.environ, **config.environment()}
    return subprocess.run([sys.executable, "-m", "ombudsdesk", *arguments], env=environment, capture_output=True,
                          text=True, timeout=60, check=True).stdout


@pytest.fixture
async def stack(nats_server, tmp_path):
    catcher = await start_catcher(tmp_path / "outbox")
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var",
                         registry_database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
                         notifier_database_url=f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}",
                         relay_port=catcher.port)
    services = InProcessStack(config, {"authserv_ids": [TRUSTED_MX], "staff_domains": ["mediation.example.be"]})
    await services.start()
    try:
        yield config, catcher
    finally:
        await services.stop()
        await catcher.stop()


async def test_nobody_is_believed_on_their_word(stack):
    config, catcher = stack
    year = datetime.now(ZoneInfo("Europe/Brussels")).year
    number = f"MED-{year}-00001"
    # The staff API needs an identity (issue 13): a personal token of a supervisor, made in the registry's database.
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{config.api_port}", timeout=10,
                            headers=await token_headers_for_database(config.registry_database_url))

    await asyncio.to_thread(send_raw, config.smtp_port, VICTIM, GENUINE_COMPLAINT.encode())
    genuine_ack = await catcher.next_mail(timeout=20)
    assert genuine_ack["To"].addresses[0].addr_spec == VICTIM

    async def acknowledgment_recorded() -> bool:
        # The registry records the notice when the notifier reports it sent, a moment after the relay has it; a
        # read receipt can only be matched to a notice the file knows.
        file = (await api.get(f"/complaints/{number}", params=READ)).json()
        return any(m["direction"] == "out" for m in file.get("thread", []))

    assert await wait_until(acknowledgment_recorded, 20)

    order = ["encoded_crlf_from.eml", "display_name_address.eml", "encoded_crlf_followup.eml",
             "forged_authentication_results.eml", "dmarc_fail_followup.eml", "unauthenticated_staff_forward.eml",
             "verified_staff_forward.eml", "feedback_report.eml", "read_receipt.eml", "tls_report.eml",
             "vacation_reply.eml", "suppress_auto_response.eml", "terminal_escapes.eml"]
    for name in order:
        raw = attack(name, year, genuine_ack["Message-ID"])
        envelope_sender = "" if name in {"feedback_report.eml", "tls_report.eml"} else EVE
        await asyncio.to_thread(send_raw, config.smtp_port, envelope_sender, raw)

    async def settled() -> tuple[list, list] | None:
        complaints = (await api.get("/complaints")).json()
        held = (await api.get("/holding-pen")).json()
        return (complaints, held) if len(complaints) >= 6 and len(held) >= 6 else None

    found = await wait_until(settled, 60)
    assert found, "the register never reached 6 complaints and 6 held messages"
    mails = [genuine_ack, *await drain(catcher)]
    complaints, held = (await api.get("/complaints")).json(), (await api.get("/holding-pen")).json()
    files = {c["number"]: (await api.get(f"/complaints/{c['number']}", params=READ)).json() for c in complaints}
    await api.aclose()
    [escaped] = [n for n, f in files.items() if f["complainant"]["email"] == "term@example.org"]
    shown = await asyncio.to_thread(run_cli, config, "register", "show", escaped)

    # The register: exactly the six complaints real people filed, under the addresses that wrote them.
    complainants = sorted(f["complainant"]["email"] for f in files.values())
    assert complainants == sorted([VICTIM, EVE, EVE, "marie.claes@example.net", "sophie.martin@example.fr",
                                   "term@example.org"])
    victim_file = files[number]
    assert victim_file["sender_verdict"] == "verified"
    assert "dmarc=pass" in victim_file["sender_evidence"] and TRUSTED_MX in victim_file["sender_evidence"]
    # Eve's two complaints are hers, not in the victim's name; the display name trick is recorded.
    eve_files = [f for f in files.values() if f["complainant"]["email"] == EVE]
    assert all(f["sender_verdict"] == "unverified" for f in eve_files)
    assert any(any(n.startswith("display_name_shows_another_address") for n in f["identity_notes"])
               for f in eve_files)
    assert all(f["provenance"]["peer_ip"] == "127.0.0.1" for f in files.values())

    # The victim's file: her complaint, the unverified follow-up marked as such, the read receipt of our
    # acknowledgment; never the stranger's or the DMARC-failed text.
    thread = victim_file["thread"]
    incoming = [m for m in thread if m["direction"] == "in"]
    texts = " ".join(str(m.get("text") or "") for m in thread)
    assert "INJECTED-FOLLOW-UP" not in texts and "DMARC-FAIL-FOLLOW-UP" not in texts
    forged = [m for m in incoming if "FORGED-AUTHRES-FOLLOW-UP" in str(m.get("text") or "")]
    assert len(forged) == 1 and forged[0]["sender_verdict"] == "unverified"
    receipts = [m for m in thread if m.get("read_receipt_of")]
    assert [m["read_receipt_of"] for m in receipts] == [genuine_ack["Message-ID"]]
    assert not receipts[0].get("text") and not receipts[0].get("attachments")  # only the facts are kept
    [receipt_change] = [c for c in victim_file["changes"] if c["change"] == "read_receipt"]
    assert receipt_change["details"]["disposition"] == "displayed"

    # The verified staff forward: the citizen is the complainant, the staff member who forwarded is recorded.
    [forwarded] = [f for f in files.values() if f["complainant"]["email"] == "marie.claes@example.net"]
    assert forwarded["forwarded_by"] == {"name": "Agent", "email": "agent@mediation.example.be", "verified": True}
    # X-Auto-Response-Suppress: registered like any complaint, never auto-answered, and the file says why.
    [suppressed] = [f for f in files.values() if f["complainant"]["email"] == "sophie.martin@example.fr"]
    assert suppressed["acknowledgment_suppressed"] == "X-Auto-Response-Suppress"

    # The holding pen: each message that may not enter a file alone, with its reason.
    # (The vacation reply names a case number that does not exist: held for that, never registered.)
    reasons = sorted(h["reason"] for h in held)
    assert reasons == sorted(["sender_not_party", "sender_failed_authentication", "staff_forward_not_verified",
                              "automated_unmatched", "automated_unmatched", "unknown_case_number"])
    [unproven] = [h for h in held if h["reason"] == "staff_forward_not_verified"]
    assert unproven["sender"] == "target@example.net" and unproven["forwarded_by"]["verified"] is False

    # The outbox: mail only to the people who wrote, never to anyone a sender merely named, never to a machine.
    recipients = sorted(m["To"].addresses[0].addr_spec for m in mails)
    answered = {m["In-Reply-To"] for m in mails}
    assert not answered & set(NEVER_ANSWERED.values()), answered
    assert set(recipients) <= {VICTIM, EVE, "marie.claes@example.net", "term@example.org"}, recipients
    assert recipients.count(EVE) == 2 and recipients.count("marie.claes@example.net") == 1
    assert all(m["Auto-Submitted"] == "auto-replied" for m in mails)

    # What staff read in a terminal carries no control sequence a sender wrote.
    assert "TEXTE-ROUGE" in shown and "\x1b" not in shown and "\x07" not in shown
