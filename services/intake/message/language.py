"""Language of a text among FR, NL, DE and EN, with a confidence (pure).

A small stop-word model is enough to choose the language of an acknowledgment and needs no data file: function
words are frequent, short texts still contain several, and the four languages share few of them. Confidence is the
share of the winning language among the recognised words, scaled down for texts with very few of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_STOP_WORDS = {
    "fr": "le la les un une des du de et est sont pas que qui dans pour sur avec je vous nous il elle ce cette mon "
          "ma mes votre vos au aux mais ou donc car ne plus très été être avoir fait depuis madame monsieur bonjour "
          "merci cordialement suis ai avez leur lors sans aussi mais",
    "nl": "de het een en van ik je u we wij is zijn niet dat die dit wat met voor op aan naar bij ook maar nog "
          "om te er mijn uw hun heb heeft werd wordt geen al door over geachte mevrouw meneer dank groeten graag "
          "jullie zou kunt",
    "de": "der die das und ist nicht ein eine einen dem den des zu mit auf für von ich sie wir er es ihr mein "
          "ihre ihren wurde wird sind haben habe auch aber noch nach bei aus wie sehr geehrte damen herren "
          "freundlichen grüßen danke bitte kein keine",
    "en": "the and is are not a an of to in for on with i you we he she it my your our their was were be been "
          "have has had this that which but or at by from dear sir madam regards thank please would could",
}
_WORDS = {language: frozenset(words.split()) for language, words in _STOP_WORDS.items()}
# One lookup per word: the languages whose stop list holds it.
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {}
for _language, _vocabulary in _WORDS.items():
    for _word in _vocabulary:
        _LANGUAGES_OF[_word] = (*_LANGUAGES_OF.get(_word, ()), _language)
# Word characters, digits included: no stop word holds a digit, so the counts are those of letters-only words, and
# `\w+` is three times faster than `[^\W\d_]+` on a typical mail (docs/benchmarks-intake.md).
_TOKEN = re.compile(r"\w+")
# Words shared by two languages ("de", "die", "is", "en"...) count for both; the winner still needs a margin.
MIN_HITS = 3
SCAN_CHARS = 20_000
MAX_WORDS = 1_000  # plenty to tell four languages apart


def detect_language(text: str) -> tuple[str | None, float]:
    words = _TOKEN.findall(unicodedata.normalize("NFC", text[:SCAN_CHARS]).casefold())
    scores = {language: 0 for language in _WORDS}
    for word, count in Counter(words[:MAX_WORDS]).items():
        for language in _LANGUAGES_OF.get(word, ()):
            scores[language] += count
    total = sum(scores.values())
    best = max(scores, key=lambda language: scores[language])
    if scores[best] < MIN_HITS:
        return None, 0.0
    share = scores[best] / total
    certainty = min(scores[best] / 10, 1.0)
    return best, round(share * certainty, 3)
