"""The fact vocabulary (RULES.md section 5, scenarios/FORMAT.md) as typed, validated models.

These models are the shape of a fact: field types, formats and identity check characters. Whether a
fact fits the ledger's state (registered, duplicate, month after submission, ...) is intake's policy
check (`services.intake.domain`). Strict mode: ids, codes, months and dates are strings exactly as
written; money, training hours and rank are integers (no fractions, no true/false).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from contracts.identifiers import PROVINCE_CODES, ric_problem, uscc_problem

_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIVISION = re.compile(r"[0-9]{6}")
_EXTENDED_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
MAX_TEXT = 200


_RIC_FAST = re.compile(r"[0-9]{17}[0-9X]")


def _ric_valid(value: str) -> bool:
    """Fast path of `ric_problem(value) is None` for the common, valid number: the same checks, with the
    ISO 7064 MOD 11-2 sum in one C call (13 ≡ 2 mod 11, so int(s, 13) ≡ sum(a_i * 2^(16-i)), and the
    weights 2^(17-i) are twice that). It never accepts what ric_problem refuses; anything it does not
    accept goes to ric_problem, which names the problem."""
    if not _RIC_FAST.fullmatch(value) or int(value[:2]) not in PROVINCE_CODES:
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    check = (1 - 2 * int(value[:17], 13)) % 11
    return value[17] == ("X" if check == 10 else str(check))


def _worker(value: str) -> str:
    if not _ric_valid(value) and (problem := ric_problem(value)):
        raise ValueError(f"is not a valid resident identity number: {problem}")
    return value


@lru_cache(maxsize=4096)  # a city has few enterprises and parks, each named in a great many facts
def _uscc_problem(code: str) -> str | None:
    return uscc_problem(code)


def _code(value: str) -> str:
    if problem := _uscc_problem(value):
        raise ValueError(f"is not a valid unified social credit code: {problem}")
    return value


def _month(value: str) -> str:
    if not _MONTH.fullmatch(value):
        raise ValueError(f"{value!r} is not a month YYYY-MM")
    return value


def _day(value: str) -> str:
    try:
        if not _DAY.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date YYYY-MM-DD") from None
    return value


def _timestamp(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return value


def _division(value: str) -> str:
    if not _DIVISION.fullmatch(value):
        raise ValueError(f"{value!r} is not a 6-digit division code")
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if len(value) > MAX_TEXT:
        raise ValueError(f"is longer than {MAX_TEXT} characters")
    if _CONTROL.search(value):
        raise ValueError("contains control characters or unpaired surrogates")
    return value


def _number(value: Any) -> Any:
    # bool is an int in Python, and a string is not a number: refuse both before coercion.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


WorkerId = Annotated[str, AfterValidator(_worker)]
CreditCode = Annotated[str, AfterValidator(_code)]
Month = Annotated[str, AfterValidator(_month)]
Day = Annotated[str, AfterValidator(_day)]
Timestamp = Annotated[str, AfterValidator(_timestamp)]
Division = Annotated[str, AfterValidator(_division)]
Text = Annotated[str, AfterValidator(_text)]
# The bounds come before the validator so that the JSON Schema shows them as minimum/maximum (after
# it, pydantic can only enforce them itself and writes its own "ge"/"le" names into the schema).
Hours = Annotated[float, Field(ge=0, le=744, strict=False), BeforeValidator(_number)]
Fen = Annotated[int, Field(ge=0, le=10**13)]
Category = Literal["registered_unemployed", "employment_difficulty", "graduate_unemployed"]


class Fact(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)
    id: Text
    at: Timestamp

    @property
    def at_day(self) -> str:
        """Date of `at` (YYYY-MM-DD), read in the timestamp's own offset, whatever ISO 8601 form it has."""
        if _EXTENDED_DATE.match(self.at):
            return self.at[:10]  # the usual YYYY-MM-DDThh:mm...: the date as written
        stamp = datetime.fromisoformat(self.at)
        return f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}"

    @property
    def at_month(self) -> str:
        """Month of `at`, read in the timestamp's own offset (RULES.md section 5)."""
        return self.at_day[:7]


class EnterpriseRegistered(Fact):
    type: Literal["enterprise_registered"]
    enterprise: CreditCode
    name: Text


class WorkerRegistered(Fact):
    type: Literal["worker_registered"]
    worker: WorkerId
    name: Text
    residence: Division
    residence_since: Day


class ResidenceChanged(Fact):
    type: Literal["residence_changed"]
    worker: WorkerId
    residence: Division
    since: Day


class CategoryDeclared(Fact):
    type: Literal["category_declared"]
    worker: WorkerId
    category: Category
    since: Day
    until: Day | None = None
    graduated: Day | None = None


class CategoryRevoked(Fact):
    type: Literal["category_revoked"]
    worker: WorkerId
    category: Category


class MonthlyReport(Fact):
    type: Literal["monthly_report"]
    enterprise: CreditCode
    worker: WorkerId
    month: Month
    income_fen: Fen
    hours: Hours
    district: Division


class ReportCorrected(Fact):
    type: Literal["report_corrected"]
    enterprise: CreditCode
    worker: WorkerId
    month: Month
    income_fen: Fen
    hours: Hours
    district: Division


class ReportRetracted(Fact):
    type: Literal["report_retracted"]
    enterprise: CreditCode
    worker: WorkerId
    month: Month


class ContributionPaid(Fact):
    type: Literal["contribution_paid"]
    worker: WorkerId
    month: Month
    amount_fen: Annotated[int, Field(ge=1, le=10**13)]


class ContributionRefunded(Fact):
    type: Literal["contribution_refunded"]
    worker: WorkerId
    month: Month


class TrainingCompleted(Fact):
    type: Literal["training_completed"]
    enterprise: CreditCode
    worker: WorkerId
    course: Text
    hours: Annotated[int, Field(ge=1, le=200)]
    completed_on: Day


class TrainingRetracted(Fact):
    type: Literal["training_retracted"]
    enterprise: CreditCode
    worker: WorkerId
    course: Text


class JobStandardApproved(Fact):
    type: Literal["job_standard_approved"]
    enterprise: CreditCode
    job_type: Text
    approved_on: Day


class CompetitionListed(Fact):
    type: Literal["competition_listed"]
    enterprise: CreditCode
    competition: Text
    listed_on: Day


class CompetitionAward(Fact):
    type: Literal["competition_award"]
    competition: Text
    worker: WorkerId
    rank: Annotated[int, Field(ge=1, le=10**6)]


class ParkRecognized(Fact):
    type: Literal["park_recognized"]
    park: CreditCode
    level: Literal["district", "municipal", "provincial", "national"]
    established_on: Day
    recognized_on: Day
    approved_amount_fen: Fen


class TalentAward(Fact):
    type: Literal["talent_award"]
    enterprise: CreditCode
    award: Text
    approved_amount_fen: Fen


FACT_TYPES: dict[str, type[Fact]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        EnterpriseRegistered, WorkerRegistered, ResidenceChanged, CategoryDeclared, CategoryRevoked,
        MonthlyReport, ReportCorrected, ReportRetracted, ContributionPaid, ContributionRefunded,
        TrainingCompleted, TrainingRetracted, JobStandardApproved, CompetitionListed, CompetitionAward,
        ParkRecognized, TalentAward,
    )
}

AnyFact = (
    EnterpriseRegistered | WorkerRegistered | ResidenceChanged | CategoryDeclared | CategoryRevoked
    | MonthlyReport | ReportCorrected | ReportRetracted | ContributionPaid | ContributionRefunded
    | TrainingCompleted | TrainingRetracted | JobStandardApproved | CompetitionListed | CompetitionAward
    | ParkRecognized | TalentAward
)


class FactShapeError(ValueError):
    """The fact is malformed; `reason` names the field and the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _describe(error: Any) -> str:
    field = ".".join(str(p) for p in error["loc"] if not isinstance(p, int) or len(error["loc"]) == 1)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is missing"
    elif error["type"] in {"int_type", "int_from_float"}:
        message = "must be an integer"
    elif error["type"] in {"string_type"}:
        message = "must be a string, written exactly as issued"
    message = message.replace("Input should be", "must be")
    return f"{field} {message}" if field else message


def parse_fact(raw: Any) -> AnyFact:
    """Validate one submitted fact; raises FactShapeError naming the field and the problem."""
    if not isinstance(raw, dict):
        raise FactShapeError("a fact must be a JSON object")
    kind = raw.get("type")
    model = FACT_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(FACT_TYPES))
        raise FactShapeError(f"type {kind!r} is not a fact type; known types: {known}")
    try:
        fact = model.model_validate(raw)
    except ValidationError as exc:
        raise FactShapeError("; ".join(_describe(err) for err in exc.errors(include_url=False))) from None
    _check_cross_fields(fact)
    return fact  # type: ignore[return-value]


def _check_cross_fields(fact: Fact) -> None:
    if isinstance(fact, CategoryDeclared):
        if fact.until is not None and fact.until < fact.since:
            raise FactShapeError(f"until {fact.until} is before since {fact.since}")
        if fact.category == "graduate_unemployed" and fact.graduated is None:
            raise FactShapeError("graduated is missing: it is required for graduate_unemployed")
        if fact.category != "graduate_unemployed" and fact.graduated is not None:
            raise FactShapeError(f"graduated is only for graduate_unemployed, not {fact.category}")


# RULES.md section 1: dated events (approvals, listings, recognitions) must be on or after this day.
POLICY_EFFECTIVE_DATE = "2021-05-31"
