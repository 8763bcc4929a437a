"""The NATS server side of transport security (issue 14): one user per service with the permissions it needs and no
more, TLS for clients and for the routes between cluster nodes, and `ombudsdesk nats config`, which writes them for a
deployment.

What each user may do is derived from `shared.streams` (one place for every name), and was checked by running the
services against a server with exactly these permissions (tests/shared/test_nats_security.py): anything missing shows
up there as a permissions violation. In short:

- intake publishes its events (`ombudsdesk.intake.>`), its spool, the raw originals and attachments (object store),
  its key-value buckets, and asks the registry for case lookups; it consumes only its spool.
- the registry publishes `ombudsdesk.registry.>` and asks for notice previews; it consumes intake's events and the
  notifier's outcomes, reads (never writes) the raw originals, and answers intake's case lookups (only as a reply).
- the notifier publishes `ombudsdesk.notifier.>` and answers notice-preview requests (only as a reply); it consumes
  the registry's events and intake's delivery failures.
- each service publishes the dead letters of its own consumers only, acknowledges deliveries of its own consumers
  only, and receives replies on its own inboxes only (`_INBOX_<user>.>`, `shared.messaging.nats_inbox_prefix`), so
  no service reads another's fetched events or API answers.
- every service may create the streams and buckets (`shared.stream_admin.ensure_streams` at start: creating an
  existing stream with another configuration fails, it never changes it), but none may update, purge or delete a
  stream: that is the `admin` user's, for staff commands (`ombudsdesk streams update`, `deadletter replay`,
  `intake quarantine migrate-stream`...); even `admin` may neither delete nor purge the event streams. The one
  message deletion a service may do is intake's secure erase in its own stores (object store, quarantine, spool).

Passwords: nats-server accepts bcrypt hashes in `password`, but the `bcrypt` package is not a dependency of the
project, so the generated configuration holds the passwords themselves; it is written with mode 0600 (as is each
service's password file) and must stay readable by the nats-server user only. A bcrypt hash (`nats server passwd`)
may replace any `password` value by hand: the services read only their own password file.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from shared import streams
from shared.cli_help import StaffCommand, staff_app
from shared.messaging import nats_inbox_prefix, stream_for_subject
from nats.js.client import KV_STREAM_TEMPLATE
from nats.js.object_store import OBJ_STREAM_TEMPLATE

API = "$JS.API"
SERVICES = ("intake", "registry", "notifier")
ADMIN = "admin"
USERS = (*SERVICES, ADMIN)

EVENT_STREAMS = tuple(definition.name for definition in streams.STREAMS)
OBJECT_BUCKETS = (streams.BUCKET_RAW_MESSAGES, streams.BUCKET_ATTACHMENTS)
INTAKE_KV_BUCKETS = (streams.BUCKET_INTAKE_SEEN, streams.BUCKET_INTAKE_QUARANTINE, streams.BUCKET_INTAKE_IMAP,
                     streams.BUCKET_INTAKE_SPOOL_ATTEMPTS)

# The durable consumers of each service, as their subscribers declare them (subject, durable name); the stream is
# the one capturing the subject.
CONSUMERS: dict[str, tuple[tuple[str, str], ...]] = {
    "intake": (
        (streams.SUBJECT_INTAKE_SPOOL, streams.CONSUMER_INTAKE_SPOOL),
        (streams.SUBJECT_PERSONAL_DATA_ERASED, streams.CONSUMER_INTAKE_PRIVACY),
    ),
    "registry": (
        (streams.SUBJECT_MESSAGE_RECEIVED, streams.CONSUMER_REGISTRY_INTAKE),
        (streams.SUBJECT_NOTIFICATION_SENT, streams.CONSUMER_REGISTRY_DELIVERY),
        (streams.SUBJECT_NOTIFICATION_FAILED, streams.CONSUMER_REGISTRY_NOTIFICATION_FAILED),
    ),
    "notifier": (
        (streams.SUBJECT_COMPLAINT_REGISTERED, streams.CONSUMER_NOTIFIER_REGISTRY),
        (streams.SUBJECT_NOTICE_REQUESTED, streams.CONSUMER_NOTIFIER_NOTICES),
        (streams.SUBJECT_DEADLINES, streams.CONSUMER_NOTIFIER_DEADLINES),
        (streams.SUBJECT_DELIVERY_FAILED, streams.CONSUMER_NOTIFIER_DELIVERY_FAILED),
        (streams.SUBJECT_PERSONAL_DATA_ERASED, streams.CONSUMER_NOTIFIER_PRIVACY),
    ),
}


def consumer_stream(subject: str) -> str:
    """The stream a consumer of `subject` reads: intake's spool, or the event stream capturing the subject."""
    return streams.STREAM_INTAKE_SPOOL if subject == streams.SUBJECT_INTAKE_SPOOL else stream_for_subject(subject)


@dataclass(frozen=True)
class Permissions:
    """One user's `permissions` map in nats-server's configuration."""

    publish_allow: tuple[str, ...]
    subscribe_allow: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()
    # May publish to the reply subject of a request it received (once, within the server's default time).
    allow_responses: bool = False

    def as_config(self) -> dict[str, object]:
        publish: dict[str, object] = {"allow": list(self.publish_allow)}
        if self.publish_deny:
            publish["deny"] = list(self.publish_deny)
        permissions: dict[str, object] = {"publish": publish, "subscribe": {"allow": list(self.subscribe_allow)}}
        if self.allow_responses:
            permissions["allow_responses"] = True
        return permissions


def _unique(subjects: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(subjects))


def _stream_setup(stream: str) -> list[str]:
    """Look a stream up and create it when missing (what every service does at start)."""
    return [f"{API}.STREAM.INFO.{stream}", f"{API}.STREAM.CREATE.{stream}"]


def _consume(stream: str, consumer: str) -> list[str]:
    """Create or look up a durable pull consumer, fetch from it, acknowledge its deliveries: nothing else."""
    return [
        f"{API}.CONSUMER.CREATE.{stream}.{consumer}",
        f"{API}.CONSUMER.CREATE.{stream}.{consumer}.>",  # the form with the filter subject
        f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{consumer}",
        f"{API}.CONSUMER.INFO.{stream}.{consumer}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
    ]


def _read_store(stream: str) -> list[str]:
    """Read an object-store or key-value bucket: its info, direct and stored message gets, and the ephemeral ordered
    consumer nats-py reads an object's chunks (or a bucket's keys) with."""
    return [
        f"{API}.STREAM.NAMES",  # nats-py finds the stream of an object's chunk subject by asking the names
        f"{API}.STREAM.INFO.{stream}",
        f"{API}.STREAM.MSG.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
        f"{API}.CONSUMER.CREATE.{stream}",
        f"{API}.CONSUMER.CREATE.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def _common_setup() -> list[str]:
    """Every service makes sure the streams and the object-store buckets exist at start, and compares every stream
    of the layout, intake's key-value buckets included, with the settings (`shared.stream_admin.ensure_streams`)."""
    created = (*EVENT_STREAMS, streams.STREAM_INTAKE_SPOOL, *(object_stream(bucket) for bucket in OBJECT_BUCKETS))
    subjects = [subject for stream in created for subject in _stream_setup(stream)]
    subjects += [f"{API}.STREAM.INFO.{kv_stream(bucket)}" for bucket in INTAKE_KV_BUCKETS]
    return subjects


def object_stream(bucket: str) -> str:
    return OBJ_STREAM_TEMPLATE.format(bucket=bucket)


def kv_stream(bucket: str) -> str:
    return KV_STREAM_TEMPLATE.format(bucket=bucket)


def _dead_letters(service: str) -> list[str]:
    return [streams.dead_letter_subject(consumer) for _subject, consumer in CONSUMERS[service]]


def _inboxes(user: str) -> tuple[str, ...]:
    return (f"{nats_inbox_prefix(user)}.>",)


def service_permissions() -> dict[str, Permissions]:
    """Each user's permissions, derived from the names in `shared.streams`."""
    consumed = {service: [allowed for subject, consumer in CONSUMERS[service]
                          for allowed in _consume(consumer_stream(subject), consumer)]
                for service in SERVICES}
    intake = Permissions(
        publish_allow=_unique([
            *_common_setup(),
            "ombudsdesk.intake.>",
            streams.SUBJECT_INTAKE_SPOOL,
            *_stream_setup(streams.STREAM_INTAKE_SPOOL),
            *consumed["intake"],
            *_dead_letters("intake"),
            *(f"$O.{bucket}.>" for bucket in OBJECT_BUCKETS),
            *(subject for bucket in OBJECT_BUCKETS for subject in _read_store(object_stream(bucket))),
            *(f"$KV.{bucket}.>" for bucket in INTAKE_KV_BUCKETS),
            # Erasure (issue 16, services/intake/privacy.py): the messages holding an erased file's raw originals,
            # attachments, quarantine entries and waiting spool entries are deleted one by one with the server's
            # secure erase (overwritten on disk); the spool is read to find its entries. Chunks no name points to
            # (a duplicate's, an old copy's) and earlier revisions of a quarantine entry go the same way
            # (services/intake/stores.py): intake needs no right to purge a stream.
            *(f"{API}.STREAM.MSG.DELETE.{stream}" for stream in (
                *(object_stream(bucket) for bucket in OBJECT_BUCKETS),
                kv_stream(streams.BUCKET_INTAKE_QUARANTINE), streams.STREAM_INTAKE_SPOOL)),
            f"{API}.STREAM.MSG.GET.{streams.STREAM_INTAKE_SPOOL}",
            *(subject for bucket in INTAKE_KV_BUCKETS for subject in _stream_setup(kv_stream(bucket))),
            *(subject for bucket in INTAKE_KV_BUCKETS for subject in _read_store(kv_stream(bucket))),
            # The public pages ask the registry: a submission's number, orientation, the citizen's link, the survey.
            *streams.PUBLIC_REQUESTS,
        ]),
        subscribe_allow=_inboxes("intake"),
    )
    registry = Permissions(
        publish_allow=_unique([
            *_common_setup(),
            "ombudsdesk.registry.>",
            streams.SUBJECT_NOTICE_PREVIEW,
            *consumed["registry"],
            *_dead_letters("registry"),
            # The back office shows a message's raw original and attachments: read only.
            *(subject for bucket in OBJECT_BUCKETS for subject in _read_store(object_stream(bucket))),
        ]),
        subscribe_allow=(*_inboxes("registry"), *streams.PUBLIC_REQUESTS),
        # The answer to a public page's question goes to intake's inbox: allowed as a reply to a request only.
        allow_responses=True,
    )
    notifier = Permissions(
        publish_allow=_unique([
            *_common_setup(),
            "ombudsdesk.notifier.>",
            *consumed["notifier"],
            *_dead_letters("notifier"),
        ]),
        subscribe_allow=(*_inboxes("notifier"), streams.SUBJECT_NOTICE_PREVIEW),
        # The answer to a preview goes to the registry's inbox: allowed as a reply to a request it received only.
        allow_responses=True,
    )
    protected = [f"{API}.STREAM.{action}.{stream}" for stream in EVENT_STREAMS for action in ("DELETE", "PURGE")]
    admin = Permissions(
        publish_allow=("ombudsdesk.>", f"{API}.>", "$O.>", "$KV.>", "$JS.ACK.>", "$JS.FC.>"),
        publish_deny=tuple(protected),
        subscribe_allow=_inboxes(ADMIN),
    )
    return {"intake": intake, "registry": registry, "notifier": notifier, ADMIN: admin}


def _quoted(value: str | Path) -> str:
    # A JSON string is a valid NATS configuration string, and quotes any path or password safely.
    return json.dumps(str(value))


def authorization_block(passwords: Mapping[str, str], permissions: Mapping[str, Permissions] | None = None) -> str:
    """The server's `authorization { users = [...] }` block: one user per entry of `passwords` (user -> password or
    bcrypt hash), with that user's permissions (`service_permissions()` by default)."""
    permissions = permissions if permissions is not None else service_permissions()
    unknown = sorted(set(passwords) - set(permissions))
    if unknown:
        raise ValueError(f"no permissions defined for user(s) {', '.join(unknown)}")
    users = []
    for user, password in passwords.items():
        if not password:
            raise ValueError(f"empty password for user {user}")
        entry = json.dumps({"user": user, "password": password, "permissions": permissions[user].as_config()},
                           indent=2)
        users.append("\n".join("    " + line for line in entry.splitlines()))
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"


@dataclass(frozen=True)
class TlsFiles:
    """Certificate, key and CA (PEM paths as the server sees them) of one TLS block."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    extra: Mapping[str, object] = field(default_factory=dict)


def tls_block(files: TlsFiles, *, verify: bool, handshake_first: bool = False, indent: str = "") -> str:
    """A `tls { }` block. `verify`: the peer must present a certificate signed by the CA (mutual TLS; always for
    routes). `handshake_first`: TLS from the first byte, as the services' clients speak it (no plaintext INFO that a
    man in the middle could answer to get a password in clear)."""
    lines = [f"cert_file: {_quoted(files.cert_file)}", f"key_file: {_quoted(files.key_file)}",
             f"ca_file: {_quoted(files.ca_file)}", f"verify: {'true' if verify else 'false'}", "timeout: 5"]
    if handshake_first:
        lines.append("handshake_first: true")
    lines += [f"{key}: {json.dumps(value)}" for key, value in files.extra.items()]
    body = "\n".join(f"{indent}  {line}" for line in lines)
    return f"{indent}tls {{\n{body}\n{indent}}}\n"


def client_tls_block(files: TlsFiles, *, verify_clients: bool = False) -> str:
    """The server's TLS for clients (the services and staff commands)."""
    return tls_block(files, verify=verify_clients, handshake_first=True)


def route_tls_block(files: TlsFiles) -> str:
    """TLS between cluster nodes, to go inside `cluster { }`: each node proves itself with a certificate of the CA."""
    return tls_block(files, verify=True, indent="  ")


def server_config(passwords: Mapping[str, str], client_tls: TlsFiles | None, *, verify_clients: bool = False) -> str:
    """What a deployment adds to each NATS server's configuration: the users and, with `client_tls`, client TLS."""
    parts = ["# ombudsdesk: users, permissions and TLS (written by `ombudsdesk nats config`; keep it mode 0600).\n",
             authorization_block(passwords)]
    if client_tls is not None:
        parts.append(client_tls_block(client_tls, verify_clients=verify_clients))
    return "\n".join(parts)


def new_password() -> str:
    return secrets.token_urlsafe(32)


def _write_private(path: Path, text: str) -> None:
    """Create or replace a file readable by its owner only, never briefly readable by others."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


@dataclass(frozen=True)
class Deployment:
    """What `write_deployment` wrote."""

    server_config: Path
    cluster_config: Path | None
    password_files: dict[str, Path]


def write_deployment(out: Path, client_tls: TlsFiles | None, *, route_tls: TlsFiles | None = None,
                     verify_clients: bool = False, rotate: bool = False) -> Deployment:
    """Write into `out`: `ombudsdesk-nats.conf` (users + client TLS, to `include` in each server's configuration),
    `cluster-tls.conf` (to `include` inside `cluster { }`) with `route_tls`, and one `<user>.password` per user.
    A password file already there is kept (running services keep working) unless `rotate`."""
    out.mkdir(parents=True, exist_ok=True)
    passwords: dict[str, str] = {}
    password_files: dict[str, Path] = {}
    for user in USERS:
        path = out / f"{user}.password"
        existing = path.read_text(encoding="utf-8").strip() if path.is_file() and not rotate else ""
        passwords[user] = existing or new_password()
        if not existing:
            _write_private(path, passwords[user] + "\n")
        password_files[user] = path
    config = out / "ombudsdesk-nats.conf"
    _write_private(config, server_config(passwords, client_tls, verify_clients=verify_clients))
    cluster = None
    if route_tls is not None:
        cluster = out / "cluster-tls.conf"
        _write_private(cluster, route_tls_block(route_tls))
    return Deployment(config, cluster, password_files)


app = staff_app(help="The NATS side of a deployment: users, permissions, TLS.", no_args_is_help=True)


@app.command("config", cls=StaffCommand)
def config_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the configuration and password files into.")],
    cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM), as the server's path.")] = None,
    key: Annotated[Path | None, typer.Option(help="Its private key (PEM), as the server's path.")] = None,
    ca: Annotated[Path | None, typer.Option(help="CA certificate (PEM) of servers and clients.")] = None,
    verify_clients: Annotated[bool, typer.Option(help="Require client certificates (mutual TLS).")] = False,
    cluster: Annotated[bool, typer.Option(help="Also write cluster-tls.conf for the routes between nodes.")] = False,
    rotate: Annotated[bool, typer.Option(help="New passwords even where password files exist.")] = False,
) -> None:
    """Write a deployment's NATS configuration: users with per-service permissions, TLS, one password file per
    user (docs/security.md, "Transport")."""
    given = [value for value in (cert, key, ca) if value is not None]
    if given and len(given) != 3:
        typer.echo("ombudsdesk: --cert, --key and --ca go together", err=True)
        raise typer.Exit(2)
    if cluster and not given:
        typer.echo("ombudsdesk: --cluster needs --cert, --key and --ca (routes are always TLS)", err=True)
        raise typer.Exit(2)
    files = TlsFiles(cert, key, ca) if cert is not None and key is not None and ca is not None else None
    written = write_deployment(out, files, route_tls=files if cluster else None, verify_clients=verify_clients,
                               rotate=rotate)
    typer.echo(f"server configuration: {written.server_config} (include it in each nats-server configuration)")
    if written.cluster_config is not None:
        typer.echo(f"route TLS: {written.cluster_config} (include it inside the cluster {{ }} block)")
    for user, path in written.password_files.items():
        typer.echo(f"{user:<9} OMBUDSDESK_NATS_USER={user} OMBUDSDESK_NATS_PASSWORD_FILE=<copy of {path}>")
    if files is None:
        typer.echo("warning: no TLS (--cert/--key/--ca): passwords would cross the network in clear; "
                   "production mode refuses it", err=True)
