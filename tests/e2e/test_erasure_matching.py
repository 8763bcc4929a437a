"""Which stream events belong to an erased file (pure, `ombudsdesk.privacy_streams.ErasedFiles`): by number, by
message key, inside a dead letter, by the citizen's address; never the ids-only `PersonalDataErased` itself."""

from __future__ import annotations

import json

from ombudsdesk.privacy_streams import ErasedFiles

FILES = ErasedFiles.of(["MED-2026-00007"], ["mid-abc"], ["Zoe@Example.org"])


def payload(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_events_of_the_file_match_by_number_key_dead_letter_or_address():
    assert FILES.matches(payload(event_type="complaint.registered", complaint_number="MED-2026-00007"))
    assert FILES.matches(payload(event_type="message.received", message_key="mid-abc"))
    inner = payload(event_type="notice.requested", complaint_number="MED-2026-00007")
    assert FILES.matches(payload(event_type="dead.lettered", payload=inner.decode()))
    assert FILES.matches(payload(event_type="delivery.failed", message_key="raw-x", failed_recipient="zoe@example.org"))


def test_other_files_and_the_erasure_event_itself_do_not_match():
    assert not FILES.matches(payload(event_type="complaint.registered", complaint_number="MED-2026-00008"))
    assert not FILES.matches(payload(event_type="privacy.erased", complaint_number="MED-2026-00007"))
    other = payload(event_type="notice.requested", complaint_number="MED-2026-00070")
    assert not FILES.matches(payload(event_type="dead.lettered", payload=other.decode()))
    assert not FILES.matches(b"\xff not json, no address")
    assert not ErasedFiles.of(["MED-1"]).matches(payload(recipient="zoe@example.org"))


def test_an_address_is_matched_whole_never_inside_a_longer_one():
    """The security review: erasing ann@x.org must not erase joann@x.org's events or quarantined mail."""
    from ombudsdesk.privacy_streams import ErasedFiles

    files = ErasedFiles.of([], addresses=["Ann@X.org"])
    assert files.matches(b'{"sender": {"email": "ann@x.org"}}')
    assert files.matches(b'{"text": "From: Ann <ANN@x.org>"}')
    assert not files.matches(b'{"sender": {"email": "joann@x.org"}}')
    assert not files.matches(b'{"sender": {"email": "ann@x.org.uk"}}')
    assert not files.matches(b'{"sender": {"email": "ann.smith@x.org"}}')
    assert files.matches(b'{"to": "ann@x.org."}')  # the end of a sentence
