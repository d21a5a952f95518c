"""Paris calendar time: the time zone, half-open windows of days, whole months.

Every window in geo_monitor is a span of Paris calendar days with an exclusive end, so
"2021-01-01 to 2022-01-01" is the year 2021 whatever the offset of each instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from geo_monitor.errors import InvalidArgumentError

LOCAL_TZ = "Europe/Paris"
PARIS = ZoneInfo(LOCAL_TZ)


@dataclass(frozen=True)
class Window:
    """A half-open window of Paris calendar days, [start, end)."""

    start: date
    end: date

    @classmethod
    def of(cls, start: date | str, end: date | str) -> Window:
        """Parse and check a window; ``end`` is exclusive and must come after ``start``."""
        start, end = _day(start, "start"), _day(end, "end")
        if isinstance(start, datetime) or isinstance(end, datetime):
            start, end = (d.date() if isinstance(d, datetime) else d for d in (start, end))
        if end <= start:
            raise InvalidArgumentError(f"window end {end} must come after its start {start}", "end")
        return cls(start, end)

    def instant(self, day: date) -> datetime:
        """Return Paris midnight of ``day`` as an aware datetime."""
        return datetime(day.year, day.month, day.day, tzinfo=PARIS)

    def whole_months(self) -> tuple[date, date] | None:
        """Return [first, last) whole calendar months inside the window, if any."""
        first = self.start if self.start.day == 1 else _next_month(self.start)
        last = self.end.replace(day=1)
        return (first, last) if first < last else None


def _day(value: date | str, name: str) -> date:
    """Parse one window bound, naming it and its value when it is not a date."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidArgumentError(f"{name} {str(value)[:40]!r} is not a date YYYY-MM-DD ({exc})", name) from None


def _next_month(day: date) -> date:
    if (day.year, day.month) == (date.max.year, 12):  # no January 10000: nothing whole comes after
        return date.max
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def parse_month(month: str | date, today: date | None = None) -> date:
    """Return the first day of a whole, past calendar month given as ``YYYY-MM`` (or a date).

    The current month is refused (its data are not complete) and so is any future month.
    """
    if isinstance(month, datetime):
        month = month.date()
    if isinstance(month, date):
        first = month.replace(day=1)
    else:
        try:
            first = datetime.strptime(str(month).strip(), "%Y-%m").date()
        except ValueError:
            raise InvalidArgumentError(f"month {month!r}: expected YYYY-MM, e.g. 2021-03") from None
    current = (today or datetime.now(PARIS).date()).replace(day=1)
    if first >= current:
        raise InvalidArgumentError(
            f"month {first:%Y-%m} is not over yet: a release covers a whole past calendar month "
            f"(the latest possible now is {(current - timedelta(days=1)):%Y-%m})"
        )
    return first


def next_month(first: date) -> date:
    """Return the first day of the following month."""
    return (first + timedelta(days=32)).replace(day=1)
