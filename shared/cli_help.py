"""Command-line help as staff read it, for every `ombudsdesk` command.

Typer 0.29 decorates every parameter with its Python type (`<str>`, `<bool>`, even beside `--help`) and wraps
required arguments in braces (`{number}`). Staff read click's conventions instead: NUMBER, [OPTIONAL], a metavar per
option, the allowed values spelled out. `staff_app` and `StaffCommand` give every command that help.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class StaffArgument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # its metavar (NUMBER, EMAIL...) and its help say what it is

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        return [self.display_name_raw if self.required else f"[{self.display_name_raw}]"]


def click_style(params: list[Any]) -> None:
    """Give each parameter a plain metavar (NAME, nothing for a flag) instead of its Python type."""
    for param in params:
        name = str(param.name).upper()
        if type(param) is TyperArgument:
            # Typer builds its own argument objects; only the way they print changes (`StaffArgument`).
            param.__class__ = StaffArgument
            # An argument taking several values says so, as click does (LETTER_IDS...).
            param.metavar = param.metavar or (name if param.nargs == 1 else f"{name}...")
        elif isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else name


class StaffCommand(TyperCommand):
    """A command with click-style help (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        click_style(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        return plain_help_option(super().get_help_option(ctx))


class StaffGroup(TyperGroup):
    """A group with click-style help: its own options too (the top level's shell-completion flags, which typer adds
    after the group is built, hence at `get_params` rather than in `__init__`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        click_style(params)
        return params

    def get_help_option(self, ctx: Any) -> Any:
        return plain_help_option(super().get_help_option(ctx))


def plain_help_option(option: Any) -> Any:
    if option is not None:
        option.metavar = ""
    return option


def one_of(values: type[Enum]) -> str:
    """The allowed values, in the help column (rich reads "[...]" there as markup, so no brackets)."""
    return "one of: " + ", ".join(str(v.value) for v in values)


def staff_app(**kwargs: Any) -> typer.Typer:
    """A command group whose help follows click's conventions; add its commands with `cls=StaffCommand`."""
    return typer.Typer(cls=StaffGroup, **kwargs)
