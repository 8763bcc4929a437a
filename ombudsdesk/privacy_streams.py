"""The streams' part of an erasure (issue 16): delete every event of erased files from every event stream — intake's,
the registry's, the notifier's and the dead letters — by sequence, with JetStream's secure erase.

Why here and not in the services: the services may not delete messages from the event streams (ombudsdesk.nats_config:
only the `admin` user may), because an event stream is the system's audit trail between services. So this runs as
an admin operation, from `ombudsdesk privacy erase` once the register has erased the file and published
`PersonalDataErased` (the events after it are then the ids-only erasure event itself), or alone:

    ombudsdesk privacy scrub-streams NUMBER... [--message-key KEY]... [--address EMAIL]... [--dry-run]

An event belongs to an erased file when it names one of its numbers (`complaint_number`), one of its message keys
(`message_key`), or (`--address`) carries the citizen's address anywhere in its payload — a `DeliveryFailed` of a
bounced notice names no number. A dead letter is judged by the event it carries. `PersonalDataErased` events are
kept: they carry identifiers only, and intake's and the notifier's consumers may not have read them yet.

Intake's quarantine is scrubbed the same way (its entries are matched as events are, every revision, with the raw
original each points to): a message intake could not parse never reached the register, so no `PersonalDataErased`
names it, and without this it would wait for intake's retention (`services/intake/retention.py`).

Why `delete_msg`: nats-py sends `STREAM.MSG.DELETE` without `no_erase`, so the server overwrites the record on disk
(subject, headers, payload) with random bytes; a purge or a plain removal would leave the bytes in the block file
until compaction (measured with nats-server 2.15). The scan reads each stream once from its first sequence: with
`OMBUDSDESK_STREAM_MAX_AGE_DAYS` set (docs/privacy.md) the streams hold days, not years, and the retention age
removes the rest of the events on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shared import streams
from shared.mailbox import mentions_address
from services.intake.privacy import IntakeErasure, erase_object
from services.intake.stores import erase_message

EVENT_STREAMS = (streams.STREAM_INTAKE, streams.STREAM_REGISTRY, streams.STREAM_NOTIFIER, streams.STREAM_DEAD_LETTER)
# Intake's quarantine (a key-value bucket's stream): a message the parser could not handle never reached the register,
# so no file names it; its record (envelope sender, message key) is matched as an event is, and its raw original goes
# with it.
QUARANTINE_STREAM = f"KV_{streams.BUCKET_INTAKE_QUARANTINE}"
KEPT_EVENT_TYPES = frozenset({"privacy.erased"})


@dataclass(frozen=True)
class ErasedFiles:
    """What identifies the erased files' events: numbers, message keys, and (optional) the citizen's addresses."""

    numbers: frozenset[str]
    message_keys: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()

    @classmethod
    def of(cls, numbers: Iterable[str], message_keys: Iterable[str] = (), addresses: Iterable[str] = ()) -> ErasedFiles:
        return cls(frozenset(numbers), frozenset(message_keys),
                   frozenset(address.strip().lower() for address in addresses if address.strip()))

    def matches(self, payload: bytes) -> bool:
        """Whether an event's payload (a dead letter: the event it carries) belongs to an erased file. Pure."""
        try:
            event = json.loads(payload)
        except ValueError:
            return self._mentions(payload.decode("utf-8", errors="replace"))
        if not isinstance(event, dict):
            return False
        if event.get("event_type") == "dead.lettered":
            carried = event.get("payload")
            return isinstance(carried, str) and self.matches(carried.encode("utf-8", errors="replace"))
        if event.get("event_type") in KEPT_EVENT_TYPES:
            return False
        if event.get("complaint_number") in self.numbers or event.get("message_key") in self.message_keys:
            return True
        return self._mentions(payload.decode("utf-8", errors="replace"))

    def _mentions(self, text: str) -> bool:
        # A whole address, case-folded: erasing ann@x.org must not reach joann@x.org's events (nor, in the
        # quarantine, their only copy of a mail).
        return any(mentions_address(text, address) for address in self.addresses)


@dataclass
class ScrubReport:
    scanned: dict[str, int] = field(default_factory=dict)
    erased: dict[str, list[int]] = field(default_factory=dict)
    # Raw originals of quarantined messages erased (or, in a dry run, that would be).
    raw_originals: int = 0
    # Streams whose matching messages could not be erased, and why (a quarantine made before it was erasable).
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def total_erased(self) -> int:
        return sum(len(sequences) for sequences in self.erased.values())


async def _messages(js: JetStreamContext, stream: str) -> Any:
    """Every message of `stream`, in order, one direct read each (bounded by the stream's size)."""
    sequence = 1
    while True:
        try:
            message = await js.get_msg(stream, seq=sequence, next=True, subject=">")
        except NotFoundError:
            return
        sequence = (message.seq or 0) + 1
        yield message


async def scrub_streams(js: JetStreamContext, files: ErasedFiles, *, dry_run: bool = False,
                        stream_names: Iterable[str] = EVENT_STREAMS) -> ScrubReport:
    """Find (and unless `dry_run`, securely erase) the erased files' events in every event stream."""
    report = ScrubReport()
    for stream in stream_names:
        try:
            await js.stream_info(stream)
        except NotFoundError:
            continue
        found = await _matching(js, stream, files, report)
        if not dry_run:
            await _erase(js, stream, found)
    await _scrub_quarantine(js, files, dry_run, report)
    return report


async def _matching(js: JetStreamContext, stream: str, files: ErasedFiles, report: ScrubReport,
                    raw_objects: set[str] | None = None) -> list[int]:
    found: list[int] = []
    scanned = 0
    async for message in _messages(js, stream):
        scanned += 1
        data = message.data or b""
        if data and files.matches(data):
            found.append(message.seq or 0)
            if raw_objects is not None:
                raw_objects.add(_raw_object_of(data))
    report.scanned[stream] = scanned
    report.erased[stream] = found
    return found


async def _erase(js: JetStreamContext, stream: str, sequences: list[int]) -> None:
    for sequence in sequences:  # gone meanwhile (the retention age, a second run): nothing to erase
        await erase_message(js, stream, sequence)  # secure erase: the record is overwritten on disk


def _raw_object_of(record: bytes) -> str:
    try:
        name = json.loads(record).get("raw_object")
    except (ValueError, AttributeError):
        return ""
    return name if isinstance(name, str) else ""


async def _scrub_quarantine(js: JetStreamContext, files: ErasedFiles, dry_run: bool, report: ScrubReport) -> None:
    """The quarantine entries of the erased files' message keys or naming the citizen's address, every revision,
    and the raw originals they point to."""
    try:
        info = await js.stream_info(QUARANTINE_STREAM)
    except NotFoundError:
        return
    raw_objects: set[str] = set()
    found = await _matching(js, QUARANTINE_STREAM, files, report, raw_objects)
    raw_objects.discard("")
    report.raw_originals = len(raw_objects)
    if dry_run or not found:
        return
    # The raw originals first: the entries are what points to them, so a run cut in between finds them again.
    erased = IntakeErasure()
    for name in sorted(raw_objects):
        await erase_object(js, streams.BUCKET_RAW_MESSAGES, name, erased)
    if info.config.deny_delete:
        report.refused[QUARANTINE_STREAM] = ("made before entries could be erased: run `ombudsdesk intake quarantine "
                                             "migrate-stream` once, then this again")
        return
    await _erase(js, QUARANTINE_STREAM, found)


def describe(report: ScrubReport, dry_run: bool) -> list[str]:
    verb = "would erase" if dry_run else "erased"
    lines = [f"{stream:<24} scanned {report.scanned.get(stream, 0):>7}  {verb} {len(sequences):>5}"
             for stream, sequences in report.erased.items()]
    lines += [f"{stream:<24} NOT erased: {why}" for stream, why in report.refused.items()]
    if report.raw_originals:
        lines.append(f"quarantined raw originals: {verb} {report.raw_originals}")
    lines.append(f"{verb} {report.total_erased} event(s) in {len(report.erased)} stream(s)")
    return lines


def scrub_streams_command(
    numbers: Annotated[list[str], typer.Argument(help="Complaint numbers of the erased files.")],
    message_key: Annotated[list[str] | None, typer.Option("--message-key", help="A message key of those files.")]
    = None,
    address: Annotated[list[str] | None, typer.Option("--address", help="The citizen's e-mail address.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be erased, erase nothing.")] = False,
) -> None:
    """Securely erase the events of erased files from every event stream (admin NATS user; docs/privacy.md)."""
    from ombudsdesk.cli import with_jetstream  # the top-level command mounts this module

    files = ErasedFiles.of(numbers, message_key or (), address or ())
    report = with_jetstream(lambda js: scrub_streams(js, files, dry_run=dry_run))
    for line in describe(report, dry_run):
        typer.echo(line)



def scrub_after_erasure(numbers: list[str], message_keys: list[str], address: str) -> None:
    """The streams' part of `ombudsdesk privacy erase`, once the register's part is done (`AFTER_ERASURE`)."""
    from ombudsdesk.cli import with_jetstream

    report = with_jetstream(lambda js: scrub_streams(js, ErasedFiles.of(numbers, message_keys, [address])))
    for line in describe(report, dry_run=False):
        typer.echo(line)
