"""End to end, as an operator sees it: the three services as processes (as `flexledger dev up` starts
them) export to a real Zipkin server 3.5.1; one fact POSTed over HTTP is found by its id with
`flexledger trace`, and a headless browser (Debian's chromium, driven by Playwright) opens Zipkin's
page of its trace and finds spans of all three services there."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from contracts.messages import BOOK_HTTP_HEADER
from flexledger.scenario_file import load_scenario
from services.runtime.settings import Settings

pytestmark = pytest.mark.e2e

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "01-employment-service-difficulty.yaml"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (scripts/setup.sh); never a downloaded browser
SERVICES = ("flexledger-intake", "flexledger-eligibility", "flexledger-payments")
TIMEOUT_S = 120.0
ZIPKIN_START_S = 300.0  # a cold JVM on a busy 2-core machine


@pytest.fixture(scope="module")
def viewed(infra: Settings) -> Iterator[Settings]:
    """Zipkin, then the three services as processes exporting to it; both stopped afterwards, so that the
    services later tests start export nothing."""
    from flexledger import devstack
    from flexledger.devstack import zipkin

    for name in devstack.SERVICES:  # started without an exporter by an earlier test: restarted below
        devstack.stop_service(name, infra)
    zipkin.start_zipkin(infra)
    try:
        devstack.wait_healthy(zipkin.PART, infra, ZIPKIN_START_S)
        for name in devstack.SERVICES:
            devstack.start_service(name, infra, timeout=TIMEOUT_S)
        yield infra
    finally:
        for name in devstack.SERVICES:
            devstack.stop_service(name, infra)
        zipkin.stop_zipkin(infra)


def _eventually(what: str, probe: Any, timeout_s: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)
    return result


def _services_in(spans: list[dict[str, Any]]) -> set[str]:
    return {(s.get("localEndpoint") or {}).get("serviceName", "") for s in spans}


@pytest.fixture(scope="module")
def fact_trace(viewed: Settings) -> tuple[str, str]:
    """Vector 01's facts POSTed one at a time to a fresh book: (fact id, trace id) of the fact whose
    trace reached payments (the one that caused the grant and its payment order)."""
    from flexledger.devstack import zipkin
    from flexledger.submit import operator_key

    book = f"e2e-{uuid.uuid4().hex}"
    headers = {BOOK_HTTP_HEADER: book, "Authorization": f"Bearer {operator_key(viewed)}"}
    sent: list[tuple[str, str]] = []
    intake = f"http://127.0.0.1:{viewed.intake_port}/v1/facts"
    with httpx.Client(timeout=30) as client:
        for fact in load_scenario(VECTOR)["facts"]:
            response = client.post(intake, json=fact, headers=headers)
            assert response.status_code in (201, 400), response.text
            body = response.json()
            # The trace id twice: the body's field and the W3C response header.
            assert response.headers["traceparent"].split("-")[1] == body["trace_id"]
            sent.append((body["fact_id"], body["trace_id"]))

        def complete() -> tuple[str, str] | None:
            for fact_id, trace_id in sent:
                answer = client.get(f"{zipkin.base_url(viewed)}/api/v2/trace/{trace_id}")
                if answer.status_code == 200 and _services_in(answer.json()) >= set(SERVICES):
                    return fact_id, trace_id
            return None

        found: tuple[str, str] = _eventually("a trace through all three services in Zipkin", complete)
        return found


def test_flexledger_trace_prints_the_span_tree_of_a_fact_found_by_its_id(
    viewed: Settings, fact_trace: tuple[str, str]
) -> None:
    import typer

    from flexledger.devstack import zipkin
    from flexledger.trace import trace_command

    fact_id, trace_id = fact_trace
    app = typer.Typer()
    app.command()(trace_command)
    result = CliRunner().invoke(app, [fact_id, "--zipkin", zipkin.base_url(viewed), "--wait", "30"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"trace {trace_id}")
    assert lines[1].startswith("post /v1/facts")  # the root: intake's request (Zipkin lowercases names)
    for service in ("intake", "eligibility", "payments"):
        assert any(f" {service} " in line for line in lines[1:]), result.output
    assert "payments db commit" in result.output


def test_zipkin_page_of_a_fact_shows_spans_of_all_three_services(
    viewed: Settings, fact_trace: tuple[str, str]
) -> None:
    from playwright.sync_api import sync_playwright

    from flexledger.devstack import zipkin

    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (apt-get install -y chromium)")
    _, trace_id = fact_trace
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            page.goto(zipkin.trace_url(viewed, trace_id), timeout=TIMEOUT_S * 1000)
            # Zipkin's Lens UI renders the span rows (one per span, named by service) after its API call.
            page.get_by_text("flexledger-payments", exact=False).first.wait_for(timeout=TIMEOUT_S * 1000)
            text = page.inner_text("body").lower()
        finally:
            browser.close()
    for service in SERVICES:
        assert service in text, f"{service} not on Zipkin's page of trace {trace_id}"
    assert "post /v1/facts" in text
