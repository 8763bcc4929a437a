"""Transport security against real nats-server processes (issue 14): per-service users with the permissions
`ombudsdesk.nats_config` writes, TLS for clients (certificates made here with trustme) and for cluster routes.

The permissions are proven both ways: each service's connection options do all the service does (the whole
pipeline, a notice preview, the back office reading a raw original: the server logs no violation), and a service
cannot do what is another's (publish another's subject, purge a stream, read another's inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nats
import pytest
import trustme
from aiosmtpd.smtp import SMTP
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import APIError
from typer.testing import CliRunner

from ombudsdesk.embedded_nats import EmbeddedNats, free_port, nats_server_binary, wait_for_port
from ombudsdesk.mailcatcher import CatchingHandler
from ombudsdesk.nats_cluster import NatsCluster
from ombudsdesk.cli import app as ombudsdesk_app
from ombudsdesk.nats_config import USERS, TlsFiles, route_tls_block, server_config, write_deployment
from services.intake.settings import IntakeSettings
from services.intake.stores import ObjectStorage, Quarantine, QuarantineRecord, migrate_quarantine_stream, settle
from services.intake.wiring import build_intake
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import build_notifier
from services.registry.backoffice.pages.file_originals import OriginalStore
from services.registry.notice_preview import NoticePreviewer
from services.registry.settings import RegistrySettings
from services.registry.wiring import build_registry
from shared import streams
from shared.deadletters import list_dead_letters, replay_dead_letter
from shared.events import Channel, DeadLettered, NoticePreviewRequest, Party
from shared.messaging import Unreachable, connect_client_for_command, nats_connect_options
from shared.settings import CommonSettings, load_settings
from shared.stream_admin import ensure_streams
from tests.e2e.stack import COMPLAINT_ADDRESS, StackConfig, complaint_mail, send_mail_async


@dataclass(frozen=True)
class Pki:
    """A CA and the PEM files made from it, in a test's folder."""

    ca: trustme.CA
    folder: Path

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def server(self) -> TlsFiles:
        return TlsFiles(self.folder / "server.pem", self.folder / "server.key", self.ca_file)

    @classmethod
    def make(cls, folder: Path) -> "Pki":
        folder.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        # trustme's certificates carry both serverAuth and clientAuth: one serves as a route's two ends.
        cert = ca.issue_cert("127.0.0.1", "localhost")
        for pem in cert.cert_chain_pems:
            pem.write_to_path(str(folder / "server.pem"), append=True)
        cert.private_key_pem.write_to_path(str(folder / "server.key"))
        return cls(ca, folder)


@dataclass(frozen=True)
class SecuredNats:
    server: EmbeddedNats
    secrets: Path
    pki: Pki

    def settings(self, user: str, settings_class: type[CommonSettings] = CommonSettings,
                 **overrides: object) -> CommonSettings:
        return load_settings(settings_class, **{
            "nats_url": self.server.url, "nats_user": user, "nats_password_file": self.secrets / f"{user}.password",
            "nats_tls_ca_file": self.pki.ca_file, **overrides})

    def violations(self) -> list[str]:
        log = self.server.log_file.read_text(encoding="utf-8", errors="replace") if self.server.log_file else ""
        return [line for line in log.splitlines() if "Violation" in line]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.make(tmp_path / "pki")


@pytest.fixture
def secured_nats(tmp_path: Path, pki: Pki):
    """A server configured from what `ombudsdesk nats config` writes: its users, its passwords, client TLS."""
    deployment = write_deployment(tmp_path / "secrets", pki.server)
    config = deployment.server_config.read_text(encoding="utf-8")
    with EmbeddedNats(tmp_path / "jetstream", log_file=tmp_path / "nats.log", extra_config=config,
                      url_scheme="tls") as server:
        yield SecuredNats(server, tmp_path / "secrets", pki)


class Errors:
    """An `error_cb` keeping what the server said (permission violations arrive there, not as exceptions)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def record(self, error: Exception) -> None:
        self.seen.append(str(error))

    async def wait_for(self, text: str, timeout: float = 5.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                for seen in self.seen:
                    if text.lower() in seen.lower():
                        return seen
                await asyncio.sleep(0.05)


async def connect_as(secured: SecuredNats, user: str, errors: Errors | None = None) -> nats.NATS:
    options = nats_connect_options(secured.settings(user))
    return await nats.connect(secured.server.url, allow_reconnect=False, connect_timeout=3,
                              error_cb=(errors or Errors()).record, **options)


async def test_each_user_connects_over_tls_with_its_password(secured_nats):
    for user in USERS:
        client = await connect_as(secured_nats, user)
        try:
            assert client.is_connected
            # The socket is a TLS one: the server refuses anything else, and the client spoke TLS first.
            assert client._transport._io_writer.get_extra_info("ssl_object") is not None  # noqa: SLF001
            assert client._server_info["tls_required"] is True  # noqa: SLF001
        finally:
            await client.close()


async def test_a_server_certificate_from_another_ca_is_refused(secured_nats, tmp_path):
    other = Pki.make(tmp_path / "other")
    settings = load_settings(CommonSettings, nats_url=secured_nats.server.url, nats_user="registry",
                             nats_password_file=secured_nats.secrets / "registry.password",
                             nats_tls_ca_file=other.ca_file)
    with pytest.raises(Unreachable) as refused:
        await connect_client_for_command(settings)
    assert "certificate verify failed" in str(refused.value)


async def test_a_wrong_password_or_no_credentials_or_no_tls_is_refused(secured_nats, tmp_path):
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    attempts = {
        "authorization violation": dict(nats_user="intake", nats_password_file=wrong,
                                        nats_tls_ca_file=secured_nats.pki.ca_file),
        "authorization violation ": dict(nats_tls_ca_file=secured_nats.pki.ca_file),
        # A plaintext client meets a server that speaks TLS first: no INFO ever comes.
        "timed out": dict(nats_url=secured_nats.server.url.replace("tls://", "nats://"), nats_user="intake",
                          nats_password_file=secured_nats.secrets / "intake.password"),
    }
    for reason, values in attempts.items():
        settings = load_settings(CommonSettings, **{"nats_url": secured_nats.server.url, **values})
        with pytest.raises(Unreachable) as refused:
            await connect_client_for_command(settings)
        assert reason.strip() in str(refused.value).lower(), values


async def test_the_password_never_reaches_a_server_that_does_not_speak_tls(tmp_path, pki):
    """nats-py upgrades to TLS only when the server's INFO asks for it; a server (or a man in the middle) answering
    in plaintext would get the password in clear. The services speak TLS first: such a server gets a TLS hello."""
    received = bytearray()

    async def plaintext_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"impostor","version":"2.15.1","auth_required":true,"max_payload":1048576}'
                     b"\r\n")
        await writer.drain()
        with contextlib.suppress(TimeoutError):  # the client gives up on the impostor: what it sent is kept
            async with asyncio.timeout(3):
                while chunk := await reader.read(4096):
                    received.extend(chunk)
        writer.close()

    impostor = await asyncio.start_server(plaintext_server, "127.0.0.1", 0)
    port = impostor.sockets[0].getsockname()[1]
    password_file = tmp_path / "intake.password"
    password_file.write_text("s3cret-that-must-not-leak\n")
    settings = load_settings(CommonSettings, nats_url=f"nats://127.0.0.1:{port}", nats_user="intake",
                             nats_password_file=password_file, nats_tls_ca_file=pki.ca_file)
    try:
        with pytest.raises((OSError, ssl.SSLError, NatsTimeoutError, TimeoutError, nats.errors.Error)):
            await nats.connect(**{"servers": settings.nats_url, "allow_reconnect": False, "connect_timeout": 2,
                                  "max_reconnect_attempts": 0, "error_cb": Errors().record},
                               **nats_connect_options(settings))
    finally:
        impostor.close()
        await impostor.wait_closed()
    assert received[:1] == b"\x16"  # a TLS record (the ClientHello): the client never read the plaintext INFO
    assert b"s3cret-that-must-not-leak" not in received and b"CONNECT" not in received


async def test_intake_cannot_publish_a_notice_request_nor_purge_a_stream_nor_read_another_inbox(secured_nats):
    admin = await connect_as(secured_nats, "admin")
    errors = Errors()
    intake = await connect_as(secured_nats, "intake", errors)
    registry = await connect_as(secured_nats, "registry")
    try:
        admin_js = admin.jetstream()
        await admin_js.add_stream(name=streams.STREAM_REGISTRY, subjects=["ombudsdesk.registry.>"])
        # The registry may publish its own event ...
        await registry.jetstream().publish(streams.SUBJECT_NOTICE_REQUESTED, b"{}", timeout=3)
        # ... intake may not: the server drops it (no acknowledgement) and says why.
        with pytest.raises(NatsTimeoutError):
            await intake.jetstream().publish(streams.SUBJECT_NOTICE_REQUESTED, b'{"forged": true}', timeout=1)
        violation = await errors.wait_for("permissions violation for publish")
        assert streams.SUBJECT_NOTICE_REQUESTED in violation
        # Nor purge the register's stream, nor delete it.
        with pytest.raises(NatsTimeoutError):
            await intake.jetstream(timeout=1).purge_stream(streams.STREAM_REGISTRY)
        with pytest.raises(NatsTimeoutError):
            await intake.jetstream(timeout=1).delete_stream(streams.STREAM_REGISTRY)
        # Nor listen to the registry's events or replies.
        await intake.subscribe("ombudsdesk.registry.>")
        await intake.subscribe("_INBOX_registry.>")
        await errors.wait_for('subscription to "_INBOX_registry.>"')
        await errors.wait_for('subscription to "ombudsdesk.registry.>"')
        # Even the admin user may not purge an event stream.
        with pytest.raises(NatsTimeoutError):
            await admin.jetstream(timeout=1).purge_stream(streams.STREAM_REGISTRY)
        info = await admin_js.stream_info(streams.STREAM_REGISTRY)
        assert info.state.messages == 1  # the registry's event, and nothing else: no forged one, nothing purged
    finally:
        for client in (admin, intake, registry):
            await client.close()
    assert any('"$G/user:intake"' in line and "STREAM.PURGE" in line for line in secured_nats.violations())


async def test_intake_erases_its_stores_by_sequence_and_may_not_purge_them(secured_nats):
    """Intake removes a duplicate's chunks and quarantine entries by secure erase (no purge right needed, none
    given); the admin user migrates a quarantine made by nats-py with `deny_delete`."""
    admin = await connect_as(secured_nats, "admin")
    errors = Errors()
    intake = await connect_as(secured_nats, "intake", errors)
    raw_stream = f"OBJ_{streams.BUCKET_RAW_MESSAGES}"
    try:
        admin_js, intake_js = admin.jetstream(), intake.jetstream()
        await ensure_streams(admin_js, secured_nats.settings("admin"))
        storage = ObjectStorage(intake_js)
        written, acks = await storage.write_chunks(streams.BUCKET_RAW_MESSAGES, b"duplicate mail " * 20_000)
        await settle(acks)
        await storage.discard_chunks(streams.BUCKET_RAW_MESSAGES, written.nuid)
        assert (await admin_js.stream_info(raw_stream)).state.messages == 0  # every chunk deleted by intake
        # A quarantine made before (nats-py, `deny_delete`): intake can only purge there; admin migrates it.
        await admin_js.create_key_value(KeyValueConfig(bucket=streams.BUCKET_INTAKE_QUARANTINE, history=1,
                                                       storage=StorageType.FILE))
        quarantine = Quarantine(intake_js)
        now = datetime.now(timezone.utc)
        await quarantine.put(QuarantineRecord(message_key="mid-a", reason="parse_failed", raw_object="mid-a.eml",
                                              size=1, channel=Channel.EMAIL, received_at=now, quarantined_at=now))
        assert quarantine.erasable is False
        assert (await migrate_quarantine_stream(admin_js)).outcome == "migrated"
        assert await quarantine.erase("mid-a") is not None
        assert quarantine.erasable is True
        quarantine_stream = f"KV_{streams.BUCKET_INTAKE_QUARANTINE}"
        assert (await admin_js.stream_info(quarantine_stream)).state.messages == 0
        # Intake may not purge the object store, nor delete the quarantine's stream.
        with pytest.raises(NatsTimeoutError):
            await intake.jetstream(timeout=1).purge_stream(raw_stream)
        with pytest.raises(NatsTimeoutError):
            await intake.jetstream(timeout=1).delete_stream(quarantine_stream)
        await errors.wait_for("STREAM.DELETE")
    finally:
        await admin.close()
        await intake.close()
    violations = secured_nats.violations()
    assert len(violations) == 2, violations
    assert any("STREAM.PURGE" in line for line in violations) and any("STREAM.DELETE" in line for line in violations)


async def test_dead_letters_are_each_service_s_own_and_the_admin_user_replays_them(secured_nats):
    admin = await connect_as(secured_nats, "admin")
    errors = Errors()
    registry = await connect_as(secured_nats, "registry", errors)
    try:
        await ensure_streams(admin.jetstream(), secured_nats.settings("admin"))
        record = DeadLettered(consumer=streams.CONSUMER_REGISTRY_INTAKE,
                              original_subject=streams.SUBJECT_MESSAGE_RECEIVED, stream_sequence=7, deliveries=8,
                              error="ValueError: test", payload="{}")
        # The registry dead-letters what its own consumer gave up on ...
        await registry.jetstream().publish(record.publish_subject(), record.model_dump_json().encode(), timeout=5)
        # ... never in another consumer's name.
        forged = record.model_copy(update={"consumer": streams.CONSUMER_NOTIFIER_NOTICES})
        with pytest.raises(NatsTimeoutError):
            await registry.jetstream().publish(forged.publish_subject(), forged.model_dump_json().encode(), timeout=1)
        await errors.wait_for(f'publish to "{forged.publish_subject()}"')
        # Staff commands run as admin: list and replay (publish on the original subject, delete the dead letter).
        letters = await list_dead_letters(admin.jetstream())
        assert [letter.record.consumer for letter in letters] == [streams.CONSUMER_REGISTRY_INTAKE]
        await replay_dead_letter(admin.jetstream(), letters[0].sequence)
        assert await list_dead_letters(admin.jetstream()) == []
        intake_events = await admin.jetstream().stream_info(streams.STREAM_INTAKE)
        assert intake_events.state.messages == 1
    finally:
        await admin.close()
        await registry.close()


class TlsMailCatcher:
    """The mail catcher behind STARTTLS (RFC 3207), as a production relay must be."""

    def __init__(self, outbox: Path, pki: Pki) -> None:
        self.handler = CatchingHandler(outbox)
        self.port = free_port()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(pki.server.cert_file), str(pki.server.key_file))
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(self.handler, hostname="relay.localhost", tls_context=self.context, require_starttls=True),
            host="127.0.0.1", port=self.port)
        await asyncio.to_thread(wait_for_port, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_the_pipeline_runs_in_production_mode_with_one_user_per_service_over_tls(secured_nats, tmp_path):
    relay = TlsMailCatcher(tmp_path / "outbox", secured_nats.pki)
    await relay.start()
    config = StackConfig(nats_url=secured_nats.server.url, var_dir=tmp_path / "var",
                         registry_database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
                         notifier_database_url=f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}",
                         relay_port=relay.port)
    common = {**config.overrides(), "environment": "production"}
    registry = build_registry(secured_nats.settings(
        "registry", RegistrySettings, **common, registry_database_url=config.registry_database_url,
        registry_api_port=config.api_port))
    notifier = build_notifier(secured_nats.settings(
        "notifier", NotifierSettings, **common, notifier_database_url=config.notifier_database_url,
        relay_host="127.0.0.1", relay_port=config.relay_port, relay_starttls=True,
        relay_tls_ca_file=secured_nats.pki.ca_file))
    intake = build_intake(secured_nats.settings(
        "intake", IntakeSettings, **common, smtp_port=config.smtp_port, intake_health_port=config.health_port,
        complaint_addresses=[COMPLAINT_ADDRESS]))
    services = (registry, notifier, intake)
    admin = await connect_as(secured_nats, "admin")
    try:
        for service in services:
            await asyncio.wait_for(service.start(), 30)
        await send_mail_async(config.smtp_port, complaint_mail(
            "Jeanne Dupont <jeanne.dupont@example.org>", "Plainte : dossier bloqué", "Mon dossier est bloqué."))
        path = await asyncio.wait_for(relay.handler.received.get(), 30)
        assert b"jeanne.dupont@example.org" in path.read_bytes()

        # The back office reads the raw original intake stored (read-only access to the object store) ...
        raw_names = [info.name for info in await (await admin.jetstream().object_store(
            streams.BUCKET_RAW_MESSAGES)).list()]
        assert len(raw_names) == 1
        original = await OriginalStore(lambda: registry.broker.connection.jetstream()).raw(raw_names[0])
        assert "Mon dossier est bloqu" in original.decode("utf-8", errors="replace")
        # ... and asks the notifier for a preview, which answers on the registry's own inbox.
        preview = await NoticePreviewer(registry.broker).preview(NoticePreviewRequest(
            complaint_number="MED-2026-00001", notice_kind="staff_message", language="en",
            recipient=Party(name="Jan Janssens", email="jan@example.be", language="nl"),
            context={"text": "We received your documents."}))
        assert preview.error is None and "We received your documents." in preview.text
    finally:
        for service in reversed(services):
            await service.stop()
        await admin.close()
        await relay.stop()
    assert secured_nats.violations() == []


def test_nats_config_command_writes_private_files_and_keeps_passwords(tmp_path, pki):
    out = tmp_path / "deployment"
    arguments = ["nats", "config", "--out", str(out), "--cert", str(pki.server.cert_file), "--key",
                 str(pki.server.key_file), "--ca", str(pki.ca_file), "--cluster"]
    first = CliRunner().invoke(ombudsdesk_app, arguments)
    assert first.exit_code == 0, first.output
    written = sorted(path.name for path in out.iterdir())
    assert written == ["admin.password", "cluster-tls.conf", "intake.password", "notifier.password",
                       "ombudsdesk-nats.conf", "registry.password"]
    for path in out.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    passwords = {user: (out / f"{user}.password").read_text() for user in USERS}
    assert len(set(passwords.values())) == len(USERS)
    assert CliRunner().invoke(ombudsdesk_app, arguments).exit_code == 0
    assert {user: (out / f"{user}.password").read_text() for user in USERS} == passwords
    for user, password in passwords.items():
        assert password.strip() in (out / "ombudsdesk-nats.conf").read_text()
    rotated = CliRunner().invoke(ombudsdesk_app, [*arguments, "--rotate"])
    assert rotated.exit_code == 0
    assert (out / "intake.password").read_text() != passwords["intake"]
    incomplete = CliRunner().invoke(ombudsdesk_app, ["nats", "config", "--out", str(out), "--cert",
                                                           str(pki.server.cert_file)])
    assert incomplete.exit_code == 2


@pytest.mark.slow
async def test_a_cluster_forms_over_tls_routes_and_serves_a_service_user(tmp_path, pki):
    passwords = {user: f"{user}-password-for-this-test" for user in USERS}
    for user, password in passwords.items():
        (tmp_path / f"{user}.password").write_text(password)
    cluster = NatsCluster(tmp_path / "cluster", extra_config=server_config(passwords, pki.server),
                          cluster_extra=route_tls_block(pki.server), url_scheme="tls")
    with cluster:
        leader = cluster.wait_for_meta_leader()
        assert leader in {node.name for node in cluster.nodes}
        for node in cluster.nodes:
            log = node.log_file.read_text(encoding="utf-8", errors="replace")
            assert "TLS required for client connections" in log
            assert "Route connection created" in log  # the routes are up, over TLS (no plaintext route is possible)
        settings = load_settings(CommonSettings, nats_url=cluster.urls, nats_user="registry",
                                 nats_password_file=tmp_path / "registry.password", nats_tls_ca_file=pki.ca_file,
                                 stream_replicas=3)
        client = await connect_client_for_command(settings)
        try:
            js = client.jetstream(timeout=10)
            # Just after the election the leader may not know every peer yet: a replicated stream waits for them.
            async with asyncio.timeout(60):
                while True:
                    try:
                        info = await js.add_stream(name=streams.STREAM_REGISTRY, subjects=["ombudsdesk.registry.>"],
                                                   num_replicas=3)
                        break
                    except (NatsTimeoutError, APIError):
                        await asyncio.sleep(0.5)
            assert info.config.num_replicas == 3
            ack = await js.publish(streams.SUBJECT_COMPLAINT_CHANGED, b"{}", timeout=10)
            assert ack.stream == streams.STREAM_REGISTRY
        finally:
            await client.close()


def test_the_shipped_cluster_example_is_a_valid_configuration_with_the_generated_files(tmp_path, pki):
    """deploy/nats/cluster.conf.example includes what `ombudsdesk nats config --cluster` writes: nats-server itself
    checks the result (`-t`)."""
    example = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "cluster.conf.example"
    write_deployment(tmp_path / "ombudsdesk", pki.server, route_tls=pki.server)
    config = tmp_path / "nats.conf"
    config.write_text(example.read_text(encoding="utf-8").replace("/var/lib/nats", str(tmp_path / "jetstream")))
    checked = subprocess.run([nats_server_binary(), "-c", str(config), "-t"], capture_output=True, text=True,
                             timeout=30, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "is valid" in checked.stdout + checked.stderr
