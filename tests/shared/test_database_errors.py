"""A failed statement's exception text never carries the values it was given (issue 10: personal data must not
reach logs or dead letters through exception texts), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from shared.database import create_engine


async def test_statement_errors_hide_their_parameters(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE people (email VARCHAR(320) PRIMARY KEY)"))
            await connection.execute(text("INSERT INTO people (email) VALUES (:email)"),
                                     {"email": "jeanne.dupont@example.org"})
        with pytest.raises(IntegrityError) as raised:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO people (email) VALUES (:email)"),
                                         {"email": "jeanne.dupont@example.org"})
    finally:
        await engine.dispose()
    assert "jeanne.dupont@example.org" not in str(raised.value)
    assert "hidden" in str(raised.value)
