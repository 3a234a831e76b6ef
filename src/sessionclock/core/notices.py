"""What the outside world must hear about a change: platform webhooks, write-backs.

A change of a session becomes zero or more notices. Each has an event id derived
from the session, its version and the notice's type, so that the same change
written twice yields the same ids, and a receiver can drop a delivery it has seen.
The storage layer writes the notices into the outbox in the change's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sessionclock.core.clock import to_iso
from sessionclock.core.machine import Event
from sessionclock.core.session import ExpiredReason, Role, Session, Status, snapshot

_EVENT_ID_NAMESPACE = uuid.UUID("5e55c10c-0000-4000-8000-0000000b0a7d")


class Target(StrEnum):
    """Who a notice is for."""

    WEBHOOK = "webhook"
    BOOKING_SOURCE = "booking_source"


class WebhookType(StrEnum):
    """The event types a platform's webhook receives."""

    LOBBY_OPENED = "lobby_opened"
    PARTICIPANT_READY = "participant_ready"
    READY = "ready"
    WARNING = "warning"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class WriteBackType(StrEnum):
    """What a booking source is told to write into its bookings."""

    BOOKING_CONFIRMED = "booking_confirmed"
    OUTCOME = "outcome"


class Outcome(StrEnum):
    """How a session ended, as written back to the booking."""

    FINISHED = "finished"
    NO_SHOW_CLIENT = "no_show_client"
    NO_SHOW_COMPANION = "no_show_companion"
    NO_SHOW_BOTH = "no_show_both"
    CANCELLED = "cancelled"


_FROM_EVENT = {
    Event.LOBBY_OPENED: WebhookType.LOBBY_OPENED,
    Event.PARTICIPANT_READY: WebhookType.PARTICIPANT_READY,
    Event.READY: WebhookType.READY,
    Event.EXPIRED: WebhookType.EXPIRED,
    Event.CANCELLED: WebhookType.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One message for the outbox."""

    target: Target
    type: str
    event_id: str
    session_id: str
    payload: dict[str, Any] = field(default_factory=dict)


def outcome_of(session: Session) -> Outcome | None:
    """How an ended session ended; None while it has not."""
    if session.status is Status.CANCELLED:
        return Outcome.CANCELLED
    if session.status is not Status.EXPIRED:
        return None
    if session.expired_reason is not ExpiredReason.NO_SHOW:
        return Outcome.FINISHED
    absent = set(session.absent)
    if absent == {Role.CLIENT, Role.COMPANION}:
        return Outcome.NO_SHOW_BOTH
    if absent == {Role.CLIENT}:
        return Outcome.NO_SHOW_CLIENT
    if absent == {Role.COMPANION}:
        return Outcome.NO_SHOW_COMPANION
    # A no-show always names who was absent; a row without it ended on its own.
    return Outcome.FINISHED


def event_id(target: Target, session_id: str, key: str) -> str:
    """The stable id of one notice: the same inputs always give the same id."""
    name = f"{target.value}:{session_id}:{key}"
    return uuid.uuid5(_EVENT_ID_NAMESPACE, name).hex


@dataclass(frozen=True, slots=True)
class NoticePolicy:
    """Which notices a node writes: webhooks with a URL, write-backs with a source."""

    webhooks: bool = False
    write_back: bool = False

    @property
    def active(self) -> bool:
        return self.webhooks or self.write_back

    def for_change(
        self,
        before: Session | None,
        after: Session,
        events: Sequence[Event],
        now_ms: int,
    ) -> list[Notice]:
        """The notices of one written change (`before` is None in bulk writes)."""
        if not events or not self.active:
            return []
        if Event.CREATED in events and after.is_terminal:
            # A booking synced from history: nobody waits to hear that it ended.
            return []

        notices: list[Notice] = []
        if self.webhooks:
            for event in events:
                kind = _FROM_EVENT.get(event)
                if kind is not None:
                    notices.append(self._webhook(kind, before, after, now_ms))
        if self.write_back:
            if Event.BOOKING_CONFIRMED in events:
                notices.append(
                    _write_back(
                        WriteBackType.BOOKING_CONFIRMED,
                        after,
                        {"booking_status": after.booking_status.value},
                    )
                )
            outcome = outcome_of(after)
            if outcome is not None and (
                Event.EXPIRED in events or Event.CANCELLED in events
            ):
                notices.append(
                    _write_back(WriteBackType.OUTCOME, after, {"outcome": outcome})
                )
        return notices

    def for_warning(
        self, session: Session, remaining_s: int, now_ms: int
    ) -> list[Notice]:
        """The notices of a warning that fired once."""
        if not self.webhooks:
            return []
        key = f"warning:{remaining_s}:{session.ends_at_ms}"
        return [
            Notice(
                Target.WEBHOOK,
                WebhookType.WARNING,
                event_id(Target.WEBHOOK, session.id, key),
                session.id,
                _envelope(
                    WebhookType.WARNING,
                    event_id(Target.WEBHOOK, session.id, key),
                    session,
                    {"remaining_s": remaining_s},
                    now_ms,
                ),
            )
        ]

    def _webhook(
        self,
        kind: WebhookType,
        before: Session | None,
        after: Session,
        now_ms: int,
    ) -> Notice:
        data: dict[str, Any] = {}
        if kind is WebhookType.PARTICIPANT_READY and before is not None:
            roles = [r for r in Role if after.is_ready(r) and not before.is_ready(r)]
            if roles:
                data = {"role": roles[0].value, "user_id": after.user_id(roles[0])}
        elif kind is WebhookType.EXPIRED:
            outcome = outcome_of(after)
            data = {
                "reason": None
                if after.expired_reason is None
                else after.expired_reason.value,
                "absent": [role.value for role in after.absent],
                "absent_user_ids": [after.user_id(role) for role in after.absent],
                "outcome": None if outcome is None else outcome.value,
            }
        identifier = event_id(Target.WEBHOOK, after.id, f"v{after.version}:{kind}")
        return Notice(
            Target.WEBHOOK,
            kind,
            identifier,
            after.id,
            _envelope(kind, identifier, after, data, now_ms),
        )


def _write_back(kind: WriteBackType, session: Session, data: dict[str, Any]) -> Notice:
    identifier = event_id(
        Target.BOOKING_SOURCE, session.id, f"v{session.version}:{kind}"
    )
    return Notice(Target.BOOKING_SOURCE, kind, identifier, session.id, data)


def _envelope(
    kind: WebhookType,
    identifier: str,
    session: Session,
    data: dict[str, Any],
    now_ms: int,
) -> dict[str, Any]:
    """The body a platform receives: what happened, to which session, and its state."""
    return {
        "id": identifier,
        "type": kind.value,
        "created_at": to_iso(now_ms),
        "session_id": session.id,
        "data": data,
        "session": snapshot(session, now_ms),
    }
