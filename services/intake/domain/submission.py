"""One submission through intake's checks: a no-op, an acceptance or a rejection (RULES.md section 5).

The fact id is the idempotency key: the same id with the same content (the whole fact, `at`
included) is a no-op, for rejected facts too; the same id with other content is rejected.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from contracts.facts import AnyFact, FactShapeError, parse_fact
from services.intake.domain.registry import Registry

Outcome = Literal["accepted", "rejected", "duplicate"]


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
    outcome: Outcome
    fact_id: str | None
    digest: str
    fact: AnyFact | None = None
    reason: str | None = None


def _fact_id(raw: Any) -> str | None:
    """The id a decision names: a number where the id belongs is still how the submitter calls the fact
    (the fact itself is then rejected for its shape)."""
    value = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


@dataclass
class IntakeBook:
    """Intake's state for one book: accepted keys and the content digest behind every fact id.

    `last_seq` numbers the recorded submissions (accepted or rejected, never duplicates) 1, 2, 3, ...
    exactly as intake's service numbers its book's `seq`; a rejection's decision id includes it."""

    registry: Registry = field(default_factory=Registry)
    digests: dict[str, str] = field(default_factory=dict)
    last_seq: int = 0

    def check(self, raw: Any, problem: str | None = None) -> Submission:
        """Decide what a submission is, without changing anything. `problem`: a reason found before
        (a hostile value in the body, see limits.BadValue) that rejects it whatever else it holds,
        once it is known not to be a resubmission."""
        digest = content_digest(raw)
        fact_id = _fact_id(raw)
        if fact_id is not None and fact_id in self.digests:
            if self.digests[fact_id] == digest:
                return Submission("duplicate", fact_id, digest)
            return Submission("rejected", fact_id, digest,
                              reason=f"fact id {fact_id} was already used for different content")
        if problem is not None:
            return Submission("rejected", fact_id, digest, reason=problem)
        try:
            fact = parse_fact(raw)
        except FactShapeError as exc:
            return Submission("rejected", fact_id, digest, reason=exc.reason)
        problem = self.registry.problem(fact)
        if problem is not None:
            return Submission("rejected", fact_id, digest, fact=fact, reason=problem)
        return Submission("accepted", fact_id, digest, fact=fact)

    def record(self, submission: Submission) -> None:
        """Fold a checked submission into the state (a no-op for duplicates)."""
        if submission.outcome == "duplicate":
            return
        self.last_seq += 1
        if submission.fact_id is not None and submission.fact_id not in self.digests:
            self.digests[submission.fact_id] = submission.digest
        if submission.outcome == "accepted":
            assert submission.fact is not None
            self.registry.apply(submission.fact)

    def submit(self, raw: Any) -> Submission:
        submission = self.check(raw)
        self.record(submission)
        return submission
