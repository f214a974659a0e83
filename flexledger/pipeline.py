"""`flexledger scenario run FILE --via pipeline`: the facts through the running services.

Each run submits to a fresh sandbox book (`scenario-<hex>`), so vectors that reuse fact ids never
collide with each other or with the city's book. The facts are POSTed to intake in order; then we wait
until eligibility's progress for the book reaches intake's last seq, and read the decisions back from
eligibility's read side in PostgreSQL.

Every service wants an API key (docs/design/http-auth.md): the run uses the bootstrap operator key
(FLEXLEDGER_OPERATOR_KEY, else <state_dir>/operator.key, which the services generate when they start),
so no flag is needed; it is sent on every request, and the operator's reads of decisions are recorded
in the access store's read audit like anyone's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress, track

from contracts.messages import BOOK_HTTP_HEADER
from services.runtime.settings import Settings

REQUEST_TIMEOUT_S = 30.0
PROCESSING_TIMEOUT_S = 120.0
POLL_INTERVAL_S = 0.05
_RECORDED = {200, 201, 400, 409}  # accepted, replayed, rejected, id reused: all answers about the fact


class PipelineError(RuntimeError):
    """The services could not be reached, or did not process the facts in time."""


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _get(client: httpx.Client, url: str, what: str) -> dict[str, Any]:
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise PipelineError(f"{what} cannot be reached at {url}: {exc}") from exc
    if response.status_code != 200:
        raise PipelineError(f"{what} answered {response.status_code} at {url}: {response.text[:200]}")
    body: dict[str, Any] = response.json()
    return body


def _key(settings: Settings) -> str:
    from flexledger.submit import SubmitError, operator_key

    try:
        return operator_key(settings)
    except SubmitError as exc:
        raise PipelineError(str(exc)) from None


def _submit(client: httpx.Client, intake: str, book: str, facts: list[Any], progress: bool) -> None:
    headers = {BOOK_HTTP_HEADER: book, "Content-Type": "application/json"}
    shown = track(enumerate(facts, start=1), total=len(facts), description="submitting facts",
                  console=Console(stderr=True), disable=not progress, transient=True)
    for index, fact in shown:
        # JSON has no NaN or Infinity: a vector's YAML `.nan` goes as the literal, which intake reads
        # and rejects with a reason, as the engine does (json= would raise instead).
        body = json.dumps(fact, ensure_ascii=False, allow_nan=True).encode("utf-8")
        try:
            response = client.post(f"{intake}/v1/facts", content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise PipelineError(f"intake cannot be reached at {intake}: {exc}") from exc
        if response.status_code not in _RECORDED:
            raise PipelineError(
                f"intake answered {response.status_code} to fact #{index}: {response.text[:200]}"
            )


def _wait_for(
    client: httpx.Client, eligibility: str, book: str, last_seq: int, timeout_s: float,
    progress: bool = False,
) -> None:
    """Poll eligibility's progress until it reaches `last_seq` (with a progress bar on stderr when
    `progress`). While waiting, an unreachable eligibility is taken for a restart (it resumes from its
    recorded positions) until the deadline."""
    with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task("eligibility deciding", total=last_seq)
        _poll(client, eligibility, book, last_seq, timeout_s, lambda seen: bar.update(task, completed=seen))


def _poll(client: httpx.Client, eligibility: str, book: str, last_seq: int, timeout_s: float,
          show: Callable[[int], None]) -> None:
    deadline = time.monotonic() + timeout_s
    seen, problem = 0, ""
    while True:
        try:
            seen = int(_get(client, f"{eligibility}/v1/books/{book}/progress", "eligibility")["last_seq"])
            problem = ""
        except PipelineError as exc:
            problem = f" (last answer: {exc})"
        show(seen)
        if seen >= last_seq:
            return
        if time.monotonic() >= deadline:
            raise PipelineError(
                f"eligibility processed book {book} up to seq {seen} of {last_seq} in {timeout_s:.0f}s"
                f"{problem}; is the broker up and are intake's relay and eligibility's consumer running?"
            )
        time.sleep(POLL_INTERVAL_S)


def run_pipeline(
    facts: list[Any], settings: Settings | None = None, *, timeout_s: float = PROCESSING_TIMEOUT_S,
    book: str | None = None, progress: bool = False,
) -> list[dict[str, Any]]:
    """Submit `facts` in order to a fresh book and return the ledger's decisions for them (with a
    progress bar on stderr when `progress`)."""
    settings = settings or Settings.from_env()
    intake = _url(settings.intake_port)
    eligibility = _url(settings.eligibility_port)
    book = book or f"scenario-{uuid.uuid4().hex}"
    authorization = {"Authorization": f"Bearer {_key(settings)}"}
    with httpx.Client(timeout=REQUEST_TIMEOUT_S, headers=authorization) as client:
        _get(client, f"{intake}/health", "intake")
        _get(client, f"{eligibility}/health", "eligibility")
        _submit(client, intake, book, facts, progress)
        last_seq = int(_get(client, f"{intake}/v1/books/{book}/progress", "intake")["last_seq"])
        _wait_for(client, eligibility, book, last_seq, timeout_s, progress)
        page = _get(client, f"{eligibility}/v1/books/{book}/decisions", "eligibility")
    if page.get("truncated"):
        raise PipelineError(f"book {book} has more decisions than one page holds")
    decisions: list[dict[str, Any]] = page["decisions"]
    return decisions
