"""Property-based tests of screening: robust to any input, insensitive to case and accents, monotonic in evidence."""

from __future__ import annotations

import unicodedata
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.registry.screening import ScreeningFacts, ScreeningInput, normalise, screen
from services.registry.screening_files import load_screening_config

CONFIG = load_screening_config()

SENTENCES = [
    "J'ai introduit une réclamation auprès du SPF Finances, sans réponse.",
    "Mon avertissement-extrait de rôle contient une erreur.",
    "Ik heb de FOD Financiën meermaals gecontacteerd over mijn belasting.",
    "Mijn energieleverancier rekent een verkeerde meterstand aan.",
    "Meine Ruhestandspension wurde falsch berechnet, keine Antwort.",
    "Der Versicherer zahlt nicht für den Schadensfall.",
    "I would like to thank the Immigration Office, excellent service.",
    "Can you tell me who should I contact about my residence permit?",
    "Je demande l'accès à mes données personnelles selon le RGPD.",
    "Les faits datent de 2019.",
    "Je n'ai pas encore contacté le service.",
    "Mon train SNCB avait deux heures de retard.",
    "Bonjour, merci d'avance.",
]

texts = st.lists(st.sampled_from(SENTENCES), max_size=5).map(" ".join)


def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def decision(text: str) -> dict:
    return screen(
        ScreeningInput(received=date(2026, 11, 24), sender_name="Ana Lopez", sender_email="ana@example.be", text=text),
        CONFIG,
    ).to_dict()


@given(st.text())
def test_normalise_is_idempotent_and_plain(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once
    assert once == once.strip()
    assert "  " not in once


@settings(max_examples=200)
@given(
    name=st.text(max_size=40),
    email=st.one_of(st.none(), st.emails()),
    subject=st.text(max_size=80),
    text=st.text(max_size=400),
    facts=st.one_of(st.none(), st.dates()),
    step=st.one_of(st.none(), st.dates()),
    first_line=st.one_of(st.none(), st.booleans()),
)
def test_screen_never_fails(
    name: str,
    email: str | None,
    subject: str,
    text: str,
    facts: date | None,
    step: date | None,
    first_line: bool | None,
) -> None:
    proposal = screen(
        ScreeningInput(
            received=date(2026, 11, 24),
            sender_name=name,
            sender_email=email,
            subject=subject,
            text=text,
            facts=ScreeningFacts(facts_date=facts, last_step_date=step, first_line_contacted=first_line),
        ),
        CONFIG,
    )
    assert proposal.kind in {"complaint", "suggestion", "compliment", "question"}
    assert proposal.admissible == (proposal.reasons == ())
    assert len(proposal.redirect) <= CONFIG.redirect_limit
    if proposal.kind != "complaint":
        assert {r.code for r in proposal.reasons} <= {"out_of_competence"}


@given(texts)
def test_case_and_accents_do_not_matter(text: str) -> None:
    expected = decision(text)
    assert decision(text.upper()) == expected
    assert decision(text.lower()) == expected
    assert decision(strip_accents(text)) == expected


@given(texts, texts)
def test_more_text_never_loses_dpo_routing_or_redirect_candidates(first: str, second: str) -> None:
    before = decision(first)
    after = decision(f"{first}\n{second}")
    if before["route_to_dpo"]:
        assert after["route_to_dpo"]
        assert set(before["dpo_evidence"]) <= set(after["dpo_evidence"])
    if before["theme"] is not None:
        assert after["theme"] is not None and after["theme"]["score"] >= before["theme"]["score"]


def _searched_one_by_one(keyword_set, text: str) -> tuple[tuple[str, ...], int]:
    """The reference the one-pass matcher must equal: each keyword's regular expression searched in turn."""
    import re

    found: dict[str, int] = {}
    for keyword in keyword_set.compiled:
        core, bounded_left, bounded_right = keyword.key
        pattern = (r"(?<!\w)" if bounded_left else "") + re.escape(core) + (r"(?!\w)" if bounded_right else "")
        if keyword.text not in found and re.search(pattern, text):
            found[keyword.text] = keyword.weight
    return tuple(found), sum(found.values())


KEYWORDS = sorted({w for ks in CONFIG.keyword_sets for words in ks.by_language.values() for w in words})
glued = st.tuples(st.sampled_from(["", "", "x", "re", "_", "9", "é"]), st.sampled_from(KEYWORDS),
                  st.sampled_from(["", "", "s", "ung", "_", "2", "ß"])).map(lambda t: t[0] + t[1].strip("*") + t[2])
keyword_texts = st.lists(st.one_of(glued, st.sampled_from(SENTENCES), st.text(max_size=8)), max_size=12).map(" ".join)


@given(keyword_texts)
@settings(max_examples=300, deadline=None)
def test_one_pass_matcher_finds_what_each_keyword_alone_finds(text: str) -> None:
    for normalised in (normalise(text), text):  # the normalised text screening reads, and any text at all
        found = CONFIG.matcher.scan(normalised)
        for keyword_set in CONFIG.keyword_sets:
            expected = _searched_one_by_one(keyword_set, normalised)
            assert keyword_set.found_in(found) == expected
            assert keyword_set.matches(normalised) == expected
