"""Intake uses a few undocumented parts of aiosmtpd and nats-py for speed and memory (docs/benchmarks-intake.md),
each reached only through one module: services/intake/channels/aiosmtpd_internals.py and
services/intake/jetstream_internals.py. These tests fail loudly, naming the library and its version, when an
upgrade moves any of them; the behaviour itself is tested in test_smtp_protocol.py and test_object_store.py."""

from __future__ import annotations

import ast
from pathlib import Path

from services.intake.channels.aiosmtpd_internals import check_aiosmtpd_internals
from services.intake.jetstream_internals import check_nats_internals

INTAKE = Path(__file__).resolve().parents[2] / "services" / "intake"
INTERNALS_MODULES = {INTAKE / "channels" / "aiosmtpd_internals.py", INTAKE / "jetstream_internals.py"}
# Private members of the libraries (and of asyncio's StreamReader) that only the two modules above may touch, and
# the nats-py modules whose layout constants they wrap.
LIBRARY_PRIVATES = {"_reader", "_limit", "_smtp_methods", "_call_handler_hook", "_set_post_data_state",
                    "_message_iterator", "_get_metadata_fields"}
LAYOUT_MODULES = {"nats.js.object_store", "nats.nuid", "nats.js.kv"}


def test_aiosmtpd_still_has_what_intake_smtp_server_relies_on():
    check_aiosmtpd_internals()  # raises AiosmtpdInternalsChanged naming aiosmtpd's version and what moved


def test_nats_py_still_writes_the_object_store_layout_intake_writes_by_hand():
    check_nats_internals()  # raises NatsInternalsChanged naming nats-py's version and what moved


def test_no_other_intake_module_reaches_into_the_libraries_privates():
    offenders = []
    for path in sorted(INTAKE.rglob("*.py")):
        if path in INTERNALS_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in LIBRARY_PRIVATES:
                offenders.append(f"{path.relative_to(INTAKE)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module in LAYOUT_MODULES:
                offenders.append(f"{path.relative_to(INTAKE)}:{node.lineno} from {node.module}")
    assert offenders == [], "use services/intake/jetstream_internals.py or channels/aiosmtpd_internals.py: " + \
        ", ".join(offenders)
