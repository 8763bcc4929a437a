"""Legal notices versioned per jurisdiction (issue 15): the shipped Belgian and French files, the version in force on
the day a notice is written (a change of law applies from its date, in the service's calendar), each notice recording
the version it carried and old notices reproduced with their old text, over real NATS and a real SMTP server."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from services.notifier.handlers import organisation_variables
from services.notifier.legal_notices import (
    SHIPPED_DIR,
    LegalNoticesError,
    load_legal_notices,
    parse_legal_notices,
)
from services.notifier.rendering import LANGUAGES, TemplateRenderer
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import MIGRATIONS, build_notifier
from shared.database import alembic_config, create_engine, upgrade_to_head
from shared.events import Party
from tests.notifier.conftest import notifier_settings
from tests.notifier.support import SmtpSink, eventually, publish, registered_event, wait_until

# What each jurisdiction's notice must say about appeal deadlines, and must not (the other's rule), in French.
BELGIAN = "ne suspend pas et n'interrompt pas les délais de recours"
FRENCH = "article L213-6 du code de justice administrative"


def variables(language: str, settings: NotifierSettings | None = None) -> dict[str, object]:
    return {"case_number": "MED-2026-00042", "recipient_name": "", "subject_line": "",
            "received_on": date(2026, 11, 24), "answer_due": date(2027, 1, 8), "handler_name": "", "service_concerned": "", "channel": "email",
            "org": organisation_variables(settings or NotifierSettings(), language)}


# --- the shipped files ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("jurisdiction", ["BE", "FR"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_each_shipped_jurisdiction_states_its_own_law_in_four_languages(jurisdiction: str, language: str):
    renderer = TemplateRenderer(legal_notices=load_legal_notices(jurisdiction))
    rendered = renderer.render("acknowledgment", language, variables(language), legal_on=date(2026, 11, 24))
    if jurisdiction == "FR":
        assert "L213-6" in rendered.text and "Défenseur des droits" in rendered.text
        assert rendered.legal_notice_version == "fr-2016-11"
    else:
        assert "L213-6" not in rendered.text and "Défenseur" not in rendered.text
        assert rendered.legal_notice_version == "be-2000"
    assert "{name}" not in rendered.text and "{contact}" not in rendered.text


def test_the_belgian_sentences_are_the_ones_shipped_before_issue_15():
    # The complaint acknowledgment of a Belgian deployment is unchanged, word for word.
    rendered = TemplateRenderer().render("acknowledgment", "fr", variables("fr"))
    assert (BELGIAN in rendered.text and "Si notre réponse ne vous satisfait pas, vous pouvez saisir gratuitement "
            "l'ombudsman de second niveau compétent, Médiateur fédéral : Rue Ducale 43, 1000 Bruxelles – "
            "contact@mediateurfederal.be – www.mediateurfederal.be" in rendered.text)


def test_the_deployments_second_line_settings_win_over_the_legal_notices_names():
    settings = NotifierSettings(jurisdiction="FR", second_line_name="la Médiatrice de la Région",
                                second_line_contact="mediatrice@region.example",
                                second_line_name_translations={"nl": "de Bemiddelaarster van de Regio"})
    renderer = TemplateRenderer(legal_notices=load_legal_notices("FR"))
    french = renderer.render("final_answer", "fr", {**variables("fr", settings), "answer_text": "Réponse.",
                                                    "answered_by": ""}).text
    assert "saisir gratuitement la Médiatrice de la Région : mediatrice@region.example." in french
    assert FRENCH in french  # the jurisdiction's sentence stays
    dutch = renderer.render("acknowledgment", "nl", variables("nl", settings)).text
    assert "de Bemiddelaarster van de Regio: mediatrice@region.example" in dutch


# --- versions and dates -----------------------------------------------------------------------------------------------
def two_versions(old: str = "Ancienne règle.", new: str = "Nouvelle règle.") -> str:
    def version(version_id: str, effective: str, sentence: str) -> str:
        tables = "".join(
            f'[versions.{language}]\nappeal_deadlines = "{sentence} ({language})"\n'
            f'second_line = "Voir {{name}} ({{contact}})."\nsecond_line_name = "Médiateur"\n'
            f'second_line_contact = "www.example.be"\n'
            for language in LANGUAGES)
        return f'[[versions]]\nid = "{version_id}"\neffective_from = {effective}\n{tables}'

    return 'jurisdiction = "BE"\n' + version("be-old", "2020-01-01", old) + version("be-2027", "2027-01-01", new)


def test_the_version_in_force_is_the_latest_that_took_effect_on_or_before_the_day():
    notices = parse_legal_notices(two_versions(), "be.toml")
    assert notices.in_force(date(2026, 12, 31)).id == "be-old"
    assert notices.in_force(date(2027, 1, 1)).id == "be-2027"  # from its date, not the day after
    assert notices.in_force(date(2040, 5, 1)).id == "be-2027"
    assert notices.in_force(date(1990, 1, 1)).id == "be-old"  # before the first: the oldest text known
    assert notices.version("be-old").fr.appeal_deadlines == "Ancienne règle. (fr)"
    with pytest.raises(KeyError):
        notices.version("be-1999")


@pytest.mark.parametrize(("broken", "problem"), [
    (two_versions().replace("Voir {name} ({contact}).", "Voir le médiateur."), "must contain {name} and {contact}"),
    (two_versions().replace("2027-01-01", "2019-01-01"), "oldest first"),
    (two_versions().replace('"be-2027"', '"be-old"'), "duplicate version id"),
    (two_versions().replace("[versions.de]", "[versions.it]"), "versions.1.de"),
    (two_versions().replace('jurisdiction = "BE"', 'jurisdiction = "Belgium"'), "jurisdiction"),
    (two_versions().replace("appeal_deadlines = \"Nouvelle règle. (en)\"", "appeal_deadline = \"x\""), "appeal"),
    (two_versions().replace('appeal_deadlines = "Nouvelle règle. (nl)"', 'appeal_deadlines = "   "'), "at least 1"),
    ("jurisdiction = \"BE\"\nversions = []\n", "at least 1"),
    ("jurisdiction = [", "invalid TOML"),
])
def test_a_broken_file_is_refused_with_its_name_and_problem(broken: str, problem: str):
    with pytest.raises(LegalNoticesError) as error:
        parse_legal_notices(broken, "/etc/ombudsdesk/legal/be.toml")
    assert str(error.value).startswith("/etc/ombudsdesk/legal/be.toml: ") and problem in str(error.value)


def test_a_deployments_file_replaces_the_shipped_one_and_a_missing_one_stops_the_start(tmp_path: Path):
    (tmp_path / "be.toml").write_text(two_versions(), encoding="utf-8")
    assert load_legal_notices("BE", tmp_path).versions[0].id == "be-old"
    assert load_legal_notices("FR", tmp_path).versions[0].id == "fr-2016-11"  # no FR file there: the shipped one
    with pytest.raises(LegalNoticesError, match="no legal notices for jurisdiction LU"):
        load_legal_notices("LU", tmp_path)
    (tmp_path / "fr.toml").write_text(two_versions(), encoding="utf-8")  # says BE inside
    with pytest.raises(LegalNoticesError, match="jurisdiction BE where FR was asked"):
        load_legal_notices("FR", tmp_path)
    with pytest.raises(LegalNoticesError, match="two-letter"):
        load_legal_notices("../be", tmp_path)
    with pytest.raises(LegalNoticesError):
        build_notifier(NotifierSettings(jurisdiction="LU", var_dir=tmp_path / "var"))


def test_every_shipped_file_is_valid():
    files = sorted(SHIPPED_DIR.glob("*.toml"))
    assert [path.name for path in files] == ["be.toml", "fr.toml"]
    for path in files:
        parse_legal_notices(path.read_text(encoding="utf-8"), str(path))


# --- over NATS and SMTP -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("jurisdiction", ["BE", "FR"])
async def test_a_french_and_a_belgian_deployment_send_their_own_legal_notice(
    start_notifier, nats_server, smtp_sink: SmtpSink, jurisdiction: str
):
    service = await start_notifier(jurisdiction=jurisdiction)
    await publish(nats_server.url, registered_event("MED-2026-00001"),
                  registered_event("MED-2026-00002", language="en",
                                   complainant=Party(name="Jane Doe", email="jane@example.org")))
    await wait_until(lambda: len(smtp_sink.messages) >= 2, what="two acknowledgments")
    texts = {mail["Subject"][1:15]: mail.get_body(("plain",)).get_content() for mail in smtp_sink.messages}
    french, english = texts["MED-2026-00001"], texts["MED-2026-00002"]
    if jurisdiction == "FR":
        assert FRENCH in french and BELGIAN not in french and "le Défenseur des droits" in french
        assert "article L213-6 of the French Code of Administrative Justice" in english
        assert "does not suspend or interrupt" not in english
    else:
        assert BELGIAN in french and FRENCH not in french and "Médiateur fédéral" in french
        assert "does not suspend or interrupt the time limits" in english and "L213-6" not in english
        assert "the Federal Ombudsman" in english
    expected = "fr-2016-11" if jurisdiction == "FR" else "be-2000"
    assert {n.legal_notice_version for n in await service.outbox.notices()} == {expected}


async def test_a_change_of_law_applies_from_its_date_and_old_notices_keep_their_text(
    nats_server, database_url, smtp_sink: SmtpSink, tmp_path: Path
):
    legal_dir = tmp_path / "legal"
    legal_dir.mkdir()
    (legal_dir / "be.toml").write_text(two_versions(), encoding="utf-8")
    # 22:30 UTC on 31 December is 23:30 in Brussels (the old law); an hour later it is New Year's Day there.
    moments = [datetime(2026, 12, 31, 22, 30, tzinfo=timezone.utc)]
    settings = notifier_settings(nats_server.url, database_url, smtp_sink, tmp_path, legal_notices_dir=legal_dir)
    service = build_notifier(settings, clock=lambda: moments[-1])
    await service.start()
    try:
        await publish(nats_server.url, registered_event("MED-2026-00001"))
        await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the acknowledgment before the change")
        moments.append(datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc))
        await publish(nats_server.url, registered_event(
            "MED-2026-00002", complainant=Party(name="Luc", email="luc@example.org")))
        await wait_until(lambda: len(smtp_sink.messages) >= 2, what="the acknowledgment after the change")

        async def both_sent() -> bool:
            return [n.status for n in await service.outbox.notices()] == ["sent", "sent"]

        await eventually(both_sent, what="both notices sent")
        before, after = await service.outbox.notices("MED-2026-00001"), await service.outbox.notices("MED-2026-00002")
    finally:
        await service.stop()
    mails = {mail["Subject"][1:15]: mail.get_body(("plain",)).get_content() for mail in smtp_sink.messages}
    assert "Ancienne règle. (fr)" in mails["MED-2026-00001"] and "Nouvelle règle" not in mails["MED-2026-00001"]
    assert "Nouvelle règle. (fr)" in mails["MED-2026-00002"] and "Ancienne règle" not in mails["MED-2026-00002"]
    [old], [new] = before, after
    assert (old.legal_notice_version, new.legal_notice_version) == ("be-old", "be-2027")
    # The outbox keeps each notice as sent; its recorded version renders its legal sentences again, after the change.
    assert "Ancienne règle. (fr)" in old.body_text
    renderer = TemplateRenderer(legal_notices=load_legal_notices("BE", legal_dir))
    again = renderer.render(old.template, old.language, variables("fr"), legal_on=date(2027, 6, 1),
                            legal_version=old.legal_notice_version)
    assert "Ancienne règle. (fr)" in again.text and again.legal_notice_version == "be-old"


async def test_the_migration_adds_the_columns_and_keeps_older_notices(database_url):
    engine = create_engine(database_url)
    config = alembic_config(MIGRATIONS, engine.url.render_as_string(hide_password=False))
    moment = datetime(2026, 11, 24, 9, 0)
    try:
        def to_0004(connection):
            config.attributes["connection"] = connection
            command.upgrade(config, "0004_limit_key")

        async with engine.begin() as connection:
            await connection.run_sync(to_0004)
            await connection.execute(text(
                "INSERT INTO notices (notification_key, complaint_number, notice_kind, channel, recipient,"
                " recipient_name, postal_address, language, subject, body_text, body_html, message_id,"
                " \"references\", status, attempts, next_attempt_at, give_up_at, created_at, outcome_published)"
                " VALUES ('acknowledgment:MED-2026-00001', 'MED-2026-00001', 'acknowledgment', 'email', 'a@b.be',"
                " '', '', 'fr', 's', 'texte envoyé', '', '<m@x>', '', 'sent', 1, :at, :at, :at, true)"),
                {"at": moment})
        await upgrade_to_head(engine, MIGRATIONS)
        async with engine.connect() as connection:
            row = (await connection.execute(text(
                "SELECT body_text, template, legal_notice_version FROM notices"))).one()
    finally:
        await engine.dispose()
    assert tuple(row) == ("texte envoyé", None, None)
