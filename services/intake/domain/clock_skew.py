"""No fact from the future: `at` is at most the receipt time plus a small clock skew (issue 13).

`at` is when the submitter says it submitted the fact; the rules read it (RULES.md section 5: no
month after the month of its own `at`) but never the clock. Facts dated `at: 2099-07-03` were
accepted and, with `month: 2099-06`, earned a grant for fiscal year 2099. Intake, which receives
the fact, compares `at` with the time it received it (passed in: no clock here). A fact dated later
than that plus `max_skew_s` is refused (400, `where: at`) and NOT recorded: whether it is refused
depends on the clock, which no replay of the ledger could reproduce, and the submitter can send it
again with a true `at` under the same id. Nothing RULES.md accepts is refused by this: a fact
submitted now is dated now; scenario runs use historic `at`s, which are in the past.

An `at` that is not a timestamp with its offset is left to validation (rejected, recorded).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

DEFAULT_MAX_CLOCK_SKEW_S = 300


def future_at_problem(raw: Any, received_at: datetime, max_skew_s: float) -> str | None:
    """Why `raw`'s `at` is refused (a reason naming `at`), or None."""
    assert received_at.tzinfo is not None, "the receipt time needs its UTC offset"
    at = raw.get("at") if isinstance(raw, dict) else None
    if not isinstance(at, str) or len(at) > 64:
        return None
    try:
        stamp = datetime.fromisoformat(at)
    except ValueError:
        return None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        return None
    latest = received_at + timedelta(seconds=max_skew_s)
    if stamp <= latest:
        return None
    return (f"at {at} is later than intake received the fact ({received_at.isoformat(timespec='seconds')}, "
            f"allowing {max_skew_s:g} s of clock skew): a fact cannot be submitted before it is sent; "
            "check the sender's clock and send it again with the time it was sent")
