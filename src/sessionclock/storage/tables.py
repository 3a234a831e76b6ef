"""The database schema. Times are UTC epoch milliseconds, exact on every backend."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
)

from sessionclock.core.session import LIVE, TERMINAL

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# The statuses as SQL literals, in one fixed order. A partial index serves a query
# only when the query's WHERE implies the index's; SQLite proves that by comparing
# the terms as written, so the queries filter with these same expressions.
LIVE_STATUSES = tuple(sorted(status.value for status in LIVE))
TERMINAL_STATUSES = tuple(sorted(status.value for status in TERMINAL))

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants a BIGINT.
_Serial = BigInteger().with_variant(Integer(), "sqlite")

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("companion_id", String(128), nullable=False),
    Column("starts_at_ms", BigInteger, nullable=False),
    Column("ends_at_ms", BigInteger, nullable=False),
    Column("lobby_lead_s", Integer, nullable=False),
    # Kept beside the lead so that "lobbies due now" is one indexed range scan.
    Column("lobby_opens_at_ms", BigInteger, nullable=False),
    Column("booking_status", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("client_ready_at_ms", BigInteger, nullable=True),
    Column("companion_ready_at_ms", BigInteger, nullable=True),
    Column("expired_reason", String(16), nullable=True),
    Column("absent", String(32), nullable=False, default=""),
    Column("version", Integer, nullable=False),
    Column("ended_at_ms", BigInteger, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)


def _status_in(statuses: tuple[str, ...]) -> ColumnElement[bool]:
    # Literals, not bound parameters: the same SQL text in the index and the query,
    # and a plan PostgreSQL may cache knows which index the query can use.
    return sessions.c.status.in_([literal_column(f"'{s}'") for s in statuses])


IS_LIVE = _status_in(LIVE_STATUSES)
IS_TERMINAL = _status_in(TERMINAL_STATUSES)


# Every index but the primary key holds only the sessions its queries look for:
# live ones, or ended ones for the purge. A session that expires or is cancelled
# leaves the live indexes instead of being written into them again, so a status
# change maintains two indexes (the key and the ended one), not six.
def _partial_index(name: str, column: str, where: ColumnElement[bool]) -> Index:
    return Index(name, sessions.c[column], postgresql_where=where, sqlite_where=where)


for _column in ("client_id", "companion_id", "ends_at_ms", "lobby_opens_at_ms"):
    _partial_index(f"ix_sessions_live_{_column}", _column, IS_LIVE)
_partial_index("ix_sessions_ended_ended_at_ms", "ended_at_ms", IS_TERMINAL)

# The runtime record of a session: one row per transition and warning. The unique
# key makes a warning fire once across nodes; cleanup purges these rows for sessions
# that ended longer than the retention ago, and keeps the session row as history.
session_events = Table(
    "session_events",
    metadata,
    Column("id", _Serial, primary_key=True, autoincrement=True),
    Column(
        "session_id",
        String(128),
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("data", Text, nullable=False, default="{}"),
    UniqueConstraint("session_id", "key"),
)

cleanup_runs = Table(
    "cleanup_runs",
    metadata,
    Column("id", _Serial, primary_key=True, autoincrement=True),
    Column("ran_at_ms", BigInteger, nullable=False, index=True),
    Column("trigger", String(16), nullable=False),
    Column("node", String(128), nullable=False),
    Column("expired", Integer, nullable=False),
    Column("purged", Integer, nullable=False),
    Column("duration_ms", Integer, nullable=False),
)

# The attendance ledger: what each node saw of each participant's call. History,
# like the session row: cleanup never purges it, so that a platform can settle a
# dispute about who was there long after the session ended.
attendance = Table(
    "attendance",
    metadata,
    Column("id", _Serial, primary_key=True, autoincrement=True),
    Column(
        "session_id",
        String(128),
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("role", String(16), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("connection_id", String(32), nullable=False),
    Column("node", String(128), nullable=False),
    Column("detail", String(200), nullable=False, default=""),
)

# Messages for the outside world (platform webhooks, booking write-backs), written in
# the transaction of the change they tell of and delivered at least once after it.
outbox = Table(
    "outbox",
    metadata,
    Column("id", _Serial, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("target", String(32), nullable=False),
    Column("type", String(32), nullable=False),
    Column("session_id", String(128), nullable=False, index=True),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at_ms", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("delivered_at_ms", BigInteger, nullable=True),
    Index("ix_outbox_status_next_attempt_at_ms", "status", "next_attempt_at_ms"),
)
