"""The register list of the back office (issue 13), on SQLite and PostgreSQL: every filter and sort, the count, the
visibility scope (data-protection files never listed, counted or found by text for a scope without them), the
deadlines dashboard and saved searches.

Expected results are computed here from the rows the test writes (plain Python over the same data), never read
back from the register's own queries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from services.registry.access.roles import VisibilityScope
from services.registry.models import Complaint
from services.registry.repository import SORTS, ComplaintFilter

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
TODAY = date(2026, 11, 24)
ENDED = {"answered", "closed", "inadmissible", "redirected", "withdrawn", "merged"}


@dataclass(frozen=True)
class Row:
    year: int
    sequence: int
    subject: str
    channel: str = "email"
    kind: str = "complaint"
    theme: str | None = None
    handler: str | None = None
    admissibility: str = "admissible"
    sender_verdict: str | None = "unverified"
    data_protection: bool = False
    service: str | None = None
    status: str = "in_review"
    received_hours: int = 0  # received NOW minus this many hours (not in number order on purpose)
    answer_due: date = date(2027, 1, 10)
    acknowledgment_due: date = date(2026, 12, 1)
    acknowledged: bool = True
    answered: bool = False
    name: str = "Jeanne Dupont"
    email: str | None = "jeanne@example.org"
    id: int = 0  # given by the database on insertion

    @property
    def number(self) -> str:
        return f"MED-{self.year}-{self.sequence:05d}"

    @property
    def received_at(self) -> datetime:
        return NOW - timedelta(hours=self.received_hours)


ROWS = [
    Row(2025, 7, "Facture d'énergie contestée", service="energy", theme="energie", handler="alice@med.be",
        received_hours=900, answer_due=date(2026, 1, 5), status="closed"),
    Row(2025, 9, "Pension non versée", channel="letter", service="pensions", theme="pensions",
        received_hours=500, answer_due=date(2026, 11, 20), status="in_review", email=None),
    Row(2026, 1, "RGPD : accès à mes données de facture", data_protection=True, handler="dpo@med.be",
        received_hours=40, answer_due=date(2026, 12, 30), admissibility="pending", sender_verdict="verified"),
    Row(2026, 2, "Question sur ma facture", kind="question", channel="phone", service="energy",
        theme="energie", received_hours=300, answer_due=date(2026, 12, 30), admissibility="pending",
        sender_verdict=None, acknowledged=False, acknowledgment_due=date(2026, 11, 24)),
    Row(2026, 3, "Retard de pension", channel="in_person", service="pensions", theme="pensions",
        handler="bob@med.be", received_hours=10, answer_due=date(2026, 11, 22), status="waiting_for_citizen"),
    Row(2026, 4, "Données personnelles publiées (pension)", data_protection=True, service="pensions",
        received_hours=200, answer_due=date(2026, 11, 23), status="acknowledged", sender_verdict="failed",
        name="Luc Peeters", email="luc@example.be"),
    Row(2026, 5, "Facture d'eau", service=None, handler="alice@med.be", received_hours=60,
        answer_due=date(2026, 11, 26), status="received", acknowledged=False,
        acknowledgment_due=date(2026, 11, 21)),
    Row(2026, 6, "Remboursement refusé", channel="phone", service="health", theme="sante", received_hours=20,
        answer_due=date(2026, 11, 24), admissibility="inadmissible", status="inadmissible"),
    Row(2026, 7, "100% d'erreurs_sur ma facture", service="energy", handler="bob@med.be", received_hours=5,
        answer_due=date(2026, 11, 29), status="answered", answered=True, sender_verdict="verified"),
    Row(2026, 8, "Accueil au guichet", channel="in_person", service="health", received_hours=120,
        answer_due=date(2026, 11, 24), status="in_review", name="Marie Facturier", email="marie@example.org"),
    Row(2027, 1, "Facture de gaz", service="energy", theme="energie", handler="alice@med.be", received_hours=1,
        answer_due=date(2027, 2, 12), admissibility="pending"),
    Row(2027, 2, "Données de santé RGPD", data_protection=True, service="health", received_hours=2,
        answer_due=date(2026, 11, 25), status="in_review", handler="dpo@med.be"),
]


def _complaint(row: Row) -> Complaint:
    received_at = row.received_at
    return Complaint(
        number=row.number, year=row.year, sequence=row.sequence, message_key=f"k-{row.number}", kind=row.kind,
        channel=row.channel, received_at=received_at, legal_start=received_at.date(), complainant_name=row.name,
        complainant_email=row.email, subject_line=row.subject, body="", attachments=[], theme=row.theme,
        handler=row.handler, admissibility=row.admissibility, admissibility_reasons=[],
        sender_verdict=row.sender_verdict, data_protection=row.data_protection, service_concerned=row.service,
        status=row.status, acknowledgment_due=row.acknowledgment_due, answer_due=row.answer_due,
        answer_extended=False, paused_days=0, recommendations=[], automated=False,
        acknowledged_at=received_at if row.acknowledged else None, answered_at=NOW if row.answered else None,
        created_at=NOW, updated_at=NOW)


async def _insert(store: Any) -> list[Row]:
    rows = []
    for row in ROWS:  # one by one: ids in this order
        complaint = _complaint(row)
        async with store.transaction() as tx:
            await tx.add(complaint)
        rows.append(replace(row, id=complaint.id))
    return rows


def _has(row: Row, fragment: str) -> bool:
    """The text search: a fragment of the subject, the complainant's name or email, in any case."""
    return any(fragment in (value or "").lower() for value in (row.subject, row.name, row.email))


SORT_KEYS = {
    "number": lambda r: (r.year, r.sequence),
    "received": lambda r: (r.received_at, r.id),
    "answer_due": lambda r: (r.answer_due, r.id),
    "status": lambda r: (r.status, r.year, r.sequence),
}

# name -> (filter fields, the rows they select)
FILTERS: dict[str, tuple[dict[str, Any], Any]] = {
    "none": ({}, lambda r: True),
    "status": ({"status": "in_review"}, lambda r: r.status == "in_review"),
    "kind": ({"kind": "question"}, lambda r: r.kind == "question"),
    "service": ({"service": "pensions"}, lambda r: r.service == "pensions"),
    "year": ({"year": 2026}, lambda r: r.year == 2026),
    "due before": ({"due_before": date(2026, 11, 24)}, lambda r: r.answer_due <= date(2026, 11, 24)),
    "overdue": ({"overdue_on": TODAY}, lambda r: r.answer_due < TODAY and r.status not in ENDED),
    "channel": ({"channel": "phone"}, lambda r: r.channel == "phone"),
    "theme": ({"theme": "energie"}, lambda r: r.theme == "energie"),
    "handler": ({"handler": "alice@med.be"}, lambda r: r.handler == "alice@med.be"),
    "unassigned": ({"handler": ""}, lambda r: r.handler is None),
    "screening pending": ({"screening_pending": True}, lambda r: r.admissibility == "pending"),
    "sender verdict": ({"sender_verdict": "verified"}, lambda r: r.sender_verdict == "verified"),
    "data protection": ({"data_protection": True}, lambda r: r.data_protection),
    "not data protection": ({"data_protection": False}, lambda r: not r.data_protection),
    "text": ({"text": "FACTUR"}, lambda r: _has(r, "factur")),
    "text with wildcards": ({"text": "100% d'erreurs_"}, lambda r: _has(r, "100% d'erreurs_")),
    "two letters": ({"text": "rG"}, lambda r: _has(r, "rg")),
    "number": ({"text": "med-2026-00004"}, lambda r: r.number == "MED-2026-00004"),
    "combined": ({"service": "energy", "handler": "alice@med.be", "text": "facture"},
                 lambda r: r.service == "energy" and r.handler == "alice@med.be" and _has(r, "facture")),
}
# The filters also tried in every sort, both ways (the others in the register's order, newest first).
SORTED_FILTERS = ("none", "text", "unassigned", "data protection", "two letters")

SCOPES = {
    "operator": None,
    "supervisor": VisibilityScope("all"),
    "dpo": VisibilityScope("none", data_protection=True),
    "staff of pensions": VisibilityScope("services", ("pensions",)),
    "dpo and staff of health": VisibilityScope("services", ("health",), data_protection=True),
    "admin": VisibilityScope("none"),
}


async def test_every_filter_sort_and_scope_lists_and_counts_what_the_data_says(registry_on_db):
    registry, _events, _clock = registry_on_db
    store = registry.store
    rows = await _insert(store)
    assert any(r.data_protection for r in rows) and any(not r.data_protection for r in rows)
    failures = []
    for filter_name, (fields, selects) in FILTERS.items():
        for scope_name, scope in SCOPES.items():
            admitted = [r for r in rows if selects(r) and (
                scope is None or scope.admits(data_protection=r.data_protection, service=r.service))]
            orders = ([(sort, d) for sort in SORTS for d in (True, False)] if filter_name in SORTED_FILTERS
                      else [("number", True)])
            for sort, descending in orders:
                expected = [r.number for r in sorted(admitted, key=SORT_KEYS[sort], reverse=descending)]
                for limit in (100, 1):  # limit 1: a text search answers from its first window
                    criteria = ComplaintFilter(**fields, scope=scope, sort=sort, descending=descending, limit=limit)
                    listed = [c.number for c in await store.list_complaints(criteria)]
                    if listed != expected[:limit]:
                        failures.append((filter_name, scope_name, sort, descending, limit, listed, expected))
            counted = await store.count_complaints(ComplaintFilter(**fields, scope=scope, limit=1, offset=3))
            if counted != len(admitted):
                failures.append((filter_name, scope_name, "count", counted, len(admitted)))
    assert failures == []


async def test_pages_follow_one_another_in_every_sort(registry_on_db):
    registry, _events, _clock = registry_on_db
    rows = await _insert(registry.store)
    scope = VisibilityScope("all")
    visible = [r for r in rows if not r.data_protection]
    for sort in SORTS:
        expected = [r.number for r in sorted(visible, key=SORT_KEYS[sort], reverse=True)]
        pages = []
        for offset in range(0, len(expected) + 3, 3):
            pages += [c.number for c in await registry.store.list_complaints(
                ComplaintFilter(scope=scope, sort=sort, limit=3, offset=offset))]
        assert pages == expected, sort


async def test_a_scope_without_data_protection_never_meets_those_files(registry_on_db):
    """Not in a list, a count or a text search, whatever the text (their subjects are words anyone may type)."""
    registry, _events, _clock = registry_on_db
    rows = await _insert(registry.store)
    protected = {r.number for r in rows if r.data_protection}
    staff = VisibilityScope("all")
    for text in ("RGPD", "données", "facture", "MED-2026-00001", "santé", "luc@example.be", "Peeters"):
        for limit in (1, 100):
            listed = {c.number for c in await registry.store.list_complaints(
                ComplaintFilter(text=text, scope=staff, limit=limit))}
            assert not listed & protected, text
        count_all = await registry.store.count_complaints(ComplaintFilter(text=text))
        count_staff = await registry.store.count_complaints(ComplaintFilter(text=text, scope=staff))
        in_text = [r for r in rows if text.lower() in f"{r.subject} {r.name} {r.email} {r.number}".lower()]
        assert count_staff == len([r for r in in_text if not r.data_protection]), text
        assert count_all == len(in_text), text
    # Asking for them explicitly does not help either.
    assert await registry.store.list_complaints(ComplaintFilter(data_protection=True, scope=staff)) == []
    assert await registry.store.count_complaints(ComplaintFilter(data_protection=True, scope=staff)) == 0


async def test_a_bounded_count_stops_at_its_bound_and_is_exact_below_it(registry_on_db):
    """`count_complaints(at_most=n)`: min(n, the exact count) for every filter and scope (the register's pager asks
    for ten pages past the current one)."""
    registry, _events, _clock = registry_on_db
    store = registry.store
    rows = await _insert(store)
    failures = []
    for filter_name, (fields, selects) in FILTERS.items():
        for scope_name, scope in SCOPES.items():
            matching = len([r for r in rows if selects(r) and (
                scope is None or scope.admits(data_protection=r.data_protection, service=r.service))])
            for at_most in sorted({0, 1, 2, matching, matching + 1, len(rows) + 5}):
                # Limit and offset are the page's: the bound alone decides.
                criteria = ComplaintFilter(**fields, scope=scope, limit=1, offset=matching)
                counted = await store.count_complaints(criteria, at_most=at_most)
                if counted != min(at_most, matching):
                    failures.append((filter_name, scope_name, at_most, counted, matching))
    assert failures == []
    with pytest.raises(ValueError):  # a negative bound is refused
        await store.count_complaints(ComplaintFilter(), at_most=-1)


async def test_a_service_scope_admits_exactly_its_services_and_the_files_of_no_service(registry_on_db):
    """The scope's service term is written differently on SQLite (so that no index answers it): the same files all
    the same, whatever odd value a service holds ("" or a lookalike of a listed one are other services)."""
    registry, _events, _clock = registry_on_db
    store = registry.store
    rows = await _insert(store)
    odd = [Row(2028, i + 1, f"Dossier {value!r}", service=value, received_hours=i)
           for i, value in enumerate(("", "pensions ", "Pensions", "pensions", None, "health", "x' OR '1'='1"))]
    for row in odd:
        async with store.transaction() as tx:
            await tx.add(_complaint(row))
    every = [*rows, *odd]
    for services in (("pensions",), ("pensions", "health"), ("",), ("x' OR '1'='1", "energy")):
        for data_protection in (False, True):
            scope = VisibilityScope("services", services, data_protection=data_protection)
            expected = [r.number for r in sorted(every, key=SORT_KEYS["number"], reverse=True)
                        if scope.admits(data_protection=r.data_protection, service=r.service)]
            listed = [c.number for c in await store.list_complaints(ComplaintFilter(scope=scope, limit=100))]
            assert listed == expected, (services, data_protection)
            assert await store.count_complaints(ComplaintFilter(scope=scope)) == len(expected)
            assert await store.count_complaints(ComplaintFilter(scope=scope), at_most=3) == min(3, len(expected))
            overview = await store.deadline_overview(TODAY, scope, week_end=TODAY + timedelta(days=400))
            shown = {c.number for c in [*overview.overdue, *overview.due_today, *overview.due_this_week]}
            assert shown <= set(expected) and shown, (services, data_protection)


def _earliest_open_deadline(row: Row) -> tuple[str, date] | None:
    """The deadlines dashboard's definition, restated: the acknowledgment until sent, the answer until given and
    not while the clock is paused; nothing once the file is answered or ended."""
    if row.status in ENDED:
        return None
    open_deadlines = []
    if not row.acknowledged:
        open_deadlines.append((row.acknowledgment_due, "acknowledgment"))
    if not row.answered and row.status != "waiting_for_citizen":
        open_deadlines.append((row.answer_due, "answer"))
    if not open_deadlines:
        return None
    due, kind = min(open_deadlines)
    return kind, due


async def test_deadline_overview_sorts_open_files_by_their_earliest_deadline(registry_on_db):
    registry, _events, _clock = registry_on_db
    rows = await _insert(registry.store)
    week_end = TODAY + timedelta(days=5)
    for scope in (None, VisibilityScope("all"), VisibilityScope("none", data_protection=True)):
        visible = [r for r in rows if scope is None or scope.admits(data_protection=r.data_protection,
                                                                    service=r.service)]
        due = {r.number: _earliest_open_deadline(r) for r in visible if _earliest_open_deadline(r)}
        due = {number: deadline for number, deadline in due.items() if deadline[1] <= week_end}
        by_row = {r.number: r for r in rows}

        def listed(condition: Any, numbers: dict[str, tuple[str, date]] = due) -> list[str]:
            chosen = [n for n, (_kind, day) in numbers.items() if condition(day)]
            return sorted(chosen, key=lambda n: (numbers[n][1], by_row[n].year, by_row[n].sequence))

        overview = await registry.store.deadline_overview(TODAY, scope, week_end=week_end)
        assert [c.number for c in overview.overdue] == listed(lambda day: day < TODAY)
        assert [c.number for c in overview.due_today] == listed(lambda day: day == TODAY)
        assert [c.number for c in overview.due_this_week] == listed(lambda day: TODAY < day <= week_end)
        assert overview.deadlines == due
        expected_counts: dict[str | None, dict[str, int]] = {}
        for number, (_kind, day) in due.items():
            bucket = "overdue" if day < TODAY else "due_today" if day == TODAY else "due_this_week"
            counts = expected_counts.setdefault(by_row[number].handler, {})
            counts[bucket] = counts.get(bucket, 0) + 1
        assert {h.handler: {k: v for k, v in (("overdue", h.overdue), ("due_today", h.due_today),
                                              ("due_this_week", h.due_this_week)) if v}
                for h in overview.by_handler} == expected_counts
        # Handlers by address, the unassigned files last.
        assert [h.handler for h in overview.by_handler] == (
            sorted(h for h in expected_counts if h is not None) + ([None] if None in expected_counts else []))
    assert due  # the last scope (a DPO) has deadlines to show


async def test_saved_searches_are_private_unless_shared(registry_on_db):
    registry, _events, _clock = registry_on_db
    store = registry.store
    mine = await store.save_search(1, "Mes dossiers en retard", "status=in_review&overdue=1", False)
    shared = await store.save_search(2, "  Énergie   sans gestionnaire ", "service=energy&handler=", True)
    theirs = await store.save_search(2, "Privé de 2", "channel=phone", False)
    assert len({mine, shared, theirs}) == 3
    assert [(s.name, s.query, s.shared) for s in await store.saved_searches(1)] == [
        ("Énergie sans gestionnaire", "service=energy&handler=", True),
        ("Mes dossiers en retard", "status=in_review&overdue=1", False)]
    assert {s.id for s in await store.saved_searches(2)} == {shared, theirs}
    # The same name again replaces the account's own search.
    assert await store.save_search(1, "Mes dossiers en retard", "status=received", True) == mine
    assert [s.query for s in await store.saved_searches(3)] == ["service=energy&handler=", "status=received"]
    # Only its owner deletes a search.
    assert await store.delete_search(1, shared) is False
    assert await store.delete_search(2, shared) is True
    assert await store.delete_search(2, shared) is False
    assert [s.id for s in await store.saved_searches(1)] == [mine]
    for name, query in (("   ", "status=received"), ("x" * 201, ""), ("ok", "q" * 4001)):
        try:
            await store.save_search(1, name, query, False)
        except ValueError:
            continue
        raise AssertionError(f"saved {name[:10]!r}")
