"""Issue 2's proof: an email goes in over real SMTP, a complaint is numbered, an acknowledgment comes out.

Real parts only: a NATS server from the wheel, the three services built by their own wiring functions, smtplib
talking to intake's SMTP server, the acknowledgment caught by a real SMTP server (the mail catcher).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import holidays
import pytest

from tests.e2e.stack import InProcessStack, StackConfig, complaint_mail, send_mail_async, start_catcher

NUMBER = re.compile(r"MED-(\d{4})-(\d{5})")


def expected_answer_due(received: date) -> date:
    """Independent oracle: 45 calendar days, moved to the next working day (Belgian holidays) when it falls off one."""
    due = received + timedelta(days=45)
    belgian = holidays.country_holidays("BE", years=range(received.year, received.year + 2))
    while due.weekday() >= 5 or due in belgian:
        due += timedelta(days=1)
    return due


def date_forms(day: date) -> list[str]:
    french_months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                     "octobre", "novembre", "décembre"]
    return [day.strftime("%d/%m/%Y"), f"{day.day} {french_months[day.month - 1]} {day.year}", day.isoformat()]


@pytest.fixture
async def stack_config(nats_server, tmp_path, request):
    """Registry and notifier each on its own database: SQLite files, or two PostgreSQL databases."""
    catcher = await start_catcher(tmp_path / "outbox")
    if request.param == "postgres":
        factory = request.getfixturevalue("postgres_database_factory")
        registry_url, notifier_url = factory(), factory()
    else:
        registry_url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
        notifier_url = f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var", registry_database_url=registry_url,
                         notifier_database_url=notifier_url, relay_port=catcher.port)
    yield config, catcher
    await catcher.stop()


@pytest.mark.parametrize("stack_config", ["sqlite", "postgres"], indirect=True)
async def test_email_is_registered_and_acknowledged(stack_config):
    config, catcher = stack_config
    stack = InProcessStack(config)
    await stack.start()
    try:
        received_on = datetime.now(timezone.utc).date()
        mail = complaint_mail("Jeanne Dupont <jeanne.dupont@example.org>", "Plainte : dossier bloqué",
                              "Bonjour,\nmon dossier d'allocations est bloqué depuis trois mois.\nJeanne Dupont",
                              message_id="<first-complaint@example.org>")
        await send_mail_async(config.smtp_port, mail)
        acknowledgment = await catcher.next_mail(timeout=15)
    finally:
        await stack.stop()

    assert acknowledgment["To"].addresses[0].addr_spec == "jeanne.dupont@example.org"
    assert f"MED-{received_on.year}-00001" in acknowledgment["Subject"]
    body = acknowledgment.get_body(("plain",)).get_content()
    assert f"MED-{received_on.year}-00001" in body
    assert any(form in body for form in date_forms(expected_answer_due(received_on))), body
    assert acknowledgment["In-Reply-To"] == "<first-complaint@example.org>"
    assert acknowledgment["Auto-Submitted"] == "auto-replied"


def run_cli(config: StackConfig, *arguments: str) -> str:
    environment = {**os.environ, **config.environment()}
    return subprocess.run([sys.executable, "-m", "ombudsdesk", *arguments], env=environment, capture_output=True,
                          text=True, timeout=60, check=True).stdout


@pytest.mark.parametrize("stack_config", ["sqlite"], indirect=True)
async def test_register_cli_shows_the_whole_file_with_the_acknowledgment_in_its_thread(stack_config):
    config, catcher = stack_config
    stack = InProcessStack(config)
    await stack.start()
    try:
        await send_mail_async(config.smtp_port, complaint_mail(
            "Piet Peeters <piet@example.be>", "Klacht over mijn dossier", "Goedendag, mijn dossier ligt stil."))
        acknowledgment = await catcher.next_mail(timeout=15)
        listing = await asyncio.to_thread(run_cli, config, "register", "list")
        [number] = {match.group(0) for match in NUMBER.finditer(listing)}
        # The registry records the acknowledgment when the notifier reports it sent: wait for that event's effect.
        for _ in range(100):
            shown = await asyncio.to_thread(run_cli, config, "register", "show", number)
            if acknowledgment["Message-ID"] in shown:
                break
            await asyncio.sleep(0.1)
    finally:
        await stack.stop()
    assert "piet@example.be" in shown
    assert "Klacht over mijn dossier" in shown
    assert acknowledgment["Message-ID"] in shown
    assert str(acknowledgment["Subject"]) in shown


@pytest.mark.parametrize("stack_config", ["sqlite"], indirect=True)
async def test_redelivered_events_never_number_or_acknowledge_twice(stack_config):
    """The same mail sent twice (an SMTP retry) and every event redelivered: still one complaint, one mail."""
    config, catcher = stack_config
    stack = InProcessStack(config)
    await stack.start()
    try:
        mail = complaint_mail("Anna Schmidt <anna@example.de>", "Beschwerde", "Guten Tag, ich beschwere mich.",
                              message_id="<retry-me@example.de>")
        await send_mail_async(config.smtp_port, mail)
        await send_mail_async(config.smtp_port, mail)
        first = await catcher.next_mail(timeout=15)
        with pytest.raises(asyncio.TimeoutError):
            await catcher.next_mail(timeout=3)
    finally:
        await stack.stop()
    assert "-00001" in first["Subject"]
