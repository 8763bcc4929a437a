"""The audit trail's tables (migration `0009_audit_trail`), apart from `audit` so that `models` can import them
for `Base.metadata` without FastAPI: `audit_trail`, one row per recorded action, and `audit_head`, the chain's end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.registry.access.audit_chain import ACTOR_MAX, NUMBER_MAX, USER_AGENT_MAX
from services.registry.models import Base

HEAD_ID = 1  # the one row of `audit_head`


class AuditEntry(Base):
    __tablename__ = "audit_trail"
    __table_args__ = (
        Index("ix_audit_trail_number_sequence", "number", "sequence"),
        Index("ix_audit_trail_account_id_sequence", "account_id", "sequence"),
        Index("ix_audit_trail_actor_sequence", "actor", "sequence"),
        Index("ix_audit_trail_at", "at"),
    )

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    account_id: Mapped[int | None] = mapped_column(Integer)  # None: no account (a failed login, the CLI)
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX))
    roles: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    number: Mapped[str | None] = mapped_column(String(NUMBER_MAX))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The end of the chain (one row, id 1): the lock appends take turns on, and the anchor that shows an entry
    removed from the end."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
