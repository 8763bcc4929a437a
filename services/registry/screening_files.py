"""Reads the screening configuration files at start-up (the only I/O around the pure `screening_config`
and `screening` modules).

`load_screening_config(path)`:
- `None` -> the shipped examples (`screening.example.toml` + `directory.example.toml` next to this module);
- a directory -> its `screening.toml` and `directory.toml`;
- a file -> that rules file; its `directory` key names the directory file, relative to the rules file (default: the
  shipped `directory.example.toml`).
Errors (missing file, bad TOML, unknown key, bad value) raise `ScreeningConfigError`, one line per problem starting
with the file's path, then the entry and the key (`/etc/ombudsdesk/screening.toml: themes.taxation.keywords.fr[3]:
empty keyword '***'`), so the service refuses to start with a clear message instead of screening with half a
configuration.
"""

from __future__ import annotations

from pathlib import Path

from services.registry.screening_config import Directory, ScreeningConfig, ScreeningConfigError, ScreeningRules

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
    rules = ScreeningRules.from_toml(_read(rules_path), str(rules_path))
    if path is not None and path.is_dir():
        directory_path = path / "directory.toml"
    elif rules.directory:
        directory_path = rules_path.parent / rules.directory
    else:
        directory_path = EXAMPLE_DIRECTORY
    directory = Directory.from_toml(_read(directory_path), str(directory_path))
    return ScreeningConfig.combine(rules, directory, rules_name=str(rules_path), directory_name=str(directory_path))
