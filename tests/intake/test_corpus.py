"""Every real-world raw message of `../shared/corpus/` goes through the real pipeline on a real NATS: each becomes an
event (received, or delivery-failed for a bounce) or is quarantined, and only the listed ones are (with their
reason); none crashes intake. Zammad's mails are also read as a second parser read them: sender, subject and body
against the expected results shipped beside them, every difference listed with the reason.

Attachments are stored as opaque bytes (some corpus files carry real malware in zips): never unpacked or opened.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import random
import re
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from email import message_from_bytes
from email.parser import BytesHeaderParser
from email.policy import compat32
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from shared import streams
from shared.events import DeliveryFailed, MessageReceived
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from services.intake.message.understanding import ParseContext, understand
from services.intake.pipeline import AcceptStatus, IntakePipeline
from services.intake.stores import ensure_intake_buckets
from tests.conftest import require_or_skip
from tests.intake.support import asend, intake_settings, running_intake, settled, stream_events

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


# Machines' mail by where it comes from, decided from the corpus folders and file names, never from our parser
# (issue 10: no automated message in the corpus is acknowledged): the two bounce corpora (real bounces, warnings
# and vacation replies of many MTAs), MimeKit's delivery-status, read-receipt and feedback-report samples, Zammad's
# bounce; and, anywhere, every message whose top-level type is multipart/report (RFC 6522).
MACHINE_FOLDERS = ("perl-bounceparser/", "flufl-bounce/")
MACHINE_FILES = frozenset({
    "mimekit/messages/bounce.txt",
    "mimekit/messages/delivery-status-multiple-blank-lines.txt",
    "mimekit/messages/delivery-status-no-blank-line.txt",
    "mimekit/messages/delivery-status.anonymized.eml",
    "mimekit/messages/delivery-status.txt",
    "mimekit/messages/delivery-status2.txt",
    "mimekit/messages/disposition-notification.anonymized.eml",
    "mimekit/messages/disposition-notification.txt",
    "mimekit/messages/feedback-report.txt",
    "zammad/mail033-undelivered-mail-returned-to-sender.box",
})
# Files of the bounce corpora that are no machine's reply, with the reason (upstream keeps them to check that a
# person's mail is not taken for a bounce): answering them is the normal path.
NOT_MACHINES = {
    "perl-bounceparser/t/corpus/spam-bogus-email-in-report.msg": "spam written to look like a person's mail",
    "perl-bounceparser/t/corpus/spam-lots-of-bogus-addresses.msg": "spam written to look like a person's mail",
    "perl-bounceparser/t/corpus/spam-with-badly-parsed-email.msg": "spam written to look like a person's mail",
    "perl-bounceparser/t/corpus/spam-with-image.msg": "spam written to look like a person's mail",
    "perl-bounceparser/xt/corpus/virus-caused-multiple-weird-reports.msg":
        "a virus mail (phishing for a password change), not the virus scanner's report",
}


# The mails intake may quarantine, by corpus path, with the reason expected (a part of the recorded reason): none
# today, every input is readable. A test that only counted quarantines would pass with every mail quarantined; one
# that is not on this list fails, so that a new quarantine is looked at and listed here with its reason, or fixed.
EXPECTED_QUARANTINES: dict[str, str] = {}


def repeated_inputs(paths: list[Path]) -> int:
    """How many inputs repeat an earlier one, byte for byte or by Message-ID (read here by the standard library):
    the most that intake may call duplicates."""
    seen: set[str] = set()
    repeated = 0
    for path in paths:
        raw = path.read_bytes()
        keys = {"sha256:" + hashlib.sha256(raw).hexdigest()}
        try:
            message_id = BytesHeaderParser(policy=compat32).parsebytes(raw[:512 * 1024]).get("Message-ID")
        except Exception:  # noqa: BLE001 - an unreadable header block has no Message-ID
            message_id = None
        if message_id:
            keys.add("id:" + "".join(str(message_id).split()).strip("<>").lower())
        repeated += bool(keys & seen)
        seen |= keys
    return repeated


def is_machine_sample(name: str, raw: bytes) -> bool:
    if name in NOT_MACHINES:
        return False
    if name.startswith(MACHINE_FOLDERS) or name in MACHINE_FILES:
        return True
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(raw[:512 * 1024]).get_content_type() == "multipart/report"
    except Exception:  # noqa: BLE001 - an unreadable header block is no report
        return False


def corpus_inputs() -> list[Path]:
    index = CORPUS / "INDEX.tsv"
    if not index.is_file():
        require_or_skip(f"the shared mail corpus is absent ({CORPUS})")
    with index.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t") if row["kind"] == "input"]
    return [CORPUS / row["corpus"] / row["path"] for row in rows]


@asynccontextmanager
async def corpus_pipeline(nats_url: str, tmp_path: Path) -> AsyncIterator[IntakePipeline]:
    """Intake's pipeline on a real NATS server, its streams and buckets created, closed afterwards."""
    settings = intake_settings(nats_url, tmp_path)
    broker = make_broker(settings)
    async with broker:
        await broker.connect()
        js = broker.connection.jetstream()
        await ensure_streams(js)
        await ensure_intake_buckets(js)
        pipeline = IntakePipeline(broker, settings)
        try:
            yield pipeline
        finally:
            pipeline.close()


async def test_every_corpus_message_becomes_an_event_or_is_quarantined(nats_server, tmp_path):
    paths = corpus_inputs()
    outcomes: Counter[str] = Counter()
    by_corpus: dict[str, Counter[str]] = {}
    answered_machines: list[str] = []
    quarantined_names: dict[str, str] = {}
    async with corpus_pipeline(nats_server.url, tmp_path) as pipeline:
        for path in paths:
            raw = path.read_bytes()
            outcome = await pipeline.accept(
                raw, received_at=datetime.now(timezone.utc), envelope_sender=None,
                envelope_recipients=("plaintes@ombudsdesk.localhost",), source=f"corpus:{path.name}",
            )
            kind = outcome.status.value
            if outcome.status is AcceptStatus.PROCESSED:
                kind = "bounce" if isinstance(outcome.event, DeliveryFailed) else (
                    "automated" if outcome.event.automated else "message")
            if outcome.status is AcceptStatus.QUARANTINED:
                assert outcome.reason, path
                quarantined_names[path.relative_to(CORPUS).as_posix()] = outcome.reason
            outcomes[kind] += 1
            name = path.relative_to(CORPUS).as_posix()
            # A duplicate (the same message as an earlier file) makes no event, so nothing to answer either.
            if is_machine_sample(name, raw) and kind not in {"automated", "bounce", "duplicate"}:
                answered_machines.append(f"{name}: {kind}")
            by_corpus.setdefault(path.relative_to(CORPUS).parts[0], Counter())[kind] += 1
        quarantined = await pipeline.quarantine.count()
    received = await stream_events(nats_server.url, streams.SUBJECT_MESSAGE_RECEIVED)
    failed = await stream_events(nats_server.url, streams.SUBJECT_DELIVERY_FAILED)
    print(f"\ncorpus: {len(paths)} inputs -> {dict(outcomes)}; {len(received)} received events, "
          f"{len(failed)} delivery-failed events, {quarantined} in quarantine")
    for name, counts in sorted(by_corpus.items()):
        print(f"  {name:<22} {dict(counts)}")
    for name, reason in sorted(quarantined_names.items()):
        print(f"  quarantined {name}: {reason[:160]}")
    assert sum(outcomes.values()) == len(paths)
    # The registry never acknowledges an automated message, and a bounce is no message at all.
    assert not answered_machines, answered_machines
    assert len(received) == outcomes["message"] + outcomes["automated"]
    assert len(failed) == outcomes["bounce"]
    assert quarantined == outcomes["quarantined"]
    # The cap on quarantine: exactly the listed mails, each for its listed reason.
    assert set(quarantined_names) == set(EXPECTED_QUARANTINES), quarantined_names
    for name, reason in EXPECTED_QUARANTINES.items():
        assert reason in quarantined_names[name], (name, quarantined_names[name])
    assert outcomes["duplicate"] <= repeated_inputs(paths)
    for payload in received:
        MessageReceived.model_validate_json(payload)  # every event honours the contract


async def test_a_sample_of_the_corpus_through_real_smtp(nats_server, tmp_path):
    """Raw bytes as an MTA would relay them: 40 corpus messages over SMTP, each answered 250 and made durable."""
    paths = [path for path in corpus_inputs() if path.stat().st_size < 2_000_000]
    sample = random.Random(3834).sample(paths, 40)
    async with running_intake(nats_server.url, tmp_path) as intake:
        for path in sample:
            # smtplib's sendmail needs CRLF-safe bytes; it dot-stuffs and fixes line endings itself.
            assert await asend(intake.smtp_port, path.read_bytes()) == {}
        await settled(intake)
        counters = dict(intake.pipeline.counters)
    assert sum(counters.values()) == len(sample)
    received = await stream_events(nats_server.url, streams.SUBJECT_MESSAGE_RECEIVED)
    failed = await stream_events(nats_server.url, streams.SUBJECT_DELIVERY_FAILED)
    assert len(received) + len(failed) + counters["quarantined"] + counters["duplicate"] == len(sample)


@pytest.mark.parametrize("name", ["zammad/mail033-undelivered-mail-returned-to-sender.box"])
async def test_corpus_bounce_becomes_a_delivery_failed_event(nats_server, tmp_path, name):
    corpus_inputs()
    async with running_intake(nats_server.url, tmp_path) as intake:
        await asend(intake.smtp_port, (CORPUS / name).read_bytes(), sender="")
        await settled(intake)
    [payload] = await stream_events(nats_server.url, streams.SUBJECT_DELIVERY_FAILED)
    event = DeliveryFailed.model_validate_json(payload)
    assert event.failed_recipient == "not_existing@znuny.com"
    assert event.original_message_id == "20150830145601.30.608881@edenhofer.zammad.com"


# --- Zammad's expected results ----------------------------------------------------------------------------------------
# Each Zammad mail has a `.yml` beside it: what Zammad's parser read in 2023 (from, display name, subject, body). It is
# a second reader's opinion, not gospel: where the two differ, the difference is listed below with the reason, and the
# test fails on any difference not listed (and on a listed one that has gone, so that the list stays true).
# Compared: the sender's address (case-insensitive, RFC 5321 2.4 lets only the local part's case matter and no real
# mailbox relies on it) and display name, the subject (both with runs of white space made one space: folding and
# trailing blanks are no content), and the body: Zammad's body, made text by the standard library's HTML parser (not by
# our converter) when Zammad kept HTML, must be found in ours, in order, to BODY_COVERAGE of its words. Our text is
# allowed more (a quoted history Zammad cut, links written out).
ZAMMAD = CORPUS / "zammad"
BODY_COVERAGE = 0.9
# Zammad's own placeholder for a message whose body it found empty, not a text of the message.
ZAMMAD_NO_BODY = "no visible content"

# Sender and subject: where ours differs from Zammad's, what ours is, and why ours is right (or as right).
SENDER_SUBJECT_DIFFERENCES: dict[tuple[str, str], tuple[str | None, str]] = {
    ("from-text-index/mail117.box", "from_email"): (
        "=?utf-8?q?attacker?q?agent?=@victim.example",
        "an encoded word may never stand in an addr-spec (RFC 2047 section 5): the address is the literal text; "
        "Zammad decodes it into another address, the spoofing its own later test is about"),
    ("from-text-index/mail118.box", "from_email"): (
        "=?utf-8?q?agent?=@example.com",
        "as mail117: `=?utf-8?Q?agent?=@example.com` is not agent@example.com (RFC 2047 section 5)"),
    ("mail016.box", "from_email"): (
        "w2sjy@ns2.actionserv.com",
        "no From field at all (RFC 5322 3.6 requires one): ours takes the mbox envelope sender, which the transport "
        "saw; Zammad takes Reply-To, which anyone writes, and answering it would answer a stranger"),
    ("mail018.box", "subject"): (
        "Benachrichtung zum =?unicode-1-1-utf-7?Q?+ANw-bermittlungsstatus (Fehlgeschlagen)?=",
        "the encoded word is broken by folding white space, which RFC 2047 section 5 forbids inside one, so it is "
        "shown as written; Zammad drops its delimiters and still shows the UTF-7 undecoded (+ANw-): no better"),
    ("mail019.box", "from_email"): (
        None,
        "`From: ... <>` is the null address: the author gave none. Zammad answers Reply-To instead, which anyone "
        "writes (the Return-Path is null too: a machine's or a spammer's mail)"),
    ("mail035.box", "from_email"): (
        "finances8@firstfinanceloanfirm.example.com",
        "`From: \"finances8@...\"` is a quoted string and no angle-addr; ours reads the address it names, Zammad "
        "keeps the quotes, which makes no address at all"),
    ("mail046.box", "from_display_name"): (
        "武兰成",
        "the name is raw 8-bit GB2312 (the message's own charset, a Chinese mail); ours decodes it so, Zammad shows "
        "it as Latin-1 mojibake (ÎäŔźłÉ)"),
    ("mail053.box", "from_email"): (
        None,
        "`From: MAILER-DAEMON (Mail Delivery System)` has no domain, so no address (RFC 5322 3.4.1 addr-spec); "
        "Zammad makes `MAILER-DAEMON` an address. A bounce: nobody is answered either way"),
    ("mail053.box", "from_display_name"): (
        "MAILER-DAEMON (Mail Delivery System)",
        "without an address the whole field is shown as the name, comment included, as a mail client shows it"),
    ("mail076.box", "from_email"): (
        '"millions lottery spain transfer"@example.com',
        "a quoted local part is a valid addr-spec (RFC 5322 3.4.1); the stray `>` after it is no part of the address, "
        "which Zammad keeps"),
    ("mail076.box", "from_display_name"): (
        "", "no display name was written; Zammad makes one of the address and the stray `>`"),
    ("mail087.box", "from_display_name"): (
        "", "`From: Test test@example.com` (no angle brackets) is no valid name-addr; Zammad's name repeats the "
            "address, ours keeps none rather than guess"),
    ("mail092.box", "from_display_name"): (
        "MAILER-DAEMON (Mail Delivery System)",
        "a comment after the phrase (RFC 5322 3.2.2) is no part of the display name strictly speaking, but it is what "
        "the sender's software shows; harmless on a bounce, which is never answered"),
}
# Where Zammad is right and we are not yet: the correct value (Zammad's) and what is wrong with ours. The test fails
# when one of these is fixed (move it out) as well as on any new difference.
SENDER_SUBJECT_DEFECTS: dict[tuple[str, str], tuple[str, str]] = {
    ("mail019.box", "from_display_name"): (
        "我", "`From: \"=?GB2312?B?ztI=?=\" <>` (a null address): ours shows the whole field decoded (`我\" <>`) "
              "as the name instead of the name alone"),
    ("mail093.box", "from_display_name"): (
        "ツール EXAMPLE",
        "the encoded word declares ISO-2022-JP but holds Shift_JIS bytes; ours shows mojibake, Zammad detects it"),
}

# Body: where ours does not hold Zammad's body, why ours is right or as right. (Where Zammad found no body at all, as in
# mail054 and mail087, whose text/plain part follows a PDF, ours may hold text: more is allowed.)
# Within the bound today: mail018, declared UTF-7 (RFC 2152), where ours decodes `+APw-ber` to `über` and Zammad leaves
# it encoded; mail072, windows-1258 as declared, where ours reads `à`, `août` and Zammad `ŕ`, `aoűt` (windows-1250).
BODY_DIFFERENCES: dict[str, str] = {}
# The reason every multipart/alternative may differ: ours shows the text/plain alternative the sender's own program
# wrote (RFC 2046 5.1.4 lets a reader show any alternative it can; the register and its notices are text), Zammad the
# HTML one. Then ours must hold that text/plain alternative, decoded here by the standard library, instead.
PLAIN_ALTERNATIVE = "text/plain alternative shown (RFC 2046 5.1.4)"
# Bodies where Zammad is right and we are not yet (the test fails when one is fixed: move it out).
BODY_DEFECTS: dict[str, str] = {
    "mail034.box": "an empty text/plain alternative is shown instead of the HTML one that holds the text",
    "mail099.box": "ISO-2022-JP with NEC special characters (①) is left undecoded; Zammad decodes it",
    "from-text-index/mail110.box": "an inline HTML part of a multipart/mixed is missing from the text",
    "from-text-index/mail111.box": "an inline HTML part of a multipart/mixed is missing from the text",
    "from-text-index/mail112.box": "inline HTML parts of a multipart/mixed are missing from the text",
}


class _RubyYamlLoader(yaml.SafeLoader):
    """Zammad's `.yml` tag every mapping `!ruby/hash:ActiveSupport::HashWithIndifferentAccess`: read as plain data."""


def _untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_RubyYamlLoader.add_multi_constructor("!", _untagged)


def zammad_expected(box: Path) -> dict[str, object]:
    return yaml.load(box.with_suffix(".yml").read_text(encoding="utf-8"), Loader=_RubyYamlLoader)


def zammad_boxes() -> list[Path]:
    """Zammad's mails that have expected results (the reconstructed, unverified mail116 has none)."""
    corpus_inputs()
    return sorted(box for box in ZAMMAD.rglob("*.box") if box.with_suffix(".yml").is_file())


class _VisibleText(HTMLParser):
    """The text of HTML as the standard library sees it: no script or style, blocks apart, inline runs together."""

    HIDDEN = frozenset({"script", "style", "head", "title"})
    BLOCKS = frozenset("address article aside blockquote br center dd div dl dt figure footer h1 h2 h3 h4 h5 h6 "
                       "header hr img li ol p pre section table tbody td tfoot th thead tr ul".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in self.HIDDEN
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_words(markup: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    return words("".join(parser.parts))


def words(text: str) -> list[str]:
    """Words, compatibility-normalised and case-folded: line breaks, spacing and `&nbsp;` carry no content."""
    return re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())


def coverage(expected: list[str], ours: list[str]) -> float:
    """The share of the expected text's letters that ours holds in the same order (1.0: all; more in ours allowed).

    Words are matched first; where they differ, the letters of the differing stretches are matched, so that where a
    converter puts a space between two inline elements (`<span>1</span>加拿大`, spam split by tags) nothing is lost.
    """
    total = sum(map(len, expected))
    if not total:
        return 1.0
    matched = 0
    for operation, i1, i2, j1, j2 in difflib.SequenceMatcher(None, expected, ours, autojunk=False).get_opcodes():
        if operation == "equal":
            matched += sum(map(len, expected[i1:i2]))
        elif operation == "replace":  # bounded: letter matching is quadratic at worst
            theirs_letters, ours_letters = "".join(expected[i1:i2])[:4000], "".join(ours[j1:j2])[:4000]
            matcher = difflib.SequenceMatcher(None, theirs_letters, ours_letters, autojunk=False)
            matched += sum(block.size for block in matcher.get_matching_blocks())
    return matched / total


def plain_alternative(raw: bytes) -> list[str] | None:
    """The words of the first text/plain part of the first multipart/alternative, decoded by the standard library."""
    message = message_from_bytes(raw, policy=compat32)
    alternative = next((part for part in message.walk() if part.get_content_type() == "multipart/alternative"), None)
    if alternative is None:
        return None
    plain = next((part for part in alternative.walk() if part.get_content_type() == "text/plain"), None)
    if plain is None:
        return None
    payload = plain.get_payload(decode=True) or b""
    try:
        return words(payload.decode(plain.get_content_charset() or "us-ascii", errors="replace"))
    except LookupError:
        return words(payload.decode("latin-1"))


def single_spaced(text: object) -> str:
    return " ".join(str(text or "").split())


async def test_zammad_mails_read_as_zammad_reads_them(nats_server, tmp_path):
    """Sender, subject and body of each Zammad mail as our pipeline publishes them, against Zammad's `.yml`."""
    boxes = zammad_boxes()
    problems: list[str] = []
    seen_differences: set[tuple[str, str]] = set()
    seen_body_differences: set[str] = set()
    fixed: list[str] = []
    plain_alternatives: list[str] = []
    others: list[str] = []
    async with corpus_pipeline(nats_server.url, tmp_path) as pipeline:
        for box in boxes:
            name = box.relative_to(ZAMMAD).as_posix()
            raw = box.read_bytes()
            expected = zammad_expected(box)
            outcome = await pipeline.accept(
                raw, received_at=datetime.now(timezone.utc), envelope_sender=None,
                envelope_recipients=("plaintes@ombudsdesk.localhost",), source=f"corpus:{box.name}")
            if outcome.status is AcceptStatus.QUARANTINED:
                problems.append(f"{name}: quarantined ({outcome.reason})")
                continue
            if isinstance(outcome.event, MessageReceived):
                sender, subject, text = outcome.event.sender, outcome.event.subject_line, outcome.event.text
            else:
                # A bounce's delivery-failed event, or no event for a duplicate (Zammad's fixtures reuse Message-IDs):
                # what intake understood of the same bytes stands in.
                others.append(f"{name}: {outcome.status.value}")
                understood = understand(raw, ParseContext())
                sender, subject, text = understood.sender, understood.subject, understood.text
            ours = {"from_email": (sender.email or None), "from_display_name": single_spaced(sender.name),
                    "subject": single_spaced(subject)}
            theirs = {"from_email": (str(expected["from_email"] or "").lower() or None),
                      "from_display_name": single_spaced(expected["from_display_name"]),
                      "subject": single_spaced(expected["subject"])}
            for field in ours:
                key = (name, field)
                ours_value = ours[field].lower() if field == "from_email" and ours[field] else ours[field]
                if key in SENDER_SUBJECT_DEFECTS:
                    if ours_value == SENDER_SUBJECT_DEFECTS[key][0]:
                        fixed.append(f"{name} {field}: fixed, move it out of SENDER_SUBJECT_DEFECTS")
                    continue
                if key in SENDER_SUBJECT_DIFFERENCES:
                    seen_differences.add(key)
                    want = SENDER_SUBJECT_DIFFERENCES[key][0]
                    if ours_value != want:
                        problems.append(f"{name} {field}: ours {ours_value!r}, listed as {want!r}")
                    continue
                if ours_value != theirs[field]:
                    problems.append(f"{name} {field}: ours {ours_value!r}, Zammad {theirs[field]!r}")
            body = str(expected["body"] or "")
            theirs_words = html_words(body) if expected["content_type"] == "text/html" else words(body)
            if " ".join(theirs_words) == ZAMMAD_NO_BODY:
                theirs_words = []
            ours_words = words(text)
            share = coverage(theirs_words, ours_words)
            if name in BODY_DEFECTS:
                if share >= BODY_COVERAGE:
                    fixed.append(f"{name} body: fixed, move it out of BODY_DEFECTS")
                continue
            if share >= BODY_COVERAGE:
                continue
            plain = plain_alternative(raw)
            if plain is not None and coverage(plain, ours_words) >= BODY_COVERAGE:
                plain_alternatives.append(name)
                continue
            if name in BODY_DIFFERENCES:
                seen_body_differences.add(name)
                continue
            problems.append(f"{name} body: {share:.0%} of Zammad's words in ours "
                            f"(Zammad {' '.join(theirs_words)[:120]!r}; ours {' '.join(ours_words)[:120]!r})")
    print(f"\nzammad: {len(boxes)} mails; {len(plain_alternatives)} shown by their text/plain alternative "
          f"({PLAIN_ALTERNATIVE}); not a received event: {others}; "
          f"{len(SENDER_SUBJECT_DIFFERENCES) + len(BODY_DIFFERENCES)} listed differences; "
          f"known defects: {sorted(SENDER_SUBJECT_DEFECTS) + sorted(BODY_DEFECTS)}")
    assert len(boxes) >= 115, "Zammad's corpus lost mails"
    assert not problems, "\n".join(problems)
    assert not fixed, "\n".join(fixed)
    # Every listed difference still exists: a list that no longer describes ours would excuse the next regression.
    assert seen_differences == set(SENDER_SUBJECT_DIFFERENCES), set(SENDER_SUBJECT_DIFFERENCES) - seen_differences
    assert seen_body_differences == set(BODY_DIFFERENCES), set(BODY_DIFFERENCES) - seen_body_differences
