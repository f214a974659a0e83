"""Test data for the rules core: valid identifiers, a fact-by-fact `Book` for focused tests, and the
hypothesis generators of whole fact timelines used by the property tests.

Identifiers are computed with the check-character functions of `contracts.identifiers`; the
identifier tests check those functions against an independent implementation and python-stdnum.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from contracts.identifiers import ric_check_character, uscc_check_character
from flexledger.engine import Engine
from services.eligibility.domain.decision import Decision

RULE_SET_ID = "wuxi-2021-26/1"
WUXI = ("320205", "320206", "320211", "320213", "320214", "320281", "320282")
OUTSIDE = "310101"  # Shanghai 黄浦区: a valid 6-digit division that is not in Wuxi


def ric(prefix: str, birth: str, sequence: int) -> str:
    """A resident identity number with a valid check character."""
    first17 = f"{prefix}{birth}{sequence:03d}"
    assert len(first17) == 17
    return first17 + ric_check_character(first17)


def uscc(first17: str) -> str:
    """A unified social credit code with a valid check character."""
    assert len(first17) == 17
    return first17 + uscc_check_character(first17)


# Sorted: E1 < E2 < E3 lexicographically (ties in employment_service go to the smallest id).
E1 = "91320213MA1XY0001L"
E2 = "91320214MA1XY00026"
E3 = uscc("Y1320211MA1XY0003")
PARK = "91320205MA1PK0001D"
W1 = "320213197804121019"
W2 = "320211198509232025"
W3 = ric("320281", "19700304", 45)  # 江阴 prefix with a 1970 birth date
UNREGISTERED_WORKER = ric("320214", "19900101", 7)
assert E1 < E2 < E3


def next_month(month: str, k: int = 1) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + k
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_range(first: str, count: int) -> list[str]:
    return [next_month(first, k) for k in range(count)]


def normal(decision: Decision | dict[str, Any]) -> tuple[Any, ...]:
    """A decision as scenarios/FORMAT.md compares it, without `after`."""
    d = decision.to_dict() if isinstance(decision, Decision) else decision
    if d["kind"] == "rejected":
        return ("rejected",)
    return (d["kind"], d["program"], d["beneficiary"], d["subject"], d["ref"], d["month"], d["amount_fen"])


def grant(
    program: str,
    beneficiary: str | None,
    subject: str | None,
    amount: int,
    ref: str | None = None,
    month: str | None = None,
    kind: str = "grant",
) -> tuple[Any, ...]:
    return (kind, program, beneficiary, subject, ref, month, amount)


def clawback(
    program: str,
    beneficiary: str | None,
    subject: str | None,
    amount: int,
    ref: str | None = None,
    month: str | None = None,
) -> tuple[Any, ...]:
    return grant(program, beneficiary, subject, amount, ref, month, kind="clawback")


def si(worker: str, month: str, amount: int, kind: str = "grant") -> tuple[Any, ...]:
    return (kind, "social_insurance", worker, worker, None, month, amount)


def flag(
    kind: str,
    program: str,
    beneficiary: str | None,
    subject: str,
    ref: str | None = None,
    month: str | None = None,
) -> tuple[Any, ...]:
    return (kind, program, beneficiary, subject, ref, month, 0)


class Book:
    """Facts submitted one at a time through a fresh Engine (intake checks, rules and ledger).

    Each helper returns the decisions that fact caused, as `normal` tuples (sorted), so a test reads
    like the ledger: `assert book.report(...) == [grant(...)]`. Ids are f1, f2, ...; `at` defaults to
    the 5th of the month after a fact's `month`, else to 2021-06-01.
    """

    def __init__(self) -> None:
        self.engine = Engine()
        self.count = 0
        self.decisions: list[Decision] = []
        self.raws: list[dict[str, Any]] = []

    def raw(self, type_: str, **fields: Any) -> dict[str, Any]:
        self.count += 1
        fields.setdefault("id", f"f{self.count}")
        if "at" not in fields:
            month = fields.get("month")
            fields["at"] = (
                f"{next_month(month)}-05T10:00:00+08:00"
                if isinstance(month, str) and len(month) == 7
                else "2021-06-01T09:00:00+08:00"
            )
        return {"type": type_, **fields}

    def send(self, raw: dict[str, Any]) -> list[tuple[Any, ...]]:
        self.raws.append(raw)
        decisions = self.engine.submit(raw)[1]
        self.decisions.extend(decisions)
        return sorted((normal(d) for d in decisions), key=repr)

    def submit(self, type_: str, **fields: Any) -> list[tuple[Any, ...]]:
        return self.send(self.raw(type_, **fields))

    def last_reason(self) -> str:
        assert self.decisions and self.decisions[-1].kind == "rejected"
        assert self.decisions[-1].reason is not None
        return self.decisions[-1].reason

    # One helper per fact type (scenarios/FORMAT.md), with the fields a test rarely varies defaulted.
    def enterprise(self, enterprise: str = E1, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit("enterprise_registered", enterprise=enterprise, name=kw.pop("name", "平台"), **kw)

    def worker(
        self, worker: str = W1, residence: str = "320213", since: str = "2015-01-01", **kw: Any
    ) -> list[tuple[Any, ...]]:
        return self.submit(
            "worker_registered",
            worker=worker,
            name=kw.pop("name", "测试"),
            residence=residence,
            residence_since=since,
            **kw,
        )

    def moved(self, worker: str, residence: str, since: str, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit("residence_changed", worker=worker, residence=residence, since=since, **kw)

    def category(self, worker: str, category: str, since: str, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit("category_declared", worker=worker, category=category, since=since, **kw)

    def revoke(self, worker: str, category: str, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit("category_revoked", worker=worker, category=category, **kw)

    def report(
        self, enterprise: str, worker: str, month: str, income_fen: int, **kw: Any
    ) -> list[tuple[Any, ...]]:
        kw.setdefault("hours", 160)
        kw.setdefault("district", "320213")
        return self.submit(
            "monthly_report", enterprise=enterprise, worker=worker, month=month, income_fen=income_fen, **kw
        )

    def correct(
        self, enterprise: str, worker: str, month: str, income_fen: int, **kw: Any
    ) -> list[tuple[Any, ...]]:
        kw.setdefault("hours", 160)
        kw.setdefault("district", "320213")
        return self.submit(
            "report_corrected", enterprise=enterprise, worker=worker, month=month, income_fen=income_fen, **kw
        )

    def retract(self, enterprise: str, worker: str, month: str, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit("report_retracted", enterprise=enterprise, worker=worker, month=month, **kw)

    def contribution(self, worker: str, month: str, amount_fen: int, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit("contribution_paid", worker=worker, month=month, amount_fen=amount_fen, **kw)

    def refund(self, worker: str, month: str, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit("contribution_refunded", worker=worker, month=month, **kw)

    def training(
        self, enterprise: str, worker: str, course: str, hours: int, completed_on: str, **kw: Any
    ) -> list[tuple[Any, ...]]:
        return self.submit(
            "training_completed",
            enterprise=enterprise,
            worker=worker,
            course=course,
            hours=hours,
            completed_on=completed_on,
            **kw,
        )

    def untrain(self, enterprise: str, worker: str, course: str, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit("training_retracted", enterprise=enterprise, worker=worker, course=course, **kw)

    def job_standard(
        self, enterprise: str, job_type: str, approved_on: str, **kw: Any
    ) -> list[tuple[Any, ...]]:
        return self.submit(
            "job_standard_approved", enterprise=enterprise, job_type=job_type, approved_on=approved_on, **kw
        )

    def listing(self, enterprise: str, competition: str, listed_on: str, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit(
            "competition_listed", enterprise=enterprise, competition=competition, listed_on=listed_on, **kw
        )

    def award(self, competition: str, worker: str, rank: int = 1, **kw: Any) -> list[tuple[Any, ...]]:
        return self.submit("competition_award", competition=competition, worker=worker, rank=rank, **kw)

    def park(
        self,
        level: str,
        established_on: str,
        recognized_on: str,
        approved_amount_fen: int,
        park: str = PARK,
        **kw: Any,
    ) -> list[tuple[Any, ...]]:
        return self.submit(
            "park_recognized",
            park=park,
            level=level,
            established_on=established_on,
            recognized_on=recognized_on,
            approved_amount_fen=approved_amount_fen,
            **kw,
        )

    def talent(
        self, enterprise: str, award: str, approved_amount_fen: int, **kw: Any
    ) -> list[tuple[Any, ...]]:
        return self.submit(
            "talent_award", enterprise=enterprise, award=award, approved_amount_fen=approved_amount_fen, **kw
        )

    def work(
        self,
        enterprise: str,
        worker: str,
        first: str,
        incomes: list[int],
        contributions: int | list[int | None] | None = None,
    ) -> list[tuple[Any, ...]]:
        """A report per month from `first` (and a contribution after each, when given); all decisions."""
        out: list[tuple[Any, ...]] = []
        for k, income in enumerate(incomes):
            month = next_month(first, k)
            out += self.report(enterprise, worker, month, income)
            amount = contributions[k] if isinstance(contributions, list) else contributions
            if amount is not None:
                out += self.contribution(worker, month, amount)
        return out


def state_snapshot(engine: Engine) -> Any:
    """Everything an accepted fact can change: intake's registry and the entitlement state."""
    state = engine.entitlement
    return copy.deepcopy(
        (
            engine.intake.registry,
            state.workers,
            {
                w: {p: {k: line.amount_fen for k, line in lines.items()} for p, lines in programmes.items()}
                for w, programmes in state.worker_lines.items()
            },
            {k: line.amount_fen for k, line in state.one_time_lines.items()},
            state.applied,
        )
    )


# ---------------------------------------------------------------------------------------------------
# Hypothesis: fact timelines.
#
# A timeline is a city in miniature: up to 3 enterprises and 3 workers, each worker with a run of
# monthly reports (one or two platforms) and contributions over up to ~4 years (long enough for the
# 36-month period and its extension), categories declared and revoked, residence changes, and extra
# events at chosen months: corrections, retractions, refunds, training and its retraction, one-time
# approvals, invalid facts, and resubmissions of earlier facts, identical or altered.
# ---------------------------------------------------------------------------------------------------

ENTERPRISES = (E1, E2, E3)
WORKERS = (W1, W2, W3)
FIRST_MONTH = "2021-04"
INCOMES = (0, 120000, 201999, 202000, 227999, 228000, 248999, 249000, 300000)
CONTRIBUTIONS = (1, 70000, 81000, 100000, 100001, 100002)
CATEGORIES = ("registered_unemployed", "employment_difficulty", "graduate_unemployed")
EVENT_KINDS = (  # repeated kinds are drawn more often
    "correct",
    "correct",
    "correct",
    "retract",
    "retract",
    "refund",
    "refund",
    "revoke",
    "revoke",
    "declare",
    "move",
    "move",
    "train",
    "train",
    "train",
    "untrain",
    "job_standard",
    "listing",
    "award",
    "award",
    "park",
    "talent",
    "invalid",
    "invalid",
    "resubmit",
    "resubmit",
    "alter",
    "late_register",
)
DAYS = ("01", "02", "15", "28")


@dataclass(frozen=True)
class WorkerPlan:
    worker: int
    residence: str
    residence_since: str
    declarations: tuple[tuple[str, str, str | None, str | None], ...]  # category, since, until, graduated
    start: int  # months after FIRST_MONTH of the first reported month
    enterprise: int  # the platform the worker mostly works through
    income: int  # index into INCOMES: the usual income
    contribution: int  # index into CONTRIBUTIONS: the usual contribution
    # one draw 0..9 per month for: switching platform (0), income (7: none, 8: one level below, 9: top),
    # a second platform (0: yes), the contribution (0: none paid)
    months: tuple[tuple[int, int, int, int], ...]

    def month(self, k: int, n_enterprises: int) -> tuple[list[tuple[int, int]], int | None]:
        """[(enterprise, income)] reported for the k-th month, and the contribution paid (or None)."""
        switch, income, second, contribution = self.months[k]
        enterprise = (self.enterprise + (1 if switch == 0 else 0)) % n_enterprises
        level = {7: 0, 8: max(self.income - 1, 0), 9: len(INCOMES) - 1}.get(income, self.income)
        out = [(enterprise, INCOMES[level])]
        if second == 0 and n_enterprises > 1:
            out.append(((enterprise + 1) % n_enterprises, INCOMES[(level + income) % len(INCOMES)]))
        return out, None if contribution == 0 else CONTRIBUTIONS[
            (self.contribution + contribution // 8) % len(CONTRIBUTIONS)
        ]


@dataclass(frozen=True)
class Event:
    month: int  # months after FIRST_MONTH at which it is submitted
    kind: str
    choice: int  # picks a worker, an earlier fact, a month... (modulo what exists)
    value: int


def _day(month_offset: int, day: str) -> str:
    return f"{next_month(FIRST_MONTH, month_offset)}-{day}"


@st.composite
def worker_plans(draw: st.DrawFn, worker: int, max_months: int, min_months: int = 0) -> WorkerPlan:
    """One worker's life; with `min_months` >= 37, long enough for the social insurance extension."""
    residence = draw(st.sampled_from((*WUXI[:3], OUTSIDE)))
    since = draw(st.sampled_from(("2015-01-01", "2021-06-01", "2021-09-15")))
    declarations = []
    long = min_months >= 37
    categories = draw(
        st.lists(
            st.sampled_from(("employment_difficulty",) * 3 * long + CATEGORIES),
            min_size=1,
            max_size=2,
            unique=True,
        )
    )
    for category in categories if draw(st.integers(0, 4)) else ():
        start = _day(draw(st.integers(-6, 3 if long else 12)), draw(st.sampled_from(DAYS)))
        until = None
        if draw(st.integers(0, 3)) == 0:
            until = max(start, _day(draw(st.integers(0, 50)), draw(st.sampled_from(DAYS))))
        graduated = None
        if category == "graduate_unemployed":
            graduated = _day(draw(st.integers(-30, 0)), draw(st.sampled_from(DAYS)))
        declarations.append((category, start, until, graduated))
    length = draw(st.integers(min(min_months, max_months), max_months))
    digit = st.integers(0, 9)
    months = draw(st.lists(st.tuples(digit, digit, digit, digit), min_size=length, max_size=length))
    return WorkerPlan(
        worker,
        residence,
        since,
        tuple(declarations),
        draw(st.integers(0, 2 if long else 6)),
        draw(st.integers(0, 2)),
        draw(st.integers(0, len(INCOMES) - 1)),
        draw(st.integers(0, len(CONTRIBUTIONS) - 1)),
        tuple(months),
    )


@dataclass
class Timeline:
    facts: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.facts)


def _at(month_offset: int, day: int, minute: int) -> str:
    hour, minute = minute // 60 % 24, minute % 60
    return f"{next_month(FIRST_MONTH, month_offset)}-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


INVALID_FACTS: tuple[dict[str, Any], ...] = (
    {"type": "enterprise_registered", "enterprise": E1[:-1] + "0", "name": "bad check character"},
    {
        "type": "worker_registered",
        "worker": W1.lower()[:-1] + "x",
        "name": "x",
        "residence": "320213",
        "residence_since": "2015-01-01",
    },
    {
        "type": "monthly_report",
        "enterprise": E1,
        "worker": W1,
        "month": "2021-13",
        "income_fen": 1,
        "hours": 1,
        "district": "320213",
    },
    {
        "type": "monthly_report",
        "enterprise": E1,
        "worker": W1,
        "month": "2021-06",
        "income_fen": 1.5,
        "hours": 1,
        "district": "320213",
    },
    {"type": "contribution_paid", "worker": W1, "month": "2021-06", "amount_fen": 0},
    {"type": "contribution_paid", "worker": W2, "month": "2021-06", "amount_fen": True},
    {
        "type": "training_completed",
        "enterprise": E1,
        "worker": W1,
        "course": "c",
        "hours": 201,
        "completed_on": "2021-07-01",
    },
    {
        "type": "category_declared",
        "worker": W1,
        "category": "employment_difficulty",
        "since": "2021-01-01",
        "graduated": "2020-07-01",
    },
    {"type": "category_declared", "worker": W2, "category": "graduate_unemployed", "since": "2021-01-01"},
    {
        "type": "category_declared",
        "worker": W1,
        "category": "registered_unemployed",
        "since": "2021-02-01",
        "until": "2021-01-31",
    },
    {"type": "competition_award", "competition": "NO-SUCH", "worker": W1, "rank": 1},
    {"type": "job_standard_approved", "enterprise": E1, "job_type": "早", "approved_on": "2021-05-30"},
    {
        "type": "park_recognized",
        "park": PARK,
        "level": "national",
        "established_on": "2021-06-01",
        "recognized_on": "2021-05-30",
        "approved_amount_fen": 1,
    },
    {
        "type": "monthly_report",
        "enterprise": E1,
        "worker": UNREGISTERED_WORKER,
        "month": "2021-06",
        "income_fen": 300000,
        "hours": 1,
        "district": "320213",
    },
    {"type": "talent_award", "enterprise": E1, "award": "T", "approved_amount_fen": -1},
    {"type": "no_such_type"},
    {"type": "residence_changed", "worker": W1, "residence": "32021", "since": "2021-01-01"},
)


@st.composite
def timelines(
    draw: st.DrawFn, max_workers: int = 3, max_months: int = 48, max_events: int = 30, min_months: int = 0
) -> Timeline:
    """Facts in submission order: registrations, then month by month the reports and contributions of
    the month before, declarations as they come, and the extra events of that month."""
    n_enterprises = draw(st.integers(1, 3))
    n_workers = draw(st.integers(1, max_workers))
    plans = [draw(worker_plans(w, max_months, min_months)) for w in range(n_workers)]
    events = draw(
        st.lists(
            st.builds(
                Event,
                st.integers(0, max_months + 8),
                st.sampled_from(EVENT_KINDS),
                st.integers(0, 1000),
                st.integers(0, 1000),
            ),
            min_size=min(3, max_events),
            max_size=max_events,
        )
    )
    late = {e.choice % n_workers for e in events if e.kind == "late_register"}
    out: list[dict[str, Any]] = []
    counter = [0]
    reports: list[dict[str, Any]] = []  # current report facts (for corrections, retractions)
    contributions: list[dict[str, Any]] = []
    trainings: list[dict[str, Any]] = []
    competitions: list[str] = []

    def emit(month: int, fact: dict[str, Any], day: int = 5) -> dict[str, Any]:
        counter[0] += 1
        fact = {"id": f"f{counter[0]}", "at": _at(month, day, counter[0]), **fact}
        out.append(fact)
        return fact

    for e in range(n_enterprises):
        emit(0, {"type": "enterprise_registered", "enterprise": ENTERPRISES[e], "name": f"平台{e}"}, day=1)

    def register(plan: WorkerPlan, month: int) -> None:
        emit(
            month,
            {
                "type": "worker_registered",
                "worker": WORKERS[plan.worker],
                "name": "测试",
                "residence": plan.residence,
                "residence_since": plan.residence_since,
            },
            day=1,
        )
        for category, since, until, graduated in plan.declarations:
            fact: dict[str, Any] = {
                "type": "category_declared",
                "worker": WORKERS[plan.worker],
                "category": category,
                "since": since,
            }
            if until is not None or month % 2:
                fact["until"] = until  # sometimes an explicit null
            if graduated is not None:
                fact["graduated"] = graduated
            emit(month, fact, day=1)

    for plan in plans:
        if plan.worker not in late:
            register(plan, 0)

    last = max([max_months + 8, *(p.start + len(p.months) + 1 for p in plans)])
    for month in range(1, last + 1):
        reported = month - 1  # the month reported now
        for plan in plans:
            k = reported - plan.start
            if not 0 <= k < len(plan.months):
                continue
            worker = WORKERS[plan.worker]
            platforms, contribution = plan.month(k, n_enterprises)
            name = next_month(FIRST_MONTH, reported)
            for e, income in platforms:
                reports.append(
                    emit(
                        month,
                        {
                            "type": "monthly_report",
                            "enterprise": ENTERPRISES[e],
                            "worker": worker,
                            "month": name,
                            "income_fen": income,
                            "hours": 160 if income else 0.5,
                            "district": "320213",
                        },
                    )
                )
            if contribution is not None:
                contributions.append(
                    emit(
                        month,
                        {
                            "type": "contribution_paid",
                            "worker": worker,
                            "month": name,
                            "amount_fen": contribution,
                        },
                        day=8,
                    )
                )
        for event in (e for e in events if e.month == month):
            _event(
                event,
                month,
                plans,
                n_enterprises,
                emit,
                out,
                reports,
                contributions,
                trainings,
                competitions,
                register,
            )
    return Timeline(out)


def _event(
    event: Event,
    month: int,
    plans: list[WorkerPlan],
    n_enterprises: int,
    emit: Any,
    out: list[dict[str, Any]],
    reports: list[dict[str, Any]],
    contributions: list[dict[str, Any]],
    trainings: list[dict[str, Any]],
    competitions: list[str],
    register: Any,
) -> None:
    plan = plans[event.choice % len(plans)]
    worker = WORKERS[plan.worker]
    enterprise = ENTERPRISES[event.value % n_enterprises]
    kind = event.kind
    if kind in {"correct", "retract"} and reports:
        report = reports[event.choice % len(reports)]
        if kind == "correct":
            emit(
                month,
                {
                    **{k: report[k] for k in ("enterprise", "worker", "month", "hours", "district")},
                    "type": "report_corrected",
                    "income_fen": INCOMES[event.value % len(INCOMES)],
                },
                day=20,
            )
        else:
            emit(
                month,
                {"type": "report_retracted", **{k: report[k] for k in ("enterprise", "worker", "month")}},
                day=20,
            )
    elif kind == "refund" and contributions:
        paid = contributions[event.choice % len(contributions)]
        emit(
            month, {"type": "contribution_refunded", "worker": paid["worker"], "month": paid["month"]}, day=20
        )
    elif kind == "revoke" and plan.declarations:
        category = plan.declarations[event.value % len(plan.declarations)][0]
        emit(month, {"type": "category_revoked", "worker": worker, "category": category}, day=21)
    elif kind == "declare":
        category = CATEGORIES[event.value % 3]
        fact: dict[str, Any] = {
            "type": "category_declared",
            "worker": worker,
            "category": category,
            "since": _day(event.value % 24 - 4, "01"),
        }
        if category == "graduate_unemployed":
            fact["graduated"] = _day(event.value % 30 - 26, "30")
        emit(month, fact, day=21)
    elif kind == "move":
        emit(
            month,
            {
                "type": "residence_changed",
                "worker": worker,
                "residence": (*WUXI, OUTSIDE, OUTSIDE)[event.value % 9],
                "since": _day(event.value % 40 - 3, DAYS[event.value % 4]),
            },
            day=22,
        )
    elif kind == "train":
        course = f"course-{event.value % 4}"
        trainings.append(
            emit(
                month,
                {
                    "type": "training_completed",
                    "enterprise": enterprise,
                    "worker": worker,
                    "course": course,
                    "hours": 1 + event.value % 40,
                    "completed_on": _day(min(month, event.value % 6), "28" if event.value % 5 else "01"),
                },
                day=23,
            )
        )
    elif kind == "untrain" and trainings:
        record = trainings[event.choice % len(trainings)]
        emit(
            month,
            {"type": "training_retracted", **{k: record[k] for k in ("enterprise", "worker", "course")}},
            day=23,
        )
    elif kind == "job_standard":
        emit(
            month,
            {
                "type": "job_standard_approved",
                "enterprise": enterprise,
                "job_type": f"job-{event.value % 3}",
                "approved_on": _day(month, "02"),
            },
            day=24,
        )
    elif kind == "listing":
        competitions.append(f"WX-{event.value % 4}")
        emit(
            month,
            {
                "type": "competition_listed",
                "enterprise": enterprise,
                "competition": competitions[-1],
                "listed_on": _day(month, "02"),
            },
            day=24,
        )
    elif kind == "award":
        competition = competitions[event.value % len(competitions)] if competitions else "WX-0"
        emit(
            month,
            {
                "type": "competition_award",
                "competition": competition,
                "worker": worker,
                "rank": 1 + event.value % 3,
            },
            day=24,
        )
    elif kind == "park":
        emit(
            month,
            {
                "type": "park_recognized",
                "park": (PARK, E2)[event.choice % 2],
                "level": ("district", "municipal", "provincial", "national")[event.value % 4],
                "established_on": _day(event.value % 6 - 3, "15"),
                "recognized_on": _day(month, "02"),
                "approved_amount_fen": (0, 1, 499999999, 500000000, 600000000)[event.choice % 5],
            },
            day=25,
        )
    elif kind == "talent":
        emit(
            month,
            {
                "type": "talent_award",
                "enterprise": enterprise,
                "award": f"THRC-{event.value % 3}",
                "approved_amount_fen": (0, 99999999, 100000000, 100000001)[event.choice % 4],
            },
            day=25,
        )
    elif kind == "invalid":
        emit(month, dict(INVALID_FACTS[event.value % len(INVALID_FACTS)]), day=26)
    elif kind in {"resubmit", "alter"} and out:
        earlier = dict(out[event.choice % len(out)])
        if kind == "alter":
            earlier["at"] = _at(month, 27, event.value)  # same id, other content
        out.append(earlier)
    elif kind == "late_register" and not any(
        f.get("worker") == worker and f["type"] == "worker_registered" for f in out
    ):
        register(plan, month)
