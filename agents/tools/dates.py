"""Reading the dates questions give ("as of 2022", "in June 2019", "2021-03-04") as the end of that period.

"As of 2022" means the state at the end of 2022: the latest revision or snapshot at or before the last
second of the period named. A year means its last day, a month its last day, a day its end.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timezone

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9

ACCEPTED = "YYYY, YYYY-MM, YYYY-MM-DD, an ISO timestamp, 'June 2019' or '4 June 2019'"


def _end_of(year: int, month: int | None = None, day: int | None = None) -> datetime:
    month_ = month or 12
    day_ = day or calendar.monthrange(year, month_)[1]
    return datetime(year, month_, day_, 23, 59, 59, tzinfo=timezone.utc)


def end_of_period(text: str) -> datetime:
    """The last second (UTC) of the period `text` names. Raises ValueError listing the accepted forms."""
    raw = " ".join(str(text).strip().replace(",", " ").split())
    low = raw.lower()
    try:
        if m := re.fullmatch(r"(\d{4})", low):
            return _end_of(int(m.group(1)))
        if m := re.fullmatch(r"(\d{4})[-/](\d{1,2})", low):
            return _end_of(int(m.group(1)), int(m.group(2)))
        if m := re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})", low):
            return _end_of(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(z|[+-]\d{2}:?\d{2})?", low):
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
            return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        if m := re.fullmatch(r"(?:(\d{1,2})\s+)?([a-z]+)\.?\s+(\d{4})", low):
            if m.group(2) in _MONTHS:
                day = int(m.group(1)) if m.group(1) else None
                return _end_of(int(m.group(3)), _MONTHS[m.group(2)], day)
        if m := re.fullmatch(r"([a-z]+)\.?\s+(\d{1,2})\s+(\d{4})", low):
            if m.group(1) in _MONTHS:
                return _end_of(int(m.group(3)), _MONTHS[m.group(1)], int(m.group(2)))
    except ValueError as exc:  # e.g. month 13, 31 February
        raise ValueError(f"cannot read the date {text!r}: {exc}") from None
    raise ValueError(f"cannot read the date {text!r}; use {ACCEPTED}")


def mediawiki_timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def wayback_timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")
