"""The back office's file page through ASGI, on a real database (SQLite and PostgreSQL): what it shows, who may read
it and why, and every action it offers, each recorded with the person who acted (never a form field).

The registry is the real one (`tests/backoffice/conftest.py::backoffice_app`: migrations, handlers, the audit trail
on the same database); only the identity is given by a dependency override (`page_principal`), with the session's
CSRF token `TEST_CSRF`."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from html import unescape

from services.registry.access.roles import Role
from services.registry.backoffice.pages import file_access
from services.registry.backoffice.pages.file_access import READ_COOKIE
from shared.events import MessageReceived, NoticeRequested, Party
from tests.backoffice.conftest import TEST_CSRF, backoffice_app  # noqa: F401 - the fixture
from tests.backoffice.helpers import principal

AGENT = principal("agent@med.example", Role.STAFF, account_id=11)
COLLEAGUE = principal("colleague@med.example", Role.STAFF, account_id=12)
CHIEF = principal("chief@med.example", Role.SUPERVISOR, account_id=13)
DPO = principal("dpo@med.example", Role.DPO, account_id=14)
DPO_STAFF = principal("dpo.staff@med.example", Role.DPO, Role.STAFF, account_id=15)
GATE = 'id="read-reason"'  # the reason form asked of whoever is not the handler
AT = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)


def path(number: str, rest: str = "") -> str:
    return f"/backoffice/files/{number}{rest}"


async def post(client, url: str, **fields: object):
    return await client.post(url, data={"csrf_token": TEST_CSRF, **fields})


async def audit_of(app, number: str) -> list:
    return await app.app.state.audit.for_file(number, limit=200)


async def changes_of(app, number: str) -> list:
    found = await app.store.complaint_file(number)
    return found[2]


async def accounts_for(app, *people) -> None:
    """Real accounts for the people a file is handed to (a handler must be an active account that handles files)."""
    for person in people:
        await app.app.state.accounts.create_account(person.email, roles=[role.value for role in person.roles])


def text_of(html: str) -> str:
    """The page's visible words: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def follow_up(app, number: str, email: str, *, text: str, new_text: str | None, at: datetime,
                    key: str, **fields: object) -> None:
    outcome = await app.registry.handle(MessageReceived(
        message_key=key, received_at=at, sender=Party(name="Jeanne Dupont", email=email),
        recipients=("plaintes@ombudsdesk.localhost",), subject_line=f"Re: [{number}]", text=text, new_text=new_text,
        candidate_case_numbers=(number,), message_id=f"<{key}@mail.example.org>", **fields))
    assert outcome.number == number, outcome


# --- what the page shows -----------------------------------------------------------------------------------------
async def test_the_file_shows_the_new_text_before_the_folded_history_and_everything_show_prints(backoffice_app):
    app = backoffice_app
    number = await app.file(name="Jeanne Dupont", email="jeanne@example.org", handler=AGENT.email,
                            subject="Facture d'eau contestée", text="Premier message : je conteste la facture.")
    await follow_up(app, number, "jeanne@example.org", key="reply-1", at=AT + timedelta(days=1),
                    text="Voici la pièce demandée.\n\nLe 24/11, vous avez écrit :\n> Envoyez-nous la facture.",
                    new_text="Voici la pièce demandée.")
    async with app.client(AGENT) as client:
        page = await client.get(path(number))
        oldest = await client.get(path(number, "?order=oldest"))
    assert page.status_code == 200
    html = page.text
    # The new text is shown first, the quoted history after it, folded: not sent with the page, but loaded when
    # unfolded (htmx) or behind a link (without JavaScript).
    assert "Envoyez-nous la facture." not in html
    new_at, folded_at = html.index("Voici la pièce demandée."), html.index('<details class="quoted"')
    assert new_at < folded_at
    quoted_url = path(number, "/messages/reply-1/quoted")
    assert f'hx-get="{quoted_url}"' in html[folded_at:] and f'href="{quoted_url}"' in html[folded_at:]
    # Newest first by default, oldest first on demand.
    assert html.index("Voici la pièce") < html.index("Premier message")
    assert oldest.text.index("Premier message") < oldest.text.index("Voici la pièce")
    words = text_of(html)
    for expected in ("Jeanne Dupont", "jeanne@example.org", "Facture d'eau contestée", "Courriel",
                     "Accusé de réception dû le", "Réponse due le 08/01/2027", "Historique des modifications",
                     "Enregistrement", "Message ajouté au dossier", "Proposition du tri", "français"):
        assert expected in words, expected
    # The handler reads without being asked why; the read is in the audit trail all the same.
    reads = [entry for entry in await audit_of(app, number) if entry.action == "file.read"]
    assert [(entry.actor, entry.reason) for entry in reads] == [(AGENT.email, None)] * 2


async def test_the_quoted_history_is_sent_when_unfolded_and_read_like_the_file(backoffice_app):
    app = backoffice_app
    number = await app.file(name="Jeanne Dupont", email="jeanne@example.org", handler=AGENT.email,
                            subject="Facture d'eau contestée", text="Premier message : je conteste la facture.")
    await follow_up(app, number, "jeanne@example.org", key="reply/1 <a&b>", at=AT + timedelta(days=1),
                    text="Voici la pièce.\n\nLe 24/11, vous avez écrit :\n> Envoyez-nous <b>la facture</b>.",
                    new_text="Voici la pièce.")
    other = await app.file(subject="Autre dossier", handler=AGENT.email)
    async with app.client(AGENT) as client:
        page = await client.get(path(number))
        link = unescape(re.search(r'<details class="quoted"[^>]*>.*?href="([^"]+)"', page.text, re.S).group(1))
        fragment = await client.get(link, headers={"HX-Request": "true"})
        alone = await client.get(link)
        unknown = await client.get(path(number, "/messages/nothing/quoted"))
        elsewhere = await client.get(link.replace(number, other))
    assert "Envoyez-nous" not in page.text
    # htmx gets the history alone, escaped; without JavaScript, a page of its own with a way back.
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "&gt; Envoyez-nous &lt;b&gt;la facture&lt;/b&gt;." in fragment.text and "Voici la pièce." not in fragment.text
    assert alone.status_code == 200 and "<html" in alone.text
    assert "&gt; Envoyez-nous &lt;b&gt;la facture&lt;/b&gt;." in alone.text
    assert f'href="{path(number)}#thread"' in alone.text
    # Only a message of this file that has a quoted history.
    assert unknown.status_code == 404 and elsewhere.status_code == 404
    reads = [(e.actor, (e.details or {}).get("part")) for e in await audit_of(app, number) if e.action == "file.read"]
    assert sorted(reads, key=lambda read: read[1] or "") == [(AGENT.email, None), (AGENT.email, "quoted_history"),
                                                             (AGENT.email, "quoted_history")]

    # Whoever is not the handler states a reason first, as for the file.
    async with app.client(COLLEAGUE) as client:
        asked = await client.get(link)
        asked_htmx = await client.get(link, headers={"HX-Request": "true"})
    assert asked.status_code == 303 and asked.headers["location"] == path(number)
    assert asked_htmx.headers.get("HX-Redirect") == path(number)
    assert "Envoyez-nous" not in asked.text + asked_htmx.text


async def test_the_directory_is_searched_only_when_asked(backoffice_app):
    app = backoffice_app
    number = await app.file(subject="Impôts", handler=AGENT.email)
    async with app.client(AGENT) as client:
        plain = await client.get(path(number))
        every = await client.get(path(number, "?dq="))
    # A plain view lists no ombudsman: the redirect form loads them when unfolded, or asks for a search.
    assert 'id="ombudsman-' not in plain.text and 'value="be-pensions"' not in plain.text
    lazy = re.search(r'<div id="directory-results"[^>]*>', plain.text).group(0)
    # Inside the redirect form, whose htmx target is the whole file: the list names its own target.
    assert f'hx-get="{path(number, "/directory?dq=")}"' in lazy and 'hx-target="this"' in lazy
    assert "Cherchez dans l'annuaire" in text_of(plain.text)
    # An empty search, asked for, lists the directory (without ourselves), the redirect form unfolded.
    assert 'value="be-pensions"' in every.text and 'value="be-wallonia-fwb"' in every.text
    assert re.search(r'<details class="panel" id="redirect-actions"\s+open>', every.text)


async def test_an_unknown_number_is_a_404_page_and_a_data_protection_file_a_403_for_staff(backoffice_app):
    app = backoffice_app
    protected = await app.file(subject="Mes données médicales divulguées", data_protection=True)
    async with app.client(AGENT) as client:
        missing = await client.get(path("MED-2026-09999"))
        denied = await client.get(path(protected))
        download = await client.get(path(protected, "/messages/x/original"))
    assert missing.status_code == 404 and "Introuvable" in missing.text
    assert denied.status_code == 403 and "Mes données médicales" not in denied.text
    assert download.status_code == 403
    entries = await audit_of(app, protected)
    assert [(e.action, e.actor) for e in entries] == [("file.denied", AGENT.email)] * 2
    async with app.client(DPO) as client:
        gate = await client.get(path(protected))
    assert gate.status_code == 200 and GATE in gate.text


# --- the reason asked of whoever is not the handler --------------------------------------------------------------
async def test_a_non_handler_states_a_reason_once_per_file_and_session_and_every_read_carries_it(backoffice_app,
                                                                                                monkeypatch):
    app = backoffice_app
    number = await app.file(subject="Retard de pension", handler=AGENT.email)
    other = await app.file(subject="Autre dossier", handler=AGENT.email)
    async with app.client(COLLEAGUE) as client:
        gate = await client.get(path(number))
        assert gate.status_code == 200 and "Retard de pension" not in gate.text
        assert GATE in gate.text
        assert [e.action for e in await audit_of(app, number)] == []  # nothing was read yet

        blank = await post(client, path(number, "/reason"), reason="   ")
        assert blank.status_code == 422 and READ_COOKIE not in blank.headers.get("set-cookie", "")

        given = await post(client, path(number, "/reason"), reason="Remplacement de Agent, en congé")
        assert given.status_code == 303 and given.headers["location"] == path(number)
        cookie = given.headers["set-cookie"]
        assert f"Path={path(number)}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        first = await client.get(path(number))
        second = await client.get(path(number, "?order=oldest"))
        assert first.status_code == second.status_code == 200 and "Retard de pension" in first.text
        # The marker is scoped to that file: another one asks again.
        assert GATE in (await client.get(path(other))).text
        marker = client.cookies.get(READ_COOKIE)
    reads = [e for e in await audit_of(app, number) if e.action == "file.read"]
    assert [(e.actor, e.reason) for e in reads] == [(COLLEAGUE.email, "Remplacement de Agent, en congé")] * 2

    # The marker is bound to the person: another account (or a forged value) is asked again.
    async with app.client(COLLEAGUE) as client:
        kept = await client.get(path(number), headers={"Cookie": f"{READ_COOKIE}={marker}"})
        assert GATE not in kept.text and "Retard de pension" in kept.text
        payload, _, mac = marker.partition(".")
        forged = await client.get(path(number), headers={"Cookie": f"{READ_COOKIE}={payload}.{'0' * len(mac)}"})
        assert GATE in forged.text
    async with app.client(CHIEF) as client:
        assert GATE in (await client.get(path(number), headers={"Cookie": f"{READ_COOKIE}={marker}"})).text
    # After a working day the reason is asked again.
    later = time.time() + (file_access.READ_MARKER_HOURS * 3600 + 60)
    monkeypatch.setattr(file_access, "_now", lambda: later)
    async with app.client(COLLEAGUE) as client:
        assert GATE in (await client.get(path(number), headers={"Cookie": f"{READ_COOKIE}={marker}"})).text


# --- actions -------------------------------------------------------------------------------------------------------
async def test_each_action_changes_the_file_and_records_the_acting_person_not_a_form_field(backoffice_app):
    app = backoffice_app
    number = await app.file(subject="Allocation refusée", email="jeanne@example.org")
    await accounts_for(app, AGENT)
    async with app.client(AGENT) as client:
        await post(client, path(number, "/reason"), reason="Tri")
        taken = await post(client, path(number, "/actions/assign"), to_me="1", actor="mallory@evil.example")
        assert taken.status_code == 303 and taken.headers["location"] == path(number, "?done=assign")
        note = await post(client, path(number, "/actions/note"), text="Appelé la citoyenne, rappel lundi.",
                          request_key="a" * 32)
        again = await post(client, path(number, "/actions/note"), text="Appelé la citoyenne, rappel lundi.",
                           request_key="a" * 32)  # the same form sent twice: one note
        assert note.status_code == again.status_code == 303
        for target in ("acknowledged", "in_review", "waiting_for_citizen"):
            moved = await post(client, path(number, "/actions/transition"), target=target, reason="étape")
            assert moved.status_code == 303, moved.text
        app.clock.advance(days=3)
        resumed = await post(client, path(number, "/actions/transition"), target="in_review")
        assert resumed.status_code == 303
        assert (await post(client, path(number, "/actions/classify"), kind="question", theme="",
                           service="")).status_code == 303
        assert (await post(client, path(number, "/actions/facts"), facts_date="2026-10-01",
                           first_line_contacted="yes")).status_code == 303
        assert (await post(client, path(number, "/actions/recommendation"),
                           text="Clarifier le courrier type")).status_code == 303
        assert (await post(client, path(number, "/actions/correspondent"),
                           email="Avocat@Cabinet.example")).status_code == 303
        page = await client.get(path(number, "?done=note"))
    complaint = await app.store.complaint(number)
    assert complaint.handler == AGENT.email and complaint.status == "in_review" and complaint.kind == "question"
    assert complaint.paused_days == 3 and complaint.first_line_contacted is True
    assert complaint.recommendations == ["Clarifier le courrier type"]
    words = text_of(page.text)
    assert "Note ajoutée." in words and words.count("Appelé la citoyenne, rappel lundi.") == 1
    assert "avocat@cabinet.example" in words and "Jours de suspension 3" in words
    assert "Historique des délais" in words  # the pause and the resumption, with who and when
    changes = [(c.change, c.actor) for c in await changes_of(app, number) if c.change != "registered"]
    assert {actor for _, actor in changes} == {AGENT.email}
    assert [change for change, _ in changes] == ["assignment", "note_added", "status", "status", "status", "status",
                                                 "classification", "facts", "recommendation", "correspondent_added"]
    audited = [e.action for e in await audit_of(app, number) if e.action.startswith("change.")]
    assert set(audited) == {
        "change.assign", "change.add_note", "change.transition", "change.classify", "change.record_facts",
        "change.add_recommendation", "change.add_correspondent"}
    assert all(e.actor == AGENT.email for e in await audit_of(app, number))


async def test_assignment_rights_follow_the_permission_table(backoffice_app):
    app = backoffice_app
    number = await app.file(subject="Dossier de quelqu'un", handler=COLLEAGUE.email)
    await accounts_for(app, AGENT, COLLEAGUE, CHIEF)
    async with app.client(AGENT) as client:
        await post(client, path(number, "/reason"), reason="Tri")
        page = await client.get(path(number))
        assert 'data-shortcut="a"' not in page.text  # someone else's file: no "assign to me" for staff
        taken = await post(client, path(number, "/actions/assign"), to_me="1")
        given = await post(client, path(number, "/actions/assign"), handler=AGENT.email)
    assert taken.status_code == given.status_code == 422
    assert "superviseur" in text_of(taken.text)
    assert (await app.store.complaint(number)).handler == COLLEAGUE.email
    async with app.client(CHIEF) as client:
        await post(client, path(number, "/reason"), reason="Répartition")
        moved = await post(client, path(number, "/actions/assign"), handler=AGENT.email, reason="charge")
    assert moved.status_code == 303
    assert [(c.actor, c.reason) for c in await changes_of(app, number) if c.change == "assignment"][-1] == (
        CHIEF.email, "charge")


async def test_a_file_is_handed_only_to_an_active_account_that_handles_files(backoffice_app):
    """Deadline digests and reminders go to the handler's address: an outside address, a disabled account or an
    account that does not handle files (an admin alone) is refused; the form offers the accounts that may."""
    app = backoffice_app
    number = await app.file(subject="Dossier à répartir", handler=AGENT.email)
    accounts = app.app.state.accounts
    await accounts_for(app, AGENT, CHIEF)
    await accounts.create_account("marc@med.example", roles=["staff"], display_name="Marc Agent")
    await accounts.disable(await accounts.create_account("parti@med.example", roles=["staff"]))
    await accounts.create_account("admin@med.example", roles=["admin"])
    async with app.client(CHIEF) as client:
        await post(client, path(number, "/reason"), reason="Répartition")
        page = await client.get(path(number))
        refused = [await post(client, path(number, "/actions/assign"), handler=handler, reason="x")
                   for handler in ("outsider@evil.example", "parti@med.example", "admin@med.example", "<b>x</b>")]
        assert (await app.store.complaint(number)).handler == AGENT.email
        given = await post(client, path(number, "/actions/assign"), handler=" Marc@Med.example ")
        assert (await app.store.complaint(number)).handler == "marc@med.example"
        nobody = await post(client, path(number, "/actions/assign"), handler="")
    select = page.text.split('id="assign-handler"', 1)[1].split("</select>", 1)[0]
    # Nobody, then the person (a supervisor handles files), then the others by name; the current handler chosen.
    assert re.findall(r'<option value="([^"]*)"', select) == ["", CHIEF.email, AGENT.email, "marc@med.example"]
    assert re.search(rf'<option value="{re.escape(AGENT.email)}"\s+selected>', select)
    assert [answer.status_code for answer in refused] == [422] * 4
    assert all("compte actif qui traite des dossiers" in text_of(answer.text) for answer in refused)
    assert given.status_code == nobody.status_code == 303
    assert (await app.store.complaint(number)).handler is None
    assigned = [c.details for c in await changes_of(app, number) if c.change == "assignment" and c.actor == CHIEF.email]
    assert len(assigned) == 2


async def test_a_refusal_of_the_register_is_shown_on_the_page_never_a_500(backoffice_app):
    app = backoffice_app
    number = await app.file(subject="Trop tôt pour clôturer", handler=AGENT.email)
    async with app.client(AGENT) as client:
        refused = await post(client, path(number, "/actions/transition"), target="answered", confirmed="1",
                             reason="x")
        bad_date = await post(client, path(number, "/actions/facts"), facts_date="31/12/2026")
        htmx = await client.post(path(number, "/actions/extend"), data={"confirmed": "1"},
                                 headers={"HX-Request": "true", "X-CSRF-Token": TEST_CSRF})
        await post(client, path(number, "/actions/extend"), confirmed="1")
        twice = await post(client, path(number, "/actions/extend"), confirmed="1")
    assert refused.status_code == 409 and "Le registre a refusé cette modification." in text_of(refused.text)
    assert bad_date.status_code == 422 and "Date invalide" in text_of(bad_date.text)
    assert htmx.status_code == 200 and htmx.text.lstrip().startswith('<div id="file"')  # the fragment only
    assert "Délai prolongé." in text_of(htmx.text)
    assert twice.status_code == 409 and "Le délai a déjà été prolongé une fois." in text_of(twice.text)
    assert (await app.store.complaint(number)).status == "received"


async def test_irreversible_actions_are_confirmed_first(backoffice_app):
    app = backoffice_app
    number = await app.file(subject="Hors compétence", handler=AGENT.email)
    async with app.client(AGENT) as client:
        asked = await post(client, path(number, "/actions/redirect"), redirect_to="be-pensions", reason="pension")
        assert asked.status_code == 200 and "Service de médiation Pensions" in text_of(asked.text)
        assert 'name="confirmed" value="1"' in asked.text and 'value="be-pensions"' in asked.text
        assert (await app.store.complaint(number)).status == "received"  # nothing happened yet
        done = await post(client, path(number, "/actions/redirect"), redirect_to="be-pensions", reason="pension",
                          confirmed="1")
    assert done.status_code == 303
    complaint = await app.store.complaint(number)
    assert complaint.status == "redirected" and complaint.redirected_to == "be-pensions"
    notices = [e for e in app.publisher.of(NoticeRequested) if e.complaint_number == number]
    assert [n.notice_kind for n in notices] == ["redirected"]


async def test_the_directory_search_finds_ombudsmen_by_name_or_keyword(backoffice_app):
    """The shipped example directory: we are the federal ombudsman (its `self`), never offered as a redirection."""
    app = backoffice_app
    number = await app.file(subject="Impôts", handler=AGENT.email)
    async with app.client(AGENT) as client:
        by_keyword = await client.get(path(number, "/directory"), params={"dq": "pensión"})
        by_name = await client.get(path(number, "?dq=Wallonie"))
        ourselves = await client.get(path(number, "/directory"), params={"dq": "SPF Finances"})
        nothing = await client.get(path(number, "/directory"), params={"dq": "zzzz-nothing"})
    assert 'value="be-pensions"' in by_keyword.text and 'value="be-wallonia-fwb"' not in by_keyword.text
    assert by_keyword.text.lstrip().startswith('<div id="directory-results"')  # the fragment htmx swaps in
    assert 'value="be-wallonia-fwb"' in by_name.text and 'value="be-pensions"' not in by_name.text
    for answer in (ourselves, nothing):
        assert 'type="radio"' not in answer.text and "Aucun médiateur ne correspond." in answer.text


async def test_only_a_dpo_marks_a_file_as_data_protection(backoffice_app):
    app = backoffice_app
    number = await app.file(subject="Facture de gaz", handler=AGENT.email)
    async with app.client(AGENT) as client:
        page = await client.get(path(number))
        refused = await post(client, path(number, "/actions/classify"), data_protection="1",
                             data_protection_shown="1")
    assert 'name="data_protection"' not in page.text
    assert refused.status_code == 422 and "Seul le ou la DPD" in text_of(refused.text)
    assert (await app.store.complaint(number)).data_protection is False
    async with app.client(DPO_STAFF) as client:
        await post(client, path(number, "/reason"), reason="Signalement DPD")
        marked = await post(client, path(number, "/actions/classify"), data_protection="1",
                            data_protection_shown="1")
    assert marked.status_code == 303 and (await app.store.complaint(number)).data_protection is True
    async with app.client(AGENT) as client:  # the handler lost sight of it
        assert (await client.get(path(number))).status_code == 403


# --- hostile content -----------------------------------------------------------------------------------------------
async def test_what_a_sender_wrote_is_escaped_and_isolated(backoffice_app):
    app = backoffice_app
    evil_name = "Jeanne \u202egpj.exe\u202c Dupont"
    number = await app.file(name=evil_name, subject="<script>alert(1)</script>",
                            text="<img src=x onerror=alert(2)> bonjour", handler=AGENT.email)
    async with app.client(AGENT) as client:
        html = (await client.get(path(number))).text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    # A right-to-left override cannot reorder the page around it: the name sits in its own bidi isolate.
    assert re.search(r"<bdi>[^<]*\u202egpj\.exe\u202c[^<]*</bdi>", html)


# --- merges and links ----------------------------------------------------------------------------------------------
async def test_merge_after_confirmation_then_undo(backoffice_app):
    app = backoffice_app
    source = await app.file(subject="Doublon envoyé deux fois", text="Texte du doublon.", handler=AGENT.email)
    target = await app.file(subject="Plainte principale", text="Texte principal.", handler=AGENT.email)
    async with app.client(AGENT) as client:
        asked = await post(client, path(source, "/actions/merge"), target=target.lower(), reason="doublon")
        assert asked.status_code == 200 and target in text_of(asked.text)
        assert (await app.store.complaint(source)).status == "received"
        merged = await post(client, path(source, "/actions/merge"), target=target.lower(), reason="doublon",
                            confirmed="1")
        assert merged.status_code == 303
        source_page = await client.get(path(source))
        target_page = await client.get(path(target))
        linked = await post(client, path(target, "/actions/link"), other=source)
        unlinked = await post(client, path(target, "/actions/unlink"), other=source)
        undone = await post(client, path(source, "/actions/undo_merge"), reason="erreur")
        restored = await client.get(path(source))
    assert (await app.store.complaint(source)).status == "received"
    assert "Annuler la fusion" in text_of(source_page.text) and "Fusionné dans le dossier" in text_of(source_page.text)
    target_words = text_of(target_page.text)
    assert "Texte du doublon." in target_words and source in target_words  # the source's thread shows in the target
    assert linked.status_code == unlinked.status_code == undone.status_code == 303
    assert "Texte du doublon." in text_of(restored.text) and "Annuler la fusion" not in text_of(restored.text)
    audited = {e.action for e in await audit_of(app, source)} | {e.action for e in await audit_of(app, target)}
    assert {"change.merge_complaints", "change.undo_merge", "change.link_complaints",
            "change.unlink_complaints"} <= audited


async def test_merging_or_linking_with_a_file_one_may_not_see_answers_as_for_an_unknown_number(backoffice_app):
    app = backoffice_app
    protected = await app.file(subject="Mes données de santé publiées", data_protection=True)
    mine = await app.file(subject="Facture", handler=AGENT.email)
    unknown_number = "MED-2026-09999"
    async with app.client(AGENT) as client:
        answers = []
        for action, field in (("merge", "target"), ("link", "other"), ("unlink", "other")):
            fields = {"confirmed": "1", "reason": "x"}
            hidden = await post(client, path(mine, f"/actions/{action}"), **fields, **{field: protected})
            unknown = await post(client, path(mine, f"/actions/{action}"), **fields, **{field: unknown_number})
            answers.append((hidden, unknown))
        # Before the merge's confirmation step too: that step would name the file as one to merge into.
        unconfirmed = await post(client, path(mine, "/actions/merge"), target=protected.lower())
    for hidden, unknown in [*answers, (unconfirmed, answers[0][1])]:
        assert hidden.status_code == unknown.status_code == 422
        assert "Aucun dossier que vous pouvez consulter ne porte ce numéro." in text_of(hidden.text)
        assert "données de santé" not in hidden.text
        assert text_of(hidden.text) == text_of(unknown.text)  # nothing tells the two apart
    assert [(c.change, c.actor) for c in await changes_of(app, protected) if c.actor == AGENT.email] == []
    assert [c.change for c in await changes_of(app, mine) if c.actor == AGENT.email] == []
    assert (await app.store.complaint(mine)).status == "received"
    assert [(e.action, e.actor) for e in await audit_of(app, protected)] == [("file.denied", AGENT.email)] * 4


async def test_a_merge_or_a_link_is_in_the_audit_trail_of_both_files(backoffice_app):
    app = backoffice_app
    first = await app.file(subject="Premier", handler=AGENT.email)
    second = await app.file(subject="Second", handler=AGENT.email)
    async with app.client(AGENT) as client:
        for action, fields in (("link", {"other": second}), ("unlink", {"other": second.lower()}),
                               ("merge", {"target": second, "confirmed": "1"}), ("undo_merge", {})):
            done = await post(client, path(first, f"/actions/{action}"), reason="doublon", **fields)
            assert done.status_code == 303, (action, text_of(done.text))

    async def changes(number: str) -> list[tuple[str, str | None, str | None]]:
        entries = sorted(await audit_of(app, number), key=lambda e: e.sequence)  # oldest first
        return [(e.action, (e.details or {}).get("other"), e.reason) for e in entries if e.action.startswith("change.")]

    expected = ["change.link_complaints", "change.unlink_complaints", "change.merge_complaints", "change.undo_merge"]
    assert await changes(first) == [(action, second, "doublon") for action in expected]
    assert await changes(second) == [(action, first, "doublon") for action in expected]


def test_every_message_the_page_builds_from_a_code_is_in_the_catalogue():
    """Keys made at run time (an action's name, a refusal's code, a preview problem, a suggested reason) would show
    as raw keys if one were missing: each is in `messages/file.toml`, in the four languages (checked at load)."""
    from services.registry.backoffice.i18n import catalog
    from services.registry.backoffice.pages.file import KNOWN_REFUSALS, READ_REASONS
    from services.registry.backoffice.pages.file_actions import ACTIONS
    from shared.events import PreviewProblem

    keys = ([f"file.done.{name}" for name in ACTIONS] + [f"file.refused.{code}" for code in KNOWN_REFUSALS]
            + [f"file.preview.problem.{problem.value}" for problem in PreviewProblem]
            + [f"file.gate.suggestion.{reason}" for reason in READ_REASONS] + ["file.refused.conflict"])
    assert [key for key in keys if key not in catalog()] == []
