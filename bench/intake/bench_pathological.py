"""Parsing time of pathological subjects and bodies, next to a normal mail of the same size parsed in the same run.

    .venv/bin/python bench/intake/bench_pathological.py [--sizes 10000 20000 40000 80000] [--repeat 3]

Each case is built to hit one pattern that used to backtrack, or a loop that used to rescan (issue 10): an
out-of-office subject "en congé " * N (was `en congé.*jusqu`), a staff forward whose body is a line of dashes (the
forwarded-block marker), a quoted Date of letters (the "Month day, year" pattern), "[mailto:" repeated (Outlook's
bracketed address), a mailer-daemon bounce of blank lines (the Message-ID line pattern, and flufl.bounce), bounce
lines after a flufl.bounce start sentence, HTML with a huge character reference, and plain long runs. For each
input size the best of `--repeat` runs of `understand()` is printed, with the ratio to a normal complaint of the
same size (prose lines) and to a typical 2 KB complaint, both parsed in the same run; the last column is the
growth from the smallest to the largest size, which is about the size ratio when the time is linear (and its
square when it is quadratic). tests/intake/test_pathological_input.py asserts a bound on the same ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.intake.message.understanding import ParseContext, understand  # noqa: E402

STAFF = ParseContext(staff_addresses=frozenset({"accueil@commune.example.be"}),
                     staff_domains=frozenset({"ombudsdesk.localhost"}))
CITIZEN = "Jeanne Dupont <jeanne@example.org>"
STAFF_MEMBER = "Marie Accueil <accueil@commune.example.be>"
DAEMON = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"


def mail(subject: str, body: str, sender: str = CITIZEN, content_type: str = "text/plain") -> bytes:
    """A raw mail as the wire carries it (8-bit body, lines as given: no re-wrapping by a library)."""
    head = (f"From: {sender}\r\nTo: plaintes@ombudsdesk.localhost\r\nSubject: {subject}\r\n"
            f"Date: Tue, 24 Nov 2026 09:15:00 +0100\r\nMessage-ID: <bench.1@example.org>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    return head.encode() + body.replace("\n", "\r\n").encode()


_PROSE = ("Madame, Monsieur, je vous écris au sujet de la facture d'eau du 15 octobre, qui me paraît trop élevée.\n"
          "J'ai contacté le service à trois reprises sans obtenir de réponse, et je vous prie d'examiner ma plainte.\n")


def normal_mail(size: int) -> bytes:
    """A complaint of about `size` characters of ordinary prose."""
    return mail("Plainte au sujet de ma facture d'eau", (_PROSE * (size // len(_PROSE) + 1))[:size])


def _repeat(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit))


# name -> (builder of a raw mail of about `size` characters, parse context)
CASES: dict[str, tuple[Callable[[int], bytes], ParseContext]] = {
    "subject 'en congé ' * N": (lambda n: mail(_repeat("en congé ", n), "Texte."), ParseContext()),
    "subject of one word": (lambda n: mail("a" * n, "Texte."), ParseContext()),
    "subject 'absent ' * N": (lambda n: mail(_repeat("absent ", n), "Texte."), ParseContext()),
    "forward: line of dashes": (lambda n: mail("TR: plainte", "-" * n + "x\n", STAFF_MEMBER), STAFF),
    "forward: Date of letters": (
        lambda n: mail("TR: plainte", "-----Original Message-----\nFrom: a@example.org\nDate: 1 " + "a" * n
                       + "\n\nTexte.", STAFF_MEMBER), STAFF),
    "forward: '[mailto:' * N": (
        lambda n: mail("TR: plainte", "-----Original Message-----\nFrom: " + _repeat("[mailto:", n) + "\n\nTexte.",
                       STAFF_MEMBER), STAFF),
    "forward: 'From: a\\nSent: b' * N": (lambda n: mail("TR: plainte", _repeat("From: a\nSent: b\n", n),
                                                         STAFF_MEMBER), STAFF),
    "bounce: blank lines": (lambda n: mail("Undelivered Mail", "failed\n" + "\n" * n + "x", DAEMON), ParseContext()),
    "bounce: long lines after a start": (
        lambda n: mail("Undelivered Mail", "A message that you sent could not be delivered\n---\n"
                       + _repeat("a" * 1999 + "\n", n), DAEMON), ParseContext()),
    "body: '>' * N": (lambda n: mail("Plainte", ">" * n), ParseContext()),
    "html: '&#' and digits": (lambda n: mail("Plainte", "<p>&#" + "1" * n + ";</p>", content_type="text/html"),
                              ParseContext()),
    "html: unclosed href": (lambda n: mail("Plainte", '<a href="' + "x" * n, content_type="text/html"),
                            ParseContext()),
}


def best_time(raw: bytes, context: ParseContext, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        understand(raw, context)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 40_000, 80_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    typical = best_time(normal_mail(2_000), ParseContext(), args.repeat * 3)
    normal = {size: best_time(normal_mail(size), ParseContext(), args.repeat) for size in sizes}
    print(f"typical 2 KB complaint: {typical * 1000:.2f} ms")
    print(f"{'case':36} " + " ".join(f"{size // 1000:>5} KB" for size in sizes)
          + f"  {'x normal':>9} {'x 2 KB':>7}  growth {sizes[0] // 1000}->{sizes[-1] // 1000} KB")
    print(f"{'normal complaint, same size':36} " + " ".join(f"{normal[size] * 1000:6.2f}ms" for size in sizes)
          + f"  {1.0:9.1f} {normal[sizes[-1]] / typical:7.1f}  {normal[sizes[-1]] / normal[sizes[0]]:5.1f}x")
    for name, (build, context) in CASES.items():
        times = [best_time(build(size), context, args.repeat) for size in sizes]
        print(f"{name:36} " + " ".join(f"{t * 1000:6.2f}ms" for t in times)
              + f"  {times[-1] / normal[sizes[-1]]:9.1f} {times[-1] / typical:7.1f}  {times[-1] / times[0]:5.1f}x",
              flush=True)
    print(f"(size ratio {sizes[-1] / sizes[0]:.0f}x: linear growth shows about that, quadratic its square)")


if __name__ == "__main__":
    main()
