"""sessions: partial indexes, live sessions only (ended ones for the purge)

A session that expires or is cancelled leaves the live indexes instead of being
written into them again: a status change maintains two indexes, not six.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# As `storage/tables.py` writes them; the queries repeat the same text.
_LIVE = "status IN ('ready', 'scheduled', 'waiting')"
_TERMINAL = "status IN ('cancelled', 'expired')"

_PARTIAL = (
    ("ix_sessions_live_client_id", "client_id", _LIVE),
    ("ix_sessions_live_companion_id", "companion_id", _LIVE),
    ("ix_sessions_live_ends_at_ms", "ends_at_ms", _LIVE),
    ("ix_sessions_live_lobby_opens_at_ms", "lobby_opens_at_ms", _LIVE),
    ("ix_sessions_ended_ended_at_ms", "ended_at_ms", _TERMINAL),
)
_FULL = (
    ("ix_sessions_client_id", ["client_id"]),
    ("ix_sessions_companion_id", ["companion_id"]),
    ("ix_sessions_status_ends_at_ms", ["status", "ends_at_ms"]),
    ("ix_sessions_status_lobby_opens_at_ms", ["status", "lobby_opens_at_ms"]),
    ("ix_sessions_status_ended_at_ms", ["status", "ended_at_ms"]),
)


def upgrade() -> None:
    for name, column, where in _PARTIAL:
        op.create_index(
            name,
            "sessions",
            [column],
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )
    for name, _columns in _FULL:
        op.drop_index(name, table_name="sessions")


def downgrade() -> None:
    for name, columns in _FULL:
        op.create_index(name, "sessions", columns)
    for name, _column, _where in _PARTIAL:
        op.drop_index(name, table_name="sessions")
