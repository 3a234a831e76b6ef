"""Names and default timings that more than one module relies on, in one place."""

from __future__ import annotations

# Participant tokens. These are claim values, not secrets.
TOKEN_ALGORITHM = "HS256"  # noqa: S105
TOKEN_ISSUER = "sessionclock"  # noqa: S105
TOKEN_AUDIENCE = "sessionclock:participant"  # noqa: S105
TOKEN_DEFAULT_TTL_S = 86_400
TOKEN_MAX_TTL_S = 30 * 86_400
# Participant tokens remembered as verified, so that a request checks only expiry.
VERIFIED_TOKENS = 10_000

# Validation bounds for bookings.
SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
MAX_DURATION_S = 24 * 3600
MAX_LOBBY_LEAD_S = 24 * 3600
MAX_BOOKING_DISTANCE_S = 2 * 366 * 86_400

# Cleanup expires overdue sessions this many at a time, one statement each, so that
# no statement holds the row locks of every overdue session at once.
CLEANUP_CHUNK_SESSIONS = 10_000

# How many sessions a node keeps the last known version of, for ready marks that
# decide from it and write in one round trip (about 1 KiB each).
KNOWN_SESSIONS = 20_000

# How often a change may lose its compare-and-set race before the request gives up.
MAX_CHANGE_ATTEMPTS = 64

# Redis key prefix shared by every node: rate limits, fan-out and presence.
REDIS_PREFIX = "sessionclock"

# Where development secrets are kept so that links survive a restart.
DEV_SECRETS_FILE = ".sessionclock-secrets.json"
DEFAULT_SQLITE_FILE = "sessionclock.db"

# Prometheus metric names.
METRIC_SESSIONS = "sessionclock_sessions"
METRIC_TRANSITIONS = "sessionclock_transitions_total"
METRIC_EXPIRY_LATENESS = "sessionclock_expiry_lateness_seconds"
METRIC_REQUEST_LATENCY = "sessionclock_http_request_duration_seconds"
METRIC_CLEANUP_RUNS = "sessionclock_cleanup_runs_total"
METRIC_CLEANUP_ROWS = "sessionclock_cleanup_rows_total"
METRIC_SCHEDULER_SESSIONS = "sessionclock_scheduler_sessions"
METRIC_CONNECTIONS = "sessionclock_connections"
METRIC_CALL_EVENTS = "sessionclock_call_events_total"
METRIC_OUTBOX = "sessionclock_outbox_deliveries"

# Redis names: one pub/sub channel for every session's news, one hash per session
# for presence, a key per rate limit.
REDIS_EVENTS_CHANNEL = f"{REDIS_PREFIX}:events"
REDIS_PRESENCE_PREFIX = f"{REDIS_PREFIX}:presence:"

# Real time: what one connection may send, and how long presence lasts unrefreshed.
WS_MAX_MESSAGE_BYTES = 64 * 1024
WS_MESSAGES_PER_S = 10
# A call's negotiation sends a description and a burst of ICE candidates at once.
WS_MESSAGE_BURST = 60
WS_MAX_BAD_FRAMES = 10
WS_OUTBOX_FRAMES = 64
PRESENCE_REFRESH_S = 10.0
PRESENCE_TTL_S = 30.0
SSE_KEEPALIVE_S = 15.0

# How a client samples the server's clock (`core.clock_sync`; sessionclock.js uses the
# same numbers): a burst of `time` exchanges when it connects, a shorter one every
# minute, the most recent exchanges kept. An older exchange's bounds are widened by
# the drift its age allows between the two clocks: 50 parts per million, what the
# quartz oscillator of a computer or phone is commonly specified to keep within.
CLOCK_CONNECT_EXCHANGES = 20
CLOCK_RESYNC_EXCHANGES = 10
CLOCK_RESYNC_INTERVAL_S = 60
CLOCK_KEPT_EXCHANGES = 30
CLOCK_DRIFT_PPM = 50.0

# Pages: the cookie a sign-in link trades its token for, and the chosen language.
PAGE_TOKEN_COOKIE = "sessionclock_token"  # noqa: S105
LANGUAGE_COOKIE = "sessionclock_lang"
LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"

# What a browser may report to the server's log, and how often.
CLIENT_LOG_MAX_CHARS = 2000
CLIENT_LOG_RATE = "30/minute"

# The most session ids one summary line of a bulk write names (`scheduler.swept`,
# `cleanup.ran`); the counts are always whole.
BULK_LOG_IDS = 100

# How a node paces Python's garbage collector (see `collector`): a young pass that
# freezes its survivors every 10 s, and a full pass every hour.
GC_FREEZE_INTERVAL_S = 10.0
GC_FULL_EVERY = 360

# Redis hash where each node reports its open connections for the debug page.
REDIS_NODES_KEY = f"{REDIS_PREFIX}:nodes"
# One node's connections to Redis, the pub/sub one included; a command that finds
# them all busy waits up to REDIS_POOL_WAIT_S for one.
REDIS_MAX_CONNECTIONS = 64
REDIS_POOL_WAIT_S = 5.0

# Outgoing webhooks: the headers each delivery carries. The signature header holds
# `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
WEBHOOK_SIGNATURE_HEADER = "Sessionclock-Signature"
WEBHOOK_EVENT_ID_HEADER = "Sessionclock-Event-Id"
WEBHOOK_EVENT_TYPE_HEADER = "Sessionclock-Event-Type"
WEBHOOK_TOLERANCE_S = 300

# The outbox: how many deliveries one pass takes, and how long a claim holds.
OUTBOX_BATCH = 50
OUTBOX_CLAIM_MS = 60_000

# Strapi: the header its webhooks carry the shared secret in, the largest page a
# sync asks for, how long a checked users-permissions JWT is trusted, how many
# are remembered.
STRAPI_WEBHOOK_SECRET_HEADER = "X-Sessionclock-Secret"  # noqa: S105
STRAPI_MAX_PAGE_SIZE = 100
STRAPI_MAX_PAGES = 200
STRAPI_JWT_CACHE_ENTRIES = 10_000
STRAPI_SYNC_OVERLAP_MS = 5_000
