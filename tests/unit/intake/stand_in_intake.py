"""A STAND-IN for intake's bulk endpoint, for the unit tests of `flexledger submit`.

It is not the intake service and proves nothing about it: it answers `POST /v1/facts/bulk` in
process, behind `httpx.MockTransport`, by composing the pure domain modules (authenticate, authorize,
parse_bulk, the rate limiter, IntakeBook) the way the brief describes the real endpoint. The real
endpoint lives in services/intake/entrypoints and is tested there.

Also the shared test data of tests/unit/intake: valid identifiers and a few facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from services.intake.domain.authorization import authorize
from services.intake.domain.bulk import parse_bulk
from services.intake.domain.limits import BadInput, Limits, RateLimiter
from services.intake.domain.submission import IntakeBook
from services.runtime.access.credentials import (
    ApiKey,
    KeyRing,
    authenticate,
    bearer_token,
    issue_key,
    new_api_key,
)
from services.runtime.access.principals import Role

E1 = "91320213MA1XY0001L"  # the platform of the acceptance vectors
E2 = "91320213MA1XY0002P"
PARK = "91320205MA1PK00096"
W1 = "320213197804121019"
W2 = "320213199001011237"
T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def enterprise_registered(fact_id: str, enterprise: str = E1) -> dict[str, Any]:
    return {"id": fact_id, "type": "enterprise_registered", "at": "2021-06-01T09:00:00+08:00",
            "enterprise": enterprise, "name": "锡城到家服务平台"}


def worker_registered(fact_id: str, worker: str = W1) -> dict[str, Any]:
    return {"id": fact_id, "type": "worker_registered", "at": "2021-06-01T09:30:00+08:00", "worker": worker,
            "name": "测试甲", "residence": "320213", "residence_since": "2015-01-01"}


def monthly_report(fact_id: str, month: str = "2021-06", enterprise: str = E1, worker: str = W1,
                   income_fen: Any = 210000) -> dict[str, Any]:
    return {"id": fact_id, "type": "monthly_report", "at": "2021-07-05T10:00:00+08:00",
            "enterprise": enterprise, "worker": worker, "month": month, "income_fen": income_fen,
            "hours": 168, "district": "320213"}


def counting_random(seed: int = 0) -> Any:
    """A deterministic stand-in for secrets.token_bytes."""
    state = [seed]

    def random_bytes(n: int) -> bytes:
        state[0] += 1
        return bytes((state[0] * 31 + i * 7) % 256 for i in range(n))

    return random_bytes


@dataclass
class StandInIntake:
    """Stand-in for the real bulk endpoint; `refuse_next` queues whole-request answers (429, 503, ...)."""

    limits: Limits = field(default_factory=lambda: Limits(max_bulk_rows=50, rate_burst_facts=1_000))
    ring: KeyRing = field(default_factory=KeyRing)
    books: dict[str, IntakeBook] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    refuse_next: list[int] = field(default_factory=list)
    now_s: float = 0.0

    def __post_init__(self) -> None:
        self.rate = RateLimiter(self.limits.rate_burst_facts, self.limits.rate_facts_per_s)

    def issue(self, role: Role, enterprise: str | None = None) -> ApiKey:
        key = new_api_key()
        self.ring.apply(issue_key(self.ring, role=role, enterprise=enterprise, at=T0, key=key))
        return key

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method != "POST" or request.url.path != "/v1/facts/bulk":
            return httpx.Response(404, json={"reason": "no such endpoint"})
        if self.refuse_next:
            status = self.refuse_next.pop(0)
            return httpx.Response(status, headers={"Retry-After": "2"}, json={"reason": f"stand-in {status}"})
        principal = authenticate(self.ring, bearer_token(request.headers.get("Authorization")), now=T0)
        if principal is None:
            return httpx.Response(401, json={"reason": "a valid API key is required"})
        try:
            rows = parse_bulk(request.content, request.headers.get("Content-Type"), self.limits)
        except BadInput as exc:
            return httpx.Response(exc.status, json={"where": exc.where, "reason": exc.reason})
        decision = self.rate.take(principal.key_id, now_s=self.now_s, cost=len(rows))
        if not decision.allowed:
            return httpx.Response(429, headers={"Retry-After": decision.retry_after_header},
                                  json={"reason": "too many facts"})
        book = self.books.setdefault(request.headers.get("X-Flexledger-Book", "main"), IntakeBook())
        results = [self._row(book, principal, row) for row in rows]
        counts = {name: sum(r["outcome"] == outcome for r in results)
                  for name, outcome in (("accepted", "accepted"), ("duplicates", "duplicate"))}
        counts["rejected"] = len(results) - counts["accepted"] - counts["duplicates"]
        return httpx.Response(200, content=json.dumps({"results": results, **counts}),
                              headers={"Content-Type": "application/json"})

    @staticmethod
    def _row(book: IntakeBook, principal: Any, row: Any) -> dict[str, Any]:
        def result(outcome: str, status: int, reason: str | None = None) -> dict[str, Any]:
            return {"row": row.number, "fact_id": row.fact_id, "outcome": outcome, "status": status,
                    "reason": reason}

        if row.fact is None:
            return result("rejected", 400, row.reason)
        if (refusal := authorize(principal, row.fact)) is not None:
            return result("rejected", refusal.status, refusal.reason)
        conflict = row.fact_id is not None and book.fact_ids.first_digest(row.fact_id) is not None
        submission = book.submit(row.fact)
        if submission.outcome == "accepted":
            return result("accepted", 201)
        if submission.outcome == "duplicate":
            return result("duplicate", 200)
        return result("conflict" if conflict else "rejected", 409 if conflict else 400, submission.reason)
