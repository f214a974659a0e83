"""One submission through intake's checks: a no-op, an acceptance, a rejection (RULES.md section 5),
or a refusal (a platform's fact about a worker that is not its own: `relationships`).

The fact id is the idempotency key: the same id with the same content (the whole fact, `at`
included) is a no-op, for rejected facts too; the same id with other content is rejected — once:
the same other content sent again is a no-op too, answered with that rejection (issue 13: 99
identical conflicting submissions had appended 99 ledger events). Ids are scoped per submitter
(`fact_ids`); every reason is masked (`contracts.identifiers.mask_identifiers`), since it is
published and shown.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from contracts.facts import AnyFact, FactShapeError, parse_fact
from contracts.identifiers import mask_identifiers
from services.intake.domain.fact_ids import in_scope, ledger_id
from services.intake.domain.registry import Registry
from services.intake.domain.relationships import Relationships

# `refused`: 403, nothing recorded. `duplicate`: an identical resubmission, nothing recorded.
Outcome = Literal["accepted", "rejected", "duplicate", "refused"]


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_digest(raw: Any) -> str:
    """SHA-256 of the canonical JSON of a submitted fact."""
    try:
        canonical = _CANONICAL.encode(raw)
    except TypeError:  # keys of mixed types cannot be sorted (possible from YAML or Python, never from JSON)
        canonical = _CANONICAL.encode(_string_keys(raw))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k if isinstance(k, str) else f"{type(k).__name__}:{k!r}": _string_keys(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_string_keys(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Submission:
    """A checked submission. `raw`: the fact as recorded (its id scoped); `submitter`: its scope;
    `conflict`: its id was used before for other content (a `duplicate` conflict repeats one)."""

    outcome: Outcome
    fact_id: str | None
    digest: str
    fact: AnyFact | None = None
    reason: str | None = None
    raw: Any = None
    submitter: str | None = None
    conflict: bool = False


class FactIdMemory(Protocol):
    """What a book knows of the fact ids it recorded: the digest of each id's first content, and the
    other contents recorded as its conflicts. The engine keeps all of it (`FactIds`); intake's service
    keeps a bounded part and reads the rest from its event store (services/intake/known_fact_ids.py)."""

    def first_digest(self, fact_id: str) -> str | None: ...

    def is_recorded_reuse(self, fact_id: str, digest: str) -> bool: ...

    def remember_first(self, fact_id: str, digest: str) -> None: ...

    def remember_reuse(self, fact_id: str, digest: str) -> None: ...


@dataclass(slots=True)
class FactIds:
    """Every fact id of a book in memory: the engine's `FactIdMemory`."""

    digests: dict[str, str] = field(default_factory=dict)
    reused: set[tuple[str, str]] = field(default_factory=set)  # (fact id, digest) recorded as conflicts

    def first_digest(self, fact_id: str) -> str | None:
        return self.digests.get(fact_id)

    def is_recorded_reuse(self, fact_id: str, digest: str) -> bool:
        return (fact_id, digest) in self.reused

    def remember_first(self, fact_id: str, digest: str) -> None:
        self.digests[fact_id] = digest

    def remember_reuse(self, fact_id: str, digest: str) -> None:
        self.reused.add((fact_id, digest))


def submission_fact_id(raw: Any, submitter: str | None) -> str | None:
    """The fact id `IntakeBook.check` finds in a submission (None: it has none)."""
    return _fact_id(in_scope(raw, submitter), submitter)


def _fact_id(raw: Any, submitter: str | None) -> str | None:
    """The id a decision names: a number where the id belongs is still how the submitter calls the fact
    (the fact itself is then rejected for its shape), in the submitter's scope."""
    value = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return ledger_id(submitter, str(value))
    return value if isinstance(value, str) and value else None


@dataclass
class IntakeBook:
    """Intake's state for one book: accepted keys and the content digest behind every fact id.

    `last_seq` numbers the recorded submissions (accepted or rejected, never duplicates) 1, 2, 3, ...
    exactly as intake's service numbers its book's `seq`; a rejection's decision id includes it."""

    registry: Registry = field(default_factory=Registry)
    relationships: Relationships = field(default_factory=Relationships)
    fact_ids: FactIdMemory = field(default_factory=FactIds)
    last_seq: int = 0

    def check(self, raw: Any, problem: str | None = None, submitter: str | None = None) -> Submission:
        """Decide what a submission is, without changing anything. `problem`: a reason found before
        (a hostile value in the body, see limits.BadValue) that rejects it whatever else it holds,
        once it is known not to be a resubmission. `submitter`: its scope (`fact_ids.scope_of`); None
        for the operator and the engine."""
        raw = in_scope(raw, submitter)
        digest = content_digest(raw)
        fact_id = _fact_id(raw, submitter)

        def result(outcome: Outcome, reason: str | None = None, fact: AnyFact | None = None,
                   conflict: bool = False) -> Submission:
            shown = mask_identifiers(reason) if reason is not None else None
            return Submission(outcome, fact_id, digest, fact, shown, raw, submitter, conflict)

        first = self.fact_ids.first_digest(fact_id) if fact_id is not None else None
        if fact_id is not None and first is not None:
            if first == digest:
                return result("duplicate")
            if self.fact_ids.is_recorded_reuse(fact_id, digest):
                return result("duplicate", conflict=True)
            return result("rejected", f"fact id {fact_id} was already used for different content",
                          conflict=True)
        if problem is not None:
            return result("rejected", problem)
        try:
            fact = parse_fact(raw)
        except FactShapeError as exc:
            return result("rejected", exc.reason)
        if (refusal := self.relationships.problem(submitter, fact)) is not None:
            return result("refused", refusal, fact)
        if not self.relationships.supersedes(submitter, fact):
            problem = self.registry.problem(fact)
            if problem is not None:
                return result("rejected", problem, fact)
        return result("accepted", fact=fact)

    def record(self, submission: Submission) -> None:
        """Fold a checked submission into the state (a no-op for duplicates and refusals)."""
        if submission.outcome in ("duplicate", "refused"):
            return
        self.last_seq += 1
        fact_id = submission.fact_id
        # check() flags a recorded submission as a conflict exactly when its id has another first content
        if fact_id is not None and submission.conflict:
            self.fact_ids.remember_reuse(fact_id, submission.digest)
        elif fact_id is not None:
            self.fact_ids.remember_first(fact_id, submission.digest)
        if submission.outcome == "accepted":
            assert submission.fact is not None
            self.registry.apply(submission.fact)
            self.relationships.apply(submission.submitter, submission.fact)

    def submit(self, raw: Any, submitter: str | None = None) -> Submission:
        submission = self.check(raw, submitter=submitter)
        self.record(submission)
        return submission
