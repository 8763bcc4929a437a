"""Roles, permissions and what each person may see: the one permission table of the registry (pure, no I/O).

Checked in one place (`access.dependencies.require`) by the JSON API and the back-office pages alike.

- **staff** see and act on the files of their services (an account with no service listed: every service; files not
  yet routed to a service: everyone's, so that they get triaged), take the holding pen, enter complaints by hand;
- **dpo** alone sees data-protection complaints (their subjects are not even listed for others), and reads the audit
  trail (to answer "who looked at this citizen's file?");
- **supervisor** sees every file but data-protection ones, reassigns, reads the audit trail;
- **admin** manages accounts and settings and does not read files unless also staff (roles add up).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    STAFF = "staff"
    DPO = "dpo"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Permission(StrEnum):
    READ_FILES = "read_files"  # list and open files (within `VisibilityScope`)
    ACT_ON_FILES = "act_on_files"  # change a file: transition, screening, notes, answer the citizen...
    TAKE_FILES = "take_files"  # assign an unassigned file to oneself
    REASSIGN = "reassign"  # assign any file to anyone, bulk assignment
    READ_DATA_PROTECTION = "read_data_protection"  # see data-protection complaints at all
    ALL_SERVICES = "all_services"  # files of every service, whatever the account's service list
    HOLDING_PEN = "holding_pen"  # unattributed and held messages: attach, register, discard
    MANUAL_ENTRY = "manual_entry"  # register a complaint received by phone, at the counter, by post
    EXPORT = "export"  # CSV export of a list
    READ_AUDIT = "read_audit"  # the audit trail, per file and per person
    READ_INDICATORS = "read_indicators"  # aggregated figures of the annual report
    MANAGE_ACCOUNTS = "manage_accounts"  # accounts, roles, API tokens of others
    MANAGE_DIRECTORY = "manage_directory"  # the directory of administrations the office writes to (issue 15)
    EDIT_ANNUAL_REPORT = "edit_annual_report"  # the published annual report's introduction


_FILE_WORK = frozenset({Permission.READ_FILES, Permission.ACT_ON_FILES, Permission.TAKE_FILES, Permission.EXPORT,
                        Permission.HOLDING_PEN})

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.STAFF: _FILE_WORK | {Permission.MANUAL_ENTRY, Permission.READ_INDICATORS},
    Role.DPO: _FILE_WORK | {Permission.READ_DATA_PROTECTION, Permission.READ_AUDIT},
    Role.SUPERVISOR: _FILE_WORK | {Permission.REASSIGN, Permission.ALL_SERVICES, Permission.MANUAL_ENTRY,
                                   Permission.READ_AUDIT, Permission.READ_INDICATORS, Permission.EDIT_ANNUAL_REPORT},
    Role.ADMIN: frozenset({Permission.MANAGE_ACCOUNTS, Permission.READ_INDICATORS, Permission.EDIT_ANNUAL_REPORT,
                           Permission.MANAGE_DIRECTORY}),
}


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    granted: frozenset[Permission] = frozenset()
    for role in roles:
        granted |= ROLE_PERMISSIONS[Role(role)]
    return granted


@dataclass(frozen=True)
class VisibilityScope:
    """Which files a person may list and open, as a filter the register applies in SQL.

    `ordinary`: files that are not data-protection complaints — "all", those of `services` (plus files no service
    is set on yet), or "none". `data_protection`: whether data-protection complaints are visible at all.
    """

    ordinary: Literal["all", "services", "none"]
    services: tuple[str, ...] = ()
    data_protection: bool = False

    def admits(self, *, data_protection: bool, service: str | None) -> bool:
        if data_protection:
            return self.data_protection
        if self.ordinary == "all":
            return True
        if self.ordinary == "services":
            return service is None or service in self.services
        return False


@dataclass(frozen=True)
class Principal:
    """An authenticated person (or their API token): what every handler gets instead of a typed-in `actor`."""

    account_id: int
    email: str
    roles: frozenset[Role]
    display_name: str = ""
    services: tuple[str, ...] = ()
    language: str = "fr"
    via: Literal["session", "token"] = "session"
    session_id: int | None = None
    permissions: frozenset[Permission] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "permissions", permissions_of(self.roles))

    @property
    def actor(self) -> str:
        """Who the change log and the audit trail name: the account's email, never a value from a request."""
        return self.email

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def scope(self) -> VisibilityScope:
        if not self.can(Permission.READ_FILES):
            return VisibilityScope("none")
        ordinary_roles = self.roles & {Role.STAFF, Role.SUPERVISOR}
        if not ordinary_roles:
            ordinary: Literal["all", "services", "none"] = "none"
        elif self.can(Permission.ALL_SERVICES) or not self.services:
            ordinary = "all"
        else:
            ordinary = "services"
        return VisibilityScope(ordinary, self.services if ordinary == "services" else (),
                               data_protection=self.can(Permission.READ_DATA_PROTECTION))

    def may_see(self, *, data_protection: bool, service: str | None) -> bool:
        return self.scope.admits(data_protection=data_protection, service=service)
