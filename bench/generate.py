"""A deterministic, city-scale timeline of facts for the engine benchmark (issue 3 item 9).

`generate_facts(workers=100_000, ...)` yields fact dicts, valid for the engine unless meant not to be,
in submission order, month by month, without holding the timeline in memory:

- 3..10 platforms (enterprises) and N workers, most registered in the first month, the others
  joining over the period; about 10 % live outside Wuxi; some leave the platforms early;
- categories: registered unemployed, 就业困难人员, graduates within their window (some with `until`),
  a few revoked later (承诺制 verification);
- each active month: one report per platform the worker is on (about 15 % on two platforms, a few
  months missing), contributions for the workers who pay flexible-employment insurance;
- corrections and retractions of last month's reports, refunds of last month's contributions,
  residence changes, online training and its retraction;
- a few job standards, competition listings and awards, park recognitions and talent awards a year;
- about 0.3 % of submissions are resubmissions (identical: no-ops) or invalid (altered resubmissions,
  malformed fields, unregistered workers, months after the submission time).

Usage: python bench/generate.py --workers 1000 --months 12 > facts.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.identifiers import ric_check_character, uscc_check_character

WUXI = ("320205", "320206", "320211", "320213", "320214", "320281", "320282")
ELSEWHERE = ("342401", "320105", "320583", "410102", "510104", "310101")
COURSES = tuple(f"course-{k:02d}" for k in range(20))
JOB_TYPES = ("网约配送员", "网约车司机", "互联网营销师", "家政服务员", "直播销售员", "快递员")
FIRST_MONTH = (2021, 5)  # the first reported month; 2021-05 is before the policy start and never counts


def month_name(index: int) -> str:
    year, month = divmod(FIRST_MONTH[0] * 12 + FIRST_MONTH[1] - 1 + index, 12)
    return f"{year:04d}-{month + 1:02d}"


def worker_id(index: int, rng: random.Random) -> str:
    """A unique valid resident identity number: (birth date, sequence) is injective in `index`."""
    prefix = rng.choice(WUXI) if rng.random() < 0.8 else rng.choice(ELSEWHERE)
    birth = date(1965, 1, 1) + timedelta(days=(index // 1000) * 97 % 13870)
    first17 = f"{prefix}{birth:%Y%m%d}{index % 1000:03d}"
    return first17 + ric_check_character(first17)


def credit_code(kind: str, index: int) -> str:
    first17 = f"91320{kind}MA{index:08d}"[:17].rjust(17, "0")
    return first17 + uscc_check_character(first17)


@dataclass(slots=True)
class Person:
    worker: str
    join: int  # first active month index
    leave: int  # first month index no longer active
    platforms: tuple[int, ...]
    income: int  # typical monthly income through the first platform, fen
    insured: bool
    categories: tuple[str, ...]
    residence: str


class City:
    def __init__(self, workers: int, platforms: int | None, months: int | None, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n_platforms = platforms or self.rng.randint(3, 10)
        self.months = months or self.rng.randint(12, 36)
        self.enterprises = [credit_code("2" + str(k % 10), k + 1) for k in range(self.n_platforms)]
        self.parks = [credit_code("5P", k + 1) for k in range(12)]
        self.people = [self._person(i, workers) for i in range(workers)]
        self.counter = 0

    def _person(self, index: int, workers: int) -> Person:
        rng = self.rng
        join = 0 if rng.random() < 0.6 else rng.randrange(self.months)
        leave = self.months if rng.random() < 0.9 else rng.randint(join + 1, self.months)
        first = rng.randrange(self.n_platforms)
        platforms = (
            (first,)
            if rng.random() < 0.85 or self.n_platforms < 2
            else (first, (first + rng.randint(1, self.n_platforms - 1)) % self.n_platforms)
        )
        band = rng.random()
        income = (
            rng.randint(60000, 180000)
            if band < 0.3
            else rng.randint(200000, 300000)
            if band < 0.8
            else rng.randint(300000, 600000)
        )
        draw = rng.random()
        categories = (
            ("registered_unemployed",)
            if draw < 0.25
            else ("employment_difficulty",)
            if draw < 0.40
            else ("graduate_unemployed",)
            if draw < 0.50
            else ("employment_difficulty", "registered_unemployed")
            if draw < 0.53
            else ()
        )
        residence = rng.choice(WUXI) if rng.random() < 0.9 else rng.choice(ELSEWHERE)
        return Person(
            worker_id(index, rng), join, leave, platforms, income, rng.random() < 0.4, categories, residence
        )

    def at(self, month: int, day: int) -> str:
        """A submission time in month index `month` (the month after the one reported)."""
        self.counter += 1
        minute = self.counter % 600
        return f"{month_name(month)}-{day:02d}T{8 + minute // 60:02d}:{minute % 60:02d}:00+08:00"

    def fact(self, month: int, day: int, /, **fields: Any) -> dict[str, Any]:
        return {"id": f"g{self.counter + 1}", "at": self.at(month, day), **fields}


def generate_facts(
    workers: int = 100_000, platforms: int | None = None, months: int | None = None, seed: int = 1
) -> Iterator[dict[str, Any]]:
    """The facts of a city, in submission order (see the module docstring)."""
    city = City(workers, platforms, months, seed)
    rng = city.rng
    for k, enterprise in enumerate(city.enterprises):
        yield city.fact(0, 1, type="enterprise_registered", enterprise=enterprise, name=f"平台{k}")
    recent: list[dict[str, Any]] = []  # a sample of recent facts, for resubmissions
    trainings: list[tuple[str, str, str]] = []
    trained: set[tuple[str, str, str]] = set()
    competitions: list[str] = []
    awarded: set[tuple[str, str]] = set()
    last_reports: list[tuple[str, str, str, int]] = []
    last_contributions: list[tuple[str, str]] = []
    talent = 0
    for month in range(city.months + 1):  # submissions in month index `month` report month - 1
        reported = month_name(month - 1)
        reports: list[tuple[str, str, str, int]] = []
        contributions: list[tuple[str, str]] = []
        for person in city.people:
            if person.join == month:
                yield from _register(city, person, month)
            if not person.join <= month - 1 < person.leave:
                continue
            for n, platform in enumerate(person.platforms):
                if rng.random() < 0.04:
                    continue  # no work through this platform this month
                base = person.income if n == 0 else person.income // 3
                income = max(0, int(base * rng.uniform(0.8, 1.2)))
                enterprise = city.enterprises[platform]
                fact = city.fact(
                    month,
                    3 + n,
                    type="monthly_report",
                    enterprise=enterprise,
                    worker=person.worker,
                    month=reported,
                    income_fen=income,
                    hours=round(income / 1500, 1),
                    district=person.residence,
                )
                reports.append((enterprise, person.worker, reported, income))
                yield fact
                if rng.random() < 0.001:
                    recent.append(fact)
            if person.insured and rng.random() < 0.95:
                yield city.fact(
                    month,
                    8,
                    type="contribution_paid",
                    worker=person.worker,
                    month=reported,
                    amount_fen=rng.choice((69000, 70000, 75600, 81000, 90000)),
                )
                contributions.append((person.worker, reported))
        yield from _amendments(city, month, last_reports, last_contributions)
        yield from _life_events(city, month, trainings, trained)
        yield from _one_time(city, month, competitions, awarded, talent)
        talent += 1
        yield from _noise(city, month, recent)
        last_reports, last_contributions = reports, contributions


def _register(city: City, person: Person, month: int) -> Iterator[dict[str, Any]]:
    rng = city.rng
    yield city.fact(
        month,
        1,
        type="worker_registered",
        worker=person.worker,
        name="测试",
        residence=person.residence,
        residence_since=f"{2010 + rng.randrange(12)}-0{rng.randint(1, 9)}-01",
    )
    for category in person.categories:
        since = f"{month_name(month - rng.randint(0, 6))}-{rng.choice(('01', '10', '20'))}"
        fact = city.fact(
            month, 2, type="category_declared", worker=person.worker, category=category, since=since
        )
        if category == "graduate_unemployed":
            fact["graduated"] = f"{month_name(month - rng.randint(0, 30))}-{rng.choice(('15', '28'))}"
        if rng.random() < 0.1:
            fact["until"] = f"{month_name(month + rng.randint(6, 30))}-28"
        yield fact


def _amendments(
    city: City, month: int, reports: list[tuple[str, str, str, int]], contributions: list[tuple[str, str]]
) -> Iterator[dict[str, Any]]:
    """Corrections (1 %) and retractions (0.2 %) of last month's reports, refunds (0.5 %)."""
    rng = city.rng
    for enterprise, worker, reported, income in reports:
        draw = rng.random()
        if draw < 0.01:
            new = max(0, int(income * rng.uniform(0.5, 1.3)))
            yield city.fact(
                month,
                15,
                type="report_corrected",
                enterprise=enterprise,
                worker=worker,
                month=reported,
                income_fen=new,
                hours=round(new / 1500, 1),
                district="320213",
            )
        elif draw < 0.012:
            yield city.fact(
                month, 16, type="report_retracted", enterprise=enterprise, worker=worker, month=reported
            )
    for worker, reported in contributions:
        if rng.random() < 0.005:
            yield city.fact(month, 17, type="contribution_refunded", worker=worker, month=reported)


def _life_events(
    city: City, month: int, trainings: list[tuple[str, str, str]], trained: set[tuple[str, str, str]]
) -> Iterator[dict[str, Any]]:
    """Residence changes (0.1 %/month), revocations (0.2 %/month of those declared), training (1 %)."""
    rng = city.rng
    people = city.people
    active = [p for p in rng.sample(people, k=max(1, len(people) // 100)) if p.join < month]
    for person in active[: len(active) // 10]:
        person.residence = rng.choice(WUXI) if rng.random() < 0.7 else rng.choice(ELSEWHERE)
        yield city.fact(
            month,
            18,
            type="residence_changed",
            worker=person.worker,
            residence=person.residence,
            since=f"{month_name(month - 1)}-{rng.randint(1, 28):02d}",
        )
    for person in active[: len(active) // 5]:
        if person.categories and rng.random() < 0.2:
            category, *rest = person.categories
            person.categories = tuple(rest)
            yield city.fact(month, 19, type="category_revoked", worker=person.worker, category=category)
    for person in active:
        key = (city.enterprises[person.platforms[0]], person.worker, rng.choice(COURSES))
        if key in trained:
            continue
        trained.add(key)
        trainings.append(key)
        yield city.fact(
            month,
            20,
            type="training_completed",
            enterprise=key[0],
            worker=key[1],
            course=key[2],
            hours=rng.randint(4, 40),
            completed_on=f"{month_name(month - 1)}-{rng.randint(1, 28):02d}",
        )
    if trainings and rng.random() < 0.5:
        key = trainings.pop(rng.randrange(len(trainings)))
        trained.discard(key)
        yield city.fact(month, 21, type="training_retracted", enterprise=key[0], worker=key[1], course=key[2])


def _one_time(
    city: City, month: int, competitions: list[str], awarded: set[tuple[str, str]], talent: int
) -> Iterator[dict[str, Any]]:
    rng = city.rng
    day = f"{month_name(month)}-02"
    if month and day >= "2021-05-31":
        if rng.random() < 0.3:
            enterprise = rng.choice(city.enterprises)
            yield city.fact(
                month,
                22,
                type="job_standard_approved",
                enterprise=enterprise,
                job_type=f"{rng.choice(JOB_TYPES)}-{month}",
                approved_on=day,
            )
        if rng.random() < 0.3:
            competitions.append(f"WX-{month_name(month)}-JN")
            yield city.fact(
                month,
                22,
                type="competition_listed",
                enterprise=rng.choice(city.enterprises),
                competition=competitions[-1],
                listed_on=day,
            )
        if competitions:
            for person in rng.sample(city.people, k=min(3, len(city.people))):
                key = (competitions[-1], person.worker)
                if person.join < month and key not in awarded:
                    awarded.add(key)
                    yield city.fact(
                        month,
                        23,
                        type="competition_award",
                        competition=key[0],
                        worker=key[1],
                        rank=rng.randint(1, 3),
                    )
        if month % 6 == 0 and month // 6 <= len(city.parks):
            yield city.fact(
                month,
                24,
                type="park_recognized",
                park=city.parks[month // 6 - 1],
                level=rng.choice(("district", "municipal", "provincial", "national")),
                established_on=f"{month_name(month - rng.randint(0, 12))}-15",
                recognized_on=day,
                approved_amount_fen=rng.randint(1, 8) * 100000000,
            )
        if rng.random() < 0.2:
            yield city.fact(
                month,
                24,
                type="talent_award",
                enterprise=rng.choice(city.enterprises),
                award=f"THRC-{talent:04d}",
                approved_amount_fen=rng.randint(1, 15) * 10000000,
            )


def _noise(city: City, month: int, recent: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Resubmissions (identical: no-ops; altered: rejected) and malformed or misdirected facts."""
    rng = city.rng
    while recent:
        fact = recent.pop()
        yield dict(fact)
        if rng.random() < 0.3:
            yield {**fact, "income_fen": fact["income_fen"] + 1}
    someone = rng.choice(city.people).worker
    for _ in range(max(1, len(city.people) // 2000)):
        kind = rng.randrange(4)
        if kind == 0:
            yield city.fact(
                month,
                25,
                type="monthly_report",
                enterprise=city.enterprises[0],
                worker=someone,
                month=month_name(month + 1),
                income_fen=1,
                hours=1,
                district="320213",
            )
        elif kind == 1:
            yield city.fact(
                month,
                25,
                type="contribution_paid",
                worker=someone,
                month=month_name(month - 1),
                amount_fen=-1,
            )
        elif kind == 2:
            unknown = worker_id(len(city.people) + month, random.Random(month))
            yield city.fact(
                month,
                25,
                type="monthly_report",
                enterprise=city.enterprises[0],
                worker=unknown,
                month=month_name(month - 1),
                income_fen=1,
                hours=1,
                district="320213",
            )
        else:
            yield city.fact(
                month,
                25,
                type="training_completed",
                enterprise=city.enterprises[0],
                worker=someone,
                course="x",
                hours=1.5,
                completed_on=f"{month_name(month - 1)}-01",
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--platforms", type=int, default=None, help="3..10; default: drawn from the seed")
    parser.add_argument("--months", type=int, default=None, help="12..36; default: drawn from the seed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="stop after this many facts")
    args = parser.parse_args()
    out = sys.stdout
    for n, fact in enumerate(generate_facts(args.workers, args.platforms, args.months, args.seed)):
        if args.limit is not None and n >= args.limit:
            break
        out.write(json.dumps(fact, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
