"""Production mode (`OMBUDSDESK_ENVIRONMENT=production`, issue 14): each service refuses to start with plaintext NATS,
NATS without credentials, plaintext IMAP, a relay without TLS or a placeholder secret — a `SettingsError` naming the
variable, raised by `shared.settings.load_settings` — while the development default (`make run`) needs nothing.

That a correct production configuration does start, and carries the whole pipeline over TLS with one NATS user per
service and a STARTTLS relay, is `tests/shared/test_nats_security.py::test_the_pipeline_runs_in_production_mode...`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trustme

from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.registry.settings import RegistrySettings
from shared.messaging import nats_connect_options
from shared.settings import CommonSettings, SettingsError, load_settings, placeholder_secret

EXAMPLE_ENV = Path(__file__).resolve().parents[2] / "deploy" / "ombudsdesk.env.example"


@pytest.fixture(autouse=True)
def no_ombudsdesk_environment(monkeypatch):
    """Only what each test sets: nothing from the machine's environment."""
    import os

    for name in list(os.environ):
        if name.startswith("OMBUDSDESK_"):
            monkeypatch.delenv(name)


@pytest.fixture
def production(tmp_path: Path) -> dict[str, object]:
    """A correct production configuration of the NATS side: TLS with a CA, a user and its password file."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "intake.password").write_text("q7Vb-2xN0pLr8WzKe4HsTu\n")
    return {"environment": "production", "nats_url": "tls://nats-1.internal:4222,tls://nats-2.internal:4222",
            "nats_user": "intake", "nats_password_file": tmp_path / "intake.password",
            "nats_tls_ca_file": tmp_path / "ca.pem"}


def secret_file(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content + "\n")
    return path


def refusal(settings_class: type[CommonSettings], **values: object) -> str:
    with pytest.raises(SettingsError) as refused:
        load_settings(settings_class, **values)
    return str(refused.value)


def test_the_development_default_needs_no_setup():
    for settings_class in (CommonSettings, IntakeSettings, RegistrySettings, NotifierSettings):
        settings = load_settings(settings_class)
        assert settings.environment == "development"
        # `make run`: the embedded server on loopback, no credentials, no TLS.
        assert nats_connect_options(settings) == {"inbox_prefix": "_INBOX"}


def test_a_correct_production_configuration_is_accepted(production, tmp_path):
    mailbox = {"name": "plaintes", "host": "imap.example.be", "username": "plaintes",
               "password_file": str(secret_file(tmp_path, "imap.password", "Xw8-long-random-imap-secret"))}
    intake = load_settings(IntakeSettings, **production, imap_mailboxes=[mailbox])
    assert intake.environment == "production" and intake.imap_mailboxes[0].ssl
    notifier = load_settings(NotifierSettings, **production, relay_starttls=True, relay_username="ombudsdesk",
                             relay_password="Xw8-long-random-relay-secret",
                             notifier_database_url="postgresql+asyncpg://ombudsdesk:Kq93-vNw@db/notifier")
    assert notifier.relay_starttls
    registry = load_settings(RegistrySettings, **production,
                             registry_database_url="postgresql+asyncpg://ombudsdesk:Kq93-vNw@db/registry")
    options = nats_connect_options(registry)
    assert options["user"] == "intake" and options["password"] == "q7Vb-2xN0pLr8WzKe4HsTu"
    assert options["tls_handshake_first"] is True and options["inbox_prefix"] == "_INBOX_intake"
    # With a CA file, that CA only: the system's trusted authorities are not loaded.
    assert [cert["subject"] for cert in options["tls"].get_ca_certs()] and len(options["tls"].get_ca_certs()) == 1
    # tls:// URLs without a CA file are TLS too (the system's authorities, for a publicly certified server).
    assert load_settings(CommonSettings, **{**production, "nats_tls_ca_file": None}).nats_uses_tls()


REFUSALS = [
    pytest.param(CommonSettings, {"nats_url": "nats://nats-1.internal:4222", "nats_tls_ca_file": None},
                 "plaintext NATS: set OMBUDSDESK_NATS_TLS_CA_FILE", id="plaintext-nats"),
    pytest.param(CommonSettings, {"nats_url": "tls://nats-1.internal:4222,nats://nats-2.internal:4222",
                                  "nats_tls_ca_file": None}, "plaintext NATS", id="one-plaintext-url"),
    pytest.param(IntakeSettings, {"nats_user": "", "nats_password_file": None},
                 "NATS without credentials: set OMBUDSDESK_NATS_USER and OMBUDSDESK_NATS_PASSWORD_FILE",
                 id="nats-without-credentials"),
    pytest.param(CommonSettings, {"nats_url": "tls://intake:hunter2-secret@nats-1.internal:4222"},
                 "credentials in OMBUDSDESK_NATS_URL", id="password-in-url"),
    pytest.param(CommonSettings, {"nats_password_file": "changeme"},
                 "placeholder password in OMBUDSDESK_NATS_PASSWORD_FILE", id="placeholder-nats-password"),
    pytest.param(IntakeSettings, {"imap_mailboxes": [{"name": "plaintes", "host": "imap.example.be", "port": 143,
                                                      "ssl": False, "username": "u", "password": "Xw8-imap-9k"}]},
                 "plaintext IMAP: mailbox 'plaintes' in OMBUDSDESK_IMAP_MAILBOXES", id="plaintext-imap"),
    pytest.param(IntakeSettings, {"imap_mailboxes": [{"name": "plaintes", "host": "imap.example.be",
                                                      "verify_tls": False, "username": "u",
                                                      "password": "Xw8-imap-9k"}]},
                 "plaintext IMAP", id="imap-without-certificate-check"),
    pytest.param(IntakeSettings, {"imap_mailboxes": [{"name": "plaintes", "host": "imap.example.be",
                                                      "username": "u", "password": "CHANGE-ME"}]},
                 "placeholder password for mailbox 'plaintes'", id="placeholder-imap-password"),
    pytest.param(IntakeSettings, {"imap_mailboxes": [{"name": "plaintes", "host": "imap.example.be",
                                                      "username": "u", "password_file": "changeme"}]},
                 "placeholder password for mailbox 'plaintes'", id="placeholder-imap-password-file"),
    pytest.param(IntakeSettings, {"smtp_auth_users": {"copier": "password"}},
                 "placeholder password in OMBUDSDESK_SMTP_AUTH_USERS", id="placeholder-smtp-auth"),
    pytest.param(NotifierSettings, {}, "a relay without TLS: set OMBUDSDESK_RELAY_STARTTLS=true", id="relay-plain"),
    pytest.param(NotifierSettings, {"relay_implicit_tls": True, "relay_username": "desk",
                                    "relay_password": "example-password"},
                 "placeholder password in OMBUDSDESK_RELAY_PASSWORD", id="placeholder-relay-password"),
    pytest.param(NotifierSettings, {"relay_starttls": True, "notifier_database_url":
                                    "postgresql+asyncpg://ombudsdesk:CHANGE-ME@db.internal/ombudsdesk_notifier"},
                 "placeholder password in OMBUDSDESK_NOTIFIER_DATABASE_URL", id="placeholder-notifier-database"),
    pytest.param(RegistrySettings, {"registry_database_url":
                                    "postgresql+asyncpg://ombudsdesk:CHANGE-ME@db.internal/ombudsdesk_registry"},
                 "placeholder password in OMBUDSDESK_REGISTRY_DATABASE_URL", id="placeholder-registry-database"),
    pytest.param(RegistrySettings, {"oidc_issuer": "https://login.example.be/realms/staff",
                                    "oidc_client_id": "ombudsdesk", "oidc_client_secret_file": "your-secret-here"},
                 "placeholder secret in OMBUDSDESK_OIDC_CLIENT_SECRET_FILE", id="placeholder-oidc-secret"),
]


@pytest.mark.parametrize(("settings_class", "values", "expected"), REFUSALS)
def test_production_refuses_each_unsafe_setting(settings_class, values, expected, production, tmp_path):
    values = dict(values)
    for key in ("nats_password_file", "password_file", "oidc_client_secret_file"):
        if isinstance(values.get(key), str):  # a secret file holding this content
            values[key] = secret_file(tmp_path, f"{key}.txt", values[key])
    for mailbox in values.get("imap_mailboxes", []):
        if isinstance(mailbox.get("password_file"), str):
            mailbox["password_file"] = str(secret_file(tmp_path, "imap.txt", mailbox["password_file"]))
    if settings_class is NotifierSettings and "relay_starttls" not in values and "relay_implicit_tls" not in values \
            and expected.startswith("placeholder"):
        values["relay_starttls"] = True
    message = refusal(settings_class, **{**production, **values})
    assert "OMBUDSDESK_ENVIRONMENT=production refuses to start with" in message
    assert expected in message
    # The same settings are accepted in development: the refusal is production's.
    assert load_settings(settings_class, **{**production, **values, "environment": "development"})


def test_every_refusal_is_reported_at_once(production):
    message = refusal(NotifierSettings, **{**production, "nats_url": "nats://127.0.0.1:4222",
                                           "nats_tls_ca_file": None, "nats_user": "", "nats_password_file": None})
    assert "plaintext NATS" in message and "NATS without credentials" in message and "a relay without TLS" in message


def test_the_shipped_example_environment_is_refused_until_its_placeholders_are_replaced(production, monkeypatch):
    """deploy/ombudsdesk.env.example holds `CHANGE-ME` passwords: production mode refuses it as it is."""
    for line in EXAMPLE_ENV.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name.strip(), value.strip())
    # The example's files do not exist on a test machine: this test's own, with a real password.
    files = {key: production[key] for key in ("nats_password_file", "nats_tls_ca_file")}
    message = refusal(RegistrySettings, **files, nats_user="registry")
    assert "placeholder password in OMBUDSDESK_REGISTRY_DATABASE_URL" in message
    assert "OMBUDSDESK_ENVIRONMENT=production" in message  # the example itself says production


@pytest.mark.parametrize(("values", "expected"), [
    ({"nats_password_file": "pw"}, "OMBUDSDESK_NATS_PASSWORD_FILE is set but OMBUDSDESK_NATS_USER is empty"),
    ({"nats_user": "intake"}, "OMBUDSDESK_NATS_USER needs OMBUDSDESK_NATS_PASSWORD_FILE"),
    ({"nats_tls_cert_file": "cert"}, "OMBUDSDESK_NATS_TLS_CERT_FILE and OMBUDSDESK_NATS_TLS_KEY_FILE go together"),
    ({"nats_user": "intake", "nats_password_file": "missing"}, "OMBUDSDESK_NATS_PASSWORD_FILE: no file"),
    ({"nats_user": "intake", "nats_password_file": "pw", "nats_credentials_file": "pw"}, "exclude each other"),
])
def test_nats_credential_settings_must_fit_together_in_any_environment(values, expected, tmp_path):
    existing = secret_file(tmp_path, "pw", "Xw8-long-random-secret")
    resolved = {key: (existing if value == "pw" else tmp_path / value if value in ("missing", "cert") else value)
                for key, value in values.items()}
    assert expected in refusal(CommonSettings, **resolved)


@pytest.mark.parametrize(("value", "placeholder"), [
    ("CHANGE-ME", True), ("changeme", True), ("Change_Me_Please", True), ("example-secret", True), ("", True),
    ("password", True), ("secret", True), ("  ", True), ("q7Vb-2xN0pLr8WzKe4HsTu", False),
    ("correct horse battery staple", False), (json.dumps("Kq93-vNw"), False),
])
def test_placeholder_secrets(value, placeholder):
    assert placeholder_secret(value) is placeholder
