"""Migration 0013 on a register built at 0012: each entry of `complaints.recommendations` becomes a recommendation row
(the texts stay on the file), and the existing complaints get their citizen key, so that a new complaint finds them
as possible duplicates — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import sqlalchemy as sa
from alembic import command

from services.registry.mediation.duplicates import citizen_key
from services.registry.repository import MIGRATIONS, migrate
from shared.database import alembic_config, create_engine

AT = datetime(2026, 5, 4, 8, 30, tzinfo=timezone.utc)


async def _upgrade_to(engine, revision: str) -> None:
    config = alembic_config(MIGRATIONS, engine.url.render_as_string(hide_password=False))

    def upgrade(connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)


def _complaint(sequence: int, recommendations, **columns) -> dict:
    return {
        "number": f"MED-2026-{sequence:05d}", "year": 2026, "sequence": sequence, "message_key": f"m-{sequence}",
        "kind": "complaint", "channel": "email", "received_at": AT, "legal_start": date(2026, 5, 4),
        "complainant_name": "Jeanne Dupont", "subject_line": "s", "body": "b", "attachments": [],
        "admissibility": "pending", "admissibility_reasons": [], "status": "in_review",
        "acknowledgment_due": date(2026, 5, 11), "answer_due": date(2026, 6, 18), "answer_extended": False,
        "paused_days": 0, "recommendations": recommendations, "automated": False, "created_at": AT,
        "updated_at": AT, **columns}


async def test_0013_moves_the_json_recommendations_into_rows(database_url):
    engine = create_engine(database_url)
    try:
        await _upgrade_to(engine, "0012_information_requests")
        # The table as it is at 0012 (the model already describes 0013's columns).
        typed = {"attachments": sa.JSON, "admissibility_reasons": sa.JSON, "recommendations": sa.JSON,
                 "received_at": sa.DateTime(timezone=True), "created_at": sa.DateTime(timezone=True),
                 "updated_at": sa.DateTime(timezone=True), "legal_start": sa.Date, "acknowledgment_due": sa.Date,
                 "answer_due": sa.Date}
        complaints = sa.table("complaints", *(sa.column(name, typed.get(name)) for name in _complaint(0, [])),
                              sa.column("service_concerned"), sa.column("handler"),
                              sa.column("complainant_postal_address"))
        async with engine.begin() as connection:
            await connection.execute(sa.insert(complaints), [
                _complaint(1, ["Publier le calendrier", "Former l'accueil"], service_concerned="finances",
                           handler="agent@med.be", complainant_postal_address="Rue de la Loi 16, 1000 Bruxelles"),
                _complaint(2, [], service_concerned=None, handler=None, complainant_postal_address=None),
                _complaint(3, ["  "], service_concerned=None, handler=None, complainant_postal_address=None),
            ])
        await migrate(engine)  # 0013 and whatever follows, as a start of the service does
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.text(
                "SELECT c.number, r.text, r.addressee, r.status, r.issued_on, r.created_by, r.request_key "
                "FROM recommendations r JOIN complaints c ON c.id = r.complaint_id ORDER BY r.id"))).all()
            keys = dict((await connection.execute(sa.text(
                "SELECT number, citizen_key FROM complaints ORDER BY number"))).all())
            texts = (await connection.execute(sa.text(
                "SELECT recommendations FROM complaints WHERE number = 'MED-2026-00001'"))).scalar_one()
        assert [(n, t, a, s, str(d)[:10], by) for n, t, a, s, d, by, _key in rows] == [
            ("MED-2026-00001", "Publier le calendrier", "finances", "pending", "2026-05-04", "agent@med.be"),
            ("MED-2026-00001", "Former l'accueil", "finances", "pending", "2026-05-04", "agent@med.be"),
        ]
        assert len({key for *_rest, key in rows}) == 2
        # The texts stay on the file (register show, the annual improvement actions read them).
        assert (texts if isinstance(texts, list) else json.loads(texts)) == [
            "Publier le calendrier", "Former l'accueil"]
        assert keys == {"MED-2026-00001": citizen_key("Jeanne Dupont", "Rue de la Loi 16, 1000 Bruxelles"),
                        "MED-2026-00002": None, "MED-2026-00003": None}
    finally:
        await engine.dispose()
