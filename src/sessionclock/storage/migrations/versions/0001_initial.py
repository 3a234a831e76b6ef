"""sessions, their events and cleanup runs

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cleanup_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ran_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("node", sa.String(length=128), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.Column("purged", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cleanup_runs")),
    )
    with op.batch_alter_table("cleanup_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cleanup_runs_ran_at_ms"), ["ran_at_ms"], unique=False
        )

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("companion_id", sa.String(length=128), nullable=False),
        sa.Column("starts_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("ends_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("lobby_lead_s", sa.Integer(), nullable=False),
        sa.Column("lobby_opens_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("booking_status", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("client_ready_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("companion_ready_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("expired_reason", sa.String(length=16), nullable=True),
        sa.Column("absent", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ended_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sessions_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sessions_companion_id"), ["companion_id"], unique=False
        )
        batch_op.create_index(
            "ix_sessions_status_ended_at_ms", ["status", "ended_at_ms"], unique=False
        )
        batch_op.create_index(
            "ix_sessions_status_ends_at_ms", ["status", "ends_at_ms"], unique=False
        )
        batch_op.create_index(
            "ix_sessions_status_lobby_opens_at_ms",
            ["status", "lobby_opens_at_ms"],
            unique=False,
        )

    op.create_table(
        "session_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_session_events_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_events")),
        sa.UniqueConstraint(
            "session_id", "key", name=op.f("uq_session_events_session_id_key")
        ),
    )


def downgrade() -> None:
    op.drop_table("session_events")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_status_lobby_opens_at_ms")
        batch_op.drop_index("ix_sessions_status_ends_at_ms")
        batch_op.drop_index("ix_sessions_status_ended_at_ms")
        batch_op.drop_index(batch_op.f("ix_sessions_companion_id"))
        batch_op.drop_index(batch_op.f("ix_sessions_client_id"))

    op.drop_table("sessions")
    with op.batch_alter_table("cleanup_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cleanup_runs_ran_at_ms"))

    op.drop_table("cleanup_runs")
