"""Reads the screening configuration files at start-up (the only I/O around the pure `screening` module).

`load_screening_config(path)`:
- `None` -> the shipped examples (`screening.example.toml` + `directory.example.toml` next to this module);
- a directory -> its `screening.toml` and `directory.toml`;
- a file -> that rules file; its `directory` key names the directory file, relative to the rules file (default: the
  shipped `directory.example.toml`).
Errors (missing file, bad TOML, unknown key) raise `ScreeningConfigError` naming the file, so the service refuses to
start with a clear message instead of screening with half a configuration.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from services.registry.screening import ScreeningConfig, ScreeningConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
EXAMPLE_RULES = PACKAGE_DIR / "screening.example.toml"
EXAMPLE_DIRECTORY = PACKAGE_DIR / "directory.example.toml"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScreeningConfigError(f"cannot read screening configuration {path}: {exc.strerror}") from exc


def load_screening_config(path: Path | None = None) -> ScreeningConfig:
    if path is None:
        rules_path = EXAMPLE_RULES
    elif path.is_dir():
        rules_path = path / "screening.toml"
    else:
        rules_path = path
    rules_text = _read(rules_path)
    try:
        rules = tomllib.loads(rules_text)
    except tomllib.TOMLDecodeError as exc:
        raise ScreeningConfigError(f"{rules_path}: invalid TOML: {exc}") from exc
    if path is not None and path.is_dir():
        directory_path = path / "directory.toml"
    elif rules.get("directory"):
        directory_path = rules_path.parent / str(rules["directory"])
    else:
        directory_path = EXAMPLE_DIRECTORY
    try:
        return ScreeningConfig.from_toml(rules_text, _read(directory_path))
    except ScreeningConfigError as exc:
        raise ScreeningConfigError(f"{rules_path} / {directory_path.name}: {exc}") from exc
