"""What payments' HTTP API accepts and answers: the command bodies (strict, bounded), the command
results, and the OpenAPI entries of the commands (statuses, and links to the reads that show what a
command changed)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.decisions import MoneyProgramme
from services.payments.domain.bounds import (
    BENEFICIARY_PATTERN,
    FIRST_FISCAL_YEAR,
    LAST_FISCAL_YEAR,
    MAX_FEN,
    MAX_TEXT_CHARS,
)
from services.runtime.http_bounds import BODY_REFUSALS, Text

# Bodies: strict JSON types (no "5" for a number, no 5.0 or true for an integer), no unknown field,
# every bound of `domain.bounds` in the schema too (so that OpenAPI shows it); the clock-dependent
# bound of a fiscal year is the use case's (InvalidCommand, answered like a schema violation).
STRICT = ConfigDict(extra="forbid", strict=True)
Reference = Annotated[Text, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
Beneficiary = Annotated[str, Field(pattern=BENEFICIARY_PATTERN,
                                   description="resident identity number or unified social credit code")]


class AppropriationIn(BaseModel):
    model_config = STRICT
    program: MoneyProgramme = Field(description="a programme of RULES.md section 4 that carries money")
    fiscal_year: int = Field(ge=FIRST_FISCAL_YEAR, le=LAST_FISCAL_YEAR,
                             description="calendar year (China's fiscal year); at most next year")
    amount_fen: int = Field(ge=0, le=MAX_FEN, description="the appropriation in force: a total, not a delta")
    reference: Reference | None = Field(None, description="the budget document it rests on")


class RepaymentIn(BaseModel):
    model_config = STRICT
    beneficiary: Beneficiary
    amount_fen: int = Field(gt=0, le=MAX_FEN)
    reference: Reference = Field(description="bank reference: the idempotency key")


class CommandResult(BaseModel):
    """What an operator command did: `recorded`, `unchanged` (200) or `refused` by the book (409)."""

    outcome: Literal["recorded", "unchanged", "refused"]
    book: str
    reason: str | None = Field(None, description="refused: why (identity numbers masked)")


class AppropriationResult(CommandResult):
    program: str
    fiscal_year: int
    previous_fen: int
    appropriated_fen: int
    released_orders: int | None = Field(None, description="orders released from the awaiting queue")


class RepaymentResult(CommandResult):
    reference: str
    amount_fen: int


_STATUS = {"recorded": 200, "unchanged": 200, "refused": 409}


def status_of(outcome: str) -> int:
    return _STATUS.get(outcome, 200)


def command_responses(
    model: type[CommandResult], refused: str, links: dict[str, Any],
) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": "recorded, or unchanged", "links": links},
            409: {"model": model, "description": refused, "links": links}, **BODY_REFUSALS}


def _link(operation: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: where to read what a command changed (clients and stateful fuzzing follow it)."""
    return {"operationId": operation, "parameters": {"book": "$request.path.book", **parameters}}


APPROPRIATION_LINKS = {
    "Totals": _link("totals_v1_books__book__totals_get", fiscal_year="$request.body#/fiscal_year"),
    "Reconciliation": _link("reconciliation_v1_books__book__reconciliation_get"),
}
REPAYMENT_LINKS = {
    "Balance": _link("balance_v1_books__book__balances__beneficiary__get",
                     beneficiary="$request.body#/beneficiary"),
    "Progress": _link("progress_v1_books__book__progress_get"),
}
