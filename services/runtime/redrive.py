"""Re-driving a dead letter: an operator has a record its consumer could not take in taken in again,
after a fix (new code, a key now known, a rule corrected) — `POST /v1/dead-letters/{id}/redrive`, on every
service that keeps dead letters, for operators only (services/runtime/access/policy.py).

The kept bytes (and headers) are read from the service's own store and go through the same checks as
the consumer's (`Taker.check`: the message tag, the strict model) and the same use case of the
application (`Taker.take`), in process: nothing is republished to Kafka, so no service writes a topic
it does not own. Each attempt is a `DeadLetter.Redriven` event (who, the result), recorded in the same
transaction as the record's effects (`Witness`), so a dead letter re-driven successfully is never taken
in again (409), and the ledger's own de-duplication (decision ids, (book, seq)) still applies.
A record still refused stays a dead letter, with the new reason. See docs/design/dead-letters.md.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from fastapi import FastAPI, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.runtime.access.gate import CALLER, GUARDED_RESPONSES, Caller
from services.runtime.access.policy import REDRIVE
from services.runtime.dead_letters import AlreadyRedriven, KeptRecord, Redrivable, RedriveResult, Witness
from services.runtime.eventstore import ServiceApplication
from services.runtime.writer_lock import is_fenced

log = logging.getLogger(__name__)
Checked = TypeVar("Checked")  # what a consumer's checks make of a record: a model, intake's AgencyFact


@dataclass(frozen=True, slots=True)
class Taker(Generic[Checked]):
    """How one consumer group takes in a record: `check` is its decoder's check (what it makes of the
    record, or the redacted reason it is refused: a str); `take` its use case, which records the effects
    and the witness's dead letter in one transaction (synchronous: run off the event loop)."""

    check: Callable[[KeptRecord], Checked | str]
    take: Callable[[Checked, KeptRecord, Witness], None]


class Redrive(BaseModel):
    """One re-drive of a dead letter: the latest, or the earlier successful one (409)."""

    dead_letter_id: str
    consumer_group: str
    source: str = Field(description="<topic>[<partition>]@<offset>")
    result: Literal["accepted", "refused"]
    detail: str = Field(description="what the consumer did with it, or why it still refuses it")
    by: str = Field(description="the operator's key: role and key id")
    at: datetime


class RedriveRefused(BaseModel):
    outcome: Literal["refused"] = "refused"
    reason: str


class InvalidId(BaseModel):
    """FastAPI's answer to a path whose id is not a UUID."""

    detail: list[dict[str, Any]]


def _answer(letter: Redrivable, status: int) -> JSONResponse:
    last = letter.redrives[-1]
    topic, partition, offset = letter.source
    body = Redrive.model_validate({
        "dead_letter_id": str(letter.id), "consumer_group": letter.consumer_group,
        "source": f"{topic}[{partition}]@{offset}", "result": last.result, "detail": last.detail,
        "by": last.by, "at": last.timestamp,
    })
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


def _refused(status: int, reason: str) -> JSONResponse:
    return JSONResponse(RedriveRefused(reason=reason).model_dump(), status_code=status)


class DeadLetterRedrive:
    """A service's re-drive command: its store's dead letters, taken in again by its consumer groups'
    takers; `wake` (the log followers) after something was recorded. `lock`: the service's writers' own
    lock when they have one (intake's books have one writer), else one re-drive at a time."""

    def __init__(self, app: Callable[[], ServiceApplication], takers: Mapping[str, Taker[Any]],
                 wake: Callable[[], None], lock: asyncio.Lock | None = None) -> None:
        self.app = app  # the store is open only once the service has started
        self.takers = takers
        self.wake = wake
        # One re-drive at a time in a process; the store decides between processes.
        self.lock = lock if lock is not None else asyncio.Lock()

    def _load(self, letter_id: uuid.UUID) -> Redrivable | None:
        try:
            letter: Any = self.app().repository.get(letter_id)
        except AggregateNotFoundError:
            return None
        return letter if isinstance(letter, Redrivable) else None

    def _attempt(self, letter: Redrivable, taker: Taker[Any], by: str) -> Redrivable:
        """Check and take in the letter's record; the letter as recorded afterwards. Raises
        `AlreadyRedriven`."""

        def witness(result: RedriveResult, detail: str) -> Aggregate:
            fresh = self._load(letter.id)
            assert fresh is not None, "a dead letter is never deleted"
            fresh.redriven(by, result, detail)
            assert isinstance(fresh, Aggregate)
            return fresh

        record = letter.kept_record()
        checked = taker.check(record)
        if isinstance(checked, str):
            self.app().record(witness("refused", checked))
        else:
            taker.take(checked, record, witness)
        found = self._load(letter.id)
        assert found is not None
        return found

    async def __call__(self, letter_id: uuid.UUID, by: str) -> JSONResponse:
        async with self.lock:
            letter = await asyncio.to_thread(self._load, letter_id)
            if letter is None:
                return _refused(404, "no dead letter with this id in this service")
            if letter.accepted:
                return _answer(letter, 409)
            taker = self.takers.get(letter.consumer_group)
            if taker is None:
                return _refused(422, f"dead letters of consumer group {letter.consumer_group} cannot be "
                                     "re-driven")
            if (reason := letter.unredrivable()) is not None:
                return _refused(422, reason)
            try:
                done = await asyncio.to_thread(self._attempt, letter, taker, by)
            except AlreadyRedriven as exc:  # another process took it in meanwhile
                return _answer(exc.letter, 409)
            except Exception as exc:  # nothing was recorded (one transaction): the operator may try again
                if is_fenced(exc):  # a former active instance, about to stop: expected, no trace
                    log.warning("dead letter %s not re-driven: this instance lost its writer lock", letter_id)
                    return _refused(503, "this instance lost its writer lock to another; nothing was done: "
                                         "send it to the active instance")
                log.exception("re-driving dead letter %s failed", letter_id)
                return _refused(503, "the re-drive could not be recorded; nothing was done: retry")
        last = done.redrives[-1]
        log.warning("dead letter %s (%s) re-driven by %s: %s, %s", letter_id, letter.consumer_group, by,
                    last.result, last.detail)
        self.wake()
        return _answer(done, 200 if last.result == "accepted" else 422)


REDRIVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **GUARDED_RESPONSES,
    200: {"model": Redrive, "description": "taken in: `detail` says what the consumer did with it"},
    404: {"model": RedriveRefused, "description": "no dead letter with this id in this service"},
    409: {"model": Redrive, "description": "re-driven successfully before (that re-drive): nothing done"},
    422: {"model": Redrive | RedriveRefused | InvalidId,
          "description": "still refused (a Redrive): `detail` is the new reason, recorded; it stays a dead "
                         "letter and may be re-driven again after another fix. Or (a refusal, nothing "
                         "recorded) its consumer group's dead letters cannot be re-driven, or this one "
                         "cannot be whatever is fixed (e.g. intake kept only the start of it). Or the id "
                         "is not a UUID"},
    503: {"model": RedriveRefused, "description": "the store could not record it; nothing was done: retry"},
}


LETTER_ID = Path(description="the dead letter's id (DeadLetterV1.dead_letter_id)")


def add_redrive_route(http: FastAPI, redrive: DeadLetterRedrive | None) -> None:
    """The re-drive command on a service's API (`redrive` None only to describe it)."""

    @http.post(REDRIVE, responses=REDRIVE_RESPONSES, response_model=Redrive)
    async def redrive_dead_letter(
        dead_letter_id: uuid.UUID = LETTER_ID,
        who: Caller = CALLER,
    ) -> JSONResponse:
        """Operator: take a dead letter's kept record in again, through the consumer's own checks and
        use case, after a fix. Recorded on the dead letter with the operator's key and the result; once
        taken in, never again."""
        assert redrive is not None
        principal = who.principal
        return await redrive(dead_letter_id, f"{principal.role} {principal.key_id}")
