"""Where the time goes, in text: the functions with the most samples in a py-spy speedscope profile.

    .venv/bin/python bench/profile_summary.py PROFILE.speedscope.json [--top 25] [--match services/]

Profiles come from `bench/e2e/bench_e2e.py --profile FOLDER` (py-spy sampling each service during the burst). For
each function: the share of samples in which it is on the stack (inclusive) and at the top (self). `--match` keeps
functions whose file contains the text (e.g. `services/` for our own code).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def summarise(path: Path, top: int, match: str | None) -> None:
    document = json.loads(path.read_text())
    frames = document["shared"]["frames"]
    inclusive: Counter[int] = Counter()
    own: Counter[int] = Counter()
    total = 0
    for profile in document["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"]):
            # Idle threads waiting in the event loop's selector are not work.
            if stack and "select" in frames[stack[-1]]["name"]:
                continue
            total += weight
            for frame in set(stack):
                inclusive[frame] += weight
            if stack:
                own[stack[-1]] += weight
    print(f"{path.name}: {total} busy samples")
    shown = 0
    for frame, weight in inclusive.most_common():
        info = frames[frame]
        where = f"{info.get('file', '?')}:{info.get('line', '?')}"
        if match and match not in where:
            continue
        print(f"  {weight / total:6.1%} incl  {own[frame] / total:6.1%} self  {info['name']}  ({where})")
        shown += 1
        if shown >= top:
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match")
    args = parser.parse_args()
    for path in args.profiles:
        summarise(path, args.top, args.match)


if __name__ == "__main__":
    main()
