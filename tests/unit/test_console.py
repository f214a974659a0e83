"""The console's pages against the faked services (tests/unit/console_world.py): login and its
cookie, what each role sees and is refused, masking, CSRF, language, money formatting."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from flexledger.audit import standalone_verify as standalone
from flexledger.audit.evidence import bundle_text
from flexledger.console.i18n import LABELS, value, yuan
from tests.unit import console_world, evidence_world
from tests.unit.console_world import (
    INTAKE_LETTER,
    KEYS,
    LETTER,
    REDRIVEN,
    TRACE_PREFIX,
    UNMASKED,
    WORKER_A,
    WORKER_B,
    console_app,
)

PAGES = ("/", "/subject", "/payments", "/dead-letters", "/decision/dec-1")


def login_token(client: TestClient) -> str:
    found = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text)
    assert found is not None
    return found.group(1)


def logged_in(key: str) -> TestClient:
    client = TestClient(console_app(), base_url="http://console.local")
    answer = client.post("/login", data={"api_key": key, "next": "/", "login_csrf": login_token(client)},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def csrf(client: TestClient, path: str = "/") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("path", PAGES)
def test_an_unauthenticated_request_is_redirected_to_login(path: str) -> None:
    answer = TestClient(console_app()).get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_a_wrong_key_is_refused_and_a_good_one_gets_an_httponly_strict_cookie() -> None:
    client = TestClient(console_app())
    wrong = {"api_key": "flk_nobody", "login_csrf": login_token(client)}
    assert client.post("/login", data=wrong).status_code == 401
    good = {"api_key": "flk_auditor", "next": "/", "login_csrf": login_token(client)}
    answer = client.post("/login", data=good, follow_redirects=False)
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "flk_auditor" not in cookie  # the key stays on the server


def test_login_needs_the_login_forms_csrf_token() -> None:
    client = TestClient(console_app())
    assert client.post("/login", data={"api_key": "flk_auditor"}).status_code == 403
    login_token(client)  # the cookie is set, but the form does not carry the token
    assert client.post("/login", data={"api_key": "flk_auditor", "login_csrf": "forged"}).status_code == 403


@pytest.mark.parametrize(("key", "allowed"), [
    ("flk_auditor", set(PAGES)),
    ("flk_operator", set(PAGES)),
    ("flk_finance", {"/", "/payments"}),
    ("flk_platform_a", {"/", "/subject", "/decision/dec-1"}),
    ("flk_statistics", {"/", "/subject", "/payments", "/decision/dec-1"}),
])
def test_every_page_checks_the_role(key: str, allowed: set[str]) -> None:
    client = logged_in(key)
    for path in PAGES:
        status = client.get(path).status_code
        assert (status == 200) == (path in allowed), (key, path, status)


def test_a_platform_cannot_open_another_platforms_worker() -> None:
    client = logged_in("flk_platform_a")
    token = csrf(client, "/subject")
    own = client.post("/subject", data={"csrf": token, "id": WORKER_A}, follow_redirects=False)
    assert own.status_code == 303 and WORKER_A not in own.headers["location"]
    assert client.get(own.headers["location"]).status_code == 200
    assert client.post("/subject", data={"csrf": token, "id": WORKER_B}).status_code == 404
    assert client.post("/subject", data={"csrf": token, "id": "not a number"}).status_code == 404
    assert client.post("/subject", data={"id": WORKER_A}).status_code == 403  # no CSRF token
    assert client.get("/decision/dec-3").status_code == 404
    assert client.get("/subject", params={"from": "dec-3"}).status_code == 404


def test_identity_numbers_are_masked_unless_an_auditor_asks(caplog: pytest.LogCaptureFixture) -> None:
    operator = logged_in("flk_operator")
    page = operator.get("/subject", params={"from": "dec-1", "unmask": "1"}).text
    assert WORKER_A not in page and "3202**********1015" in page
    auditor = logged_in("flk_auditor")
    assert WORKER_A not in auditor.get("/subject", params={"from": "dec-1"}).text
    UNMASKED.clear()
    with caplog.at_level("WARNING", logger="flexledger.console.http"):
        assert WORKER_A in auditor.get("/subject", params={"from": "dec-1", "unmask": "1"}).text
    assert any(r.getMessage() == "console.unmasked_view" for r in caplog.records)
    assert UNMASKED == [("k-auditor", "subject", "main")]  # recorded as an audit event


def test_subject_timeline_shows_decisions_with_both_explanations_and_money_lines() -> None:
    page = logged_in("flk_auditor").get("/subject", params={"from": "dec-1"}).text
    assert "社保补贴 第1月" in page and "social insurance subsidy month 2" in page
    assert "1,234.56 元" in page and 'title="123456 分"' in page
    assert page.count('href="/decision/dec-') == 2  # dec-3 is another worker's


def test_law_as_of_keeps_the_decisions_up_to_that_month_and_shows_the_law_in_force_then() -> None:
    client = logged_in("flk_auditor")
    page = client.get("/subject", params={"from": "dec-1", "law_as_of": "2026-01"}).text
    assert "/decision/dec-1" in page and "/decision/dec-2" not in page
    assert "2026-01-01" in page and "min_wage_monthly_fen" in page and "2,490.00 元" in page  # since 2024
    earlier = client.get("/subject", params={"from": "dec-1", "law_as_of": "2022-03-15"}).text
    assert "2,280.00 元" in earlier and "2021-08-01" in earlier and "2,490.00 元" not in earlier
    assert client.get("/subject", params={"from": "dec-1", "law_as_of": "March"}).status_code == 400


def test_known_as_of_shows_what_the_ledger_had_recorded_then() -> None:
    client = logged_in("flk_auditor")
    now = client.get("/subject", params={"from": "dec-1"}).text
    assert all(f"fact-{n}" in now for n in (1, 2, 9)) and page_links(now) == {"dec-1", "dec-2"}
    then = client.get("/subject", params={"from": "dec-1", "known_as_of": "2026-02-15T12:00"}).text
    assert "fact-1" in then and "fact-2" not in then and "fact-9" not in then
    assert page_links(then) == {"dec-1"}  # dec-2 was recorded on 1 March
    assert "o-2" not in then  # the orders of the decisions shown
    assert client.get("/subject", params={"from": "dec-1", "known_as_of": "soon"}).status_code == 400


def page_links(page: str) -> set[str]:
    return set(re.findall(r'href="/decision/(dec-[0-9]+)\?', page))


def test_subject_facts_show_their_contents_masked_and_a_platform_only_its_own() -> None:
    page = logged_in("flk_operator").get("/subject", params={"from": "dec-1"}).text
    assert 'id="facts"' in page and "300000" in page and "contribution_paid" in page
    assert WORKER_A not in page and "3202**********1015" in page
    assert "2026-01经91320213MA1XY0001L取得收入300000分" in page  # what it says, in the user's language
    platform = logged_in("flk_platform_a").get("/subject", params={"from": "dec-1"}).text
    assert "fact-1" in platform and "fact-2" in platform  # its report, and a fact naming no enterprise
    assert "fact-9" not in platform and "410000" not in platform  # another platform's report
    statistics = logged_in("flk_statistics").get("/subject", params={"from": "dec-1"}).text
    assert 'id="facts"' not in statistics and LABELS["facts_pseudonymised"][0] in statistics
    auditor = logged_in("flk_auditor")
    UNMASKED.clear()
    assert WORKER_A in auditor.get("/subject", params={"from": "dec-1", "unmask": "1"}).text
    assert UNMASKED == [("k-auditor", "subject", "main")]


def test_decision_page_shows_the_covering_tree_head_and_the_inclusion_proof() -> None:
    client = logged_in("flk_platform_a")
    page = client.get("/decision/dec-1").text
    proof = evidence_world.proof("f4")
    assert f'<dd id="leaf-index">{proof["leaf_index"]}</dd>' in page and proof["root_hash"] in page
    assert all(step in page for step in proof["inclusion_proof"]) and proof["inclusion_proof"]
    assert re.search(r'id="included"><strong>是', page) and 'id="signature-ok">是' in page
    assert str(proof["tree_size"]) in page
    uncovered = logged_in("flk_auditor").get("/decision/dec-3").text
    assert 'id="proof-none"' in uncovered and LABELS["not_covered"][0] in uncovered


def test_evidence_download_is_the_audit_bundle_masked_and_verifies() -> None:
    answer = logged_in("flk_operator").get("/decision/dec-1/evidence", params={"unmask": "1"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert answer.headers["content-disposition"] == 'attachment; filename="evidence-dec-1.json"'
    bundle = json.loads(answer.text)
    assert standalone.check_bundle(bundle) == [] and bundle["identity_numbers"] == "masked"
    assert evidence_world.SUBJECT not in answer.text  # an operator may not unmask
    assert answer.text == bundle_text(bundle)  # the file `audit evidence --out` writes


def test_an_auditors_evidence_in_clear_is_recorded_first() -> None:
    client = logged_in("flk_auditor")
    UNMASKED.clear()
    masked = client.get("/decision/dec-1/evidence")
    assert evidence_world.SUBJECT not in masked.text and UNMASKED == []
    clear = client.get("/decision/dec-1/evidence", params={"unmask": "1"})
    assert evidence_world.SUBJECT in clear.text and standalone.check_bundle(clear.json()) == []
    assert UNMASKED == [("k-auditor", "evidence", "main")]
    assert client.get("/decision/dec-3/evidence").status_code == 409  # no checkpoint covers it yet


def test_evidence_refusals_platform_statistics_and_others() -> None:
    platform = logged_in("flk_platform_a")
    own = platform.get("/decision/dec-1/evidence", params={"unmask": "1"})
    assert own.status_code == 200 and evidence_world.SUBJECT not in own.text
    assert platform.get("/decision/dec-3/evidence").status_code == 404  # another platform's worker
    # dec-2's stream holds the other enterprise's training report: not a platform's to read
    assert platform.get("/decision/dec-2/evidence").status_code == 403
    statistics = logged_in("flk_statistics").get("/decision/dec-2/evidence", params={"unmask": "1"})
    assert statistics.status_code == 200 and statistics.json()["identity_numbers"] == "masked"
    assert evidence_world.SUBJECT not in statistics.text
    assert logged_in("flk_finance").get("/decision/dec-1/evidence").status_code == 403
    anonymous = TestClient(console_app()).get("/decision/dec-1/evidence", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")


def test_decision_page_replays_with_csrf_and_links_its_trace() -> None:
    client = logged_in("flk_auditor")
    page = client.get("/decision/dec-1").text
    assert f'href="{TRACE_PREFIX}{1:032x}"' in page
    assert client.post("/decision/dec-1/replay", data={"csrf": "wrong"}).status_code == 403
    replayed = client.post("/decision/dec-1/replay", data={"csrf": csrf(client, "/decision/dec-1")})
    assert replayed.status_code == 200 and 'id="replayed"' in replayed.text and "是" in replayed.text
    assert "monthly_report" in replayed.text and WORKER_A not in replayed.text  # the fact, masked
    assert 'id="chain-link"' in replayed.text and "ab" * 32 in replayed.text and "cd" * 32 in replayed.text


def test_a_clawbacks_page_links_each_decision_it_reverses(monkeypatch: pytest.MonkeyPatch) -> None:
    clawback = {**console_world.DECISIONS[1], "decision_id": "dec-9", "kind": "clawback",
                "reverses": ["dec-1", "dec-2"]}
    monkeypatch.setattr(console_world, "DECISIONS", [*console_world.DECISIONS, clawback])
    page = logged_in("flk_auditor").get("/decision/dec-9").text
    assert 'id="reverses"' in page
    assert 'href="/decision/dec-1?book=' in page and 'href="/decision/dec-2?book=' in page
    assert 'id="reverses"' not in logged_in("flk_auditor").get("/decision/dec-1").text  # a grant


def test_a_platform_may_not_replay() -> None:
    client = logged_in("flk_platform_a")
    token = csrf(client, "/decision/dec-1")
    assert "id=\"replay\"" not in client.get("/decision/dec-1").text
    assert client.post("/decision/dec-1/replay", data={"csrf": token}).status_code == 403


def test_payments_page_shows_budgets_waiting_orders_batches_and_the_trial_balance() -> None:
    page = logged_in("flk_finance").get("/payments").text
    assert "100,000.00 元" in page and "2,469.12 元" in page and "b-1" in page and "平衡" in page
    assert WORKER_A not in page


def test_language_switch_translates_labels_and_money() -> None:
    client = logged_in("flk_finance")
    assert client.post("/lang", data={"to": "en", "back": "/payments"}).status_code == 403  # no CSRF token
    token = csrf(client, "/payments")
    page = client.post("/lang", data={"to": "en", "back": "/payments", "csrf": token}).text
    assert "Appropriated" in page and "CNY 100,000.00" in page and 'title="10000000 fen"' in page


def test_every_label_has_both_languages_and_money_has_two_decimals() -> None:
    assert all(zh and en for zh, en in LABELS.values())
    assert yuan(-5, "zh") == "-0.05 元" and yuan(123_456_789, "en") == "CNY 1,234,567.89"
    assert (value("grant", "zh"), value("awaiting_budget", "en"), value("a-code", "zh")) == (
        "发放", "awaiting budget", "a-code")


def test_overview_shows_each_service_and_the_last_checkpoints_age() -> None:
    page = logged_in("flk_statistics").get("/").text
    assert all(name in page for name in ("intake", "eligibility", "payments"))
    assert "距今 42 s" in page


def test_dead_letters_page_shows_them_by_topic_and_reason() -> None:
    page = logged_in("flk_operator").get("/dead-letters").text
    assert "facts" in page and "schema" in page
    assert "flexledger.eligibility.decisions.v1[0]@7" in page and "amount_fen missing" in page


def test_an_operator_re_drives_a_dead_letter_with_the_csrf_token_and_sees_its_history() -> None:
    client = logged_in("flk_operator")
    page = client.get("/dead-letters").text
    action = f"/dead-letters/payments/{LETTER}/redrive"
    intake_action = f"/dead-letters/intake/{INTAKE_LETTER}/redrive"
    assert page.count('class="redrive"') == 2 and action in page  # not for the one taken in already
    assert intake_action in page  # intake's agency feed too
    assert "仍被拒绝" in page and "已接收" in page and "operator k-operator" in page
    REDRIVEN.clear()
    assert client.post(action, data={"csrf": "wrong"}).status_code == 403
    assert REDRIVEN == []
    answer = client.post(action, data={"csrf": csrf(client, "/dead-letters")}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/dead-letters?book=main")
    assert [("payments", f"/v1/dead-letters/{LETTER}/redrive", "k-operator")] == REDRIVEN
    client.post(intake_action, data={"csrf": csrf(client, "/dead-letters")}, follow_redirects=False)
    assert REDRIVEN[-1] == ("intake", f"/v1/dead-letters/{INTAKE_LETTER}/redrive", "k-operator")


def test_an_auditor_sees_no_re_drive_button_and_may_not_post_one() -> None:
    client = logged_in("flk_auditor")
    page = client.get("/dead-letters").text
    assert "/redrive" not in page and "仍被拒绝" in page  # the history, not the button
    REDRIVEN.clear()
    token = csrf(client, "/dead-letters")
    assert client.post(f"/dead-letters/payments/{LETTER}/redrive", data={"csrf": token}).status_code == 403
    assert client.post(f"/dead-letters/intake/{LETTER}/redrive", data={"csrf": token}).status_code == 403
    assert REDRIVEN == []
    finance = logged_in("flk_finance")  # not even the page
    assert finance.post(f"/dead-letters/payments/{LETTER}/redrive", data={"csrf": "x"}).status_code == 403


def test_logout_ends_the_session() -> None:
    client = logged_in("flk_auditor")
    client.post("/logout", data={"csrf": csrf(client)})
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_key_is_never_on_a_page() -> None:
    client = logged_in("flk_auditor")
    assert all(key not in client.get(path).text for path in PAGES for key in KEYS)


def test_service_urls_default_to_the_local_ports_and_follow_the_setting() -> None:
    from flexledger.console.bootstrap import service_urls, trace_url_prefix
    from services.runtime.settings import Settings

    assert service_urls(Settings())["payments"] == "http://127.0.0.1:18083"
    named = Settings(console_service_urls="intake=http://intake:18081/,payments=http://payments:18083")
    assert service_urls(named) == {"intake": "http://intake:18081", "eligibility": "http://127.0.0.1:18082",
                                   "payments": "http://payments:18083"}
    with pytest.raises(ValueError):
        service_urls(Settings(console_service_urls="bank=http://x"))
    assert trace_url_prefix(Settings()) == "http://127.0.0.1:19411/zipkin/traces/"


def test_the_law_in_force_is_the_current_rule_sets_when_no_decision_names_one() -> None:
    from flexledger.console.timeline import law_in_force

    wage = {row["name"]: row for row in law_in_force([], "2022-01-01")}["min_wage_monthly_fen"]
    assert (wage["value"], wage["since"]) == (228_000, "2021-08-01")
    assert law_in_force(["no-such/9"], "2022-01-01") == [{"rule_set": "no-such/9", "name": None}]
