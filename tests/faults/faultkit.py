"""Black-box helpers of the fault tests: a client that submits a stream of facts the way a platform
must (retrying with the same fact id until intake answers), the faults themselves, and the checks of
the ledger and payments after recovery — all through the services' public interfaces: intake's and
eligibility's HTTP APIs, payments' HTTP API (discovered from its OpenAPI document), and the Kafka topics.

What the checks hold the stack to:
- intake recorded every submission exactly once: the seqs its answers gave are 1..N, its progress is N;
- eligibility decided all of them (progress N) exactly as the engine decides the same facts in intake's
  order (the multiset FORMAT.md compares, and decision ids equal, each once);
- every decision reached the decisions topic and every money decision payments' orders topic, one order
  per grant and one recovery per clawback (the relays may repeat a message, never vary it), and the
  orders read side agrees; per money line, orders never exceed grants minus clawbacks;
- the trial balance is zero where payments' API reports one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.messages import BOOK_HTTP_HEADER, fact_subject
from contracts.topics import ALL_TOPICS, DECISIONS, ORDERS, topic_for
from flexledger.devstack.credentials import client_args
from services.runtime.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ANSWERED = {200, 201, 400, 409}  # intake's answers about a fact (accepted, duplicate, rejected, id reused)
RETRYABLE = {429, 500, 502, 503, 504}
FIELDS = ("after", "kind", "program", "beneficiary", "subject", "ref", "month", "amount_fen")
MONEY = ("grant", "clawback")
PARTITION = "(partition)"
STABLE_ORDER_FIELDS = ("event", "decision_id", "amount_fen", "program", "beneficiary")


def url(settings: Settings, service: str, path: str) -> str:
    return f"http://127.0.0.1:{getattr(settings, f'{service}_port')}{path}"


# ---- the operator key ---------------------------------------------------------------------------


_TOKENS: dict[tuple[str, str], str] = {}


def operator_token(settings: Settings) -> str | None:
    """The bootstrap operator key, found the way the pipeline runner finds it
    (`flexledger.submit.operator_key`: FLEXLEDGER_OPERATOR_KEY, else `<state_dir>/operator.key`, which
    intake writes when it starts); None while intake has no such helper (it took facts without a key)."""
    where = (settings.state_dir, str(getattr(settings, "operator_key", "")))
    if where in _TOKENS:
        return _TOKENS[where]
    try:
        from flexledger.submit import operator_key
    except ImportError:
        return None
    try:
        token = operator_key(settings)
    except Exception:  # no key yet (intake writes it when it starts): ask again next time
        return None
    _TOKENS[where] = token
    return token


def key_headers(settings: Settings) -> dict[str, str]:
    """The operator key's Authorization header: every service's API wants one (docs/design/http-auth.md)."""
    token = operator_token(settings)
    return {"Authorization": f"Bearer {token}"} if token else {}


def auth_headers(settings: Settings, book: str) -> dict[str, str]:
    headers = {BOOK_HTTP_HEADER: book}
    if token := operator_token(settings):
        headers["Authorization"] = f"Bearer {token}"
    return headers


# ---- the fact stream ----------------------------------------------------------------------------


def generated_facts(workers: int, months: int, seed: int, platforms: int = 3) -> list[dict[str, Any]]:
    """The city-scale generator's timeline (bench/generate.py), small: registrations, reports,
    corrections, retractions, contributions, refunds, trainings, resubmissions and invalid facts."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from generate import generate_facts  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(REPO / "bench"))
    return list(generate_facts(workers, platforms, months, seed))


@dataclass(frozen=True, slots=True)
class Receipt:
    """Intake's answer about one fact: its status and the seq it was (or had been) recorded at."""

    fact: dict[str, Any]
    status: int
    seq: int
    outcome: str
    duplicate: bool
    attempts: int


class IntakeGaveUp(AssertionError):
    pass


@dataclass
class StreamStats:
    submitted: int = 0
    retries: int = 0
    transport_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


async def submit_one(
    client: httpx.AsyncClient, settings: Settings, book: str, fact: dict[str, Any], stats: StreamStats,
    deadline_s: float = 180.0,
) -> Receipt:
    """POST one fact until intake answers about it. No answer (intake died, the connection broke,
    503 while it starts, 500 while the database restarts) means "unknown": the same fact, same id, is
    sent again — intake's idempotency makes that safe (200, the original seq)."""
    deadline = time.monotonic() + deadline_s
    attempts, backoff_s = 0, 0.05
    body = json.dumps(fact, ensure_ascii=False).encode()
    while True:
        attempts += 1
        problem = ""
        try:
            response = await client.post(
                url(settings, "intake", "/v1/facts"), content=body,
                headers={**auth_headers(settings, book), "Content-Type": "application/json"},
            )
        except httpx.TransportError as exc:
            stats.transport_errors += 1
            problem = f"{type(exc).__name__}"
        else:
            stats.statuses[response.status_code] += 1
            if response.status_code in ANSWERED:
                answer = response.json()
                return Receipt(fact, response.status_code, int(answer["seq"]), str(answer["outcome"]),
                               bool(answer.get("duplicate")), attempts)
            if response.status_code not in RETRYABLE:
                raise AssertionError(f"intake answered {response.status_code} to {fact.get('id')}: "
                                     f"{response.text[:300]}")
            problem = f"HTTP {response.status_code}"
            if response.status_code == 429:
                backoff_s = max(backoff_s, float(response.headers.get("Retry-After", "1")))
        if time.monotonic() > deadline:
            raise IntakeGaveUp(f"no answer about {fact.get('id')} in {deadline_s:.0f}s (last: {problem})")
        stats.retries += 1
        await asyncio.sleep(backoff_s * (0.5 + random.random()))
        backoff_s = min(backoff_s * 2, 1.0)


def lanes(facts: Sequence[dict[str, Any]], count: int) -> list[list[dict[str, Any]]]:
    """Facts dealt to `count` submitters by subject: each subject's facts stay in one lane, in order
    (as a platform sends one worker's months in order); lanes run concurrently."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for fact in facts:
        out[zlib.crc32(fact_subject(fact).encode()) % count].append(fact)
    return out


async def submit_stream(
    settings: Settings, book: str, facts: Sequence[dict[str, Any]], *, submitters: int = 6,
    stats: StreamStats | None = None, pace_per_s: float | None = None,
) -> list[Receipt]:
    """Submit `facts` to `book`: enterprise registrations first (one by one), then the rest by
    `submitters` concurrent lanes (optionally paced). Returns every receipt."""
    stats = stats if stats is not None else StreamStats()
    first = [f for f in facts if f.get("type") == "enterprise_registered"]
    rest = [f for f in facts if f.get("type") != "enterprise_registered"]
    receipts: list[Receipt] = []
    gap_s = submitters / pace_per_s if pace_per_s else 0.0
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
        for fact in first:
            receipts.append(await submit_one(client, settings, book, fact, stats))
            stats.submitted += 1

        async def lane(items: list[dict[str, Any]]) -> None:
            for fact in items:
                started = time.monotonic()
                receipts.append(await submit_one(client, settings, book, fact, stats))
                stats.submitted += 1
                if gap_s:
                    await asyncio.sleep(max(0.0, gap_s - (time.monotonic() - started)))

        await asyncio.gather(*(lane(items) for items in lanes(rest, submitters)))
    return receipts


def recorded_in_order(receipts: Iterable[Receipt]) -> list[dict[str, Any]]:
    """The facts in intake's recording order (by seq), each once; asserts one fact per seq."""
    by_seq: dict[int, dict[str, Any]] = {}
    for r in receipts:
        if r.duplicate and r.status == 200:
            # An identical resubmission, or our own retry of a fact recorded before intake died.
            known = by_seq.get(r.seq)
            if known is None:
                by_seq[r.seq] = r.fact
            continue
        known = by_seq.get(r.seq)
        assert known is None or known == r.fact, f"seq {r.seq} was given to two different facts"
        by_seq[r.seq] = r.fact
    seqs = sorted(by_seq)
    assert seqs == list(range(1, len(seqs) + 1)), f"intake's seqs have gaps: {_gaps(seqs)}"
    return [by_seq[s] for s in seqs]


def _gaps(seqs: list[int]) -> list[int]:
    have = set(seqs)
    return [s for s in range(1, (seqs[-1] if seqs else 0) + 1) if s not in have][:10]


# ---- the faults ---------------------------------------------------------------------------------


def crash_and_restart(settings: Settings, service: str, down_s: float = 0.0, *, instance: str = "") -> float:
    """kill -9 the service's process group, then start it again; seconds until healthy again."""
    from flexledger.devstack import services

    t0 = time.monotonic()
    assert services.kill_service(service, settings, instance=instance), f"{service} was not running"
    time.sleep(down_s)
    services.start_service(service, settings, timeout=120, instance=instance)
    return time.monotonic() - t0


def restart_kafka(settings: Settings, down_s: float = 2.0) -> float:
    from flexledger.devstack import kafka
    from flexledger.devstack.health import wait_healthy

    t0 = time.monotonic()
    assert kafka.stop_kafka(settings), "the broker was not running"
    time.sleep(down_s)
    kafka.start_kafka(settings)
    wait_healthy(kafka.PART, settings, 120)
    return time.monotonic() - t0


def restart_postgres(settings: Settings, down_s: float = 1.0) -> float:
    from flexledger.devstack import postgres

    t0 = time.monotonic()
    assert postgres.stop_postgres(settings), "PostgreSQL was not running"
    time.sleep(down_s)
    postgres.start_postgres(settings)
    return time.monotonic() - t0


async def with_faults(
    stream: Awaitable[list[Receipt]], inject: Callable[[], Awaitable[None]],
) -> list[Receipt]:
    """The stream's receipts, its faults injected alongside. A fault that cannot be injected (a part
    that does not come back) fails the test at once with its own error, not minutes later as a
    stream that got no answer."""
    async with asyncio.TaskGroup() as group:
        streaming = group.create_task(_awaited(stream))
        group.create_task(inject())
    return streaming.result()


async def _awaited(stream: Awaitable[list[Receipt]]) -> list[Receipt]:
    return await stream


async def answered(stats: StreamStats, count: int) -> None:
    """Until `count` submissions of the stream were answered."""
    while stats.submitted < count:
        await asyncio.sleep(0.01)


# ---- reading back -------------------------------------------------------------------------------


async def get_json(client: httpx.AsyncClient, address: str, timeout_s: float = 120.0) -> Any:
    """GET with retries: a service may be restarting, its pool reconnecting to a restarted database."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        try:
            response = await client.get(address)
            if response.status_code == 200:
                return response.json()
            last = f"{response.status_code} {response.text[:200]}"
            if response.status_code == 404:
                return None
        except httpx.TransportError as exc:
            last = type(exc).__name__
        if time.monotonic() > deadline:
            raise AssertionError(f"GET {address}: {last}")
        await asyncio.sleep(0.2)


async def eventually(what: str, probe: Callable[[], Awaitable[Any]], timeout_s: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        ok, last = await probe()
        if ok:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {str(last)[:500]}")
        await asyncio.sleep(0.25)


def norm(decision: dict[str, Any]) -> tuple[Any, ...]:
    """A decision as FORMAT.md compares it (rejections by fact id only)."""
    if decision.get("kind") == "rejected":
        return (str(decision.get("after")), "rejected")
    return tuple(
        None if decision.get(k) is None else int(decision[k]) if k == "amount_fen" else str(decision[k])
        for k in FIELDS
    )


def engine_decisions(book: str, facts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    from flexledger.engine import Engine

    return [d.to_dict() for d in Engine(book=book).run(list(facts))]


def line_of(d: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(d.get(k) for k in ("program", "beneficiary", "subject", "ref", "month"))


def catalogue_partitions(topic: str) -> int:
    """The partitions of a catalogue topic (a fresh consumer knows no topic's metadata yet)."""
    return next(t.partitions for t in ALL_TOPICS if t.name == topic)


async def topic_messages(
    settings: Settings, topic: str, book: str, since_ms: int, *, until_count: Callable[[int], bool]
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(headers, JSON body) of the messages of `book` (key prefix) on `topic` since `since_ms`,
    read until `until_count(number found)` holds or the end offsets taken at the start are passed.
    The headers also hold the record's partition, under PARTITION."""
    consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    found: list[tuple[dict[str, str], dict[str, Any]]] = []
    prefix = f"{book}/".encode()
    try:
        partitions = [TopicPartition(topic, p) for p in range(catalogue_partitions(topic))]
        consumer.assign(partitions)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        for tp in partitions:
            start = starts.get(tp)
            if start is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, start.offset)
        ends = await consumer.end_offsets(partitions)
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.key and record.key.startswith(prefix) and record.value:
                        headers = {k: v.decode() for k, v in record.headers}
                        headers[PARTITION] = str(record.partition)
                        found.append((headers, json.loads(record.value)))
            done = all([await consumer.position(tp) >= ends[tp] for tp in partitions])
            if done and until_count(len(found)):
                return found
            if done:
                ends = await consumer.end_offsets(partitions)
                if all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                    return found
    finally:
        await consumer.stop()


# ---- payments' read side (discovered, so that it survives payments' rewrite) ------------------


async def payments_paths(client: httpx.AsyncClient, settings: Settings) -> list[str]:
    spec = await get_json(client, url(settings, "payments", "/openapi.json"))
    return sorted(p for p, ops in (spec or {}).get("paths", {}).items() if "get" in ops)


def find_numbers(value: Any, needle: str, where: str = "") -> list[tuple[str, Any]]:
    """Every (path, value) under keys containing `needle`, anywhere in a JSON document."""
    out: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if needle in str(k).lower() and isinstance(v, int | float):
                out.append((f"{where}.{k}", v))
            out.extend(find_numbers(v, needle, f"{where}.{k}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(find_numbers(v, needle, f"{where}[{i}]"))
    return out


# ---- the whole check ----------------------------------------------------------------------------


@dataclass
class Verdict:
    facts: int
    decisions: int
    grants: int
    clawbacks: int
    orders_on_topic: int
    notes: list[str]


async def verify_book(
    settings: Settings, book: str, receipts: Sequence[Receipt], since_ms: int, *, timeout_s: float = 180.0,
) -> Verdict:
    notes: list[str] = []
    facts = recorded_in_order(receipts)
    expected = engine_decisions(book, facts)
    async with httpx.AsyncClient(timeout=30.0, headers=key_headers(settings)) as client:
        # intake: every submission recorded once.
        progress = await get_json(client, url(settings, "intake", f"/v1/books/{book}/progress"))
        assert progress["last_seq"] == len(facts), (progress, len(facts))

        # eligibility: everything decided, as the engine decides.
        async def decided() -> tuple[bool, Any]:
            seen = await get_json(client, url(settings, "eligibility", f"/v1/books/{book}/progress"))
            return seen["last_seq"] >= len(facts), seen

        await eventually(f"eligibility to decide {len(facts)} facts of {book}", decided, timeout_s)
        page = await get_json(client, url(settings, "eligibility", f"/v1/books/{book}/decisions"))
        assert not page["truncated"]
        piped: list[dict[str, Any]] = page["decisions"]
        missing = Counter(map(norm, expected)) - Counter(map(norm, piped))
        extra = Counter(map(norm, piped)) - Counter(map(norm, expected))
        assert not missing and not extra, (
            f"ledger differs from the engine: missing {list(missing.elements())[:5]}, "
            f"extra {list(extra.elements())[:5]}"
        )
        ids = Counter(d["decision_id"] for d in piped)
        assert ids == Counter(d["decision_id"] for d in expected), "decision ids differ from the engine's"
        assert max(ids.values(), default=1) == 1, "a decision id appears twice in the ledger"

        # the decisions topic carries every decision (repeats allowed: same id, same content).
        decisions_topic = topic_for(DECISIONS, book, settings.production_book_set).name  # a sandbox twin
        published = await topic_messages(settings, decisions_topic, book, since_ms,
                                         until_count=lambda n: n >= len(expected))
        by_id: dict[str, dict[str, Any]] = {}
        for _, body in published:
            known = by_id.setdefault(body["decision_id"], body)
            assert norm(known) == norm(body), f"decision {body['decision_id']} published with two contents"
        lost, stray = sorted(set(ids) - set(by_id)), sorted(set(by_id) - set(ids))
        assert not lost and not stray, f"decisions topic: missing {lost[:5]}, extra {stray[:5]}"
        if len(published) > len(by_id):
            notes.append(f"decisions topic: {len(published) - len(by_id)} repeats (relay at least once)")

        # payments: one order per grant, one recovery per clawback, through the orders topic.
        grants = {d["decision_id"]: d for d in expected if d["kind"] == "grant"}
        clawbacks = {d["decision_id"]: d for d in expected if d["kind"] == "clawback"}

        async def all_orders() -> tuple[bool, Any]:
            found = await topic_messages(settings, topic_for(ORDERS, book, settings.production_book_set).name,
                                         book, since_ms,
                                         until_count=lambda n: n >= len(grants) + len(clawbacks))
            ids = {b["decision_id"] for _, b in found}
            return ids >= set(grants) | set(clawbacks), found

        orders = await eventually("payments to record every grant and clawback", all_orders, timeout_s)
        per_decision: dict[str, set[str]] = defaultdict(set)
        contents: dict[str, dict[str, Any]] = {}
        for headers, body in orders:
            order_id = headers.get("ce_id") or body["order_id"]
            per_decision[body["decision_id"]].add(order_id)
            stable = {k: body.get(k) for k in STABLE_ORDER_FIELDS}
            assert contents.setdefault(order_id, stable) == stable, f"order {order_id}: two contents"
        doubled = {d: o for d, o in per_decision.items() if len(o) > 1}
        assert not doubled, f"decisions with more than one order: {list(doubled.items())[:3]}"
        unknown = set(per_decision) - set(grants) - set(clawbacks)
        assert not unknown, f"orders for decisions that are not money decisions: {sorted(unknown)[:5]}"
        created = [b for b in contents.values() if b["event"] == "order_created"]
        assert {b["decision_id"] for b in created} == set(grants)
        assert all(b["amount_fen"] == grants[b["decision_id"]]["amount_fen"] for b in created)
        recovered = [b for b in contents.values() if b["event"] == "clawback_recorded"]
        assert {b["decision_id"] for b in recovered} == set(clawbacks)

        # per money line: orders never exceed grants minus clawbacks (the engine's net entitlement).
        net: dict[tuple[Any, ...], int] = defaultdict(int)
        for d in expected:
            if d["kind"] in MONEY:
                net[line_of(d)] += d["amount_fen"] if d["kind"] == "grant" else -d["amount_fen"]
        ordered: dict[tuple[Any, ...], int] = defaultdict(int)
        for d in grants.values():
            ordered[line_of(d)] += d["amount_fen"]
        for d in clawbacks.values():
            ordered[line_of(d)] -= d["amount_fen"]
        assert ordered == net
        assert all(v >= 0 for v in net.values()), "a line's clawbacks exceed its grants"

        # payments' read side: the orders it lists, and its trial balance if it reports one.
        paths = await payments_paths(client, settings)
        orders_path = "/v1/books/{book}/orders"
        if orders_path in paths:
            listed = await get_json(client, url(settings, "payments", orders_path.format(book=book)))
            rows = listed.get("orders", []) if isinstance(listed, dict) else []
            by_decision = Counter(r.get("decision_id") for r in rows if r.get("event", "order_created") in (
                "order_created", "clawback_recorded"))
            assert max(by_decision.values(), default=1) == 1, "payments' read side lists an order twice"
            assert set(by_decision) >= set(grants), "payments' read side misses orders"
        for path in paths:
            reports = any(w in path for w in ("balance", "totals", "trial"))
            if reports and "{book}" in path and path.count("{") == 1:
                report = await get_json(client, url(settings, "payments", path.format(book=book)))
                for where, value in find_numbers(report, "trial_balance"):
                    assert value == 0, f"{path}{where} = {value}"
                    notes.append(f"{path}{where} = 0")
        if not any("trial_balance" in n for n in notes):
            notes.append("payments exposes no trial balance over HTTP: not checked")
    return Verdict(len(facts), len(piped), len(grants), len(clawbacks), len(contents), notes)


def audit_verify(settings: Settings, book: str) -> tuple[int | None, str]:
    """`flexledger audit verify --book BOOK` against these settings, if the command exists: (exit
    code, output). Only this book: the test database keeps other runs' books, made by older code."""
    env = {**os.environ, **settings.as_env()}
    probe = subprocess.run([sys.executable, "-m", "flexledger", "audit", "verify", "--help"], env=env,
                           capture_output=True, text=True, cwd=REPO, check=False, timeout=120)
    if probe.returncode != 0:
        return None, "no `flexledger audit verify` command"
    scope = ["--book", book] if "--book" in probe.stdout else []
    done = subprocess.run([sys.executable, "-m", "flexledger", "audit", "verify", *scope], env=env,
                          capture_output=True, text=True, cwd=REPO, check=False, timeout=300)
    return done.returncode, (done.stdout + done.stderr)[-2000:]
