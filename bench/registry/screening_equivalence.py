"""Screening results, recorded and compared: proof that a faster matcher decides exactly as the one before it.

    .venv/bin/python bench/registry/screening_equivalence.py record  /tmp/screening-before.json
    .venv/bin/python bench/registry/screening_equivalence.py compare /tmp/screening-before.json

Runs `screen()` on the shipped example configuration over a fixed, seeded corpus — every string sample of the
screening tests, and generated texts made of the configuration's own keywords in FR/NL/DE/EN with the variations
that matter to matching (case, accents, ligatures, punctuation, a keyword glued to a word before or after it, a
wildcard keyword extended, several keywords overlapping) — and also `KeywordSet.matches` of every keyword set of the
configuration on each text. `record` saves every input and its results; `compare` screens the recorded inputs again
(so that a corpus recorded before a change is compared whole) and prints the first differences (exit status 1 if
any).
"""

from __future__ import annotations

import ast
import json
import random
import sys
import unicodedata
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.registry.screening import KeywordSet, ScreeningConfig, ScreeningInput, normalise, screen  # noqa: E402
from services.registry.screening_files import load_screening_config  # noqa: E402

SEED = 20261124
GENERATED = 4000
FILLER = ("le la de et je vous mon ma pas une un het de een ik niet der die und ich nicht the a of and i not "
          "madame monsieur geachte sehr geehrte dear sir 2019 2024 2026 facture rekening rechnung bill "
          "service dienst ok merci dank danke thanks").split()
TEST_FILES = ("test_screening.py", "test_screening_properties.py", "test_screening_config.py", "test_long_input.py")


def keyword_sets(config: ScreeningConfig) -> list[tuple[str, KeywordSet]]:
    rules = config.rules
    sets: list[tuple[str, KeywordSet]] = [
        ("admissibility.anonymous_names", rules.admissibility.anonymous_names),
        ("admissibility.first_line_contacted", rules.admissibility.first_line_contacted),
        ("admissibility.first_line_not_contacted", rules.admissibility.first_line_not_contacted),
    ]
    if rules.dpo is not None:
        sets.append(("dpo", rules.dpo.keywords))
    sets += [(f"kinds.{c.id}", c.keywords) for c in rules.kinds]
    sets += [(f"themes.{c.id}", c.keywords) for c in rules.themes]
    sets += [(f"services.{c.id}", c.keywords) for c in rules.services]
    sets += [(f"directory.{e.id}", e.keywords) for e in config.directory]
    return sets


def test_samples() -> list[str]:
    """Every string literal of the screening tests long enough to be a text."""
    samples: list[str] = []
    for name in TEST_FILES:
        path = ROOT / "tests" / "registry" / name
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) >= 4:
                samples.append(node.value)
    return list(dict.fromkeys(samples))


def accented(word: str, rng: random.Random) -> str:
    table = {"e": "éèêë", "a": "àâä", "u": "ùûü", "o": "ôö", "i": "îï", "c": "ç", "oe": "œ", "ae": "æ"}
    out = word
    for plain, marks in table.items():
        if plain in out and rng.random() < 0.5:
            out = out.replace(plain, rng.choice(marks) if len(plain) == 1 else marks, 1)
    return out


def vary(keyword: str, rng: random.Random) -> str:
    """A keyword as a citizen may write it, or glued to other letters so that a boundary decides."""
    word = keyword.strip()
    stripped = word.strip("*")
    roll = rng.random()
    if roll < 0.15:
        stripped = stripped.upper()
    elif roll < 0.3:
        stripped = stripped.title()
    elif roll < 0.45:
        stripped = accented(unicodedata.normalize("NFKD", stripped).encode("ascii", "ignore").decode(), rng)
    elif roll < 0.55:
        stripped = stripped.replace(" ", rng.choice(["  ", " - ", ", ", "\n", "_", "'"]))
    glue = rng.random()
    if glue < 0.12:
        stripped = rng.choice(["x", "re", "on", "ge", "9", "_"]) + stripped
    elif glue < 0.24:
        stripped = stripped + rng.choice(["s", "en", "ung", "2", "_x", "é"])
    elif glue < 0.32:
        stripped = stripped[1:] if len(stripped) > 3 else stripped
    elif glue < 0.40:
        stripped = stripped[:-1] if len(stripped) > 3 else stripped
    punctuation = rng.choice(["", "", "", ".", ",", "!", "?", ";", ":", "(", ")", "«", "»", '"', "'", "—", "/"])
    return rng.choice(["", punctuation]) + stripped + rng.choice(["", punctuation])


def generated_texts(config: ScreeningConfig, count: int) -> list[str]:
    rng = random.Random(SEED)
    keywords = sorted({word for _, ks in keyword_sets(config) for words in ks.by_language.values() for word in words})
    texts = []
    for _ in range(count):
        parts: list[str] = []
        for _ in range(rng.randint(0, 30)):
            parts.append(vary(rng.choice(keywords), rng) if rng.random() < 0.35 else rng.choice(FILLER))
        if rng.random() < 0.2 and len(parts) > 1:  # two keywords with no space between them
            i = rng.randrange(len(parts) - 1)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        texts.append(rng.choice([" ", " ", "\n", "  "]).join(parts))
    return texts


def inputs(config: ScreeningConfig) -> list[ScreeningInput]:
    rng = random.Random(SEED + 1)
    texts = test_samples() + generated_texts(config, GENERATED)
    names = ["Marie Dubois", "", "Anonyme", "un citoyen", "ANONYMOUS", "Jan Onbekend", "Ein Bürger", "X"]
    result = []
    for index, text in enumerate(texts):
        subject = texts[(index * 7) % len(texts)][:60] if rng.random() < 0.5 else ""
        result.append(ScreeningInput(
            received=date(2026, 11, 24), sender_name=rng.choice(names),
            sender_email=rng.choice(["marie@example.be", None, ""]),
            postal_address=rng.choice([None, "Rue de la Loi 16, 1000 Bruxelles"]),
            subject=subject, text=text, language=rng.choice([None, "fr", "nl", "de", "en"])))
    return result


def as_record(item: ScreeningInput) -> dict:
    return {"sender_name": item.sender_name, "sender_email": item.sender_email, "postal_address": item.postal_address,
            "subject": item.subject, "text": item.text, "language": item.language}


def results(config: ScreeningConfig, items: list[ScreeningInput]) -> list[dict]:
    sets = keyword_sets(config)
    out = []
    for item in items:
        text = normalise(f"{item.subject}\n{item.text}")
        matched = {}
        for name, ks in sets:
            found, score = ks.matches(text)
            if score or found:
                matched[name] = [list(found), score]
        out.append({"input": as_record(item), "text": item.text, "proposal": screen(item, config).to_dict(),
                    "sets": matched})
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("record", "compare"):
        print(__doc__)
        return 2
    config = load_screening_config()
    path = Path(argv[2])
    if argv[1] == "record":
        current = results(config, inputs(config))
        path.write_text(json.dumps(current, ensure_ascii=False), encoding="utf-8")
        print(f"recorded {len(current)} screenings ({sum(len(r['sets']) for r in current)} keyword-set matches) in {path}")
        return 0
    before = json.loads(path.read_text(encoding="utf-8"))
    current = results(config, [ScreeningInput(received=date(2026, 11, 24), **b["input"]) for b in before])
    differences = [(i, b, c) for i, (b, c) in enumerate(zip(before, current)) if b != c]
    if len(before) != len(current):
        print(f"different corpus: {len(before)} recorded, {len(current)} now")
        return 1
    for index, was, now in differences[:5]:
        print(f"#{index}: {was['text'][:80]!r}\n  before: {was['proposal']} {was['sets']}\n  now:    {now['proposal']} {now['sets']}")
    print(f"{len(current)} screenings compared, {len(differences)} different")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
