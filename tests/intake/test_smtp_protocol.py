"""SMTP details of issue 3 over real conversations: the size limit (552), bare LF, STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from shared import streams
from shared.events import MessageReceived
from tests.intake.support import COMPLAINTS, asend, citizen_mail, read_object, running_intake, settled, stream_events
from services.intake.message.message_key import without_own_trace

MEGABYTE = 1024 * 1024


async def received(nats_url: str) -> list[MessageReceived]:
    return [MessageReceived.model_validate_json(data) for data in
            await stream_events(nats_url, streams.SUBJECT_MESSAGE_RECEIVED)]


def big_message(size: int) -> bytes:
    line = b"x" * 76 + b"\r\n"
    head = (b"From: jeanne.dupont@example.org\r\nTo: " + COMPLAINTS.encode() + b"\r\nSubject: big\r\n"
            b"Message-ID: <big@example.org>\r\n\r\n")
    return head + line * (size // len(line))


def ehlo_features(port: int) -> bytes:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.ehlo()[1]


def send_without_size_declaration(port: int, raw: bytes) -> tuple[int, bytes]:
    """MAIL FROM without SIZE=, so the limit must be enforced while the data streams in."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo()
        assert client.mail("jeanne.dupont@example.org")[0] == 250
        assert client.rcpt(COMPLAINTS)[0] == 250
        return client.data(raw)


async def test_26_mb_message_is_refused_with_552_while_receiving(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path) as intake:
        features = await asyncio.to_thread(ehlo_features, intake.smtp_port)
        assert b"SIZE 26214400" in features
        code, reply = await asyncio.to_thread(send_without_size_declaration, intake.smtp_port,
                                              big_message(26 * MEGABYTE))
        assert code == 552, reply
        # A client that declares the size is refused before sending a byte (RFC 1870).
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            await asend(intake.smtp_port, big_message(26 * MEGABYTE))
        assert declared.value.smtp_code == 552
        # The session goes on: a normal mail right after is taken in.
        await asend(intake.smtp_port, citizen_mail())
        await settled(intake)
        assert [event.subject_line for event in await received(nats_server.url)] == ["Réclamation: facture d'eau"]


def raw_conversation(port: int, lines: list[bytes]) -> list[bytes]:
    """Speak SMTP byte for byte (smtplib would repair the line endings we want to test)."""
    replies: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        stream = connection.makefile("rb")
        replies.append(stream.readline())
        for line in lines:
            connection.sendall(line)
            if line.endswith(b"\r\n.\r\n") or not line.startswith(b"Subject"):
                reply = stream.readline()
                while reply[3:4] == b"-":
                    reply = stream.readline()
                replies.append(reply)
    return replies


async def test_bare_lf_message_is_accepted_and_parsed(nats_server, tmp_path):
    data = (b"From: Jan Peeters <jan@example.be>\nTo: " + COMPLAINTS.encode() + b"\nSubject: Klacht\n"
            b"Message-ID: <bare-lf@example.be>\n\nGeachte mevrouw,\n\nIk heb geen antwoord gekregen op mijn brief.\n"
            + b"Met vriendelijke groeten,\nJan\n" * 40 + b"\r\n.\r\n")
    async with running_intake(nats_server.url, tmp_path) as intake:
        replies = await asyncio.to_thread(raw_conversation, intake.smtp_port, [
            b"EHLO sloppy.example.be\r\n", b"MAIL FROM:<jan@example.be>\r\n", b"RCPT TO:<" + COMPLAINTS.encode() + b">\r\n",
            b"DATA\r\n", data, b"QUIT\r\n",
        ])
        await settled(intake)
        [event] = await received(nats_server.url)
    assert replies[-2].startswith(b"250"), replies
    assert event.subject_line == "Klacht"
    assert event.sender.email == "jan@example.be"
    assert "geen antwoord gekregen" in event.text
    assert event.language == "nl"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )
    return cert, key


async def test_starttls_and_auth_for_a_staff_submission_port(nats_server, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    client_context = ssl.create_default_context(cafile=str(cert))
    client_context.check_hostname = False

    def submit(login: tuple[str, str] | None, use_tls: bool = True) -> dict:
        with smtplib.SMTP("127.0.0.1", intake.smtp_port, timeout=30) as client:
            client.ehlo()
            if use_tls:
                client.starttls(context=client_context)
                client.ehlo()
            if login:
                client.login(*login)
            return client.send_message(citizen_mail(), to_addrs=[COMPLAINTS])

    async with running_intake(
        nats_server.url, tmp_path, smtp_tls_cert_file=cert, smtp_tls_key_file=key, smtp_require_starttls=True,
        smtp_auth_required=True, smtp_auth_users={"scanner": "s3cret-pass"},
    ) as intake:
        with pytest.raises(smtplib.SMTPException):
            await asyncio.to_thread(submit, None, False)  # plaintext refused: STARTTLS first
        with pytest.raises(smtplib.SMTPAuthenticationError):
            await asyncio.to_thread(submit, ("scanner", "wrong"))
        with pytest.raises(smtplib.SMTPSenderRefused):
            await asyncio.to_thread(submit, None)  # TLS but no AUTH: 530
        assert await asyncio.to_thread(submit, ("scanner", "s3cret-pass")) == {}
        await settled(intake)
        assert len(await received(nats_server.url)) == 1


def test_asking_for_starttls_or_auth_without_what_they_need_is_refused_at_start():
    from shared.settings import SettingsError, load_settings
    from services.intake.settings import IntakeSettings

    with pytest.raises(SettingsError, match="smtp_tls_cert_file"):
        load_settings(IntakeSettings, smtp_require_starttls=True)
    with pytest.raises(SettingsError, match="smtp_auth_users"):
        load_settings(IntakeSettings, smtp_auth_required=True)


async def smtp_conversation(port: int, wire_data: bytes) -> list[bytes]:
    """A raw SMTP conversation sending `wire_data` exactly as given after DATA (dots and line ends untouched)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await reader.readline()]

    async def command(line: bytes) -> bytes:
        writer.write(line)
        await writer.drain()
        reply = await reader.readline()
        while reply[3:4] == b"-":  # multi-line EHLO answer
            reply = await reader.readline()
        replies.append(reply)
        return reply

    await command(b"EHLO client.example.org\r\n")
    await command(b"MAIL FROM:<jeanne.dupont@example.org>\r\n")
    await command(b"RCPT TO:<" + COMPLAINTS.encode() + b">\r\n")
    await command(b"DATA\r\n")
    await command(wire_data)
    await command(b"QUIT\r\n")
    writer.close()
    return replies


@pytest.mark.parametrize("filler_lines", [0, 2500], ids=["small mail", "mail above 64 KB"])
async def test_dots_are_unstuffed_and_only_crlf_dot_crlf_ends_the_data(nats_server, tmp_path, filler_lines):
    head = (b"From: jeanne.dupont@example.org\r\nTo: " + COMPLAINTS.encode() + b"\r\nSubject: dots\r\n"
            b"Message-ID: <dots." + str(filler_lines).encode() + b"@example.org>\r\n\r\n")
    body_lines = [b"Bonjour.", b"..dot stuffed", b"...", b"x" * 76 + b".", b"bare lf\n.\nnot the end.", b"."]
    expected_lines = [b"Bonjour.", b".dot stuffed", b"..", b"x" * 76 + b".", b"bare lf\n.\nnot the end.", b""]
    filler = [b"ligne de remplissage numero %d." % index for index in range(filler_lines)]
    wire = head + b"\r\n".join([*filler, *body_lines[:-1]]) + b"\r\n..\r\nfin\r\n.\r\n"
    expected = head + b"\r\n".join([*filler, *expected_lines[:-1]]) + b"\r\n.\r\nfin\r\n"
    async with running_intake(nats_server.url, tmp_path) as intake:
        replies = await smtp_conversation(intake.smtp_port, wire)
        await settled(intake)
        [event] = await received(nats_server.url)
        raw = bytes(without_own_trace(await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, event.raw_object)))
    assert replies[4].startswith(b"354") and replies[5].startswith(b"250"), replies
    assert raw == expected


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\n.\r\n", b"\r\n.\n"], ids=["LF.LF", "LF.CRLF", "CRLF.LF"])
async def test_a_smuggled_end_of_data_does_not_end_it(nats_server, tmp_path, fake_end):
    """CVE-2023-51764: only <CRLF>.<CRLF> ends the data, or a forged second mail rides along in the first."""
    head = (b"From: jeanne.dupont@example.org\r\nTo: " + COMPLAINTS.encode() + b"\r\nSubject: one\r\n"
            b"Message-ID: <smuggle.1@example.org>\r\n\r\nfirst")
    smuggled = fake_end + b"MAIL FROM:<forged@example.org>\r\nRCPT TO:<" + COMPLAINTS.encode() + b">\r\nDATA\r\nforged\r\n"
    async with running_intake(nats_server.url, tmp_path) as intake:
        replies = await smtp_conversation(intake.smtp_port, head + smuggled + b".\r\n")
        await settled(intake)
        events = await received(nats_server.url)
        raw = bytes(without_own_trace(await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, events[0].raw_object)))
    assert replies[5].startswith(b"250") and replies[6].startswith(b"221"), replies
    assert len(events) == 1
    assert raw == head + smuggled.replace(b"\r\n.", b"\r\n")  # a dot after CRLF is a stuffed one (RFC 5321 4.5.2)


@pytest.mark.parametrize("local_part_limit", [0, 64])
def test_fast_address_parsing_agrees_with_aiosmtpd(local_part_limit):
    """`IntakeSMTP._getaddr` takes a shortcut for plain paths; whatever the input, it must answer as aiosmtpd."""
    from aiosmtpd.smtp import SMTP

    from services.intake.channels.smtp_server import IntakeSMTP

    loop = asyncio.new_event_loop()
    try:
        reference, ours = SMTP(object(), loop=loop), IntakeSMTP(object(), max_message_bytes=1000, loop=loop)
        reference.local_part_limit = ours.local_part_limit = local_part_limit
        arguments = [
            "<a@b.c>", "<a@b.c> SIZE=100", "<jeanne.dupont@example.org> SIZE=2006 BODY=8BITMIME", "<>", "< a@b.c>",
            "<a..b@c.d>", '<"q x"@b.c>', "<a@[1.2.3.4]>", "a@b.c", "<a@b.c>x", "<.a@b.c>", "<a@b..c>", "<a@-b.c>",
            "<@x,@y:a@b.c>", "<a@b.c>é X", "<é@b.c>", "<a@b.c", "<a b@c.d>", "<c@example.org>  SMTPUTF8",
            "<a@b.c>\r\n", "<a@b.c> (comment) SIZE=1", "<a@b.c>\t\tX=1", "<a@b.c> \r\n", "<" + "x" * 70 + "@b.c>",
            "<a@b.c>  ", "<A+tag@Sub.Example.ORG> BODY=8BITMIME SMTPUTF8", " <a@b.c>",
        ]
        for argument in arguments:
            assert ours._getaddr(argument) == reference._getaddr(argument), argument
    finally:
        loop.close()


async def test_a_bad_certificate_stops_the_start_with_a_clear_message(nats_server, tmp_path):
    from services.intake.channels.smtp_server import TlsConfigurationError
    from services.intake.wiring import build_intake
    from tests.intake.support import intake_settings

    cert = tmp_path / "broken.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    service = build_intake(intake_settings(nats_server.url, tmp_path, smtp_tls_cert_file=cert))
    try:
        with pytest.raises(TlsConfigurationError, match="broken.pem.*OMBUDSDESK_SMTP_TLS_CERT_FILE"):
            await service.start()
    finally:
        await service.stop()
