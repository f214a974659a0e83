"""The web console in a real browser: Debian's chromium (never a downloaded browser), driven by
Playwright, against the console served by uvicorn over the demo world of faked services
(tests/unit/console_world.py, answering with the real access policy). Each role logs in and opens each
page; what is refused is refused; the language switches; the as-of picker changes what the subject page
shows; a decision shows its inclusion proof, links to its trace, and its evidence bundle downloads and
verifies with the standalone verifier. Every page's screenshot is saved under `SCREENSHOTS` (the test
artifacts)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from tests.unit import evidence_world
from tests.unit.console_world import LETTER, REDRIVEN, TRACE_PREFIX, WORKER_A, WORKER_B, console_app

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (scripts/setup.sh)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "console"
TIMEOUT_MS = 60_000
STANDALONE_VERIFY = Path(__file__).resolve().parents[2] / "flexledger" / "audit" / "standalone_verify.py"


@pytest.fixture(scope="module")
def console_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(console_app(), host="127.0.0.1", port=port, log_config=None,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (apt-get install -y chromium)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


def _login(browser: Browser, url: str, key: str, path: str = "/") -> Page:
    page = browser.new_context(java_script_enabled=False).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{url}{path}")
    assert "/login" in page.url  # unauthenticated: redirected to the login page
    page.fill("#api_key", key)
    page.click("button[type=submit] >> text=登录")
    return page


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_auditor_opens_every_page_replays_and_follows_a_decision_to_its_trace(
    browser: Browser, console_url: str,
) -> None:
    page = _login(browser, console_url, "flk_auditor")
    assert page.inner_text("#role") == "auditor"
    assert "eligibility" in page.inner_text("#services")
    _shot(page, "overview")
    page.goto(f"{console_url}/subject?from=dec-1")
    text = page.inner_text("main")
    assert "社保补贴 第1月" in text and WORKER_A not in text and "1,234.56 元" in text
    _shot(page, "subject")
    assert "fact-9" in page.inner_text("#facts") and "/decision/dec-2" in page.content()
    page.fill("#known_as_of", "2026-02-15T12:00")  # the as-of picker: what the ledger knew then
    page.fill("#law_as_of", "2022-03-15")  # and the law in force then
    page.click("#as-of-submit")
    facts = page.inner_text("#facts")
    assert "fact-1" in facts and "fact-2" not in facts and "/decision/dec-2" not in page.content()
    assert "2,280.00 元" in page.inner_text("#law") and "2026-02-15T12:00" in page.inner_text("#as-of-shown")
    _shot(page, "subject-as-of")
    page.goto(f"{console_url}/subject?from=dec-1")
    page.click("#unmask")
    assert WORKER_A in page.inner_text("main")
    page.click("#decisions a >> nth=0")
    assert page.get_attribute("#trace-link", "href") == f"{TRACE_PREFIX}{1:032x}"
    assert page.inner_text("#included").strip() == "是" and page.locator("#audit-path li").count() >= 1
    page.click("#replay")
    assert "已复现: 是" in page.inner_text("#replayed").replace("：", ":")
    _shot(page, "decision")
    with page.expect_download() as download:
        page.click("#evidence")
    bundle = SCREENSHOTS / "evidence-dec-1.json"
    download.value.save_as(bundle)
    verified = subprocess.run([sys.executable, "-I", str(STANDALONE_VERIFY), str(bundle)],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0 and "valid" in verified.stdout, verified.stdout + verified.stderr
    assert evidence_world.SUBJECT not in bundle.read_text(encoding="utf-8")  # masked
    for path, name in (("/payments", "payments"), ("/dead-letters", "dead-letters")):
        page.goto(f"{console_url}{path}")
        _shot(page, name)
    assert "schema" in page.inner_text("#dead-letters")


def test_language_switch_translates_labels_and_money(browser: Browser, console_url: str) -> None:
    page = _login(browser, console_url, "flk_finance", "/payments")
    assert "拨款" in page.inner_text("#budgets")
    page.click("button >> text=English")
    budgets = page.inner_text("#budgets")
    assert "Appropriated" in budgets and "CNY 100,000.00" in budgets
    _shot(page, "payments-en")
    page.goto(f"{console_url}/subject")
    assert "Not allowed" in page.inner_text("main")  # finance: no subjects


def test_a_platform_sees_its_own_workers_only(browser: Browser, console_url: str) -> None:
    page = _login(browser, console_url, "flk_platform_a", "/subject")
    page.fill("#id", WORKER_A)
    page.click("form[action='/subject'] button >> nth=0")
    assert "社保补贴" in page.inner_text("#decisions")
    assert "fact-1" in page.inner_text("#facts") and "fact-9" not in page.inner_text("#facts")  # B's report
    _shot(page, "subject-platform")
    page.goto(f"{console_url}/subject")
    page.fill("#id", WORKER_B)
    page.click("form[action='/subject'] button >> nth=0")
    assert page.locator("#refused").count() == 1
    page.goto(f"{console_url}/payments")
    assert page.locator("#refused").count() == 1


def test_an_operator_re_drives_a_dead_letter_with_its_button(browser: Browser, console_url: str) -> None:
    REDRIVEN.clear()
    page = _login(browser, console_url, "flk_operator", "/dead-letters")
    assert "仍被拒绝" in page.inner_text("#kept")  # the earlier attempt, still refused
    page.click(f"#letter-{LETTER} button.redrive")
    assert "/dead-letters" in page.url and [
        ("payments", f"/v1/dead-letters/{LETTER}/redrive", "k-operator")] == REDRIVEN
    _shot(page, "dead-letters-operator")
    auditor = _login(browser, console_url, "flk_auditor", "/dead-letters")
    assert auditor.locator("button.redrive").count() == 0
