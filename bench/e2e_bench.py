"""End-to-end benchmark (issue 7): the city-scale timeline through the running stack, read against
what this machine's broker and database can do at all.

Phases, in one run on one machine:

1. throughput — the generator's facts (bench/generate.py) pushed through intake as fast as it takes
   them (the bulk endpoint, JSON Lines, when intake has one; else concurrent single POSTs). Printed:
   facts/s accepted by intake, facts/s decided end to end (first submission until eligibility's
   progress covers every seq), decisions/s and payment orders/s (first submission until the last
   decision / order arrived on its topic), and CPU seconds per process (where the two cores went).
2. latency — a fixed offered rate (default 500 facts/s for 60 s), open loop, per fact: single POSTs
   (and, with --latency-modes, bulk requests every 100 ms). Each fact's send time is recorded by the
   client; a consumer of the decisions and orders topics timestamps arrivals in the same process and
   clock. fact→decision is the first decision naming the fact (`after`); fact→order the order of a
   decision of that fact. p50/p95/p99 of both.
3. `flexledger audit verify` over the ledger so made, when the command exists: events/s.
4. raw limits (bench/raw_limits.py) for as many messages/rows as phase 1 had facts, and the ratios.

Facts are sent by `FactClient`, a small keep-alive HTTP/1.1 client on asyncio streams (httpx cost
about as much CPU per request as intake did, on the cores being measured); it needs answers with a
Content-Length, as intake's are. The latency phase stays open loop: a fact's latency counts from when it
was due, and one subject's facts are sent in order, each after the previous one was answered.

The stack is its own (ports 39092/39093, 35432, 38081-38083, state in var/bench, wiped at the start;
--port-offset N shifts them all and uses var/bench-N)
unless --use-running (the stack of `flexledger dev env`). --zipkin starts a Zipkin server (port 39411)
and the services export their spans to it, as on `flexledger dev up`: the traces their sampler keeps
(at most --traces-per-s new traces a second per service, default the services' own; 0: every trace).
The cost of exported tracing is the CPU per fact with it minus without it (Zipkin's own CPU is printed
apart). --profile SERVICE runs
that service under yappi (all threads, CPU clock) and prints its top functions; `pip install yappi` first.

    python bench/e2e_bench.py                                   # 100,000 facts, 500/s for 60 s
    python bench/e2e_bench.py --facts 20000 --duration 20 --latency-modes single,bulk
    python bench/e2e_bench.py --facts 50000 --skip-latency --profile eligibility
    python bench/e2e_bench.py --facts 100000 --skip-latency --skip-raw --checkpoint-interval-s 10 \
        --json-out k100.json                                    # the 100,000-fact run, tree built
    python bench/e2e_bench.py --workers 100000 --months 12 --facts 2000000 --skip-latency --skip-raw \
        --baseline k100.json                                    # the city year, CPU against k100's
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from itertools import islice
from pathlib import Path
from typing import Any

from contracts.messages import BOOK_HTTP_HEADER

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from generate import generate_facts  # noqa: E402
from raw_limits import RawLimits, describe, measure  # noqa: E402

from contracts.messages import fact_subject  # noqa: E402
from contracts.topics import DECISIONS, FACTS, ORDERS, sandbox_twin  # noqa: E402
from flexledger.bank_simulator import BankSimulator  # noqa: E402
from services.runtime.settings import Settings  # noqa: E402

TARGET_FACTS_PER_S = 2_000
TARGET_P99_DECISION_MS = 500
TARGET_AUDIT_EVENTS_PER_S = 20_000
BULK_ROWS = 1_000
EXPORT_DELAY_S = 6  # the batch span processor sends what it holds every 5 s
SERVICES = ("intake", "eligibility", "payments")
log = logging.getLogger("e2e_bench")


def bench_settings(port_offset: int = 0) -> Settings:
    """The bench stack's settings; `port_offset` shifts every port and the state dir, so that two
    benchmarks on one machine do not share a stack."""
    o = port_offset
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{39092 + o}", kafka_controller_port=39093 + o, pg_port=35432 + o,
        intake_port=38081 + o, eligibility_port=38082 + o, payments_port=38083 + o, zipkin_port=39411 + o,
        state_dir=str(ROOT / "var" / (f"bench-{o}" if o else "bench")),
    )
    names = {f.name for f in fields(Settings)}
    if "payments_default_appropriations" in names:  # orders are committed, not left awaiting budget
        settings = replace(settings, payments_default_appropriations="*=100000000000000")
    return settings


def url(settings: Settings, service: str, path: str) -> str:
    return f"http://127.0.0.1:{getattr(settings, f'{service}_port')}{path}"


def percentiles(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1]}


# ---- the stack ----------------------------------------------------------------------------------


def _serve_profiled(module: str, out: str) -> None:
    """Run `python -m <module>` under yappi (every thread, CPU clock); on exit write pstats to `out`
    and the top functions to `out`.txt. Started by --profile in place of the plain service."""
    import runpy
    import signal

    import yappi  # type: ignore[import-not-found]

    # uvicorn re-raises the SIGTERM it handled once it has shut down; exit through `finally` then.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    yappi.set_clock_type("cpu")
    yappi.start(builtins=False, profile_threads=True)
    try:
        sys.argv = [module]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        yappi.stop()
        stats = yappi.get_func_stats()
        stats.save(out, type="pstat")
        import pstats

        with open(out + ".txt", "w") as text:
            for key in ("tottime", "cumulative"):
                text.write(f"==== by {key}\n")
                pstats.Stats(out, stream=text).sort_stats(key).print_stats(45)


def start_stack(settings: Settings, fresh: bool, profile: str | None, zipkin: bool = False) -> None:
    """With `zipkin`, a Zipkin server too, and the services export their spans to it (as `dev up`)."""
    from flexledger import devstack
    from flexledger.devstack import processes
    from flexledger.devstack import zipkin as zipkin_server
    from flexledger.devstack.paths import REPO_ROOT, log_file, pid_file
    from flexledger.devstack.services import service_env

    if fresh:
        stop_stack(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
    if zipkin:
        zipkin_server.start_zipkin(settings)
    timings = devstack.start_infra(settings)
    if zipkin:
        devstack.wait_healthy(zipkin_server.PART, settings, 300)
    log.info("infra up: %s", " ".join(f"{k}={v:.1f}s" for k, v in timings.items()))
    for name in SERVICES:
        if name == profile:
            env = service_env(name, settings)  # as the service's own Kafka principal
            out = str(Path(settings.state_dir) / f"profile-{name}.pstat")
            processes.spawn_detached(
                [sys.executable, str(Path(__file__).resolve()), "--serve-profiled", f"services.{name}", out],
                log_path=log_file(settings, name), pid_path=pid_file(settings, name), env=env, cwd=REPO_ROOT,
            )
            devstack.wait_healthy(name, settings, 120)
        else:
            devstack.start_service(name, settings, timeout=120)
    log.info("services up")


def stop_stack(settings: Settings) -> None:
    from flexledger import devstack

    devstack.down(settings)


def process_pids(settings: Settings) -> dict[str, list[int]]:
    """pids per part: the services, the broker, and PostgreSQL's postmaster with its backends."""
    from flexledger.devstack import health, postgres

    out: dict[str, list[int]] = {}
    for part in (*SERVICES, "kafka", "zipkin"):
        pid = health.part_pid(part, settings)
        out[part] = [pid] if pid else []
    master = postgres.postgres_pid(settings)
    if master:
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = (entry / "stat").read_text()
                    if int(stat[stat.rfind(")") + 2:].split()[1]) == master:
                        children.append(int(entry.name))
        out["postgres"] = [master, *children]
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            rest = stat[stat.rfind(")") + 2:].split()
            total += (int(rest[11]) + int(rest[12])) / ticks
    return total


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The process's peak resident set (VmHWM: the kernel's high-water mark, so no peak between two
    samples is missed), or with field="VmRSS" its resident set now, in MB; 0 when it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


class CpuMeter:
    """CPU seconds each part used between start() and stop() (PostgreSQL backends that come and go in
    between are sampled every second), and each service's peak RSS."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.first: dict[str, dict[int, float]] = {}
        self.last: dict[str, dict[int, float]] = {}
        self.peak_rss_mb: dict[str, float] = {}
        self.start_rss_mb: dict[str, float] = {}  # each service's RSS when the facts start: its baseline
        self.task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        for part, pids in process_pids(self.settings).items():
            for pid in pids:
                used = cpu_seconds([pid])
                self.first.setdefault(part, {}).setdefault(pid, used)
                self.last.setdefault(part, {})[pid] = used
            if part in (*SERVICES, "kafka") and pids:
                self.peak_rss_mb[part] = max(self.peak_rss_mb.get(part, 0.0), peak_rss_mb(pids[0]))
                self.start_rss_mb.setdefault(part, peak_rss_mb(pids[0], "VmRSS"))

    async def _loop(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self.client_start = resource.getrusage(resource.RUSAGE_SELF)
        self._sample()
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> dict[str, float]:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self._sample()
        out = {part: sum(self.last[part][pid] - self.first[part].get(pid, 0.0) for pid in self.last[part])
               for part in self.last}
        now = resource.getrusage(resource.RUSAGE_SELF)
        out["bench client"] = (now.ru_utime + now.ru_stime) - (self.client_start.ru_utime
                                                                + self.client_start.ru_stime)
        return out


# ---- watching the topics ------------------------------------------------------------------------


@dataclass
class Seen:
    """Arrivals on the decisions and orders topics (time.time() when the consumer got them)."""

    # decision id -> (arrival, book, after, kind)
    decisions: dict[str, tuple[float, str, str | None, str]] = field(default_factory=dict)
    orders: dict[str, tuple[float, str]] = field(default_factory=dict)  # decision id -> (t, book)
    first_decision: dict[tuple[str, str | None], float] = field(default_factory=dict)  # (book, fact id) -> t
    facts: dict[str, int] = field(default_factory=dict)  # book -> messages on the facts topic
    last_fact: dict[str, float] = field(default_factory=dict)  # book -> arrival of its last one

    def of_book(self, book: str) -> tuple[list[float], list[float]]:
        decided = [t for t, b, _, _ in self.decisions.values() if b == book]
        ordered = [t for t, b in self.orders.values() if b == book]
        return decided, ordered


class Watcher:
    def __init__(self, settings: Settings, books: set[str]) -> None:
        self.settings = settings
        self.books = books
        self.prefixes = tuple(f"{b}/".encode() for b in books)
        self.seen = Seen()
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        await self.ready.wait()

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from flexledger.devstack.credentials import client_args

        # As admin: it reads the facts, decisions and orders topics, which no other principal reads all of,
        # and their sandbox twins (the bench's books are sandbox books unless production_books names them).
        consumer = AIOKafkaConsumer(**client_args(self.settings, "admin"), enable_auto_commit=False,
                                    max_poll_records=5000, fetch_max_wait_ms=20)
        watched = [(topic, production) for production in (FACTS, DECISIONS, ORDERS)
                   for topic in (production, sandbox_twin(production))]
        kind = {topic.name: production.name for topic, production in watched}  # a twin: its production's
        await consumer.start()
        try:
            tps = [TopicPartition(topic.name, p) for topic, _ in watched for p in range(topic.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(tp)
            self.ready.set()
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for tp, records in batch.items():
                    for record in records:
                        if not (record.key and record.key.startswith(self.prefixes) and record.value):
                            continue
                        if kind[tp.topic] == FACTS.name:  # no need to parse: the key says the book
                            book = record.key.split(b"/", 1)[0].decode()
                            self.seen.facts[book] = self.seen.facts.get(book, 0) + 1
                            self.seen.last_fact[book] = now
                            continue
                        body = json.loads(record.value)
                        if kind[tp.topic] == DECISIONS.name:
                            self._decision(now, body)
                        else:
                            self.seen.orders.setdefault(body["decision_id"], (now, body["book"]))
        finally:
            await consumer.stop()

    def _decision(self, now: float, body: dict[str, Any]) -> None:
        if body["decision_id"] in self.seen.decisions:
            return
        self.seen.decisions[body["decision_id"]] = (now, body["book"], body.get("after"), body["kind"])
        self.seen.first_decision.setdefault((body["book"], body.get("after")), now)

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


# ---- submitting ---------------------------------------------------------------------------------


def _token(settings: Settings) -> str | None:
    try:
        from flexledger.submit import operator_key
    except ImportError:
        return None
    try:
        return operator_key(settings)
    except Exception:
        return None


def headers(settings: Settings, book: str, content_type: str) -> dict[str, str]:
    out = {BOOK_HTTP_HEADER: book, "Content-Type": content_type}
    if token := _token(settings):
        out["Authorization"] = f"Bearer {token}"
    return out


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]  # names in lower case
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class FactClient:
    """The load generator's HTTP client: keep-alive HTTP/1.1 on asyncio streams, at most
    `max_connections` requests at once, each on a connection of its own. Bodies go with a
    Content-Length and answers must come with one (intake's do). httpx spent about as much CPU per
    request as intake did handling it, on the two cores being measured; this spends a small fraction.
    Failures raise OSError (TimeoutError, ConnectionError) or asyncio.IncompleteReadError."""

    IDLE_S = 4.0  # uvicorn closes a connection idle for 5 s: never reuse one that may be closing
    TIMEOUT_S = 300.0

    def __init__(self, settings: Settings, max_connections: int) -> None:
        self.host, self.port = "127.0.0.1", settings.intake_port
        self.slots = asyncio.Semaphore(max_connections)
        self.idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> FactClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _, _, writer in self.idle:
            writer.close()
        self.idle.clear()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                   f"Content-Length: {len(body)}\r\n{head}\r\n").encode("latin-1") + body
        async with self.slots:
            while self.idle:
                since, reader, writer = self.idle.pop()
                if time.monotonic() - since < self.IDLE_S:
                    break
                writer.close()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                async with asyncio.timeout(self.TIMEOUT_S):
                    writer.write(request)
                    status, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                    fields = (line.partition(":") for line in lines if line)
                    answer_headers = {name.strip().lower(): value.strip() for name, _, value in fields}
                    content = await reader.readexactly(int(answer_headers["content-length"]))
            except BaseException:
                writer.close()
                raise
            if answer_headers.get("connection", "").lower() == "close":
                writer.close()
            else:
                self.idle.append((time.monotonic(), reader, writer))
            return Answer(int(status.split(" ", 2)[1]), answer_headers, content)


TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError)


async def has_bulk(client: httpx.AsyncClient, settings: Settings) -> bool:
    spec = (await client.get(url(settings, "intake", "/openapi.json"))).json()
    return "/v1/facts/bulk" in spec.get("paths", {})


@dataclass
class Submission:
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    retries: int = 0
    sent_at: dict[str, float] = field(default_factory=dict)  # fact id -> when its request left
    seq_of: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> fact
    request_s: list[float] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        self.rows += 1
        if outcome == "accepted":
            self.accepted += 1
        elif outcome == "duplicate":
            self.duplicates += 1
        else:
            self.rejected += 1


async def post_bulk(
    client: FactClient, book: str, facts: Sequence[dict[str, Any]], out: Submission, hdrs: dict[str, str],
) -> None:
    body = "".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) + "\n" for f in facts).encode()
    while True:
        sent = time.time()
        try:
            response = await client.post("/v1/facts/bulk", body, hdrs)
        except TRANSPORT_ERRORS:
            out.retries += 1
            await asyncio.sleep(0.2)
            continue
        if response.status_code in (429, 503):
            out.retries += 1
            await asyncio.sleep(float(response.headers.get("retry-after", "0.2")))
            continue
        break
    out.request_s.append(time.time() - sent)
    if response.status_code != 200:
        raise RuntimeError(f"bulk answered {response.status_code}: {response.text[:300]}")
    for fact in facts:
        out.sent_at.setdefault(str(fact.get("id")), sent)
    for fact, row in zip(facts, response.json()["results"], strict=True):
        out.count(row["outcome"])
        if row.get("seq") is not None and row["outcome"] != "duplicate":
            out.seq_of[int(row["seq"])] = fact


async def post_single(
    client: FactClient, book: str, fact: dict[str, Any], out: Submission, hdrs: dict[str, str],
) -> None:
    body = json.dumps(fact, ensure_ascii=False).encode()
    while True:
        sent = time.time()
        try:
            response = await client.post("/v1/facts", body, hdrs)
        except TRANSPORT_ERRORS:
            out.retries += 1
            await asyncio.sleep(0.2)
            continue
        if response.status_code in (429, 500, 503):
            out.retries += 1
            await asyncio.sleep(float(response.headers.get("retry-after", "0.2")))
            continue
        break
    out.request_s.append(time.time() - sent)
    if response.status_code not in (200, 201, 400, 409):
        raise RuntimeError(f"intake answered {response.status_code}: {response.text[:300]}")
    answer = response.json()
    out.sent_at.setdefault(str(fact.get("id")), sent)
    out.count("duplicate" if answer.get("duplicate") else str(answer["outcome"]))
    if not answer.get("duplicate"):
        out.seq_of[int(answer["seq"])] = fact


def chunks(items: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def wait_decided(client: httpx.AsyncClient, settings: Settings, book: str, timeout_s: float) -> float:
    """time.time() when eligibility's progress first covered intake's last seq."""
    token = _token(settings)  # every service wants a key (docs/design/http-auth.md)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    last = (await client.get(url(settings, "intake", f"/v1/books/{book}/progress"), headers=auth)).json()[
        "last_seq"]
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(httpx.HTTPError):
            progress = url(settings, "eligibility", f"/v1/books/{book}/progress")
            seen = (await client.get(progress, headers=auth)).json()
            if seen["last_seq"] >= last:
                return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"eligibility did not decide book {book} in {timeout_s:.0f}s")
        await asyncio.sleep(0.25)  # each poll costs eligibility CPU: not too often


class ProgressSampler:
    """Eligibility's progress on a book (its last decided seq) every half second, from the first
    submission on: when each tenth of the facts was decided, so that the rate late in the run can be
    read against the rate early in it (issue 15.1: a flat cost per fact)."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings, book: str) -> None:
        token = _token(settings)
        self.client = client
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.progress = url(settings, "eligibility", f"/v1/books/{book}/progress")
        self.samples: list[tuple[float, int]] = []  # (time.time(), last decided seq)
        self.task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                seen = (await self.client.get(self.progress, headers=self.auth)).json()
                self.samples.append((time.time(), int(seen["last_seq"])))
            await asyncio.sleep(0.5)

    def start(self, t0: float) -> None:
        self.samples.append((t0, 0))
        self.task = asyncio.create_task(self._loop())

    async def stop(self, t_end: float, last_seq: int) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.samples.append((t_end, last_seq))

    def when(self, seq: float) -> float:
        """When `seq` was decided, interpolated between the two samples around it."""
        before = self.samples[0]
        for t, done in self.samples:
            if done >= seq:
                if done == before[1]:
                    return t
                return before[0] + (t - before[0]) * (seq - before[1]) / (done - before[1])
            before = (t, done)
        return self.samples[-1][0]

    def tenths(self, last_seq: int) -> dict[str, float]:
        """Facts/s decided over the first and the last tenth of the seqs, and the ratio last/first."""
        tenth = last_seq / 10
        first_s = max(self.when(tenth) - self.samples[0][0], 1e-9)
        last_s = max(self.samples[-1][0] - self.when(last_seq - tenth), 1e-9)
        first, last = tenth / first_s, tenth / last_s
        return {"first_10pct_per_s": first, "last_10pct_per_s": last, "last_to_first": last / first}


def expected_decisions(book: str, out: Submission) -> list[dict[str, Any]]:
    """The engine's decisions for the facts in intake's recording order."""
    from flexledger.engine import Engine

    engine = Engine(book=book)
    return [d.to_dict() for seq in sorted(out.seq_of) for d in engine.submit(out.seq_of[seq])[1]]


async def wait_topics(watcher: Watcher, book: str, expected: list[dict[str, Any]], timeout_s: float) -> str:
    """Until every expected decision and a payment message for every money decision arrived."""
    want_decisions = {d["decision_id"] for d in expected}
    want_orders = {d["decision_id"] for d in expected if d["kind"] in ("grant", "clawback")}
    deadline = time.monotonic() + timeout_s
    while True:
        have_d = want_decisions & watcher.seen.decisions.keys()
        have_o = want_orders & watcher.seen.orders.keys()
        if len(have_d) == len(want_decisions) and len(have_o) == len(want_orders):
            return "complete"
        if time.monotonic() > deadline:
            return (f"incomplete after {timeout_s:.0f}s: {len(have_d)}/{len(want_decisions)} decisions, "
                    f"{len(have_o)}/{len(want_orders)} money decisions with an order message")
        await asyncio.sleep(0.1)


# ---- phase 1: throughput ------------------------------------------------------------------------


async def throughput(
    settings: Settings, facts: list[dict[str, Any]], bulk: bool, drain_s: float
) -> dict[str, Any]:
    book = f"bench-{int(time.time())}"
    watcher = Watcher(settings, {book})
    await watcher.start()
    # The Finance Bureau settles what payments instructs, as it would: paid orders leave payments' memory.
    logging.getLogger("flexledger.bank_simulator").setLevel(logging.WARNING)  # a line per batch otherwise
    bank = BankSimulator(settings, books=[book], sandbox=True)
    bank_stop = asyncio.Event()
    bank_task = asyncio.create_task(bank.run(stop=bank_stop))
    out = Submission()
    meter = CpuMeter(settings)
    async with FactClient(settings, 64) as client, httpx.AsyncClient(timeout=10) as poller:
        meter.start()
        t0 = time.time()
        sampler = ProgressSampler(poller, settings, book)
        sampler.start(t0)
        if bulk:
            hdrs = headers(settings, book, "application/x-ndjson")
            queue = list(chunks(facts, BULK_ROWS))

            async def sender() -> None:
                while queue:
                    await post_bulk(client, book, queue.pop(0), out, hdrs)

            await asyncio.gather(*(sender() for _ in range(2)))  # one in flight while one commits
        else:
            hdrs = headers(settings, book, "application/json")
            lanes: dict[int, list[dict[str, Any]]] = {}
            for fact in facts:  # one subject's facts in order, in one lane
                lanes.setdefault(hash(fact_subject(fact)) % 32, []).append(fact)

            async def lane(items: list[dict[str, Any]]) -> None:
                for fact in items:
                    await post_single(client, book, fact, out, hdrs)

            await asyncio.gather(*(lane(items) for items in lanes.values()))
        t_submitted = time.time()
        t_decided = await wait_decided(poller, settings, book, drain_s)
        await sampler.stop(t_decided, max(out.seq_of, default=0))
    cpu = await meter.stop()
    expected = expected_decisions(book, out)
    status = await wait_topics(watcher, book, expected, 120)
    await watcher.stop()
    bank_stop.set()
    await bank_task
    async with httpx.AsyncClient(timeout=10) as poller:
        health = await poller.get(f"http://127.0.0.1:{settings.payments_port}/health")
        held = health.json().get("books", {})  # over every book of the bench's database
    decided, ordered = watcher.seen.of_book(book)
    recorded = len(out.seq_of)
    result = {
        "book": book, "mode": "bulk" if bulk else "single", "facts": len(facts), "recorded": recorded,
        "accepted": out.accepted, "rejected": out.rejected, "duplicates": out.duplicates,
        "retries": out.retries,
        "submit_s": t_submitted - t0, "decided_s": t_decided - t0,
        "accepted_per_s": out.rows / (t_submitted - t0),
        "e2e_facts_per_s": recorded / (t_decided - t0),
        "on_facts_topic": watcher.seen.facts.get(book, 0),
        "relayed_s": watcher.seen.last_fact.get(book, t0) - t0,
        "decisions": len(decided), "expected_decisions": len(expected),
        "decisions_per_s": len(decided) / (max(decided) - t0) if decided else 0.0,
        "orders": len(ordered),
        "orders_per_s": len(ordered) / (max(ordered) - t0) if ordered else 0.0,
        "last_order_s": (max(ordered) - t0) if ordered else None,
        "topics": status, "cpu_s": cpu, "peak_rss_mb": meter.peak_rss_mb,
        "start_rss_mb": meter.start_rss_mb, "eligibility_cache_mb": settings.eligibility_cache_mb,
        "bank_settled_entries": bank.settled_entries, "payments_book": held,
        "payments_in_memory_max": settings.payments_book_orders_in_memory,
        **sampler.tenths(max(out.seq_of, default=0)),
    }
    return result


# ---- phase 2: latency at a fixed offered rate ---------------------------------------------------


async def latency(
    settings: Settings, facts: list[dict[str, Any]], rate: float, mode: str, drain_s: float,
) -> dict[str, Any]:
    book = f"latency-{mode}-{int(time.time())}"
    watcher = Watcher(settings, {book})
    await watcher.start()
    out = Submission()
    async with FactClient(settings, 256) as client, httpx.AsyncClient(timeout=10) as poller:
        t0 = time.time() + 0.5
        tasks: list[asyncio.Task[None]] = []
        if mode == "bulk":
            hdrs = headers(settings, book, "application/x-ndjson")
            tick_s = 0.1
            per_tick = max(1, round(rate * tick_s))
            for k, chunk in enumerate(chunks(facts, per_tick)):
                await asyncio.sleep(max(0.0, t0 + k * tick_s - time.time()))
                tasks.append(asyncio.create_task(post_bulk(client, book, chunk, out, hdrs)))
        else:
            hdrs = headers(settings, book, "application/json")
            # One subject's facts must keep their order: a fact waits for the previous one of its subject.
            previous: dict[str, asyncio.Task[None]] = {}

            async def send(fact: dict[str, Any], before: asyncio.Task[None] | None) -> None:
                if before is not None:
                    await before
                await post_single(client, book, fact, out, hdrs)

            for i, fact in enumerate(facts):
                await asyncio.sleep(max(0.0, t0 + i / rate - time.time()))
                subject = fact_subject(fact)
                task = asyncio.create_task(send(fact, previous.get(subject)))
                previous[subject] = task
                tasks.append(task)
        t_offered = time.time()
        await asyncio.gather(*tasks)
        # Latency counts from when each fact was due (open loop: no coordinated omission), not from
        # when a busy client or intake let its request go.
        due_every = (1 / rate) if mode != "bulk" else 0.0
        for i, fact in enumerate(facts):
            due = t0 + (i * due_every if mode != "bulk" else (i // max(1, round(rate * 0.1))) * 0.1)
            out.sent_at[str(fact.get("id"))] = min(out.sent_at.get(str(fact.get("id")), due), due)
        t_submitted = time.time()
        await wait_decided(poller, settings, book, drain_s)
    expected = expected_decisions(book, out)
    status = await wait_topics(watcher, book, expected, 120)
    await watcher.stop()
    seen = watcher.seen
    # Only ids sent once are timed: for the generator's resubmissions (an id sent twice, the second
    # rejected or a no-op) a decision cannot tell which send it answers.
    sends = Counter(str(f.get("id")) for f in facts)
    due_at = {fid: at for fid, at in out.sent_at.items() if sends[fid] == 1}
    delays = sorted(((1000 * (t - due_at[str(fid)]), str(fid))
                     for (b, fid), t in seen.first_decision.items() if b == book and str(fid) in due_at),
                    reverse=True)
    to_decision = [ms for ms, _ in delays]
    type_of = {str(f.get("id")): f.get("type") for f in facts}
    kinds_after: dict[str, list[str]] = {}
    after_of: dict[str, Any] = {}
    for d, (_, b, after, kind) in seen.decisions.items():
        if b == book:
            kinds_after.setdefault(str(after), []).append(kind)
            after_of[d] = after
    slowest = [{"ms": round(ms), "fact": type_of.get(fid), "decisions": kinds_after.get(fid)}
               for ms, fid in delays[:3]]
    to_order = [1000 * (t - due_at[str(after_of[d])]) for d, (t, b) in seen.orders.items()
                if b == book and d in after_of and str(after_of[d]) in due_at]
    return {
        "book": book, "mode": mode, "offered_per_s": rate, "facts": len(facts),
        "offered_s": t_offered - t0, "sent_per_s": len(facts) / (t_submitted - t0),
        "retries": out.retries, "request_ms": percentiles([1000 * s for s in out.request_s]),
        "fact_to_decision_ms": percentiles(to_decision), "fact_to_order_ms": percentiles(to_order),
        "slowest_to_decision": slowest,
        "topics": status,
    }


# ---- phase 3: audit verify ----------------------------------------------------------------------


def audit_verify(settings: Settings) -> dict[str, Any]:
    env = {**os.environ, **settings.as_env()}
    probe = subprocess.run([sys.executable, "-m", "flexledger", "audit", "verify", "--help"], env=env,
                           capture_output=True, text=True, cwd=ROOT, check=False)
    if probe.returncode != 0:
        return {"available": False}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flexledger", "audit", "verify"], env=env,
                          capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - t0
    output = done.stdout + done.stderr
    counts = {m.group(2).strip(): int(m.group(1).replace(",", ""))
              for m in re.finditer(r"(\d[\d,]*)\s+([a-z][a-z ]*?)(?=[,;.\n(]|$)", output)}
    events = next((v for k, v in counts.items() if "event" in k), None)
    return {"available": True, "exit": done.returncode, "seconds": seconds, "events": events,
            "events_per_s": events / seconds if events else None, "output": output[-1500:],
            "checkpoints": counts.get("checkpoints")}  # signed tree heads re-computed: 0, no tree built


# ---- the run ------------------------------------------------------------------------------------


def take(workers: int, months: int, seed: int, limit: int) -> list[dict[str, Any]]:
    return list(islice(generate_facts(workers, None, months, seed), limit))


def calibrate(rounds: int = 3) -> float:
    """CPU ms this machine takes for a fixed piece of Python work (JSON and SHA-256 of 2,000 generated
    facts, 10 times over; the best of `rounds`). Taken before and after a run: CPU per fact compares
    between machines, or between runs on a shared one, only together with it."""
    sample = take(500, 12, 1, 2_000)
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(10):
            for fact in sample:
                text = json.dumps(fact, sort_keys=True, separators=(",", ":"))
                hashlib.sha256(json.dumps(json.loads(text)).encode()).digest()
        best = min(best, time.process_time() - start)
    return best * 1000


def _pcts(p: dict[str, Any]) -> str:
    return "  ".join(f"{k} {p.get(k, 0):8.1f}" for k in ("p50", "p95", "p99"))


def _stack_cpu_ms(t: dict[str, Any]) -> float:
    """CPU ms per fact of the stack (services, Kafka, PostgreSQL, the load generator), not the trace
    viewer's."""
    return sum(v for k, v in t["cpu_s"].items() if k != "zipkin") * 1000 / max(t["facts"], 1)


def _cpu_per_fact(t: dict[str, Any]) -> str:
    """The stack's CPU ms per fact, and apart from it the trace viewer's, when spans were exported to
    one."""
    cpu_s, facts, stack = t["cpu_s"], t["facts"], _stack_cpu_ms(t)
    viewer = f"; Zipkin {cpu_s['zipkin'] * 1000 / max(facts, 1):.3f} ms more" if cpu_s.get("zipkin") else ""
    return f"  CPU per fact: {stack:.3f} ms across the stack{viewer}"


def _growth(t: dict[str, Any]) -> list[str]:
    """Whether the cost per fact stays flat as the ledger grows (issue 15.1): the rate over the last
    tenth of the facts against the first, CPU per fact of each service, each one's peak RSS."""
    if "last_to_first" not in t:
        return []
    facts = max(t["facts"], 1)
    cpu = t["cpu_s"]
    return [
        f"  growth over {t['facts']:,} facts ({t['recorded']:,} recorded):",
        f"    decided, first 10 %  {t['first_10pct_per_s']:>10,.0f} facts/s",
        f"    decided, last 10 %   {t['last_10pct_per_s']:>10,.0f} facts/s   last/first "
        f"{t['last_to_first']:.2f}   target >= 0.80",
        "    CPU ms per fact: " + ", ".join(f"{part} {cpu[part] * 1000 / facts:.3f}"
                                        for part in (*SERVICES, "kafka", "postgres") if part in cpu),
        "    peak RSS MB: " + ", ".join(
            f"{part} {mb:,.0f}" for part, mb in t.get("peak_rss_mb", {}).items())
        + "   target intake <= 300",
        *_against_baseline(t),
        *_eligibility_budget(t),
        *_payments_memory(t),
    ]


def _against_baseline(t: dict[str, Any]) -> list[str]:
    """The stack's CPU per fact against the run given by --baseline (issue 15.1: the city year's within
    1.2 x the 100,000-fact run's)."""
    base = t.get("baseline")
    if not base:
        return []
    ratio = _stack_cpu_ms(t) / _stack_cpu_ms(base)
    return [f"    CPU ms per fact, stack: {_stack_cpu_ms(t):.3f} against {_stack_cpu_ms(base):.3f} over "
            f"{base['facts']:,} facts (--baseline) = {ratio:.2f} x   target <= 1.20"]


def _payments_memory(t: dict[str, Any]) -> list[str]:
    """Payments' memory: its idle lines beyond the setting are spilled (payments/domain/spill.py)."""
    start, peak = t.get("start_rss_mb", {}).get("payments"), t.get("peak_rss_mb", {}).get("payments")
    held = t.get("payments_book") or {}
    if start is None or peak is None or not held:
        return []
    return [f"    payments: peak RSS {peak:,.0f} MB = {start:,.0f} at the start + {peak - start:,.0f}; "
            f"at the end {held.get('lines_in_memory', 0):,} lines and {held.get('orders_in_memory', 0):,} "
            f"orders in memory (idle ones kept: at most {t['payments_in_memory_max']:,} orders a book), "
            f"{held.get('lines_spilled', 0):,} lines spilled; "
            f"{t.get('bank_settled_entries', 0):,} entries settled by the bank"]


def _eligibility_budget(t: dict[str, Any]) -> list[str]:
    """Eligibility's memory against its cache budget: its peak RSS may exceed its RSS when the facts
    started (the runtime, before any subject is held) by the budget of its subject cache, no more."""
    start, peak = t.get("start_rss_mb", {}).get("eligibility"), t.get("peak_rss_mb", {}).get("eligibility")
    if start is None or peak is None or "eligibility_cache_mb" not in t:
        return []
    budget = t["eligibility_cache_mb"]
    return [f"    eligibility: peak RSS {peak:,.0f} MB = {start:,.0f} at the start + {peak - start:,.0f}   "
            f"target <= {start:,.0f} + its cache budget {budget:,} MB"]


def _tracing(throughput: dict[str, Any]) -> str:
    per_s = throughput.get("traces_per_s")
    if per_s is None:
        return "spans not exported"
    kept = "every trace" if per_s == 0 else f"at most {per_s} new traces/s"
    spans = throughput.get("spans_exported")
    count = "" if spans is None else f": {spans:,} spans, {spans / max(throughput['facts'], 1):.2f} per fact"
    return f"spans exported, {kept}{count}"


def zipkin_spans_received(settings: Settings) -> int | None:
    """Spans Zipkin has taken in over HTTP since it started (its Prometheus counter), None if unread."""
    from flexledger.devstack import zipkin

    try:
        text = httpx.get(f"{zipkin.base_url(settings)}/prometheus", timeout=10).text
    except httpx.HTTPError:
        return None
    counts = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("zipkin_collector_spans_total") and 'transport="http"' in line]
    return int(sum(counts)) if counts else None


def report(results: dict[str, Any]) -> list[str]:
    lines = []
    t = results.get("throughput")
    if t:
        lines += [
            f"throughput ({t['mode']}): {t['facts']:,} facts, {t['recorded']:,} recorded "
            f"({t['accepted']:,} accepted, {t['rejected']:,} rejected, {t['duplicates']:,} duplicates)",
            f"  intake accepted        {t['accepted_per_s']:>10,.0f} facts/s  ({t['submit_s']:.1f}s)",
            f"  on the facts topic     {t['on_facts_topic'] / max(t['relayed_s'], 1e-9):>10,.0f} facts/s  "
            f"({t['relayed_s']:.1f}s; intake's relay)",
            f"  end to end (decided)   {t['e2e_facts_per_s']:>10,.0f} facts/s  ({t['decided_s']:.1f}s)"
            f"   target >= {TARGET_FACTS_PER_S:,}",
            f"  decisions              {t['decisions_per_s']:>10,.0f} /s       ({t['decisions']:,} of "
            f"{t['expected_decisions']:,} expected)",
            f"  payment orders         {t['orders_per_s']:>10,.0f} /s       ({t['orders']:,}; "
            f"topics {t['topics']})",
            "  CPU seconds: " + ", ".join(
                f"{k} {v:.1f}" for k, v in sorted(t["cpu_s"].items(), key=lambda kv: -kv[1])),
            _cpu_per_fact(t)
            + f"  (request metrics {'on' if t.get('request_metrics', True) else 'off'}; {_tracing(t)})",
            *_growth(t),
        ]
    for lat in results.get("latency", []):
        d, o, r = lat["fact_to_decision_ms"], lat["fact_to_order_ms"], lat["request_ms"]
        lines += [
            f"latency ({lat['mode']}) at {lat['offered_per_s']:.0f} facts/s offered for {lat['facts']:,} "
            f"facts (sent at {lat['sent_per_s']:.0f}/s):",
            f"  intake request ms      {_pcts(r)}",
            f"  fact -> decision ms    {_pcts(d)}  (n={d['n']:,}; target p99 < {TARGET_P99_DECISION_MS})",
            f"  fact -> order ms       {_pcts(o)}  (n={o['n']:,})",
            "  slowest to a decision  " + "; ".join(
                f"{x['ms']:,} ms ({x['fact']}: {', '.join(x['decisions'] or [])})"
                for x in lat.get("slowest_to_decision", [])),
        ]
    if "calibration_ms" in results:
        before, after = results["calibration_ms"]
        lines.append(f"machine: the calibration's fixed work took {before:.0f} ms of CPU before the run and "
                     f"{after:.0f} ms after (CPU figures compare between runs only with it)")
    a = results.get("audit")
    if a is not None:
        if not a["available"]:
            lines.append("audit verify: no `flexledger audit verify` command")
        else:
            rate = f"{a['events_per_s']:,.0f} events/s" if a["events_per_s"] else "events not counted"
            lines.append(f"audit verify: exit {a['exit']}, {a['events']} events in {a['seconds']:.1f}s = "
                         f"{rate}   target >= {TARGET_AUDIT_EVENTS_PER_S:,}")
            lines.append(f"  signed tree heads checked (each a Merkle root over the events before it): "
                         f"{a.get('checkpoints')}")
    raw = results.get("raw")
    if raw:
        limits = RawLimits(**raw)
        lines += describe(limits)
        if t:
            e2e = t["e2e_facts_per_s"]
            lines += [
                "ratios (end-to-end facts/s to the raw limit):",
                f"  / kafka produce+consume  {e2e / limits.kafka_produce_consume_per_s:6.1%}",
                f"  / pg executemany         {e2e / limits.pg_executemany_per_s:6.1%}",
                f"  / pg 1 row per commit    {e2e / limits.pg_single_commit_per_s:6.1%}",
            ]
    return lines


async def run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        bulk = await has_bulk(client, settings) and not args.singles
    if not args.skip_throughput:
        facts = take(args.workers, args.months, args.seed, args.facts)
        log.info("throughput: %d facts (%s)", len(facts), "bulk" if bulk else "single POSTs")
        results["throughput"] = await throughput(settings, facts, bulk, args.drain)
        results["throughput"]["request_metrics"] = bool(settings.metrics_http)
        exported = settings.otel_exporter_zipkin_endpoint or settings.otel_traces_file or args.zipkin
        results["throughput"]["traces_per_s"] = settings.traces_per_s if exported else None
        if args.zipkin:
            await asyncio.sleep(EXPORT_DELAY_S)  # the services' last spans of the phase reach Zipkin
            results["throughput"]["spans_exported"] = zipkin_spans_received(settings)
        log.info("%s", results["throughput"])
    if not args.skip_latency:
        results["latency"] = []
        count = int(args.rate * args.duration)
        for n, mode in enumerate(args.latency_modes.split(",")):
            facts = take(max(100, count // 16), 12, args.seed + 100 + n, count)
            log.info("latency %s: %d facts at %.0f/s", mode, len(facts), args.rate)
            results["latency"].append(await latency(settings, facts, args.rate, mode, args.drain))
            log.info("%s", results["latency"][-1])
    return results


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-profiled":
        _serve_profiled(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=100_000, help="facts in the throughput phase")
    parser.add_argument("--workers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=500.0, help="offered facts/s in the latency phase")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the latency phase")
    parser.add_argument("--latency-modes", default="single", help="single and/or bulk, comma separated")
    parser.add_argument("--drain", type=float, default=1800.0, help="seconds to wait for the pipeline")
    parser.add_argument("--singles", action="store_true", help="throughput by single POSTs even with bulk")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-audit", action="store_true")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--port-offset", type=int, default=0, help="shift the bench stack's ports by this")
    parser.add_argument("--use-running", action="store_true", help="the stack of `flexledger dev env`")
    parser.add_argument("--keep", action="store_true", help="leave the bench stack running")
    parser.add_argument("--profile", choices=SERVICES, help="run this service under yappi")
    parser.add_argument("--json-out", type=Path, help="write the results as JSON here too")
    parser.add_argument("--traces", type=Path, help="the services write their spans here (JSON lines)")
    parser.add_argument("--no-request-metrics", action="store_true",
                        help="the services do not count HTTP requests (FLEXLEDGER_METRICS_HTTP=0): compare "
                             "the CPU per fact with and without")
    parser.add_argument("--zipkin", action="store_true",
                        help="start a Zipkin server and export spans to it (as `flexledger dev up`)")
    parser.add_argument("--traces-per-s", type=int,
                        help="new traces a second each exporting service keeps (FLEXLEDGER_TRACES_PER_S; "
                             "0: every trace)")
    parser.add_argument("--checkpoint-interval-s", type=int,
                        help="seconds between eligibility's signed tree heads (default 60; a 100,000-fact "
                             "run ends before the first, so `audit verify` rebuilds no tree unless lower)")
    parser.add_argument("--baseline", type=Path,
                        help="the --json-out of a run to compare the CPU per fact with (the 100,000-fact "
                             "run, for a city year)")
    parser.add_argument("--payments-in-memory", type=int,
                        help="orders of idle lines a payments book keeps in memory (the setting "
                             "payments_book_orders_in_memory)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    baseline = json.loads(args.baseline.read_text())["throughput"] if args.baseline else None
    settings = Settings.from_env() if args.use_running else bench_settings(args.port_offset)
    if args.traces and not args.use_running:
        settings = replace(settings, otel_traces_file=str(args.traces.resolve()))
    if args.no_request_metrics and not args.use_running:
        settings = replace(settings, metrics_http=0)
    if args.traces_per_s is not None and not args.use_running:
        settings = replace(settings, traces_per_s=args.traces_per_s)
    if args.checkpoint_interval_s is not None and not args.use_running:
        settings = replace(settings, checkpoint_interval_s=args.checkpoint_interval_s)
    if args.payments_in_memory is not None and not args.use_running:
        settings = replace(settings, payments_book_orders_in_memory=args.payments_in_memory)
    calibration_ms = [calibrate()]
    if not args.use_running:
        start_stack(settings, fresh=True, profile=args.profile, zipkin=args.zipkin)
    try:
        results = asyncio.run(run(args, settings))
        if baseline and "throughput" in results:
            results["throughput"]["baseline"] = baseline
        if not args.skip_audit:
            results["audit"] = audit_verify(settings)
        if not args.skip_raw:
            n = results.get("throughput", {}).get("facts", args.facts)
            results["raw"] = asdict(measure(settings, n))
    finally:
        if args.profile and not args.use_running:
            from flexledger import devstack

            devstack.stop_service(args.profile, settings, timeout=60)  # writes the profile
            text = Path(settings.state_dir) / f"profile-{args.profile}.pstat.txt"
            if text.is_file():
                print(text.read_text()[:12000])
        if not (args.use_running or args.keep):
            stop_stack(settings)
    results["calibration_ms"] = [*calibration_ms, calibrate()]  # with the stack stopped, as before it
    print("\n".join(report(results)))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
