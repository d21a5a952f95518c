"""Weekly coverage schedules of zones: checked entries, minute masks, hours and gaps.

A schedule is a list of ``{"day": 0-6, "start": "HH:MM", "end": "HH:MM", "team": name}``,
Monday = 0. ``end`` may be ``24:00``; an ``end`` at or before ``start`` means the range runs
past midnight (``22:00``-``02:00`` on Sunday ends at 02:00 on Monday), the usual shape of a
night maraude. ``start`` equal to ``end`` is refused: it could mean nothing or 24 hours.

Everything is computed on a boolean mask of the 10,080 minutes of a week, so hours are
counted once however many teams overlap, and intersections (conflicts) are one ``&``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

import numpy as np

from geo_monitor.errors import InvalidArgumentError

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
MAX_ENTRIES = 500
TEAM_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # the rule tokens.create_token applies
_TIME = re.compile(r"^(\d{2}):(\d{2})$")
_KEYS = {"day", "start", "end", "team"}


def check_team_name(name: object, where: str, parameter: str | None = None) -> str:
    """Return a well-formed team name or raise ``InvalidArgumentError`` saying where (and which parameter)."""
    if not isinstance(name, str) or not TEAM_NAME.match(name):
        raise InvalidArgumentError(f"{where}: team names are 1-64 letters, digits, '-', '_' or '.', "
                                   f"got {str(name)[:70]!r}", parameter or where)
    return name


def _minute(text: object, where: str, *, is_end: bool) -> int:
    """Return the minute of the day of ``HH:MM`` (``24:00`` only as an end)."""
    match = _TIME.match(text) if isinstance(text, str) else None
    hours, minutes = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
    value = hours * 60 + minutes
    if not match or minutes > 59 or value > MINUTES_PER_DAY or (value == MINUTES_PER_DAY and not is_end):
        allowed = "00:00 to 24:00" if is_end else "00:00 to 23:59"
        raise InvalidArgumentError(f"{where}: expected a time HH:MM from {allowed}, got {str(text)[:20]!r}",
                                   "schedule")
    return value


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def normalize_schedule(entries: Iterable[Mapping], teams: Collection[str] | None = None) -> list[dict]:
    """Return a schedule checked and normalised (sorted, duplicates dropped, ``00:00`` end as ``24:00``).

    Parameters
    ----------
    entries
        Mappings with exactly the keys ``day`` (int 0-6, Monday = 0), ``start``, ``end``
        (``HH:MM``) and ``team``.
    teams
        When given, the teams an entry may name (a zone's owner and partners).

    Raises
    ------
    InvalidArgumentError
        Naming the entry (``schedule[3].end``) and what is wrong with it.
    """
    if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Iterable):
        raise InvalidArgumentError("schedule must be a list of {day, start, end, team} entries", "schedule")
    entries = list(entries)
    if len(entries) > MAX_ENTRIES:
        raise InvalidArgumentError(f"a schedule holds at most {MAX_ENTRIES} entries, got {len(entries)}", "schedule")
    out = set()
    for i, entry in enumerate(entries):
        where = f"schedule[{i}]"
        if not isinstance(entry, Mapping) or set(entry) != _KEYS:
            keys = sorted(map(str, entry)) if isinstance(entry, Mapping) else type(entry).__name__
            raise InvalidArgumentError(f"{where}: expected exactly the keys day, start, end, team; got {keys}",
                                       "schedule")
        day = entry["day"]
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            raise InvalidArgumentError(f"{where}.day: expected 0-6 (0 = Monday, 6 = Sunday), got {str(day)[:20]!r}",
                                       "schedule")
        start = _minute(entry["start"], f"{where}.start", is_end=False)
        end = _minute(entry["end"], f"{where}.end", is_end=True)
        if start == end:
            raise InvalidArgumentError(f"{where}: start and end are both {entry['start']}; for a whole day "
                                       "write 00:00-24:00", "schedule")
        team = check_team_name(entry["team"], f"{where}.team", "schedule")
        if teams is not None and team not in teams:
            raise InvalidArgumentError(f"{where}.team: {team!r} is neither the zone's owner nor one of its "
                                       f"partners ({', '.join(sorted(teams))}); add it to partner_teams first",
                                       "schedule")
        out.add((day, start, end if end else MINUTES_PER_DAY, team))
    return [{"day": d, "start": _hhmm(s), "end": _hhmm(e), "team": t} for d, s, e, t in sorted(out)]


def entry_intervals(entry: Mapping) -> list[tuple[int, int]]:
    """Return the half-open minute-of-week intervals of a normalised entry (split at the week's end)."""
    start = entry["day"] * MINUTES_PER_DAY + _minute(entry["start"], "start", is_end=False)
    end = entry["day"] * MINUTES_PER_DAY + _minute(entry["end"], "end", is_end=True)
    if end <= start:  # past midnight
        end += MINUTES_PER_DAY
    if end <= MINUTES_PER_WEEK:
        return [(start, end)]
    return [(start, MINUTES_PER_WEEK), (0, end - MINUTES_PER_WEEK)]  # Sunday night into Monday


def week_mask(schedule: Iterable[Mapping], teams: Collection[str] | None = None) -> np.ndarray:
    """Return the 10,080 booleans of the minutes of the week covered (by ``teams`` only, if given)."""
    mask = np.zeros(MINUTES_PER_WEEK, dtype=bool)
    for entry in schedule:
        if teams is None or entry["team"] in teams:
            for a, b in entry_intervals(entry):
                mask[a:b] = True
    return mask


def coverage_hours(schedule: Iterable[Mapping], teams: Collection[str] | None = None) -> float:
    """Return the hours per week covered by at least one team (overlaps counted once)."""
    return round(float(week_mask(schedule, teams).sum()) / 60, 4)


def hours_by_team(schedule: list[Mapping]) -> dict[str, float]:
    """Return each team's hours per week."""
    return {team: coverage_hours(schedule, {team}) for team in sorted({e["team"] for e in schedule})}


def uncovered_slots(schedule: Iterable[Mapping]) -> np.ndarray:
    """Return the hour slots of the week (0-167, Monday 00:00-01:00 = 0) not wholly covered."""
    return np.flatnonzero(~week_mask(schedule).reshape(168, 60).all(axis=1))


def mask_ranges(mask: np.ndarray) -> list[dict]:
    """Return the runs of True minutes as ``{day, start, end}`` ranges, one day at a time."""
    out = []
    for day, minutes in enumerate(np.asarray(mask, dtype=bool).reshape(7, MINUTES_PER_DAY)):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], minutes.astype(np.int8), [0]))))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            out.append({"day": day, "start": _hhmm(int(a)), "end": _hhmm(int(b))})
    return out


def slots_mask(slots: Iterable[int]) -> np.ndarray:
    """Return the minute mask of whole hour slots (the inverse of ``uncovered_slots``)."""
    hours = np.zeros(168, dtype=bool)
    hours[np.asarray(list(slots), dtype=np.int64)] = True
    return np.repeat(hours, 60)
