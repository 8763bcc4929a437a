"""Fixtures of the security review (issue 13): the back office over a real database (SQLite and PostgreSQL), reused
from the registry's and the back office's own test fixtures."""

from tests.backoffice.conftest import backoffice_app  # noqa: F401 - the fixture
from tests.registry.conftest import registry_on_db  # noqa: F401 - the fixture
