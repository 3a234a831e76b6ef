"""The clock: the contract's ISO 8601 times, exact epoch milliseconds, manual time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionclock.core.clock import Clock, ManualClock, SystemClock, to_epoch_ms, to_iso

# 2026-12-03T18:00:00.000Z
T0_MS = 1_796_320_800_000

# 1000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the years of four digits.
FIRST_4_DIGIT_YEAR_MS = -30_610_224_000_000
LAST_MS = 253_402_300_799_999


def _reference_iso(moment: datetime) -> str:
    """The standard library's own rendering, reshaped to the contract's form."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_to_iso_epoch_is_contract_form() -> None:
    """The epoch renders with milliseconds and a trailing Z."""
    assert to_iso(0) == "1970-01-01T00:00:00.000Z"


def test_to_iso_whole_second_keeps_three_zero_digits() -> None:
    """A time on a whole second still shows `.000` milliseconds."""
    assert to_iso(T0_MS) == "2026-12-03T18:00:00.000Z"


@pytest.mark.parametrize(
    ("offset_ms", "expected"),
    [
        (1, "2026-12-03T18:00:00.001Z"),
        (114, "2026-12-03T18:00:00.114Z"),
        (999, "2026-12-03T18:00:00.999Z"),
        (1_000, "2026-12-03T18:00:01.000Z"),
        (3_723_020, "2026-12-03T19:02:03.020Z"),
        (6 * 3_600_000, "2026-12-04T00:00:00.000Z"),
    ],
)
def test_to_iso_milliseconds_exact(offset_ms: int, expected: str) -> None:
    """Every millisecond is shown exactly, zero-padded to three digits."""
    assert to_iso(T0_MS + offset_ms) == expected


def test_to_iso_before_epoch_counts_back() -> None:
    """One millisecond before the epoch is the last millisecond of 1969."""
    assert to_iso(-1) == "1969-12-31T23:59:59.999Z"


def test_to_iso_year_before_1000_pads_four_digits() -> None:
    """A year below 1000 is written with four digits, as ISO 8601 requires."""
    assert to_iso(FIRST_4_DIGIT_YEAR_MS - 1) == "0999-12-31T23:59:59.999Z"


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=FIRST_4_DIGIT_YEAR_MS, max_value=LAST_MS))
def test_to_iso_any_millisecond_matches_reference(epoch_ms: int) -> None:
    """Any millisecond renders as the standard library renders the same instant."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)

    assert to_iso(epoch_ms) == _reference_iso(moment)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=FIRST_4_DIGIT_YEAR_MS, max_value=LAST_MS))
def test_to_epoch_ms_parsed_iso_round_trips(epoch_ms: int) -> None:
    """Parsing what to_iso wrote gives back the same epoch milliseconds."""
    assert to_epoch_ms(datetime.fromisoformat(to_iso(epoch_ms))) == epoch_ms


def test_to_epoch_ms_utc_datetime_exact() -> None:
    """An aware UTC datetime converts to its exact epoch milliseconds."""
    moment = datetime(2026, 12, 3, 18, 0, 0, 114_000, tzinfo=UTC)

    assert to_epoch_ms(moment) == T0_MS + 114


def test_to_epoch_ms_other_zone_same_instant() -> None:
    """A datetime in another zone converts to the same instant as its UTC twin."""
    madrid_winter = timezone(timedelta(hours=1))
    moment = datetime(2026, 12, 3, 19, 0, tzinfo=madrid_winter)

    assert to_epoch_ms(moment) == T0_MS


def test_to_epoch_ms_sub_millisecond_dropped() -> None:
    """Microseconds below a millisecond are dropped, never rounded up."""
    moment = datetime(2026, 12, 3, 18, 0, 0, 114_999, tzinfo=UTC)

    assert to_epoch_ms(moment) == T0_MS + 114


def test_to_epoch_ms_before_epoch_floors() -> None:
    """Before the epoch, a sub-millisecond part floors toward the earlier instant."""
    moment = datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC)

    assert to_epoch_ms(moment) == -1
    assert to_iso(to_epoch_ms(moment)) == "1969-12-31T23:59:59.999Z"


def test_to_epoch_ms_naive_datetime_rejected() -> None:
    """A datetime without a time zone is refused: it names no single instant."""
    with pytest.raises(ValueError, match="time zone"):
        to_epoch_ms(datetime(2026, 12, 3, 18, 0))


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        # Hypothesis takes naive bounds and attaches the zone itself.
        min_value=datetime(1000, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.just(UTC),
    )
)
def test_to_iso_aware_datetime_round_trips(moment: datetime) -> None:
    """A UTC datetime survives to_epoch_ms and to_iso to the millisecond."""
    truncated = moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    assert to_iso(to_epoch_ms(moment)) == _reference_iso(truncated)


def test_manual_clock_start_reads_given_time() -> None:
    """A manual clock tells the time it was started at until it is moved."""
    clock = ManualClock(T0_MS)

    assert clock.now_ms() == T0_MS
    assert clock.now_ms() == T0_MS


def test_manual_clock_advance_moves_forward() -> None:
    """Advancing moves the clock by exactly that many milliseconds and returns it."""
    clock = ManualClock(T0_MS)

    assert clock.advance(1_500) == T0_MS + 1_500
    assert clock.advance(0) == T0_MS + 1_500
    assert clock.now_ms() == T0_MS + 1_500


def test_manual_clock_advance_negative_rejected() -> None:
    """Advancing by a negative amount is refused and leaves the clock where it was."""
    clock = ManualClock(T0_MS)

    with pytest.raises(ValueError, match="-1 ms"):
        clock.advance(-1)
    assert clock.now_ms() == T0_MS


def test_manual_clock_set_jumps_anywhere() -> None:
    """Setting the clock puts it at that time, earlier or later."""
    clock = ManualClock(T0_MS)

    clock.set(T0_MS + 60_000)
    assert clock.now_ms() == T0_MS + 60_000
    clock.set(T0_MS - 60_000)
    assert clock.now_ms() == T0_MS - 60_000


def test_system_clock_reads_wall_time() -> None:
    """The system clock tells the machine's wall time in whole milliseconds."""
    clock: Clock = SystemClock()

    before_ms = time.time_ns() // 1_000_000
    now_ms = clock.now_ms()
    after_ms = time.time_ns() // 1_000_000

    assert isinstance(now_ms, int)
    assert before_ms <= now_ms <= after_ms
