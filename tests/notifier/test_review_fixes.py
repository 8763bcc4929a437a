"""Review of issue 5: relay faults are not the citizen's fault, bounces cannot be forged, no exception loses a notice,
Brussels calendar, no password in clear, slow work outside the write transaction, names and reasons per language."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import ValidationError
from typer.testing import CliRunner

from ombudsdesk.embedded_nats import free_port
from services.notifier.cli import app
from services.notifier.handlers import NotifierHandlers
from services.notifier.outbox import Outbox
from services.notifier.reasons import ReasonCode, describe_reason, parse_reason
from services.notifier.relay import PermanentDeliveryError, RelayFault, SmtpRelay
from services.notifier.rendering import TemplateRenderer
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import MIGRATIONS, NotifierService
from shared import streams
from shared.database import create_engine, upgrade_to_head
from shared.events import DeliveryFailed, NoticeRequested, NotificationFailed, NotificationSent, Party
from tests.notifier.support import ScriptedHandler, SmtpSink, publish, read_stream, registered_event, wait_until


# --- 1. a 5xx outside RCPT TO is the relay refusing us, not the citizen's address ---------------------------------

@pytest.mark.parametrize(("command", "reply"), [("MAIL", "550 5.7.1 Sender not allowed"),
                                                ("MAIL", "530 5.7.0 Authentication required"),
                                                ("RCPT", "554 5.7.1 Relay access denied"),
                                                ("DATA", "554 5.7.1 Message refused by policy")])
async def test_relay_refusing_us_is_retried_and_never_flags_the_citizen(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink, command: str, reply: str
):
    smtp_sink.handler.fail_next(command, reply, reply)
    await publish(nats_server.url, registered_event())
    await wait_until(lambda: len(smtp_sink.messages) == 1, what="delivery once the relay accepts us again")
    [raw] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_SENT, 1)
    assert NotificationSent.model_validate_json(raw).complaint_number == "MED-2026-00001"
    [notice] = await running_notifier.outbox.notices()
    assert notice.status == "sent" and notice.attempts == 3
    assert await running_notifier.outbox.flagged_addresses() == []


async def test_relay_refusing_us_until_the_deadline_fails_without_flag(start_notifier, nats_server, smtp_sink):
    service = await start_notifier(relay_retry_deadline_seconds=0.6)
    smtp_sink.handler.fail_next("MAIL", *["554 5.7.1 Relay access denied"] * 1000)
    await publish(nats_server.url, registered_event())
    [raw] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_FAILED, 1)
    failed = NotificationFailed.model_validate_json(raw)
    assert parse_reason(failed.reason)[0] is ReasonCode.GAVE_UP and "relay_refused" in failed.reason
    assert "554" in failed.reason
    assert await service.outbox.flagged_addresses() == []


def _refuse_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=False, handled=False)


async def test_failed_login_is_a_relay_fault_and_closes_the_connection(monkeypatch):
    controller = Controller(ScriptedHandler(), hostname="127.0.0.1", port=free_port(), authenticator=_refuse_login,
                            auth_require_tls=False)
    controller.start()
    clients: list[aiosmtplib.SMTP] = []

    class TrackedSMTP(aiosmtplib.SMTP):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            clients.append(self)

    monkeypatch.setattr("services.notifier.relay.aiosmtplib.SMTP", TrackedSMTP)
    relay = SmtpRelay("127.0.0.1", controller.port, timeout=5, username="desk", password="wrong")
    try:
        from email.message import EmailMessage

        message = EmailMessage()
        message["Subject"] = "x"
        message.set_content("x")
        with pytest.raises(RelayFault) as caught:
            await relay.send(message, "plaintes@ombudsdesk.localhost", "jeanne@example.org")
        assert caught.value.code == 535 and not isinstance(caught.value, PermanentDeliveryError)
        assert clients and not any(client.is_connected for client in clients)
    finally:
        await relay.close()
        controller.stop()


def test_a_relay_password_never_goes_in_clear():
    with pytest.raises(ValidationError, match="in clear"):
        NotifierSettings(relay_username="desk", relay_password="secret")
    assert NotifierSettings(relay_username="desk", relay_starttls=True).relay_username == "desk"
    assert NotifierSettings(relay_username="desk", relay_implicit_tls=True, relay_port=465).relay_implicit_tls
    with pytest.raises(ValidationError, match="exclude each other"):
        NotifierSettings(relay_starttls=True, relay_implicit_tls=True)


# --- 2. bounces cannot be forged -----------------------------------------------------------------------------------

async def test_a_bounce_naming_another_address_flags_nothing(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    import hashlib

    await publish(nats_server.url, registered_event())
    [raw] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_SENT, 1)
    sent = NotificationSent.model_validate_json(raw)
    [mail] = smtp_sink.messages
    assert mail["Message-ID"] == sent.message_id  # stored once with the notice, the same on every attempt
    guessable = hashlib.sha256(b"acknowledgment:MED-2026-00001").hexdigest()[:32]
    assert guessable not in sent.message_id
    await publish(
        nats_server.url,
        DeliveryFailed(message_key="forged-1", original_message_id=sent.message_id,
                       failed_recipient="victim@example.org", status="5.1.1"),
        DeliveryFailed(message_key="forged-2", original_message_id=sent.message_id, status="5.1.1"),
        DeliveryFailed(message_key="real-1", original_message_id=sent.message_id,
                       failed_recipient="Jeanne.Dupont@EXAMPLE.org", status="5.1.1", diagnostic="user unknown"),
    )
    [raw_failed] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_FAILED, 1)
    assert parse_reason(NotificationFailed.model_validate_json(raw_failed).reason)[0] is ReasonCode.BOUNCE
    flags = await running_notifier.outbox.flagged_addresses()
    assert [flag.address for flag in flags] == ["jeanne.dupont@example.org"]


# --- 3. no exception loses a notice --------------------------------------------------------------------------------

async def test_an_unexpected_error_is_retried_and_counted(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink, monkeypatch
):
    import services.notifier.dispatcher as dispatcher_module

    real_build = dispatcher_module.build_email
    failures = iter([ValueError("broken stored value"), RuntimeError("database hiccup")])

    def flaky_build(**kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return real_build(**kwargs)

    monkeypatch.setattr(dispatcher_module, "build_email", flaky_build)
    await publish(nats_server.url, registered_event())
    await wait_until(lambda: len(smtp_sink.messages) == 1, what="delivery after two unexpected errors")
    await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_SENT, 1)  # reported once committed
    [notice] = await running_notifier.outbox.notices()
    assert notice.status == "sent" and notice.attempts == 3


async def test_an_error_that_never_goes_away_gives_up_at_the_deadline(
    start_notifier, nats_server, smtp_sink: SmtpSink, monkeypatch
):
    import services.notifier.dispatcher as dispatcher_module

    def broken_build(**kwargs):
        raise ValueError("cannot build")

    monkeypatch.setattr(dispatcher_module, "build_email", broken_build)
    service = await start_notifier(relay_retry_deadline_seconds=0.6)
    await publish(nats_server.url, registered_event(), registered_event("MED-2026-00002"))
    failed = [NotificationFailed.model_validate_json(raw)
              for raw in await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_FAILED, 2)]
    assert sorted(event.complaint_number for event in failed) == ["MED-2026-00001", "MED-2026-00002"]
    assert all("internal_error" in event.reason for event in failed)
    notices = await service.outbox.notices()
    assert all(notice.status == "failed" and notice.attempts >= 2 for notice in notices)
    assert await service.outbox.flagged_addresses() == [] and smtp_sink.messages == []


# --- 4 and 6. the service's calendar; slow work outside the write transaction ---------------------------------------

class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def local_handlers(sqlite_url, tmp_path):
    engine = create_engine(sqlite_url)
    await upgrade_to_head(engine, MIGRATIONS)
    clock = _Clock(datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc))
    settings = NotifierSettings(var_dir=tmp_path, follow_up_notices_per_day=1)
    handlers = NotifierHandlers(settings, Outbox(engine), TemplateRenderer(), clock=clock)
    yield handlers, clock
    await engine.dispose()


def _follow_up(key: str) -> NoticeRequested:
    return NoticeRequested(request_key=key, complaint_number="MED-2026-00009", notice_kind="follow_up_received",
                           recipient=Party(name="Jan", email="jan@example.be", language="nl"),
                           context={"received_on": "2026-11-24"})


async def test_follow_up_limit_counts_brussels_days(local_handlers):
    handlers, clock = local_handlers
    clock.now = datetime(2026, 11, 24, 22, 30, tzinfo=timezone.utc)  # 23:30 in Brussels, 24 November
    await handlers.notice_requested(_follow_up("a"))
    clock.now = datetime(2026, 11, 24, 23, 30, tzinfo=timezone.utc)  # 00:30 in Brussels: already 25 November
    await handlers.notice_requested(_follow_up("b"))
    clock.now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # same Brussels day as "b"
    await handlers.notice_requested(_follow_up("c"))
    statuses = {notice.notification_key: notice.status for notice in await handlers.outbox.notices()}
    assert statuses == {"notice:a": "pending", "notice:b": "pending", "notice:c": "suppressed"}


async def test_a_letter_is_dated_in_brussels(local_handlers):
    from tests.notifier.test_letters import POSTAL, pdf_text

    handlers, clock = local_handlers
    clock.now = datetime(2026, 11, 24, 23, 30, tzinfo=timezone.utc)  # 25 November, 00:30 in Brussels
    await handlers.complaint_registered(registered_event("MED-2026-00003", channel="letter", complainant=POSTAL,
                                                         reply_to_message_id=None, references=()))
    [letter] = await handlers.outbox.print_queue()
    assert "25 novembre 2026" in pdf_text(letter.letter_pdf)


def test_an_unknown_time_zone_is_refused_at_start_up():
    with pytest.raises(ValidationError, match="unknown time zone"):
        NotifierSettings(notifier_timezone="Europe/Bruxelles")


async def test_templates_and_pdf_are_built_outside_the_write_transaction(local_handlers, monkeypatch):
    import services.notifier.handlers as handlers_module

    handlers, _ = local_handlers
    writer = handlers.outbox._sqlite_writer
    assert writer is not None
    held_while_building: list[bool] = []
    real_pdf, real_render = handlers_module.build_letter_pdf, handlers.renderer.render

    def watched_pdf(**kwargs):
        held_while_building.append(writer.locked())
        return real_pdf(**kwargs)

    def watched_render(*args, **kwargs):
        held_while_building.append(writer.locked())
        return real_render(*args, **kwargs)

    monkeypatch.setattr(handlers_module, "build_letter_pdf", watched_pdf)
    monkeypatch.setattr(handlers.renderer, "render", watched_render)
    from tests.notifier.test_letters import POSTAL

    await handlers.complaint_registered(registered_event("MED-2026-00003", channel="letter", complainant=POSTAL,
                                                         reply_to_message_id=None, references=()))
    await handlers.complaint_registered(registered_event("MED-2026-00004"))
    assert held_while_building == [False, False, False]  # render + PDF, render
    assert len(await handlers.outbox.notices()) == 2


async def test_a_flag_arriving_while_composing_is_honoured(local_handlers, sqlite_url):
    import sqlite3

    handlers, _ = local_handlers
    outbox = handlers.outbox
    real_compose = handlers._compose
    database = sqlite_url.split(":///", 1)[1]

    def compose_then_flag(draft, address, facts, now):
        values = real_compose(draft, address, facts, now)
        if facts.flagged_reason is None:  # another process flags the address between our read and our write
            with sqlite3.connect(database) as connection:
                connection.execute("INSERT INTO address_flags (address, reason, flagged_at) VALUES (?, ?, ?)",
                                   (address, "bounce: 5.1.1", "2026-11-24 12:00:00.000000"))
        return values

    handlers._compose = compose_then_flag  # type: ignore[method-assign]
    await handlers.complaint_registered(registered_event())
    [notice] = await outbox.notices()
    assert notice.status == "failed" and parse_reason(notice.status_reason)[0] is ReasonCode.ADDRESS_FLAGGED


# --- 8. reasons are codes, shown translated to staff ----------------------------------------------------------------

def test_reasons_are_shown_in_the_staff_language():
    assert describe_reason("machine_address", "fr") == "adresse d'un automate"
    assert describe_reason("recipient_refused: 550 5.1.1 No such user", "nl") == (
        "ontvanger geweigerd door de relay (550 5.1.1 No such user)"
    )
    assert describe_reason("something written before codes", "fr") == "something written before codes"
    assert describe_reason(None) == ""


async def test_the_cli_shows_reasons_in_french(local_handlers, monkeypatch):
    handlers, _ = local_handlers
    await handlers.complaint_registered(registered_event(complainant=Party(name="Robot", email="noreply@example.org")))
    await handlers.outbox.flag_address("jeanne@example.org", "recipient_refused: 550 No such user", None,
                                       datetime(2026, 11, 24, 23, 30, tzinfo=timezone.utc))
    monkeypatch.setenv("OMBUDSDESK_NOTIFIER_DATABASE_URL", str(handlers.outbox.engine.url))

    def cli(*args: str):
        return asyncio.to_thread(CliRunner().invoke, app, list(args))

    listed = await cli("outbox")
    assert listed.exit_code == 0, listed.output
    assert "adresse d'un automate" in listed.output and "machine_address" not in listed.output
    flags = await cli("flags")
    assert "destinataire refusé par le relais (550 No such user)" in flags.output
    assert "2026-11-25 00:30" in flags.output  # Brussels time
    assert "recipient refused by the relay" in (await cli("flags", "--language", "en")).output


# --- 5. implicit TLS with AUTH, over a real TLS connection -----------------------------------------------------------

async def test_implicit_tls_relay_with_login(start_notifier, nats_server, tmp_path):
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        from tests.conftest import require_or_skip

        require_or_skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[tuple[str, str]] = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"secret")

    handler = ScriptedHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ssl_context=server_tls,
                            authenticator=authenticate, auth_require_tls=False)
    controller.start()
    try:
        await start_notifier(relay_port=controller.port, relay_implicit_tls=True, relay_tls_ca_file=cert,
                             relay_username="desk", relay_password="secret")
        await publish(nats_server.url, registered_event())
        await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_SENT, 1)
        assert logins == [("desk", "secret")]
        assert [mail["Subject"] for mail in handler.messages] == [
            "[MED-2026-00001] Accusé de réception de votre réclamation"
        ]
    finally:
        controller.stop()
