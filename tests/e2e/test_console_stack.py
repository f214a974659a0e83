"""The console as `flexledger dev up` runs it: its own process (`python -m flexledger.console`) in front
of the three services as processes, on vector 01's facts. The operator's key logs in (the key ring as
the services read it); the pages show the real services' answers; a decision replays ('reproduced:
yes'), links to its trace, shows its inclusion proof and downloads an evidence bundle the standalone
verifier accepts; the subject page shows the facts and looks back; an unknown key is refused. Driven by
Debian's chromium."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from contracts.messages import BOOK_HTTP_HEADER
from flexledger.scenario_file import load_scenario
from services.runtime.settings import Settings

pytestmark = pytest.mark.e2e

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "01-employment-service-difficulty.yaml"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "console-stack"
STANDALONE_VERIFY = Path(__file__).resolve().parents[2] / "flexledger" / "audit" / "standalone_verify.py"
TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def stack(infra: Settings) -> Iterator[tuple[Settings, str]]:
    """The three services (a checkpoint every second) and the console as processes, and a fresh book
    with vector 01's decisions."""
    from flexledger import devstack
    from flexledger.devstack import console
    from flexledger.submit import operator_key

    infra = replace(infra, checkpoint_interval_s=1)
    for name in devstack.SERVICES:
        devstack.start_service(name, infra, timeout=TIMEOUT_S)
    console.start_console(infra)
    try:
        devstack.wait_healthy(console.PART, infra, TIMEOUT_S)
        book = f"console-{uuid.uuid4().hex[:12]}"
        headers = {BOOK_HTTP_HEADER: book, "Authorization": f"Bearer {operator_key(infra)}"}
        intake = f"http://127.0.0.1:{infra.intake_port}/v1/facts"
        with httpx.Client(timeout=30) as client:
            for fact in load_scenario(VECTOR)["facts"]:
                answer = client.post(intake, json=fact, headers=headers)
                assert answer.status_code in (201, 400), answer.text
            decisions_url = f"http://127.0.0.1:{infra.eligibility_port}/v1/books/{book}/decisions"
            deadline = time.monotonic() + TIMEOUT_S
            while not any(d.get("kind") == "grant" for d in
                          client.get(decisions_url, headers=headers).json().get("decisions", [])):
                assert time.monotonic() < deadline, "no grant decided"
                time.sleep(0.5)
        yield infra, book
    finally:
        console.stop_console(infra)


def log_in(client: httpx.Client, key: str) -> None:
    """Through the login form, as a browser does (its CSRF token, then the key)."""
    form = client.get("/login").text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token is not None
    answer = client.post("/login", data={"api_key": key, "next": "/", "login_csrf": token.group(1)})
    assert "/logout" in answer.text, answer.text[:300]


def test_operator_logs_in_and_reads_every_page_of_the_real_services(stack: tuple[Settings, str]) -> None:
    from flexledger.devstack.console import console_url
    from flexledger.submit import operator_key

    settings, book = stack
    url = console_url(settings)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_S * 1000)
            page.goto(f"{url}/?book={book}")
            page.fill("#api_key", "flk_0000000000000000_" + "A" * 43)
            page.click("button[type=submit] >> text=登录")
            assert page.locator("[role=alert]").count() == 1  # an unknown key
            page.fill("#api_key", operator_key(settings))
            page.click("button[type=submit] >> text=登录")
            assert page.inner_text("#role") == "operator"
            assert "eligibility" in page.inner_text("#services")
            page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)
            decisions = httpx.get(f"http://127.0.0.1:{settings.eligibility_port}/v1/books/{book}/decisions",
                                  headers={"Authorization": f"Bearer {operator_key(settings)}"}).json()
            grant = next(d for d in decisions["decisions"] if d["kind"] == "grant")
            page.goto(f"{url}/decision/{grant['decision_id']}?book={book}")
            assert grant["explanation"]["reason_zh"][:6] in page.inner_text("#decision")
            assert str(page.get_attribute("#trace-link", "href")).endswith(grant["trace_id"])
            page.click("#replay")
            assert "是" in page.inner_text("#replayed"), page.inner_text("#replayed")
            assert "→" in page.inner_text("#chain-link")  # the fact event's link in its stream's hash chain
            assert "**********" in page.inner_text("#fact")  # the fact it rests on, identity numbers masked
            page.screenshot(path=str(SCREENSHOTS / "decision.png"), full_page=True)
            page.click("#subject-link")
            assert page.locator("#decisions a").count() >= 1
            for path in ("payments", "dead-letters"):
                page.goto(f"{url}/{path}?book={book}")
                assert page.locator("#refused").count() == 0, page.inner_text("main")
                assert page.locator("#book").count() == 1, page.content()[:500]  # rendered, not a 500
                page.screenshot(path=str(SCREENSHOTS / f"{path}.png"), full_page=True)
        finally:
            browser.close()


def test_a_decision_is_proven_and_its_evidence_bundle_downloads_and_verifies(
    stack: tuple[Settings, str], tmp_path: Path,
) -> None:
    from flexledger.devstack.console import console_url
    from flexledger.submit import operator_key

    settings, book = stack
    decisions = httpx.get(f"http://127.0.0.1:{settings.eligibility_port}/v1/books/{book}/decisions",
                          headers={"Authorization": f"Bearer {operator_key(settings)}"}).json()["decisions"]
    grant = next(d for d in decisions if d["kind"] == "grant")
    with httpx.Client(base_url=console_url(settings), timeout=30, follow_redirects=True) as client:
        log_in(client, operator_key(settings))
        where, path = {"book": book}, f"/decision/{grant['decision_id']}"
        deadline = time.monotonic() + TIMEOUT_S
        while 'id="included"' not in (page := client.get(path, params=where).text):
            assert time.monotonic() < deadline, "no signed checkpoint covers the decision"
            time.sleep(1)
        assert re.search(r'id="included"><strong>是', page) and 'id="audit-path"' in page
        answer = client.get(f"{path}/evidence", params=where)
        assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
        assert grant["subject"] not in answer.text  # masked for the operator
        bundle = tmp_path / "evidence.json"
        bundle.write_bytes(answer.content)
        verified = subprocess.run([sys.executable, "-I", str(STANDALONE_VERIFY), str(bundle)],
                                  capture_output=True, text=True, check=False)
        assert verified.returncode == 0, verified.stdout + verified.stderr

        fact_cell = f'<td>{grant["after"]} <span class="note">'  # the fact's row in the timeline
        subject = client.get("/subject", params={**where, "from": grant["decision_id"]}).text
        assert fact_cell in subject and grant["subject"] not in subject
        before = client.get("/subject", params={**where, "from": grant["decision_id"],
                                                "known_as_of": "2000-01-01T00:00"}).text
        assert 'href="/decision/' not in before and fact_cell not in before  # nothing known then


def test_page_times_are_printed(stack: tuple[Settings, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The time each page takes on this book, printed (the figures, not a pass/fail: the budget of
    300 ms a page is checked by reading them, never by a test on a shared machine)."""
    import statistics

    from flexledger.devstack.console import console_url
    from flexledger.submit import operator_key

    settings, book = stack
    with httpx.Client(base_url=console_url(settings), timeout=30, follow_redirects=True) as client:
        log_in(client, operator_key(settings))
        decisions = httpx.get(f"http://127.0.0.1:{settings.eligibility_port}/v1/books/{book}/decisions",
                              headers={"Authorization": f"Bearer {operator_key(settings)}"}).json()
        decision_id = next(d["decision_id"] for d in decisions["decisions"] if d["kind"] == "grant")
        lines = []
        paths = ("/", "/payments", "/dead-letters", f"/decision/{decision_id}", "/subject")
        for path in paths:
            times_ms = []
            for _ in range(5):
                t0 = time.perf_counter()
                answer = client.get(path, params={"book": book, "from": decision_id})
                times_ms.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 200, (path, answer.text[:300])
            assert "id=\"refused\"" not in answer.text, path
            assert path != "/subject" or "id=\"decisions\"" in answer.text
            lines.append(f"console {path.split('?')[0][:20]:20} median {statistics.median(times_ms):6.1f} ms")
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_an_auditors_unmasked_view_is_a_read_in_the_access_store(stack: tuple[Settings, str]) -> None:
    from flexledger.devstack.console import console_url
    from flexledger.submit import operator_key
    from services.runtime.access.store import AccessApplication
    from tests.integration.intake_support import issue_key

    settings, book = stack
    key_id, token = issue_key(settings, "auditor", label="console test")
    decisions = httpx.get(f"http://127.0.0.1:{settings.eligibility_port}/v1/books/{book}/decisions",
                          headers={"Authorization": f"Bearer {operator_key(settings)}"}).json()["decisions"]
    grant = next(d for d in decisions if d["kind"] == "grant")
    with httpx.Client(base_url=console_url(settings), timeout=30, follow_redirects=True) as client:
        log_in(client, token)
        shown = {"book": book, "from": grant["decision_id"]}
        masked = client.get("/subject", params=shown).text
        clear = client.get("/subject", params={**shown, "unmask": "1"}).text
    assert grant["subject"] not in masked and grant["subject"] in clear
    app = AccessApplication(settings)
    try:
        reads = [event for _, event in app.reads() if event.key_id == key_id and event.service == "console"]
    finally:
        app.close()
    assert [(r.endpoint, r.book) for r in reads] == [("GET /subject (identity numbers in clear)", book)]
    assert reads[0].subjects  # whose numbers were shown, as keyed pseudonyms


def test_a_platform_sees_its_own_worker_and_not_another_platforms(stack: tuple[Settings, str]) -> None:
    """The real eligibility decides what a platform's key sees; the console shows just that."""
    from flexledger.devstack.console import console_url
    from tests.integration.intake_support import issue_key

    settings, book = stack
    worker = "320213197804121019"  # vector 01's worker, reported by 91320213MA1XY0001L
    _, own = issue_key(settings, "platform", enterprise="91320213MA1XY0001L", label="console test")
    _, other = issue_key(settings, "platform", enterprise="91320213MA1XY0002P", label="console test")
    for token, status in ((own, 200), (other, 404)):
        with httpx.Client(base_url=console_url(settings), timeout=30, follow_redirects=True) as client:
            log_in(client, token)
            token = re.search(r'name="csrf" value="([^"]+)"', client.get("/subject").text)
            assert token is not None
            answer = client.post("/subject", data={"book": book, "id": worker, "csrf": token.group(1)})
            assert answer.status_code == status, answer.text[:300]
            assert worker not in answer.text and worker not in str(answer.url)  # masked, never in a URL
            assert client.get("/payments", params={"book": book}).status_code == 403
