"""Five-field cron expressions (minute hour day month weekday): when they next match."""

from __future__ import annotations

import datetime as dt

from polyserve.errors import ConfigurationError

__all__ = ["Cron"]

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}


def _number(text: str, index: int) -> int:
    names = _NAMES.get(index)
    if names and text.lower()[:3] in names:
        return names.index(text.lower()[:3]) + (1 if index == 3 else 0)
    return int(text)


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _RANGES[index]
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body in ("*", "?"):
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = _number(a, index), _number(b, index)
        else:
            start = _number(body, index)
            end = high if step_text else start
        if not low <= start <= end <= high or step < 1:
            raise ValueError(part)
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:  # Sunday is 0 or 7
        values = (values - {7}) | {0}
    return frozenset(values)


class Cron:
    """A parsed cron expression; ``next_after(t)`` is the first matching minute after ``t``."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) != 5:
            raise ConfigurationError(f"cron must have five fields: {expression!r}")
        try:
            parsed = [_field(text, i) for i, text in enumerate(fields)]
        except ValueError as exc:
            raise ConfigurationError(f"cron field {exc} is invalid in {expression!r}") from None
        self.expression = expression
        self.minutes, self.hours, self.days, self.months, self.weekdays = parsed
        self._any_day = fields[2] in ("*", "?")
        self._any_weekday = fields[4] in ("*", "?")

    def _day_matches(self, t: dt.datetime) -> bool:
        day = t.day in self.days
        weekday = (t.isoweekday() % 7) in self.weekdays
        if self._any_day or self._any_weekday:  # cron's rule: either restricts alone
            return day and weekday
        return day or weekday

    def next_after(self, t: dt.datetime) -> dt.datetime:
        t = t.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        for _ in range(366 * 24 * 60 * 5):  # every minute of five years, at most
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + dt.timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + dt.timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += dt.timedelta(minutes=1)
            else:
                return t
        raise ConfigurationError(f"cron {self.expression!r} never matches")
