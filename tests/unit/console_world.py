"""A small demo world for the console's tests: the three services faked behind `httpx.MockTransport`,
answering with the real access policy (services/runtime/access/policy.py) for each role's key, so the
console is tested against the same 401/403 decisions the services make."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from starlette.routing import compile_path

from flexledger.console.http import Adapters, ConsoleConfig, ReplayResult, create_http
from flexledger.console.ledger import EvidenceRefused, Proof
from flexledger.console.services_api import ServicesApi
from services.runtime.access.policy import ENDPOINTS, refusal
from services.runtime.access.principals import Principal
from tests.unit import evidence_world

BOOK = "main"
ACME = "91320213MA1XY0001L"  # platform A's enterprise
OTHER = "91320213MA1XY0002P"  # platform B's enterprise
WORKER_A = "320211199001011015"  # works through A
WORKER_B = "320211199202022028"  # works through B
KEYS: dict[str, Principal] = {
    "flk_auditor": Principal("auditor", "k-auditor"),
    "flk_operator": Principal("operator", "k-operator"),
    "flk_finance": Principal("finance", "k-finance"),
    "flk_platform_a": Principal("platform", "k-platform-a", ACME),
    "flk_statistics": Principal("statistics", "k-statistics"),
}
TRACE_PREFIX = "http://trace.viewer/zipkin/traces/"


def _decision(n: int, worker: str, enterprise: str, kind: str = "grant") -> dict[str, Any]:
    return {"after": f"fact-{n}", "kind": kind, "program": "social_insurance", "beneficiary": worker,
            "subject": worker, "ref": None, "month": f"2026-0{n}", "amount_fen": 123_456 * n,
            "rule_set": "wuxi-2021-26/1", "decision_id": f"dec-{n}", "trace_id": f"{n:032x}",
            "explanation": {"summary": "grant", "reason_zh": f"社保补贴 第{n}月 {worker}",
                            "reason_en": f"social insurance subsidy month {n} for {worker}"},
            "enterprise": enterprise}


DECISIONS = [_decision(1, WORKER_A, ACME), _decision(2, WORKER_A, ACME), _decision(3, WORKER_B, OTHER)]
ORDERS = [
    {"order_id": "o-1", "decision_id": "dec-1", "program": "social_insurance", "fiscal_year": 2026,
     "beneficiary": WORKER_A, "subject": WORKER_A, "month": "2026-01", "amount_fen": 123_456,
     "paid_fen": 123_456,
     "unpaid_fen": 0, "in_transit_fen": 0, "state": "paid"},
    {"order_id": "o-2", "decision_id": "dec-2", "program": "social_insurance", "fiscal_year": 2026,
     "beneficiary": WORKER_A, "subject": WORKER_A, "month": "2026-02", "amount_fen": 246_912, "paid_fen": 0,
     "unpaid_fen": 246_912, "in_transit_fen": 0, "state": "awaiting_budget"},
]
TOTALS = {"book": BOOK, "programmes": [
    {"program": "social_insurance", "fiscal_year": 2026, "appropriated_fen": 10_000_000,
     "committed_fen": 370_368, "paid_fen": 123_456, "available_fen": 9_629_632,
     "awaiting_budget_fen": 246_912, "awaiting_budget_orders": 1}],
    "trial_balance_fen": 0}
METRICS = (
    'flexledger_kafka_consumer_lag_messages{service="eligibility",group="g",topic="facts",partition="0"}'
    ' 3.0\n'
    'flexledger_dead_letters_total{service="eligibility",topic="facts",reason="schema"} 2.0\n'
    'flexledger_eligibility_checkpoint_age_seconds 42.5\n'
)


LETTER = "6f1c1f52-9a64-5b1e-8f0a-2a4c3c1e9b07"  # a payments dead letter not taken in yet
INTAKE_LETTER = "2d7e0c4b-8f1a-5c3d-9e2f-4a6b8c0d1e3f"  # an agency message intake dead-lettered
REDRIVEN: list[tuple[str, str, str]] = []  # (service, path, key id) of every re-drive a service was asked


def _answer(
    service: str, path: str, principal: Principal | None, query: dict[str, str], method: str = "GET"
) -> httpx.Response:
    if path == "/health":
        return httpx.Response(200, json={"status": "serving", "reasons": []})
    if path == "/metrics":
        return httpx.Response(200, text=METRICS if service == "eligibility" else "")
    for e in ENDPOINTS:
        match = compile_path(e.path)[0].match(path)
        if e.service == service and e.method == method and match:
            if principal is None:
                return httpx.Response(401, json={"outcome": "refused", "reason": "no key"})
            reason = refusal(e, principal)
            own = principal.enterprise if reason is None and e.views[principal.role] == "own" else None
            if own is not None and match.groupdict().get("beneficiary", own) != own:
                reason = "not its own nor its worker's"  # payments' check (no workers in this world)
            if reason is not None:
                return httpx.Response(403, json={"outcome": "refused", "reason": reason})
            if method == "POST":  # a dead letter's re-drive
                REDRIVEN.append((service, path, principal.key_id))
                return httpx.Response(200, json={"result": "accepted", "detail": "recorded"})
            return httpx.Response(200, json=_body(path.rsplit("/", 1)[-1], own, query))
    return httpx.Response(404, json={})


def _recorded_at(decision: dict[str, Any]) -> datetime:
    """Decision n was recorded on the first of month n + 1 (with its fact: FACTS below)."""
    return datetime.fromisoformat(f"2026-0{int(decision['decision_id'][4:]) + 1}-01T10:00:00+00:00")


def _body(what: str, own: str | None, query: dict[str, str]) -> dict[str, Any]:
    if what == "decisions":  # filtered as eligibility does: policy, `subject`, `decision_id`, `known_as_of`
        subject, known, wanted = query.get("subject"), query.get("known_as_of"), query.get("decision_id")
        return {"book": BOOK, "decisions": [
            d for d in DECISIONS if own in (None, d["enterprise"])
            and subject in (None, d["subject"], d["beneficiary"]) and wanted in (None, d["decision_id"])
            and (known is None or _recorded_at(d) <= datetime.fromisoformat(known))]}
    if what == "orders":
        return {"book": BOOK, "orders": [o for o in ORDERS if own in (None, o["beneficiary"])]}
    if what == "totals":
        return TOTALS
    if what == "trial-balance":
        return {"trial_balance_fen": 0, "balanced": True}
    if what == "entries":
        return {"entries": [{"batch_id": "b-1", "program": "social_insurance", "beneficiary": WORKER_A,
                             "amount_fen": 123_456, "outcome": "settled"}]}
    return {"book": BOOK, "last_seq": 3, "refusals": []}


def transport() -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        service = {"18081": "intake", "18082": "eligibility", "18083": "payments"}[str(request.url.port)]
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return _answer(service, request.url.path, KEYS.get(token), dict(request.url.params), request.method)

    return httpx.MockTransport(handle)


async def authenticate(authorization: str) -> Principal | None:
    return KEYS.get(authorization.removeprefix("Bearer "))


async def replay(decision_id: str, book: str) -> ReplayResult:
    fact = {"type": "monthly_report", "worker": WORKER_A, "enterprise": ACME, "income_fen": 300_000}
    return ReplayResult(True, "rule set wuxi-2021-26/1", fact, {"prev_hash": "ab" * 32, "hash": "cd" * 32})


async def kept() -> list[dict[str, Any]]:
    return [{"id": LETTER, "service": "payments", "group": "payments",
             "source": "flexledger.eligibility.decisions.v1[0]@7",
             "reason": "not a DecisionV1: amount_fen missing", "kept_at": "2026-12-03T21:00:00+00:00",
             "body_bytes": 120, "body_sha256": "0123456789abcdef", "taken_in": False,
             "redrives": [{"result": "refused", "by": "operator k-operator",
                           "at": "2026-12-03T22:00:00+00:00",
                           "detail": "not a DecisionV1: amount_fen missing"}]},
            {"id": "0b4f3a1e-5d2c-5e6f-9a8b-7c6d5e4f3a2b", "service": "eligibility", "group": "eligibility",
             "source": "flexledger.intake.facts.v1[1]@9", "reason": "flexledger_mac does not match",
             "kept_at": "2026-12-03T20:00:00+00:00", "body_bytes": 90, "body_sha256": "fedcba9876543210",
             "taken_in": True,
             "redrives": [{"result": "accepted", "by": "operator k-operator",
                           "at": "2026-12-03T23:00:00+00:00", "detail": "processed: 1 decisions"}]},
            {"id": INTAKE_LETTER, "service": "intake", "group": "intake",
             "source": "flexledger.intake.agency-facts.v1.hr_bureau[0]@3", "reason": "at is later than",
             "kept_at": "2026-12-03T19:00:00+00:00", "body_bytes": 150, "body_sha256": "00112233aabbccdd",
             "taken_in": False, "redrives": []}]


UNMASKED: list[tuple[str, str, str]] = []  # (key id, page, book) of every recorded unmasked view


async def record_unmasked(principal: Principal, page: str, book: str, shown: Any) -> None:
    UNMASKED.append((principal.key_id, page, book))


# The subject's own stream as the ledger recorded it: A's report, a contribution (no enterprise) and
# B's report about the same worker (hidden from platform A, as eligibility hides B's decisions).
FACTS = [
    {"seq": 1, "fact_id": "fact-1", "outcome": "accepted", "recorded_at": "2026-02-01T10:00:00+00:00",
     "fact": {"id": "fact-1", "type": "monthly_report", "at": "2026-02-01T09:00:00+08:00", "worker": WORKER_A,
              "enterprise": ACME, "month": "2026-01", "income_fen": 300_000, "hours": 160,
              "district": "320211"}},
    {"seq": 2, "fact_id": "fact-2", "outcome": "accepted", "recorded_at": "2026-03-01T10:00:00+00:00",
     "fact": {"id": "fact-2", "type": "contribution_paid", "at": "2026-03-01T09:00:00+08:00",
              "worker": WORKER_A, "month": "2026-02", "amount_fen": 90_000}},
    {"seq": 3, "fact_id": "fact-9", "outcome": "accepted", "recorded_at": "2026-03-02T10:00:00+00:00",
     "fact": {"id": "fact-9", "type": "monthly_report", "at": "2026-03-02T09:00:00+08:00", "worker": WORKER_A,
              "enterprise": OTHER, "month": "2026-02", "income_fen": 410_000, "hours": 170,
              "district": "320211"}},
]
# Which of vector 05's decisions (tests/unit/evidence_world.py) stands in for each decision: dec-1's
# stream names only ACME, dec-2's also another enterprise; dec-3 is not covered by a checkpoint yet.
IN_LEDGER = {"dec-1": "f4", "dec-2": "f5"}


class Ledger:
    """The ledger reads (flexledger/console/ledger.py) over evidence_world's signed ledger."""

    async def proof(self, decision_id: str, book: str) -> Proof:
        after = IN_LEDGER.get(decision_id)
        return Proof(True, evidence_world.proof(after) if after else None)

    async def evidence(self, decision_id: str, book: str, identities: bool) -> dict[str, Any]:
        after = IN_LEDGER.get(decision_id)
        if after is None:
            raise EvidenceRefused(409, "not yet covered by a signed checkpoint")
        return evidence_world.bundle(after, identities)

    async def facts(self, subject: str, book: str, known_as_of: datetime | None) -> list[dict[str, Any]]:
        return [f for f in FACTS if f["fact"]["worker"] == subject and (
            known_as_of is None or datetime.fromisoformat(str(f["recorded_at"])) <= known_as_of)]


def console_app() -> Any:
    urls = {"intake": "http://127.0.0.1:18081", "eligibility": "http://127.0.0.1:18082",
            "payments": "http://127.0.0.1:18083"}
    api = ServicesApi(httpx.AsyncClient(transport=transport()), urls)  # type: ignore[arg-type]
    adapters = Adapters(api, authenticate, replay, kept, record_unmasked, Ledger())
    return create_http(adapters, ConsoleConfig(BOOK, TRACE_PREFIX))
