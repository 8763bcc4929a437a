"""The SMTP front door's limits over real SMTP conversations (raw sockets against the running intake service): each
limit answers with its reply code (RFC 5321), enhanced status code (RFC 3463) and a text naming the limit."""

from __future__ import annotations

import asyncio
import socket
import time

from tests.intake.support import COMPLAINTS, running_intake


class Client:
    """A blocking SMTP client speaking raw lines (call through asyncio.to_thread)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                return "\n".join(lines) or "<closed>"
            lines.append(line.decode().rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return "\n".join(lines)

    def command(self, line: bytes | str) -> str:
        self.sock.sendall((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def closed(self) -> bool:
        try:
            return self.file.readline() == b""
        except (ConnectionError, TimeoutError):
            return True

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def conversation(port: int, steps) -> list[str]:  # noqa: ANN001 - steps: a function of the client
    client = Client(port)
    try:
        return [client.reply(), *steps(client)]
    finally:
        client.close()


async def test_command_lines_are_limited_to_512_octets_and_the_session_goes_on(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path) as intake:
        def steps(client: Client) -> list[str]:
            return [
                client.command("EHLO client.example.org"),
                client.command("NOOP " + "x" * 600),  # longer than 512 octets, within what the reader buffers
                client.command(b"NOOP " + b"y" * 200_000),  # far beyond: cut off while reading, never held whole
                client.command("NOOP"),
                client.command("MAIL FROM:<jeanne.dupont@example.org>"),
            ]

        replies = await asyncio.to_thread(conversation, intake.smtp_port, steps)
    assert replies[0].startswith("220")
    assert replies[2] == "500 5.5.2 Line too long, max 512 octets"
    assert replies[3] == "500 5.5.2 Line too long, max 512 octets"
    assert replies[4].startswith("250") and replies[5].startswith("250")


async def test_connections_are_capped_per_client_and_overall(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path, smtp_max_connections=3,
                              smtp_max_connections_per_client=2) as intake:
        def per_client() -> list[str]:
            first, second = Client(intake.smtp_port), Client(intake.smtp_port)
            greetings = [first.reply(), second.reply()]
            third = Client(intake.smtp_port)
            refused = third.reply()
            gone = third.closed()
            third.close()
            first.close()
            time.sleep(0.3)  # the server sees the close
            fourth = Client(intake.smtp_port)
            again = fourth.reply()
            fourth.close()
            second.close()
            return [*greetings, refused, str(gone), again]

        greeting_1, greeting_2, refused, gone, again = await asyncio.to_thread(per_client)
    assert greeting_1.startswith("220") and greeting_2.startswith("220")
    assert refused == "421 4.7.0 Too many connections, try again later"
    assert gone == "True"
    assert again.startswith("220")


async def test_the_overall_connection_cap(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path, smtp_max_connections=2,
                              smtp_max_connections_per_client=20) as intake:
        def overall() -> list[str]:
            clients = [Client(intake.smtp_port) for _ in range(2)]
            replies = [client.reply() for client in clients]
            extra = Client(intake.smtp_port)
            replies.append(extra.reply())
            for client in [*clients, extra]:
                client.close()
            return replies

        replies = await asyncio.to_thread(overall)
    assert [reply[:3] for reply in replies] == ["220", "220", "421"]
    assert replies[2] == "421 4.7.0 Too many connections, try again later"


async def test_the_101st_recipient_gets_452_and_the_first_100_are_kept(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path) as intake:
        def steps(client: Client) -> list[str]:
            replies = [client.command("EHLO client.example.org"), client.command("MAIL FROM:<a@example.org>")]
            replies += [client.command(f"RCPT TO:<{COMPLAINTS}>") for _ in range(101)]
            replies.append(client.command("DATA"))
            replies.append(client.command(b"From: a@example.org\r\nSubject: cent\r\n\r\nBonjour\r\n."))
            return replies

        replies = await asyncio.to_thread(conversation, intake.smtp_port, steps)
    recipients = replies[3:104]
    assert all(reply.startswith("250") for reply in recipients[:100])
    assert recipients[100] == "452 4.5.3 Too many recipients, max 100 per message"
    assert replies[104].startswith("354") and replies[105].startswith("250")


async def test_commands_per_session_are_capped(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path, smtp_max_commands=10) as intake:
        def steps(client: Client) -> list[str]:
            replies = [client.command("NOOP") for _ in range(11)]
            return [*replies, str(client.closed())]

        replies = await asyncio.to_thread(conversation, intake.smtp_port, steps)
    assert all(reply.startswith("250") for reply in replies[1:11])
    assert replies[11] == "421 4.7.0 Too many commands in one session, max 10, closing"
    assert replies[12] == "True"


async def test_noop_does_not_keep_a_session_alive_past_its_lifetime(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path, smtp_max_session_seconds=1.0) as intake:
        def steps(client: Client) -> list[str]:
            replies = [client.command("NOOP")]
            time.sleep(0.6)
            replies.append(client.command("NOOP"))  # aiosmtpd's idle timeout restarts here...
            time.sleep(0.6)
            replies.append(client.command("NOOP"))  # ...but the session is now older than its limit
            return [*replies, str(client.closed())]

        replies = await asyncio.to_thread(conversation, intake.smtp_port, steps)
    assert replies[1].startswith("250") and replies[2].startswith("250")
    assert replies[3] == "421 4.7.0 Session too long, max 1 s, closing"
    assert replies[4] == "True"


async def test_a_message_too_big_gets_552_5_3_4_naming_the_limit(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path, max_message_bytes=1024 * 1024) as intake:
        def steps(client: Client) -> list[str]:
            replies = [client.command("EHLO client.example.org"),
                       client.command("MAIL FROM:<a@example.org> SIZE=2000000"),
                       client.command("MAIL FROM:<a@example.org>"),
                       client.command(f"RCPT TO:<{COMPLAINTS}>"),
                       client.command("DATA")]
            body = b"From: a@example.org\r\nSubject: gros\r\n\r\n" + (b"x" * 998 + b"\r\n") * 1100
            replies.append(client.command(body + b"."))
            replies.append(client.command("NOOP"))
            return replies

        replies = await asyncio.to_thread(conversation, intake.smtp_port, steps)
    assert "SIZE 1048576" in replies[1]
    assert replies[2] == "552 5.3.4 Message too big for this system, max 1 MB"
    assert replies[5].startswith("354")
    assert replies[6] == "552 5.3.4 Message too big for this system, max 1 MB"
    assert replies[7].startswith("250")


def test_the_acknowledgment_rate_per_sending_client_is_a_sliding_hour():
    from services.intake.channels.client_rate import SUPPRESSED_REASON, ClientRate

    rate = ClientRate(3)
    # Three messages in the hour are acknowledged, the fourth and fifth are not; another client is not affected.
    assert [rate.record("192.0.2.1", minute * 60.0) for minute in range(5)] == [None, None, None,
                                                                                 SUPPRESSED_REASON, SUPPRESSED_REASON]
    assert rate.record("192.0.2.2", 300.0) is None
    # An hour after the first two, two places are free again (minutes 2, 3, 4 are still within the hour).
    assert rate.record("192.0.2.1", 3600.0 + 61.0) == SUPPRESSED_REASON  # minutes 2, 3, 4 and now: 4 > 3
    assert rate.record("192.0.2.1", 3600.0 + 4 * 60.0 + 1) is None  # only "minute 61" and now remain
    assert rate.record(None, 0.0) is None  # IMAP, letters: no client address, no limit here
