"""Orientation (issue 17): who is competent for a problem a citizen describes in a few words or by a theme, asked by
intake's public orientation page before the complaint form — a core NATS request/reply
(`streams.SUBJECT_ORIENTATION`, queue group: one registry of several answers), nothing stored, nothing published,
nothing logged of the words.

`orient(config, description, theme)` is pure and reads the same screening configuration as `screening.screen` (the
ombudsman directory and the keyword rules), with the same matching (`ScreeningConfig.matcher`):
- our evidence is the score of our own directory entry (`self`), plus one when the citizen picked one of our themes
  (the themes are this service's own taxonomy) and one when the words name one of our services;
- the other entries score as in screening; those scoring strictly more than we do are proposed, best first, at most
  `redirect_limit` of them;
- `competent`: some evidence for us and nobody better; `unclear`: evidence for us but somebody better (the citizen
  chooses, the form stays open); `other`: nothing for us and somebody else (with no `self` entry we cannot rule
  ourselves out: `unclear`); `unknown`: nobody at all.
A picked theme is read as its keywords (every language, `*` dropped), each scanned on its own so that two keywords
side by side never make a phrase neither is. The description is cut at `OrientationRequest.MAX_DESCRIPTION`
characters before any matching, whatever the sender claims.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from faststream.nats import NatsBroker, NatsRouter

from services.registry.public.answering import always_answering
from services.registry.screening_config import Category, KeywordKey, Ombudsman, ScreeningConfig, normalise
from shared import streams
from shared.events import Orientation, OrientationContact, OrientationOutcome, OrientationRequest, OrientationTheme

log = structlog.get_logger(__name__)

# What a picked theme or a recognised service of ours weighs, as one keyword of our own directory entry.
OWN_CATEGORY_WEIGHT = 1


def contact(entry: Ombudsman) -> OrientationContact:
    return OrientationContact(id=entry.id, names=dict(entry.names), website=entry.website, email=entry.email,
                              phone=entry.phone, address=entry.address, verified=entry.verified)


def _best(categories: Iterable[Category], found: set[KeywordKey]) -> Category | None:
    scored = [(score, category) for category in categories if (score := category.keywords.found_in(found)[1])]
    return min(scored, key=lambda item: (-item[0], item[1].id))[1] if scored else None


def _scan(config: ScreeningConfig, pieces: Iterable[str]) -> set[KeywordKey]:
    found: set[KeywordKey] = set()
    for piece in pieces:
        found |= config.matcher.scan(normalise(piece))
    return found


def orient(config: ScreeningConfig, description: str, theme_id: str | None = None) -> Orientation:
    """The orientation of a description and/or a theme of our rules (an unknown theme id is ignored)."""
    theme = next((t for t in config.themes if t.id == theme_id), None)
    pieces = [description[: OrientationRequest.MAX_DESCRIPTION]]
    if theme is not None:
        pieces += [word.strip("*") for words in theme.keywords.by_language.values() for word in words]
    found = _scan(config, pieces)
    service = _best(config.services, found)
    own_score = OWN_CATEGORY_WEIGHT * ((theme is not None) + (service is not None))
    others: list[tuple[int, Ombudsman]] = []
    for entry in config.directory:
        score = entry.keywords.found_in(found)[1]
        if entry.id == config.self_id:
            own_score += score
        elif score:
            others.append((score, entry))
    others.sort(key=lambda item: (-item[0], item[1].id))
    better = [entry for score, entry in others if score > own_score][: config.redirect_limit]
    if own_score and not better:
        outcome = OrientationOutcome.COMPETENT
    elif better:
        outcome = OrientationOutcome.OTHER if not own_score and config.self_id else OrientationOutcome.UNCLEAR
    else:
        outcome = OrientationOutcome.UNKNOWN
    recognised = theme or _best(config.themes, found)
    return Orientation(
        outcome=outcome,
        ombudsmen=tuple(contact(entry) for entry in better),
        theme=recognised.id if recognised else None,
        service=dict(service.labels) if service else {},
        themes=tuple(OrientationTheme(id=t.id, labels=dict(t.labels)) for t in config.themes),
    )


def answer_orientations(broker: NatsBroker, config: ScreeningConfig) -> None:
    """Declare the orientation's subscriber on `broker` (no I/O: it starts with the broker)."""
    router = NatsRouter(middlewares=(always_answering(OrientationRequest.MAX_BYTES, Orientation, "orientation"),))

    @router.subscriber(streams.SUBJECT_ORIENTATION, queue=streams.QUEUE_REGISTRY_ORIENTATION,
                       title=f"{streams.SUBJECT_ORIENTATION}:{streams.QUEUE_REGISTRY_ORIENTATION}",
                       description="Core NATS request/reply (no stream): who is competent for a problem described "
                                   "in a few words or by a theme, before the public complaint form.")
    async def orientation(request: OrientationRequest) -> Orientation:
        """The outcome, the other ombudsmen proposed and what was recognised; the words are neither kept nor logged."""
        answer = orient(config, request.description, request.theme)
        log.info("orientation.answered", outcome=answer.outcome.value, proposed=[c.id for c in answer.ombudsmen])
        return answer

    broker.include_router(router)
