"""A small, realistic, deterministic city for the demo: three platforms, a few dozen workers.

Three years of history (2021-06 .. 2024-05) are loaded first, so that runs of stable months and whole
social insurance periods exist; then one month, June 2024, arrives as it would in production:
reports and contributions (completing new runs and deciding one-year extensions), a correction, a
revoked declaration, training and one-time approvals. A few workers join only in 2024-01.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from contracts.identifiers import ric_check_character, uscc_check_character

PLATFORMS = {
    "锡城到家服务平台": "91320213MA1DM001",
    "太湖即时配送": "91320214MA1DM002",
    "蠡湖出行": "91320211MA1DM003",
}
DIVISIONS = ("320205", "320206", "320211", "320213", "320214", "320281", "320282")
FIRST_MONTH = "2021-06"
LATE_JOIN_MONTH = "2024-01"
MONTH = "2024-06"


def _enterprise(prefix16: str) -> str:
    first17 = prefix16 + "0"
    return first17 + uscc_check_character(first17)


def _worker(rng: random.Random, division: str, index: int) -> str:
    birth = f"{rng.randint(1970, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = f"{division}{birth}{index % 1000:03d}"
    return first17 + ric_check_character(first17)


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + mon // 12}-{mon % 12 + 1:02d}"


def _at(month: str, day: int, hour: int = 10) -> str:
    return f"{_next_month(month)}-{day:02d}T{hour:02d}:00:00+08:00"


class DemoCity:
    def __init__(self, workers: int = 40, seed: int = 2021) -> None:
        self.rng = random.Random(seed)
        self.enterprises = {name: _enterprise(code) for name, code in PLATFORMS.items()}
        self.workers = [_worker(self.rng, self.rng.choice(DIVISIONS), i) for i in range(workers)]
        self.platform_of = {w: self.rng.choice(list(self.enterprises.values())) for w in self.workers}
        # Every fifth worker joins the platforms only in 2024-01 and completes a run in the demo month.
        self.joined = {w: LATE_JOIN_MONTH if i % 5 == 3 else FIRST_MONTH for i, w in enumerate(self.workers)}
        self.counter = 0

    def _fact(self, kind: str, at: str, **fields: Any) -> dict[str, Any]:
        self.counter += 1
        return {"id": f"demo-{self.counter:05d}", "type": kind, "at": at, **fields}

    def _income(self, worker: str) -> int:
        # A third of the workers earn below the minimum wage (202,000 / 228,000 fen).
        base = 150000 if self.workers.index(worker) % 3 == 0 else 255000
        return base + self.rng.randint(0, 20000)

    def onboarding(self) -> Iterator[dict[str, Any]]:
        for name, code in self.enterprises.items():
            yield self._fact("enterprise_registered", "2021-06-01T09:00:00+08:00", enterprise=code, name=name)
        for i, worker in enumerate(self.workers):
            yield self._fact(
                "worker_registered",
                f"{self.joined[worker]}-02T09:00:00+08:00",
                worker=worker,
                name=f"演示{i:02d}",
                residence=worker[:6],
                residence_since="2015-01-01",
            )
            if i % 4 == 0:
                yield self._fact(
                    "category_declared",
                    f"{self.joined[worker]}-02T10:00:00+08:00",
                    worker=worker,
                    category="employment_difficulty",
                    since="2021-05-01",
                )
            elif i % 4 == 1:
                yield self._fact(
                    "category_declared",
                    f"{self.joined[worker]}-02T10:00:00+08:00",
                    worker=worker,
                    category="registered_unemployed",
                    since="2021-05-15",
                )
            elif i % 8 == 2:
                yield self._fact(
                    "category_declared",
                    f"{self.joined[worker]}-02T10:00:00+08:00",
                    worker=worker,
                    category="graduate_unemployed",
                    since="2021-06-01",
                    graduated="2020-07-01",
                )

    def month(self, month: str) -> Iterator[dict[str, Any]]:
        """One month as platforms and agencies report it early in the following month."""
        for worker in self.workers:
            if self.joined[worker] > month:
                continue
            income = self._income(worker)
            yield self._fact(
                "monthly_report",
                _at(month, 3),
                enterprise=self.platform_of[worker],
                worker=worker,
                month=month,
                income_fen=income,
                hours=self.rng.randint(60, 200),
                district=self.rng.choice(DIVISIONS),
            )
            if self.workers.index(worker) % 2 == 0:
                yield self._fact(
                    "contribution_paid",
                    _at(month, 9),
                    worker=worker,
                    month=month,
                    amount_fen=self.rng.choice((81000, 90000, 100001)),
                )

    def this_month_extras(self) -> Iterator[dict[str, Any]]:
        """What else happens in the demo month: corrections, training, approvals, a revocation."""
        at = _at(MONTH, 15)
        first, second = self.workers[0], self.workers[4]
        yield self._fact(
            "report_corrected",
            at,
            enterprise=self.platform_of[first],
            worker=first,
            month="2024-03",
            income_fen=100000,
            hours=40,
            district=first[:6],
        )
        yield self._fact("category_revoked", at, worker=second, category="employment_difficulty")
        for i, worker in enumerate(self.workers[:12]):
            yield self._fact(
                "training_completed",
                at,
                enterprise=self.platform_of[worker],
                worker=worker,
                course=f"safe-riding-{i % 3}",
                hours=10 + 5 * (i % 4),
                completed_on=f"{MONTH}-20",
            )
        platform = next(iter(self.enterprises.values()))
        yield self._fact(
            "job_standard_approved", at, enterprise=platform, job_type="网约配送员", approved_on="2024-07-05"
        )
        yield self._fact(
            "competition_listed", at, enterprise=platform, competition="WX-2024-JN-12", listed_on="2024-07-06"
        )
        yield self._fact(
            "competition_award", _at(MONTH, 20), competition="WX-2024-JN-12", worker=self.workers[1], rank=1
        )
        yield self._fact(
            "park_recognized",
            at,
            park=_enterprise("91320205MA1PKDM1"),
            level="municipal",
            established_on="2021-09-01",
            recognized_on="2024-07-08",
            approved_amount_fen=300000000,
        )
        yield self._fact(
            "talent_award", at, enterprise=platform, award="THRC-2024-0099", approved_amount_fen=50000000
        )
        # A platform error a person can act on: a report for a month not yet ended.
        yield self._fact(
            "monthly_report",
            at,
            enterprise=platform,
            worker=self.workers[2],
            month="2024-08",
            income_fen=230000,
            hours=100,
            district="320213",
        )

    def history(self) -> Iterator[dict[str, Any]]:
        yield from self.onboarding()
        month = FIRST_MONTH
        while month < MONTH:
            yield from self.month(month)
            month = _next_month(month)

    def this_month(self) -> Iterator[dict[str, Any]]:
        yield from self.month(MONTH)
        yield from self.this_month_extras()
