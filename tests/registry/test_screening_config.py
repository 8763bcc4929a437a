"""The screening configuration files (issue 11): pydantic models whose errors name the file, the entry and the key;
the shipped examples load; a bad file stops the registry at start with that message."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.registry.screening_config import ScreeningConfig, ScreeningConfigError
from services.registry.screening_files import EXAMPLE_DIRECTORY, EXAMPLE_RULES, load_screening_config
from shared.settings import SettingsError

GOOD_DIRECTORY = '[[ombudsman]]\nid = "us"\nname = "Nous"\nkeywords = { fr = ["stationnement"] }\n'


def folder_with(tmp_path: Path, rules: str, directory: str = GOOD_DIRECTORY) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    (folder / "screening.toml").write_text(rules, encoding="utf-8")
    (folder / "directory.toml").write_text(directory, encoding="utf-8")
    return folder


def test_the_shipped_examples_load_from_their_paths() -> None:
    # As an operator would point at a copy of them: the rules file, whose `directory` key names the directory.
    config = load_screening_config(EXAMPLE_RULES)
    assert config == load_screening_config()
    assert config.self_id == "be-federal" and config.dpo is not None and config.dpo.email == "dpo@example.org"
    assert [k.id for k in config.rules.kinds] == ["complaint", "suggestion", "compliment", "question"]
    assert len(config.themes) == 9 and len(config.services) == 6
    assert config.rules.admissibility.max_fact_age_days == 365
    assert {o.country for o in config.directory} == {"BE", "EU"}
    assert config.ombudsman("be-federal").name("nl") == "Federale Ombudsman"
    assert config.theme_label("taxation", "de") == "Steuern"


@pytest.mark.parametrize(
    ("rules", "line"),
    [
        # An entry of an array of tables is named by its id, a keyword by its language and position.
        (
            '[[themes]]\nid = "energy"\nkeywords = { fr = ["gaz", "électricité", "énergie", "***"] }',
            "themes.energy.keywords.fr[3]: empty keyword '***'",
        ),
        ('[[themes]]\nid = "energy"\nkeywords = { fr = "gaz" }', "themes.energy.keywords.fr: expected a list"),
        ('[[themes]]\nlabel = "Énergie"', "themes[0]: missing id"),
        ("[admissibility]\nmax_age = 3", "admissibility.max_age: unknown key"),
        (
            "[admissibility]\nmax_fact_age_days = -1",
            "admissibility.max_fact_age_days: input should be greater than or equal to 0",
        ),
        ('[[kinds]]\nid = "rant"', "kinds.rant.id: unknown kind 'rant'; expected one of"),
        ('self = "nobody"', "self: 'nobody' is not in the directory"),
        ("self = [", "invalid TOML"),
    ],
)
def test_an_error_names_the_file_the_entry_and_the_key(tmp_path: Path, rules: str, line: str) -> None:
    folder = folder_with(tmp_path, rules)
    with pytest.raises(ScreeningConfigError) as error:
        load_screening_config(folder)
    assert str(error.value).startswith(f"{folder / 'screening.toml'}: {line}")


def test_errors_in_the_directory_name_the_directory_file(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, 'self = "us"', GOOD_DIRECTORY + '[[ombudsman]]\nid = "them"\nwebsite = 3.5\n')
    with pytest.raises(ScreeningConfigError, match=r"directory\.toml: ombudsman\.them: id and name are required"):
        load_screening_config(folder)
    folder = folder_with(tmp_path, 'self = "us"', GOOD_DIRECTORY + GOOD_DIRECTORY)
    with pytest.raises(ScreeningConfigError, match=r"directory\.toml: ombudsman: duplicate id\(s\) us"):
        load_screening_config(folder)


def test_every_problem_is_reported_at_once() -> None:
    rules = 'redirect_limit = "three"\ncolour = "blue"\n[dpo]\nemail = ["dpo@example.org"]\n'
    with pytest.raises(ScreeningConfigError) as error:
        ScreeningConfig.from_toml(rules, "", rules_name="screening.toml")
    assert str(error.value).splitlines() == [
        "screening.toml: redirect_limit: input should be a valid integer, unable to parse string as an integer",
        "screening.toml: dpo.email: expected a text",
        "screening.toml: colour: unknown key",
    ]


def test_numbers_where_a_text_is_expected_are_taken_as_text() -> None:
    # As the hand-written parser did (`str(value)`): a year as a keyword, a number as an id.
    config = ScreeningConfig.from_toml('[[themes]]\nid = 2026\nkeywords = { fr = [2026] }', "")
    assert config.themes[0].id == "2026"
    assert config.themes[0].keywords.matches("en 2026") == (("2026",), 1)


def test_a_bad_file_stops_the_registry_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.registry import __main__ as registry_main

    folder = folder_with(tmp_path, '[[themes]]\nid = "energy"\nkeywords = { fr = ["gaz", "*"] }')
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OMBUDSDESK_SCREENING_CONFIG_PATH", str(folder))
    monkeypatch.setattr(registry_main, "run_service", lambda *args: pytest.fail("the registry started"))
    with pytest.raises(SettingsError) as stopped:
        registry_main.main()
    message = str(stopped.value)
    assert "OMBUDSDESK_SCREENING_CONFIG_PATH" in message
    assert f"{folder / 'screening.toml'}: themes.energy.keywords.fr[1]: empty keyword '*'" in message
    assert "Traceback" not in message


def test_the_example_directory_alone() -> None:
    # No rules at all: every entry kept (no `countries`), nothing of ours.
    config = ScreeningConfig.from_toml("", EXAMPLE_DIRECTORY.read_text(encoding="utf-8"))
    assert config.self_id is None and len(config.directory) > 10
