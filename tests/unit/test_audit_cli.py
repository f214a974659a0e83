"""The audit commands' conventions (issue 16.6): `--json` on each, exit codes (0 ok, 1 check failed,
2 usage, 3 unreachable), `--lang`, what-if's reform options refused with a reason; no database needed
(the checks themselves are tested in test_audit_core.py and on the real stack)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_audit_core import SEED, _content
from typer.testing import CliRunner

from flexledger.audit import cli as audit_cli
from flexledger.audit.show import fact_line, masked_json, reason
from flexledger.audit.verify import Report
from flexledger.audit.verify.report import Problem
from services.eligibility.domain import checkpoint as cp

W = "320213197804121019"


def _verify_returning(monkeypatch: pytest.MonkeyPatch, report: Report) -> None:
    import flexledger.audit.verify as verify_module

    monkeypatch.setattr(verify_module, "verify", lambda *args, **kwargs: report)
    monkeypatch.setattr(audit_cli, "_ledger_events", lambda settings: None)
    monkeypatch.setattr(audit_cli, "_public_key", lambda settings, given: "key")


def test_verify_prints_json_and_exits_1_on_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    report = Report()
    report.counts["events"] = 7
    _verify_returning(monkeypatch, report)
    ok = CliRunner().invoke(audit_cli.app, ["verify", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"verified": True, "books": None, "counts": {"events": 7}, "notes": [],
                                     "problems": []}
    report.add(Problem(f"stream of {W}", "hash link broken"))
    bad = CliRunner().invoke(audit_cli.app, ["verify", "--json"])
    assert bad.exit_code == 1 and W not in bad.stdout
    assert json.loads(bad.stdout)["problems"] == ["stream of 3202**********1019: hash link broken"]


def test_verify_draws_its_progress_on_stderr_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import flexledger.audit.verify as verify_module

    report = Report()
    report.counts["events"] = 9000

    def verify(*args: object, progress: object = None, **kwargs: object) -> Report:
        if callable(progress):  # the checks call it with the events read so far
            progress(9000)
        return report

    _verify_returning(monkeypatch, report)
    monkeypatch.setattr(verify_module, "verify", verify)
    monkeypatch.setattr(audit_cli, "_ledger_events", lambda settings: 9000)
    shown = CliRunner().invoke(audit_cli.app, ["verify", "--json", "--progress"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["counts"] == {"events": 9000}  # the bar is never in the JSON
    assert "audit verify [" in shown.stderr and "9,000/9,000 events" in shown.stderr
    assert shown.stderr.endswith("\r")  # cleared at the end
    quiet = CliRunner().invoke(audit_cli.app, ["verify", "--json"])  # not a terminal: no bar
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_verify_checkpoint_and_public_key_print_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signed = {**_content(), "signature": cp.sign(SEED, _content())}
    (tmp_path / "c.json").write_text(json.dumps(signed))
    shown = CliRunner().invoke(audit_cli.app, ["verify-checkpoint", str(tmp_path / "c.json"), "--public-key",
                                               cp.public_key_b64(SEED), "--json"])
    printed = json.loads(shown.stdout)
    assert shown.exit_code == 0 and printed == [{"checkpoint": printed[0]["checkpoint"], "valid": True,
                                                 "problems": []}]
    monkeypatch.setattr(audit_cli, "_public_key", lambda settings, given: cp.public_key_b64(SEED))
    key = CliRunner().invoke(audit_cli.app, ["public-key", "--json"])
    assert key.exit_code == 0 and json.loads(key.stdout)["key_id"] == cp.key_id(cp.public_key_b64(SEED))


@pytest.mark.parametrize("args", [
    ["what-if", "--set", "no_such_parameter=1"],
    ["what-if", "--set", "social_insurance_rate=half"],
    ["what-if", "--set", "social_insurance_rate=1/2@2023-02-30"],
    ["what-if", "--rules", "wuxi-2021-26/2"],
    ["what-if", "--parameters", "/nonexistent/reform.yaml"],
    ["replay", "abc", "--lang", "fr"],
    ["history", "x", "--lang", "de"],
])
def test_bad_input_is_a_usage_error_before_any_database_is_read(args: list[str]) -> None:
    result = CliRunner().invoke(audit_cli.app, args, env={"FLEXLEDGER_PG_PORT": "1"})
    assert result.exit_code == 2, result.output


def test_db_roles_is_an_admin_command_not_an_audit_one() -> None:
    from flexledger import cli

    cli._register()
    names = {group.name for group in cli.app.registered_groups}
    assert "admin" in names
    assert "db-roles" not in {c.name for c in audit_cli.app.registered_commands}


def test_facts_and_reasons_are_shown_masked_in_the_language_asked_for() -> None:
    raw = {"id": "f9", "type": "category_revoked", "at": "2022-01-20T10:00:00+08:00", "worker": W,
           "category": "employment_difficulty"}
    zh, en = fact_line(raw, "zh"), fact_line(raw, "en")
    assert "撤销就业困难人员认定" in zh and "2022-01-20" in zh and W not in zh
    assert "employment_difficulty declaration revoked" in en and "3202**********1019" in en
    explanation = {"summary": f"Art. 2 — 1 CNY: about {W}", "reason_zh": f"关于{W}"}
    assert reason(explanation, "zh") == "关于3202**********1019"
    assert reason(explanation, "en").startswith("Art. 2") and W not in reason(explanation, "en")
    assert masked_json({"a": [W], "b": 1}) == {"a": ["3202**********1019"], "b": 1}
