"""The audit ledger on the real stack (issue 4): every vector through the pipeline, then

- `audit verify` exits 0 on the untouched ledger, and every decision of every vector replays;
- two identical id-reuse rejections get two decision ids, the engine's;
- signed checkpoints are published and verify offline with the public key;
- `audit history` and `audit what-if` (with a test-only rule set variant);
- an UPDATE and DELETEs of stored events make `audit verify` fail naming them (then they are undone);
- facts decided past intake (a fact intake never recorded, another fact than intake recorded at a seq)
  make `audit verify` fail naming their book and seq;
- the services' role cannot UPDATE, DELETE or TRUNCATE an event table, and the services run as it;
- an identity number is not in clear in the raw event tables, the service logs, or the non-HR topics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from typer.testing import CliRunner

from contracts.messages import FactMessageV1
from contracts.topics import CHECKPOINTS, SANDBOX_STATISTICS
from flexledger.audit import cli as audit_cli
from flexledger.audit.checkpoints import own_public_key, read_topic
from flexledger.audit.history import history
from flexledger.audit.replay import locate, replay
from flexledger.audit.store import PROCESSED, Decoder, EventTable
from flexledger.audit.whatif import what_if
from flexledger.devstack.credentials import client_args
from flexledger.engine import Engine
from flexledger.pipeline import run_pipeline
from flexledger.scenario_file import load_scenario
from services.eligibility.adapters.statistics import pseudonym
from services.eligibility.domain.checkpoint import key_id
from services.eligibility.domain.parameters import ParameterTable, ParameterValue
from services.eligibility.domain.ruleset import RULE_SETS, WUXI_2021_26_V1
from services.intake.domain.submission import content_digest
from services.runtime.keys import statistics_key
from services.runtime.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.integration

VECTORS = sorted((Path(__file__).resolve().parents[1] / "vectors").glob("*.yaml"))
SERVICES = ("intake", "eligibility", "payments")
TIMEOUT_S = 60.0
VARIANT_ID = "wuxi-2021-26/test-higher-minimum-wage"


@dataclass
class Audited:
    settings: Settings
    log_offsets: dict[str, int]
    books: dict[str, str] = field(default_factory=dict)  # vector stem -> book
    decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # book -> pipeline decisions
    facts: dict[str, list[Any]] = field(default_factory=dict)  # book -> facts

    def env(self) -> dict[str, str]:
        return self.settings.as_env()


def _log_path(settings: Settings, name: str) -> Path:
    from flexledger.devstack.paths import log_file

    return log_file(settings, name)


def _stop(settings: Settings) -> None:
    from flexledger import devstack

    for name in reversed(SERVICES):
        devstack.stop_service(name, settings)


def _checkpoint_covering(settings: Settings, notification_id: int, timeout_s: float = TIMEOUT_S) -> None:
    """Wait until a checkpoint covering `notification_id` is recorded in the ledger."""
    table, decoder = EventTable(settings, "eligibility"), Decoder(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for row in table.rows(topic="services.eligibility.aggregates:LedgerCheckpoints.Signed"):
            if int(decoder.decode(row)["up_to_notification_id"]) >= notification_id:
                return
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint covers notification {notification_id} after {timeout_s:.0f}s")


def _max_notification(settings: Settings, schema: str = "eligibility") -> int:
    with psycopg.connect(settings.pg_dsn()) as conn:
        row = conn.execute(f"SELECT max(notification_id) FROM {schema}.{schema}_events").fetchone()
    return int(row[0] or 0) if row else 0


@pytest.fixture(scope="module")
def audited(infra: Settings) -> Iterator[Audited]:
    """The services (checkpoints every second) with every vector pushed through them, each in its book."""
    from flexledger import devstack

    settings = replace(infra, checkpoint_interval_s=1)
    _stop(infra)
    offsets = {name: _log_path(settings, name).stat().st_size if _log_path(settings, name).exists() else 0
               for name in SERVICES}
    try:
        for name in SERVICES:
            devstack.start_service(name, settings, timeout=90)
        state = Audited(settings, offsets)
        for vector in VECTORS:
            book = f"audit-{vector.stem[:2]}-{uuid.uuid4().hex[:12]}"
            facts = load_scenario(vector)["facts"]
            state.books[vector.stem] = book
            state.facts[book] = facts
            state.decisions[book] = run_pipeline(facts, settings, book=book)
        _checkpoint_covering(settings, _max_notification(settings))
        yield state
    finally:
        _stop(infra)


def _cli(state: Audited, *args: str) -> Any:
    result = CliRunner().invoke(audit_cli.app, list(args), env=state.env())
    return result


def _cli_process(state: Audited, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `flexledger` command, in its own process."""
    env = {**os.environ, **state.env()}
    return subprocess.run([sys.executable, "-m", "flexledger", "audit", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600, check=False)


# --- 1, 2: pipeline = engine, distinct rejection ids ---------------------------------------------------

def test_pipeline_decision_ids_are_the_engines_for_every_vector(audited: Audited) -> None:
    for book, facts in audited.facts.items():
        engine = [d.to_dict() for d in Engine(book=book).run(facts)]
        piped = audited.decisions[book]
        assert sorted(d["decision_id"] for d in piped) == sorted(d["decision_id"] for d in engine), book
        assert len({d["decision_id"] for d in piped}) == len(piped), f"{book}: duplicate decision ids"
        # Every decision event carries its id, rule set, triggering fact, explanation (money and flags)
        # and trace id.
        for d in piped:
            assert d["decision_id"] and d["rule_set"] == "wuxi-2021-26/1" and d["trace_id"], d
            assert d["kind"] == "rejected" or ("after" in d and d["explanation"]["fact_ids"]), d


def test_id_reuse_rejections_get_their_own_ids_and_a_repeat_records_nothing_as_the_engine(
    audited: Audited,
) -> None:
    first = {"id": "r1", "type": "enterprise_registered", "at": "2021-06-01T09:00:00+08:00",
             "enterprise": "91320213MA1XY0001L", "name": "锡城到家服务平台"}
    reuse = {**first, "name": "another name"}
    other = {**first, "name": "a third name"}
    # a conflicting reuse, the same again (RULES.md 5: the same id and content is a no-op), another one
    facts = [first, reuse, reuse, other]
    book = f"audit-reuse-{uuid.uuid4().hex[:12]}"
    piped = run_pipeline(facts, audited.settings, book=book)
    engine = [d.to_dict() for d in Engine(book=book).run(facts)]
    rejected = [d for d in piped if d["kind"] == "rejected"]
    assert len(rejected) == 2 and rejected[0]["decision_id"] != rejected[1]["decision_id"]
    assert [d["decision_id"] for d in piped] == [d["decision_id"] for d in engine]


# --- 3: replay, verify, history, what-if ---------------------------------------------------------------

def test_every_decision_of_every_vector_replays(audited: Audited) -> None:
    replayed = 0
    for book, decisions in audited.decisions.items():
        for d in decisions:
            located = locate(audited.settings, d["decision_id"], book)
            assert located is not None, d
            result = replay(located)
            assert result.reproduced, (d, result.problem, result.derived)
            replayed += 1
    assert replayed == sum(len(ds) for ds in audited.decisions.values()) > 100
    # and through the real command, which prints the decision, its explanation and the verdict
    grant = next(d for d in audited.decisions[audited.books["01-employment-service-difficulty"]]
                 if d["kind"] == "grant")
    done = _cli_process(audited, "replay", grant["decision_id"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced: yes" in done.stdout and "explanation: Art. 2" in done.stdout
    worker = grant["subject"]  # a person: masked for operators (an enterprise's code is not personal)
    assert len(worker) == 18 and worker not in done.stdout
    assert f"{worker[:4]}**********{worker[-4:]}" in done.stdout


def test_replay_of_an_unknown_decision_exits_non_zero(audited: Audited) -> None:
    result = _cli(audited, "replay", str(uuid.uuid4()))
    # not found (5), not "not reproduced" (1): the CLI's exit-code convention (docs/cli.md)
    assert result.exit_code == 5 and "not in the ledger" in result.output


def test_replay_takes_any_unique_prefix_and_shows_the_facts_in_either_language(audited: Audited) -> None:
    book = audited.books["08-commitment-revoked"]
    clawback = next(d for d in audited.decisions[book] if d["kind"] == "clawback")
    full = clawback["decision_id"]
    shown = _cli(audited, "replay", full[:10], "--lang", "zh")
    assert shown.exit_code == 0, shown.output
    assert f"decision {full} " in shown.output and "reproduced: yes" in shown.output
    assert "享受资格终止" in shown.output or "核减" in shown.output
    assert "依据的事实" in shown.output and "撤销" in shown.output  # the revoking fact, in Chinese
    worker = clawback["subject"]
    assert worker not in shown.output and f"{worker[:4]}**********{worker[-4:]}" in shown.output
    as_json = _cli(audited, "replay", full[:10], "--json")
    assert as_json.exit_code == 0, as_json.output
    printed = json.loads(as_json.stdout)
    assert printed["decision"]["decision_id"] == full and printed["reproduced"] is True
    assert clawback["after"] in [fact["id"] for fact in printed["rests_on"]] and worker not in as_json.stdout
    # the clawback names the grant(s) it reverses (issue 17.2), in replay and in the subject's history
    assert clawback["reverses"] and printed["decision"]["reverses"] == clawback["reverses"]
    assert f"reverses decision {', '.join(clawback['reverses'])}" in shown.output
    told = _cli(audited, "history", worker, "--book", book)
    assert told.exit_code == 0 and f"reverses decision {', '.join(clawback['reverses'])}" in told.output
    # a prefix that names several decisions is refused, listing them; a bad language is a usage error
    ids = [d["decision_id"] for ds in audited.decisions.values() for d in ds]
    shared = next(i[:1] for i in ids if sum(j.startswith(i[:1]) for j in ids) > 1)
    ambiguous = _cli(audited, "replay", shared)
    assert ambiguous.exit_code == 2 and "give more of the id" in ambiguous.output, ambiguous.output
    assert _cli(audited, "replay", full, "--lang", "fr").exit_code == 2


def _order_of(settings: Settings, decision_id: str) -> str:
    """The payment order made from a grant, once payments' read side shows it."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        with psycopg.connect(settings.pg_dsn()) as conn:
            row = conn.execute("SELECT order_id FROM payments.payments_book_orders WHERE decision_id = %s",
                               (decision_id,)).fetchone()
        if row:
            return str(row[0])
        time.sleep(0.5)
    raise AssertionError(f"no payment order for decision {decision_id}")


def test_lookup_goes_from_a_payment_order_back_to_its_decision(audited: Audited) -> None:
    book = audited.books["01-employment-service-difficulty"]
    grant = next(d for d in audited.decisions[book] if d["kind"] == "grant")
    order_id = _order_of(audited.settings, grant["decision_id"])
    found = _cli(audited, "lookup", order_id, "--json")
    assert found.exit_code == 0, found.output
    printed = json.loads(found.stdout)
    assert printed["decision_id"] == grant["decision_id"]
    assert [step["kind"] for step in printed["steps"]] == ["payment order", "decision"]
    assert printed["steps"][0]["id"] == order_id and printed["steps"][0]["book"] == book
    text = _cli(audited, "lookup", order_id)
    assert text.exit_code == 0 and f"flexledger audit replay {grant['decision_id']}" in text.output
    assert _cli(audited, "lookup", "no-such-order").exit_code == 5


def _vector_books(state: Audited) -> list[str]:
    """`--book` for each vector's book. The test stack's ledger also holds other tests' books, some fed
    decisions straight onto the decisions topic (payments' tests): there payments acts on decisions the
    ledger never made, which `audit verify` rightly reports; every row's decryption and stream versions
    and every checkpoint are still checked over the whole log."""
    return [arg for book in state.books.values() for arg in ("--book", book)]


def test_audit_verify_exits_0_on_the_untouched_ledger(audited: Audited) -> None:
    done = _cli_process(audited, "verify", "--progress", *_vector_books(audited))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified: yes" in done.stdout
    counts = done.stdout.splitlines()[0]
    # the progress bar, on stderr only, was driven by the pass up to every event it read
    events = int(counts.split(" stored events")[0].rsplit(" ", 1)[1])
    assert f"{events:,}/" in done.stderr or f"{events:,} events" in done.stderr, done.stderr
    assert " 0 checkpoints" not in counts and " 0 decisions" not in counts, counts
    # every processed fact was held to intake's record of its (book, seq)
    facts = int(counts.split(" facts in ")[0].rsplit(" ", 1)[1])
    assert facts and f"{facts} facts held to intake," in counts, counts


def test_verifys_parts_share_the_streams_and_cover_every_row_once(audited: Audited) -> None:
    table = EventTable(audited.settings, "eligibility")
    every = [(row.notification_id, row.originator_id) for row in table.rows()]
    parts = [[(row.notification_id, row.originator_id) for row in table.rows(part=(k, 2))] for k in (0, 1)]
    assert all(parts) and sorted(parts[0] + parts[1]) == every
    assert not {oid for _, oid in parts[0]} & {oid for _, oid in parts[1]}, "a stream split between parts"


def test_checkpoints_are_published_and_verify_offline(audited: Audited, tmp_path: Path) -> None:
    published = asyncio.run(read_topic(audited.settings, timeout_s=20))
    assert published, f"nothing on {CHECKPOINTS.name}"
    public_key = own_public_key(audited.settings)
    assert {c["key_id"] for c in published} >= {key_id(public_key)}
    file = tmp_path / "checkpoints.jsonl"
    file.write_text("".join(json.dumps(c) + "\n" for c in published if c["key_id"] == key_id(public_key)))
    key_file = tmp_path / "ledger.pub"
    key_file.write_text(public_key + "\n")
    ok = _cli(audited, "verify-checkpoint", str(file), "--public-key", str(key_file))
    assert ok.exit_code == 0 and "valid" in ok.output and "INVALID" not in ok.output, ok.output
    # an outside party's copy altered in one digit: the signature no longer holds
    forged = dict(published[-1], event_count=int(published[-1]["event_count"]) + 1)
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    bad = _cli(audited, "verify-checkpoint", str(tmp_path / "forged.json"), "--public-key", public_key)
    assert bad.exit_code == 1 and "INVALID" in bad.output
    # and the ledger is held to the published copies too
    held = _cli(audited, "verify", "--checkpoints", str(file), "--book", audited.books["05-training-cap"])
    assert held.exit_code == 0, held.output


def test_a_decision_is_proven_in_a_signed_tree_head_and_its_evidence_verifies_alone(
    audited: Audited, tmp_path: Path
) -> None:
    """Issue 16: checkpoints are signed Merkle tree heads; a decision's inclusion proof, the consistency
    of two tree heads, and an evidence bundle checked by the standalone verifier (tampering refused)."""
    from flexledger.audit.proofs import recorded_tree_heads
    from services.eligibility.domain import merkle

    book = audited.books["05-training-cap"]
    decision = next(d for d in audited.decisions[book] if d.get("amount_fen"))
    proved = _cli(audited, "prove", decision["decision_id"], "--json")
    assert proved.exit_code == 0, proved.output
    proof = json.loads(proved.output)
    merkle_algorithm = "flexledger-merkle-sha256/2"
    assert proof["verified"] and proof["tree_head"]["digest_algorithm"] == merkle_algorithm
    assert merkle.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), proof["leaf_index"], proof["tree_size"],
                                   [bytes.fromhex(p) for p in proof["inclusion_proof"]],
                                   bytes.fromhex(proof["tree_head"]["digest"]))
    sizes = sorted(int(h["event_count"]) for h in recorded_tree_heads(audited.settings)
                   if h["digest_algorithm"] == merkle_algorithm)  # a reused test database has older ones
    assert len(sizes) >= 2, sizes
    consistent = _cli(audited, "consistency", str(sizes[0]), str(sizes[-1]))
    assert consistent.exit_code == 0 and "consistent: yes" in consistent.output, consistent.output

    bundle_file = tmp_path / "evidence.json"
    written = _cli(audited, "evidence", decision["decision_id"], "--out", str(bundle_file))
    assert written.exit_code == 0, written.output
    bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
    subject = bundle["decisions"][0]["decision"]["subject"]
    workers = {f["worker"] for f in audited.facts[book] if f.get("worker")}
    assert "*" in subject and not any(w in bundle_file.read_text(encoding="utf-8") for w in workers)
    verifier = PROJECT_ROOT / "flexledger" / "audit" / "standalone_verify.py"
    alone = subprocess.run([sys.executable, "-I", str(verifier), str(bundle_file), "--public-key",
                            own_public_key(audited.settings)], capture_output=True, text=True, check=False)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    bundle["decisions"][0]["decision"]["amount_fen"] += 100
    bundle_file.write_text(json.dumps(bundle), encoding="utf-8")
    refused = subprocess.run([sys.executable, "-I", str(verifier), str(bundle_file)], capture_output=True,
                             text=True, check=False)
    assert refused.returncode == 1 and "not among the decisions" in refused.stdout, refused.stdout

    # identity numbers in clear only where the deployment allows it
    worker = next(f["worker"] for f in audited.facts[book] if f.get("type") == "worker_registered")
    args = ["evidence", "--subject", worker, "--book", book, "--identities", "--out", str(bundle_file)]
    assert _cli(audited, *args).exit_code == 4  # refused: the deployment does not allow it
    allowed_env = {**audited.env(), "FLEXLEDGER_AUDIT_IDENTITIES_ALLOWED": "1"}
    allowed = CliRunner().invoke(audit_cli.app, args, env=allowed_env)
    assert allowed.exit_code == 0, allowed.output
    clear = subprocess.run([sys.executable, "-I", str(verifier), str(bundle_file)], capture_output=True,
                           text=True, check=False)
    assert clear.returncode == 0 and worker in bundle_file.read_text(encoding="utf-8"), clear.stdout


def test_history_as_of_shows_what_stood_then(audited: Audited) -> None:
    book = audited.books["01-employment-service-difficulty"]
    worker = next(f["worker"] for f in audited.facts[book] if f.get("type") == "worker_registered")
    now = history(audited.settings, worker, book=book)
    assert now.entries and all(e.state["book"] == book for e in now.entries)
    middle = now.entries[len(now.entries) // 2].recorded_at
    then = history(audited.settings, worker, book=book, as_of=middle)
    assert 0 < len(then.entries) < len(now.entries)
    assert all(e.recorded_at <= middle for e in then.entries)
    shown = _cli(audited, "history", worker, "--book", book, "--as-of", middle.isoformat())
    assert shown.exit_code == 0, shown.output
    assert worker not in shown.output and f"{worker[:4]}**********{worker[-4:]}" in shown.output
    # the facts' contents, masked, and the reasons in Chinese; or all of it as JSON
    zh = _cli(audited, "history", worker, "--book", book, "--lang", "zh")
    assert zh.exit_code == 0 and "worker_registered" in zh.output and worker not in zh.output, zh.output
    assert "连续6个月" in zh.output  # the employment service grant's reason_zh
    printed = _cli(audited, "history", worker, "--book", book, "--json")
    assert printed.exit_code == 0 and worker not in printed.stdout, printed.output
    entries = json.loads(printed.stdout)["entries"]
    assert len(entries) == len(now.entries) and all(e["fact"] for e in entries if e["own"])
    # an enterprise's history includes the decisions about its workers that name it
    registered = [f for f in audited.facts[book] if f.get("type") == "enterprise_registered"]
    enterprise = registered[0]["enterprise"]
    assert any(not e.own for e in history(audited.settings, enterprise, book=book).entries)


def _variant() -> Any:
    """A test-only rule set: the minimum wage 300 CNY higher from 2021-08-01 (a 'version 2' stand-in)."""
    values = []
    for name in WUXI_2021_26_V1.params.names():
        for value in WUXI_2021_26_V1.params.history(name):
            if name == "min_wage_monthly_fen" and value.since >= "2021-08-01":
                value = ParameterValue(name, int(value.value) + 30000, value.since, "test variant")
            values.append(value)
    return dataclasses.replace(WUXI_2021_26_V1, id=VARIANT_ID, params=ParameterTable(tuple(values)))


def test_what_if_lists_the_decisions_another_rule_set_would_change(
    audited: Audited, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(RULE_SETS, VARIANT_ID, _variant())
    book = audited.books["01-employment-service-difficulty"]
    before = _max_notification(audited.settings)
    same = what_if(audited.settings, "wuxi-2021-26/1", book=book)
    engine = Engine(book=book)
    engine.run(audited.facts[book])
    assert same.facts == engine.intake.last_seq and not same.differences and not same.problems
    differ = what_if(audited.settings, VARIANT_ID, book=book)
    assert differ.differences, "a higher minimum wage changes employment-service grants"
    assert any(kind == "grant" for diff in differ.differences for (_, kind, *_) in diff.recorded)
    shown = _cli(audited, "what-if", "--rules", VARIANT_ID, "--book", book)
    assert shown.exit_code == 0 and "would decide differently" in shown.output, shown.output
    assert _cli(audited, "what-if", "--rules", "wuxi-2021-26/9").exit_code == 2
    # a reform: the employment service subsidy for 就业困难人员 raised to 1200 CNY from 2021-06-01
    reform = _cli(audited, "what-if", "--set", "employment_service_difficulty_fen=120000@2021-06-01",
                  "--book", book, "--json")
    assert reform.exit_code == 0, reform.output
    money = json.loads(reform.stdout)["money"]
    assert money and all(m["program"] == "employment_service" and m["difference_fen"] > 0 for m in money)
    assert _cli(audited, "what-if", "--set", "no_such_parameter=1").exit_code == 2
    # the help's other example: a reform as a parameter file (training rates from 2024: these facts are older)
    example = PROJECT_ROOT / "docs" / "reforms" / "training-rate-2024.yaml"
    training = audited.books["05-training-cap"]
    as_file = _cli(audited, "what-if", "--parameters", str(example), "--book", training)
    assert as_file.exit_code == 0 and "what-if wuxi-2021-26/1+reform" in as_file.output, as_file.output
    assert _max_notification(audited.settings) == before, "what-if wrote something"


# --- 4: tamper evidence --------------------------------------------------------------------------------

def _streams(settings: Settings, book: str) -> dict[str, list[tuple[int, int]]]:
    """Stream id -> [(notification id, version)] of the book's processed facts."""
    table, decoder = EventTable(settings, "eligibility"), Decoder(settings)
    out: dict[str, list[tuple[int, int]]] = {}
    for row in table.rows(topic=PROCESSED):
        if decoder.decode(row).get("book") == book:
            out.setdefault(row.originator_id, []).append((row.notification_id, row.version))
    return out


def test_an_updated_and_deleted_events_are_named_by_verify(audited: Audited) -> None:
    settings = audited.settings
    book = audited.books["03-social-insurance-graduates"]
    long_streams = [events for events in _streams(settings, book).values() if len(events) >= 4]
    assert len(long_streams) >= 2, "vector 03 has workers with several facts"
    updated, deleted, last = long_streams[0][1], long_streams[1][1], long_streams[1][-1]
    table = "eligibility.eligibility_events"
    with psycopg.connect(settings.pg_dsn(), autocommit=True) as conn:  # the owner: a privileged user
        saved = {n: conn.execute(
            f"SELECT originator_id, originator_version, topic, state, notification_id FROM {table} "
            "WHERE notification_id = %s", (n,)).fetchone() for n, _ in (updated, deleted, last)}
        try:
            # flip bytes in the ciphertext, as a privileged user with SQL could
            conn.execute(f"UPDATE {table} SET state = set_byte(state, 60, (get_byte(state, 60) + 1) %% 256) "
                         "WHERE notification_id = %s", (updated[0],))
            conn.execute(f"DELETE FROM {table} WHERE notification_id IN (%s, %s)", (deleted[0], last[0]))
            done = _cli_process(audited, "verify", "--book", book)
        finally:
            conn.execute(f"UPDATE {table} SET state = %s WHERE notification_id = %s",
                         (saved[updated[0]][3], updated[0]))
            for n in (deleted[0], last[0]):
                conn.execute(f"INSERT INTO {table} (originator_id, originator_version, topic, state, "
                             "notification_id) VALUES (%s, %s, %s, %s, %s)", saved[n])
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "verified: no" in out
    first = next(line for line in out.splitlines() if line.startswith("verified: no"))
    assert "first: notification" in first  # the first failing event, by its notification id
    # the UPDATE: named by its notification id, reported as tampering (not a crash)
    assert f"notification {updated[0]}," in out and "cannot be decrypted" in out
    # the DELETE inside a stream: the version gap, at the next stored event of that stream
    assert f"version {deleted[1]} of this stream is missing" in out
    # the DELETE at the end of a stream: named by intake's witness (book, seq)
    assert "its ledger event was deleted" in out
    # and the signed checkpoints no longer match the stored rows
    assert "no longer match the checkpoint" in out
    # every identity number in the report is masked
    workers = {f["worker"] for f in audited.facts[book] if "worker" in f}
    assert not any(w in out for w in workers)
    # undone: the ledger verifies again
    again = _cli(audited, "verify", "--book", book)
    assert again.exit_code == 0, again.output


def test_a_row_swapped_for_another_valid_ciphertext_breaks_the_chain(audited: Audited) -> None:
    settings = audited.settings
    book = audited.books["04-social-insurance-extension"]
    stream = next(events for events in _streams(settings, book).values() if len(events) >= 3)
    (a, _), (b, _) = stream[0], stream[1]
    table = "eligibility.eligibility_events"
    with psycopg.connect(settings.pg_dsn(), autocommit=True) as conn:
        state_a = conn.execute(f"SELECT state FROM {table} WHERE notification_id = %s", (a,)).fetchone()
        state_b = conn.execute(f"SELECT state FROM {table} WHERE notification_id = %s", (b,)).fetchone()
        assert state_a and state_b
        try:
            conn.execute(f"UPDATE {table} SET state = %s WHERE notification_id = %s", (state_a[0], b))
            result = _cli(audited, "verify", "--book", book)
        finally:
            conn.execute(f"UPDATE {table} SET state = %s WHERE notification_id = %s", (state_b[0], b))
    assert result.exit_code == 1
    assert f"notification {b}," in result.output
    assert "does not link" in result.output or "does not match its hash" in result.output


# --- 4b: facts decided past intake (the broker bypassed) -------------------------------------------------

ENTERPRISES = ("91320213MA1XY0001L", "91320211MA1XY0003X", "91320214MA1XY00026")


def _registered(fact_id: str, enterprise: str) -> dict[str, Any]:
    return {"id": fact_id, "type": "enterprise_registered", "at": "2021-06-01T09:00:00+08:00",
            "enterprise": enterprise, "name": "锡城到家服务平台"}


def _talent_award(fact_id: str, enterprise: str) -> dict[str, Any]:
    return {"id": fact_id, "type": "talent_award", "at": "2022-01-10T10:00:00+08:00",
            "enterprise": enterprise, "award": "THRC-2021-0031", "approved_amount_fen": 100_000_000}


def _message(book: str, seq: int, fact: dict[str, Any], digest: str | None = None) -> FactMessageV1:
    """A facts-topic message as intake would publish it (its digest the fact's, unless given)."""
    return FactMessageV1(book=book, seq=seq, fact_id=fact["id"], subject=fact["enterprise"],
                         outcome="accepted", fact=fact, digest=digest or content_digest(fact),
                         recorded_at=datetime.now(UTC))


def _decide_past_intake(settings: Settings, messages: list[FactMessageV1]) -> list[dict[str, Any]]:
    """The messages decided by eligibility's own application, connected as the owner role, with no intake
    record behind them: what a forger gets recorded by publishing straight to the facts topic, or by
    writing eligibility's store. Returns the decisions."""
    from services.eligibility.application import EligibilityApplication

    app = EligibilityApplication(settings)
    source = f"kafka:forged-{uuid.uuid4().hex[:8]}:0"
    try:
        results = app.process_batch([(m, Tracking(source, i), None, {}) for i, m in enumerate(messages)])
    finally:
        app.close()
    return [d.to_dict() for _, decisions in results for d in decisions]


def _problems(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("  ") and " notification " in line]


def test_a_fact_intake_never_recorded_is_named_by_verify(audited: Audited) -> None:
    book = f"audit-forged-{uuid.uuid4().hex[:12]}"
    enterprise = ENTERPRISES[0]
    run_pipeline([_registered("e1", enterprise)], audited.settings, book=book)  # intake records seq 1
    forged = _message(book, 2, _talent_award("forged-talent", enterprise))
    decided = _decide_past_intake(audited.settings, [forged])
    assert [(d["kind"], d["amount_fen"]) for d in decided] == [("grant", 100_000_000)], "the forgery decided"
    done = _cli_process(audited, "verify", "--book", book)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    # its chain links and its decisions re-derive (the forger made them): intake's record alone tells
    assert "verified: no — 1 problems" in out, out
    assert f"book {book}, seq 2 (fact forged-talent)" in out and "a fact intake never recorded: forged" in out


def test_a_fact_other_than_intake_recorded_at_its_seq_is_named_by_verify(audited: Audited) -> None:
    book = f"audit-forged-{uuid.uuid4().hex[:12]}"
    genuine = [_registered(f"e{i}", enterprise) for i, enterprise in enumerate(ENTERPRISES, start=1)]
    run_pipeline(genuine, audited.settings, book=book)  # intake records seqs 1-3, one enterprise each
    # Seqs 2 and 3 again, into the first enterprise's stream (its last seq is 1): another fact under seq 2's
    # fact id, and another fact carrying intake's digest of seq 3.
    _decide_past_intake(audited.settings, [
        _message(book, 2, _talent_award("e2", ENTERPRISES[0])),
        _message(book, 3, _talent_award("e3", ENTERPRISES[0]), digest=content_digest(genuine[2])),
    ])
    done = _cli_process(audited, "verify", "--book", book)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    problems = _problems(out)
    seq2 = [p for p in problems if p.startswith(f"book {book}, seq 2 (fact e2)")]
    forged_digest = content_digest(_talent_award("e2", ENTERPRISES[0]))
    recorded_digest = content_digest(genuine[1])
    assert any(f"digest {forged_digest[:12]}… where intake recorded {recorded_digest[:12]}…" in p
               for p in seq2), problems
    assert any(f"subject {ENTERPRISES[0]} where intake recorded {ENTERPRISES[1]}" in p
               for p in seq2), problems
    assert any("another event for this seq" in p for p in seq2), problems
    # the fact carrying intake's digest of another fact: named by the stream pass, and as a second event
    assert any("seq 3 (fact e3): its digest is not the SHA-256 of the fact stored with it" in p
               for p in problems), problems
    assert any(p.startswith(f"book {book}, seq 3 (fact e3)") and "another event for this seq" in p
               for p in problems), problems
    # the genuine facts of seqs 1-3 are not named
    assert not any(p.startswith(f"book {book}, seq 1 ") for p in problems), problems


def test_the_services_role_cannot_change_events_and_the_services_use_it(audited: Audited) -> None:
    settings = audited.settings
    app = settings.for_service()
    assert app.pg_user == "flexledger_app" != settings.pg_user
    with psycopg.connect(app.pg_dsn(), autocommit=True) as conn:
        for schema in SERVICES:
            for statement in (f"UPDATE {schema}.{schema}_events SET topic = topic",
                              f"DELETE FROM {schema}.{schema}_events",
                              f"TRUNCATE {schema}.{schema}_events"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
            assert conn.execute(f"SELECT count(*) FROM {schema}.{schema}_events").fetchone()
    with psycopg.connect(settings.pg_dsn()) as conn:
        users = {r[0] for r in conn.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s AND application_name <> 'psql'",
            (settings.pg_database,)).fetchall()}
    assert "flexledger_app" in users


# --- 5: personal data ----------------------------------------------------------------------------------

def _all_workers(state: Audited) -> set[str]:
    return {f["worker"] for facts in state.facts.values() for f in facts
            if isinstance(f, dict) and isinstance(f.get("worker"), str) and len(f["worker"]) == 18}


async def _topic_records(settings: Settings, topic: str) -> list[Any]:
    from aiokafka import AIOKafkaConsumer

    # Subscribed without a group: every partition of the topic is assigned, read from the beginning.
    consumer = AIOKafkaConsumer(topic, **client_args(settings, "admin"), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def _book_of(record: Any) -> str | None:
    try:
        return str(json.loads(record.value)["book"])
    except (ValueError, KeyError, TypeError):
        return None


def _raw(record: Any) -> bytes:
    return b"|".join([record.key or b"", record.value or b"", *(v for _, v in record.headers or [])])


def test_identity_numbers_are_not_in_clear_in_event_tables_logs_or_non_hr_topics(audited: Audited) -> None:
    settings = audited.settings
    workers = _all_workers(audited)
    assert len(workers) >= 5
    with psycopg.connect(settings.pg_dsn()) as conn:
        for schema in SERVICES:
            for worker in workers:
                found = conn.execute(
                    f"SELECT count(*) FROM {schema}.{schema}_events WHERE position(%s::bytea IN state) > 0 "
                    "OR topic LIKE %s OR originator_id::text LIKE %s",
                    (worker.encode(), f"%{worker}%", f"%{worker}%"),
                ).fetchone()
                assert found and found[0] == 0, f"{schema} stores {worker[:4]}… in clear"
    for name in SERVICES:
        with open(_log_path(settings, name), "rb") as log:
            log.seek(audited.log_offsets[name])
            written = log.read()
        assert written, f"{name} wrote no log while the vectors ran"
        for worker in workers:
            assert worker.encode() not in written, f"{name}.log holds {worker[:4]}… in clear"
    # the statistics name each counted worker by its keyed pseudonym (the relay may still be catching up
    # with an older ledger: wait for this book's)
    book = audited.books["09-new-employment-statistic"]
    counted = {d["subject"] for d in audited.decisions[book] if d["kind"] == "statistic"}
    key = statistics_key(settings)
    assert counted
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        statistics = asyncio.run(_topic_records(settings, SANDBOX_STATISTICS.name))  # a sandbox book's
        messages = [json.loads(r.value) for r in statistics if _book_of(r) == book]
        if {m["pseudonym"] for m in messages} >= {pseudonym(key, w) for w in counted}:
            break
        assert time.monotonic() < deadline, f"no statistic of book {book} on {SANDBOX_STATISTICS.name}"
        time.sleep(1)
    checkpoints = asyncio.run(_topic_records(settings, CHECKPOINTS.name))
    assert statistics and checkpoints
    for record in [*statistics, *checkpoints]:
        raw = _raw(record)
        assert not any(worker.encode() in raw for worker in workers), record.topic
