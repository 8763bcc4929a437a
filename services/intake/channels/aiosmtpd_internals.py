"""What intake's SMTP server (`smtp_server.IntakeSMTP`) uses of aiosmtpd beyond its documented API, in one place.

For memory and speed (docs/benchmarks-intake.md) `IntakeSMTP` replaces aiosmtpd's `smtp_DATA` (the data read into
one buffer, in large pieces) and `_getaddr` (plain paths without the RFC 5322 parser), and wraps each command for
the session limits. That relies on members aiosmtpd does not document: the session's `StreamReader` and its line
limit, the table of command methods, the DATA hook call and the state reset after DATA. Every such access goes
through the functions below; `check_aiosmtpd_internals` (run by `tests/intake/test_library_internals.py`) fails with
the library's name and version when an upgrade renames or reshapes any of them, instead of SMTP breaking at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterator
from importlib.metadata import version
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP

LIBRARY = "aiosmtpd"
# The versions whose internals were checked by hand; any other runs `check_aiosmtpd_internals` in the tests.
CHECKED_VERSIONS = ("1.4.6",)

CommandMethod = Callable[[str | None], Awaitable[None]]


def data_reader(server: SMTP) -> asyncio.StreamReader:
    """The session's reader (aiosmtpd's `_reader`), read directly during DATA."""
    return server._reader  # noqa: SLF001


@contextlib.contextmanager
def reader_limit(server: SMTP, limit: int) -> Iterator[asyncio.StreamReader]:
    """The session's reader with its line limit set to `limit` meanwhile (asyncio's `StreamReader` has no public
    setter for the limit it was created with), restored after."""
    reader = data_reader(server)
    before = reader._limit  # noqa: SLF001
    reader._limit = limit  # noqa: SLF001
    try:
        yield reader
    finally:
        reader._limit = before  # noqa: SLF001


def command_methods(server: SMTP) -> dict[str, CommandMethod]:
    """aiosmtpd's table of `smtp_<COMMAND>` methods, looked up for each command line."""
    return server._smtp_methods  # noqa: SLF001


def replace_command_methods(server: SMTP, methods: dict[str, CommandMethod]) -> None:
    server._smtp_methods = methods  # noqa: SLF001


async def end_of_data(server: SMTP, data: bytearray) -> str:
    """What aiosmtpd's own `smtp_DATA` does once the data is read: hand it to the handler's `handle_DATA` and reset
    the transaction (RFC 5321 4.1.4); the reply to send ("250 OK" when the handler has no DATA hook)."""
    assert server.envelope is not None
    server.envelope.content = server.envelope.original_content = data  # type: ignore[assignment] - bytes-like
    status = await server._call_handler_hook("DATA")  # noqa: SLF001
    reset_after_data(server)
    return "250 OK" if status is MISSING else status


def reset_after_data(server: SMTP) -> None:
    server._set_post_data_state()  # noqa: SLF001


class AiosmtpdInternalsChanged(RuntimeError):
    """aiosmtpd no longer offers what intake relies on; the message names the version and what moved."""


def check_aiosmtpd_internals() -> None:
    """Raise `AiosmtpdInternalsChanged` (naming aiosmtpd's version and each difference) when the members used above,
    or the methods `IntakeSMTP` replaces, are not what intake was written against. No network needed."""
    problems: list[str] = []
    for method, parameters in {"_call_handler_hook": ["self", "command", "args"],
                               "_set_post_data_state": ["self"],
                               "_getaddr": ["self", "arg"],
                               "smtp_DATA": ["self", "arg"],
                               "check_helo_needed": ["self", "helo"],
                               "check_auth_needed": ["self", "caller_method"],
                               "push": ["self", "status"]}.items():
        function: Any = getattr(SMTP, method, None)
        if function is None:
            problems.append(f"SMTP.{method} is gone")
            continue
        found = list(inspect.signature(inspect.unwrap(function)).parameters)
        if found != parameters:
            problems.append(f"SMTP.{method} takes {found}, intake expects {parameters}")
    # What the replaced smtp_DATA did at its end must still be what `end_of_data` does.
    data_source = inspect.getsource(SMTP.smtp_DATA)
    normalised = data_source.replace("'", '"')
    for step in ('_call_handler_hook("DATA")', "_set_post_data_state()", "self.envelope.original_content",
                 "self._reader.readuntil"):
        if step not in normalised:
            problems.append(f"SMTP.smtp_DATA no longer does {step}")
    init_source = inspect.getsource(SMTP.__init__)
    if "self._smtp_methods" not in init_source:
        problems.append("SMTP no longer keeps its command table in _smtp_methods")
    if "_reader" not in inspect.getsource(SMTP.connection_made) and "_reader" not in init_source:
        problems.append("SMTP no longer keeps the session's StreamReader in _reader")
    if "_limit" not in inspect.signature(asyncio.StreamReader).parameters and \
            "_limit" not in inspect.getsource(asyncio.StreamReader.__init__):
        problems.append("asyncio.StreamReader no longer keeps its line limit in _limit")
    if problems:
        raise AiosmtpdInternalsChanged(
            f"{LIBRARY} {version(LIBRARY)} (intake was checked against {', '.join(CHECKED_VERSIONS)}) changed what "
            f"services/intake/channels/aiosmtpd_internals.py relies on: {'; '.join(problems)}")
