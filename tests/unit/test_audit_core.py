"""The audit ledger's pure parts (issue 4): rejection ids, checkpoints, pseudonyms, replay and what-if
on the engine, offline checkpoint verification, log masking. The real stack:
tests/integration/test_audit_stack.py.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import get_topic, resolve_topic
from typer.testing import CliRunner

from contracts.messages import CheckpointV1, FactMessageV1, StatisticV1, fact_subject
from flexledger.audit import cli as audit_cli
from flexledger.audit.replay import SubjectReplay, same_decisions
from flexledger.audit.verify import Report
from flexledger.audit.verify.intake import IntakeLog, Recorded, check_intake, mismatch
from flexledger.audit.verify.money import Money, Processed
from flexledger.audit.whatif import normal
from flexledger.engine import Engine
from flexledger.scenario_file import load_scenario
from services.eligibility.adapters import checkpoints as checkpoint_relay
from services.eligibility.adapters.statistics import pseudonym, to_messages
from services.eligibility.aggregates import DecisionChain, LedgerCheckpoints
from services.eligibility.domain import checkpoint as cp
from services.eligibility.domain import merkle
from services.eligibility.domain.decision import rejection
from services.eligibility.domain.parameters import ParameterTable, ParameterValue
from services.eligibility.domain.ruleset import CURRENT, RULE_SETS, WUXI_2021_26_V1
from services.intake.domain.submission import IntakeBook, content_digest
from services.runtime.logs import MaskingFormatter

VECTORS = sorted((Path(__file__).resolve().parents[1] / "vectors").glob("*.yaml"))
W = "320213197804121019"
SEED = base64.b64encode(bytes(range(32))).decode()


# --- rejection ids include intake's seq -----------------------------------------------------------------

ENTERPRISE = {"id": "e1", "type": "enterprise_registered", "at": "2021-06-01T09:00:00+08:00",
              "enterprise": "91320213MA1XY0001L", "name": "锡城到家服务平台"}


def test_id_reuse_rejections_get_distinct_ids_that_name_their_seq() -> None:
    reuse = {**ENTERPRISE, "name": "another name"}
    other_reuse = {**ENTERPRISE, "name": "a third name"}
    engine = Engine(book="b")
    # the 3rd is a no-op duplicate; the 5th repeats the 2nd, an identical conflict: a no-op too (issue 13)
    decisions = engine.run([ENTERPRISE, reuse, dict(ENTERPRISE), other_reuse, reuse])
    rejected = [d for d in decisions if d.kind == "rejected"]
    assert len(rejected) == 2 and rejected[0].decision_id != rejected[1].decision_id
    # intake's service numbers recorded submissions 1, 2, 3 (duplicates are not recorded): the
    # rejections are seq 2 and 3, and eligibility, given those seqs, derives the same ids
    assert engine.intake.last_seq == 3
    digests = [content_digest(raw) for raw in (reuse, other_reuse)]
    assert [d.decision_id for d in rejected] == [
        rejection("b", CURRENT.id, "e1", d.reason or "", digest, seq).decision_id
        for d, digest, seq in zip(rejected, digests, (2, 3), strict=True)
    ]


def test_intake_book_numbers_recorded_submissions_as_the_service_does() -> None:
    book = IntakeBook()
    outcomes = [book.submit(raw).outcome for raw in (ENTERPRISE, ENTERPRISE, {"id": "x"}, ENTERPRISE)]
    assert outcomes == ["accepted", "duplicate", "rejected", "duplicate"]
    assert book.last_seq == 2


# --- intake as a second witness: every processed fact is the one intake recorded --------------------------

def _witnessed(raw: dict[str, Any]) -> tuple[Recorded, Processed]:
    """Intake's record of a fact at seq 1, and eligibility's, as the stream pass collects it, of the fact
    as it came over the facts topic."""
    submission = IntakeBook().check(raw)
    message = FactMessageV1(book="b", seq=1, fact_id=submission.fact_id, subject=fact_subject(raw),
                            outcome="accepted", fact=raw, digest=submission.digest,
                            recorded_at="2026-01-01T00:00:00Z")
    received = FactMessageV1.model_validate_json(message.model_dump_json())
    assert content_digest(received.fact) == received.digest  # the stream pass's check holds on the wire
    recorded = Recorded(submission.fact_id, "accepted", fact_subject(raw), submission.digest)
    return recorded, (received.fact_id, received.outcome, received.subject, received.digest, 42)


def test_a_processed_fact_is_held_to_intakes_record_of_its_seq() -> None:
    recorded, processed = _witnessed(ENTERPRISE)
    assert mismatch(recorded, processed) is None
    never = mismatch(None, processed)
    assert never and "intake never recorded" in never and "forged" in never
    other = content_digest({**ENTERPRISE, "name": "another"})
    differs = mismatch(recorded, (*processed[:3], other, 42))
    assert differs and f"digest {other[:12]}… where intake recorded {str(recorded.digest)[:12]}…" in differs
    differs = mismatch(recorded, ("e2", "rejected", W, recorded.digest, 42))
    assert differs and "fact id e2 where intake recorded e1" in differs
    assert "outcome rejected where intake recorded accepted" in differs and "subject" in differs
    assert "digest" not in differs


def _money(*facts: tuple[str, int, Processed]) -> Money:
    money = Money()
    for book, seq, fact in facts:
        money.add_processed(book, seq, fact)
    return money


def test_the_first_stored_event_of_a_seq_is_held_whatever_order_the_streams_are_read_in() -> None:
    _, fact = _witnessed(ENTERPRISE)
    later, earlier = (*fact[:4], 42), (*fact[:4], 30)
    money = _money(("b", 1, later), ("b", 1, earlier))  # stream after stream: the later one read first
    assert money.processed["b"][1] == earlier and money.again == [("b", 1, later)]
    money = _money(("b", 1, earlier), ("b", 1, later))
    assert money.processed["b"][1] == earlier and money.again == [("b", 1, later)]


def test_intakes_cross_check_names_forged_differing_and_twice_processed_facts() -> None:
    recorded, fact = _witnessed(ENTERPRISE)
    intake = IntakeLog({"b": 2})
    intake.recorded["b"].update({1: recorded, 2: recorded._replace(fact_id="e2")})
    forged: Processed = ("t1", "accepted", W, "ab" * 32, 50)
    # two workers' parts: the same seq 1 in two streams (the later one a copy in another subject's stream)
    money = _money(("b", 1, fact), ("b", 2, (*fact[:4], 43)))
    money.merge(_money(("b", 1, (fact[0], fact[1], W, fact[3], 30)), ("b", 7, forged)))
    assert sorted(money.processed["b"]) == [1, 2, 7] and money.processed["b"][1][-1] == 30
    assert [(book, seq, f[-1]) for book, seq, f in money.again] == [("b", 1, 42)]
    report = Report()
    check_intake(intake, money, report)
    found = {str(p) for p in report.problems}
    assert len(found) == 4, found
    assert any("book b, seq 7 (fact t1), notification 50" in p and "never recorded" in p for p in found)
    assert any("seq 2 (fact e1), notification 43" in p and "fact id e1 where intake recorded e2" in p
               for p in found)
    assert any("notification 42" in p and "another event for this seq (notification 30)" in p for p in found)
    assert any("notification 30" in p and "subject" in p for p in found)  # the copy in the worker's stream
    assert not any(W in p for p in found), "identity numbers are masked"
    assert report.counts["facts held to intake"] == 4


# --- checkpoints ----------------------------------------------------------------------------------------

def _content(**overrides: Any) -> dict[str, Any]:
    public = cp.public_key_b64(SEED)
    base = cp.checkpoint_content(
        ledger="eligibility", up_to_notification_id=7, event_count=7, digest="ab" * 32,
        signed_at="2026-01-01T00:00:00+00:00", key=cp.key_id(public),
    )
    return {**base, **overrides}


def test_a_checkpoint_signs_and_verifies_and_any_change_breaks_it() -> None:
    public = cp.public_key_b64(SEED)
    content = _content()
    signed = {**content, "signature": cp.sign(SEED, content)}
    assert cp.check(public, signed) == []
    for name, value in (("event_count", 8), ("digest", "cd" * 32), ("up_to_notification_id", 6),
                        ("signed_at", "2026-01-01T00:00:01+00:00")):
        assert "the signature does not verify" in cp.check(public, {**signed, name: value})
    other = cp.public_key_b64(base64.b64encode(bytes(32)).decode())
    assert cp.check(other, signed)  # another key: wrong key id and no valid signature
    assert cp.check(public, {k: v for k, v in signed.items() if k != "digest"}) == ["missing digest"]
    CheckpointV1.model_validate({**signed, "ledger": "eligibility"})  # the wire model carries it


def test_bad_keys_are_refused_with_a_reason() -> None:
    with pytest.raises(cp.BadKey, match="32 bytes"):
        cp.private_key(base64.b64encode(b"short").decode())
    with pytest.raises(cp.BadKey, match="base64"):
        cp.key_id("not base64!")


def test_the_tree_head_depends_on_every_row_and_their_order() -> None:
    rows = [(n, str(uuid.UUID(int=n)), 1, "t", bytes([n]) * 10) for n in (1, 2, 5)]

    def digest(sequence: list[tuple[int, str, int, str, bytes]]) -> tuple[str, int]:
        log = cp.LogTree()
        for row in sequence:
            log.add(*row)
        return log.digest, log.count

    full = digest(rows)
    assert full == digest(list(rows)) and full[1] == 3
    assert digest([*rows[:2], (5, rows[2][1], 1, "t", b"x")]) != full  # altered state
    assert digest([rows[0], rows[2]]) != full  # a deleted row
    with pytest.raises(ValueError):
        digest([rows[1], rows[0]])  # out of order


def test_verify_folds_the_log_digest_from_state_hashes_as_the_checkpointer_does() -> None:
    from hashlib import sha256

    from flexledger.audit.store import Row
    from flexledger.audit.verify.checkpoints import Digests

    # topics that JSON escapes, and a stream id that is not a UUID's text (verify writes the entry's JSON
    # itself for UUIDs)
    rows = [(n, str(uuid.UUID(int=n)) if n != 5 else "not-a-uuid", n % 3 + 1, "t:é" if n % 2 else 'q"\\\n',
             bytes([n]) * n) for n in (1, 2, 5, 9)]
    tree, hashed = cp.LogTree(), Digests([0, 3, 5, 20], running_marks=[3, 5, 20])
    value = bytes.fromhex(cp.GENESIS)  # the running digest signed before the tree, as its spec says
    after: dict[int, tuple[str, int]] = {}  # the checkpointer's tree head after each row
    running: dict[int, str] = {}  # and the running digest
    for n, oid, version, topic, state in rows:
        value = cp.next_digest(value, cp.entry_hash(n, oid, version, topic, sha256(state).digest()))
        tree.add(n, oid, version, topic, state)
        hashed.add(Row(n, oid, version, topic, sha256(state).digest()))
        after[n], running[n] = (tree.digest, tree.count), value.hex()
        assert (hashed.value, hashed.count) == (value, tree.count)
        assert hashed.tree.root().hex() == tree.digest
    hashed.finish()
    # remembered at each checkpoint's notification id: the digest of the rows up to it
    empty = (merkle.EMPTY_ROOT.hex(), 0)
    assert hashed.at == {0: empty, 3: after[2], 5: after[5], 20: after[9]}
    assert hashed.running_at == {0: cp.GENESIS, 3: running[2], 5: running[5], 20: running[9]}
    assert hashed.digest_at(5, cp.RUNNING_DIGEST) == (running[5], 3)
    assert hashed.digest_at(5, cp.DIGEST_ALGORITHM) == after[5]


def test_verify_checkpoint_is_an_offline_command(tmp_path: Path) -> None:
    public = cp.public_key_b64(SEED)
    good = {**_content(), "signature": cp.sign(SEED, _content())}
    (tmp_path / "good.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    (tmp_path / "key.pub").write_text(public + "\n")
    runner = CliRunner()
    ok = runner.invoke(audit_cli.app, ["verify-checkpoint", str(tmp_path / "good.jsonl"),
                                       "--public-key", str(tmp_path / "key.pub")])
    assert ok.exit_code == 0 and ok.output.count(": valid") == 2, ok.output
    (tmp_path / "bad.json").write_text(json.dumps({**good, "event_count": 6}))
    bad = runner.invoke(audit_cli.app, ["verify-checkpoint", str(tmp_path / "bad.json"),
                                        "--public-key", public])
    assert bad.exit_code == 1 and "INVALID" in bad.output
    nokey = runner.invoke(audit_cli.app, ["verify-checkpoint", str(tmp_path / "bad.json"),
                                          "--public-key", "x"])
    assert nokey.exit_code == 2


def test_a_recorded_checkpoint_becomes_its_wire_message() -> None:
    checkpoints = LedgerCheckpoints.start("eligibility")
    content = _content()
    checkpoints.sign(**{k: v for k, v in content.items() if k != "ledger"}, signature=cp.sign(SEED, content))
    signed = [e for e in checkpoints.collect_events() if isinstance(e, LedgerCheckpoints.Signed)]
    message = checkpoint_relay.to_message(signed[0])
    assert message is not None and message.key == "eligibility"
    body = message.body.model_dump()
    assert cp.check(cp.public_key_b64(SEED), body) == []


# --- the auditor's reader: eventsourcing's format, without its per-event objects ---------------------------

def test_the_auditors_decoder_reads_what_eventsourcing_wrote() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from eventsourcing.cryptography import AESCipher
    from eventsourcing.utils import Environment

    from flexledger.audit.store import Decoder, Row, Undecodable
    from services.runtime.settings import Settings

    key = AESCipher.create_key(32)
    settings = Settings(cipher_key=key)
    decoder = Decoder(settings)
    cipher = AESCipher(Environment("t", {AESCipher.CIPHER_KEY: key}))
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    plain = {"timestamp": now, "book": "b", "fact": {"id": "f1", "hours": 120}, "decisions": [], "seq": 7}
    nested = {**plain, "fact": {"id": "f1", "amount": Decimal("1.50"), "ref": uuid.UUID(int=5)}}
    for state in (plain, nested):  # a top-level timestamp (the fast path) and values deeper down
        stored = cipher.encrypt(decoder.transcoder.encode(state))
        decoded = decoder.decode(Row(1, str(uuid.UUID(int=1)), 1, "t", stored))
        assert decoded == state == decoder.transcoder.decode(cipher.decrypt(stored))
    altered = bytearray(stored)
    altered[40] ^= 1
    for bad in (bytes(altered), stored[:20], cipher.encrypt(b"[1, 2]"), cipher.encrypt(b"{not json")):
        with pytest.raises(Undecodable):
            decoder.decode(Row(1, str(uuid.UUID(int=1)), 1, "t", bad))


def test_the_auditors_json_reads_as_json_loads() -> None:
    from flexledger.audit.store import loads

    for text in (b'{"a":1,"a":2}', b'{"n":123456789012345678901234567890}', b'{"f":0.1,"g":-0.0,"h":1e400}',
                 b'{"s":"\\ud800"}', b'{"s":"\\ud83d\\ude00","k":"\xe5\xb9\xb3"}', b'{"x":NaN}', b"[1,2] "):
        assert repr(loads(text)) == repr(json.loads(text)), text
    for bad in (b'{"a":1} x', b"{", b'{"k":"\xff"}'):
        with pytest.raises(ValueError):
            loads(bad)


# --- statistics: a keyed pseudonym, never the identity number ----------------------------------------------

def _processed(decisions: list[dict[str, Any]]) -> Any:
    stream = DecisionChain._create(DecisionChain.Opened, id=uuid.uuid4(), book="main", subject=W)
    stream.record(seq=1, fact_id="c1", outcome="accepted", fact={"worker": W}, reason=None, digest="d",
                  decisions=decisions, rule_set=CURRENT.id, trace_id=None, traceparent=None, tracestate=None)
    return stream.collect_events()[-1]


def test_the_decision_chain_keeps_the_topics_its_events_were_first_stored_under() -> None:
    """The class was first named SubjectLedger: stored events, and the checkpoints signed over them,
    carry that name, so renaming it must change neither what is read nor what is written."""
    stored_as = "services.eligibility.aggregates:SubjectLedger"
    chain = DecisionChain._create(DecisionChain.Opened, id=uuid.uuid4(), book="main", subject=W)
    assert chain.collect_events()[0].originator_topic == get_topic(DecisionChain) == stored_as
    for event_class in (DecisionChain.Opened, DecisionChain.FactProcessed):
        assert get_topic(event_class) == f"{stored_as}.{event_class.__name__}"
        assert resolve_topic(f"{stored_as}.{event_class.__name__}") is event_class


def test_statistics_name_the_worker_by_a_keyed_pseudonym_only() -> None:
    key, other_key = b"k" * 32, b"j" * 32
    assert pseudonym(key, W) == pseudonym(key, W) != pseudonym(other_key, W)
    assert pseudonym(key, W) != pseudonym(key, W[:-1] + "0")
    decisions = [
        {"decision_id": "s1", "kind": "statistic", "subject": W, "month": "2021-09", "rule_set": CURRENT.id},
        {"decision_id": "g1", "kind": "grant", "subject": W, "month": "2021-09", "rule_set": CURRENT.id},
    ]
    messages = to_messages(_processed(decisions), key)
    assert len(messages) == 1
    body = messages[0].body
    assert isinstance(body, StatisticV1) and body.pseudonym == pseudonym(key, W) and body.month == "2021-09"
    wire = body.model_dump_json() + messages[0].key + json.dumps(messages[0].event.headers())
    assert W not in wire


# --- replay per subject = the engine; what-if under a variant --------------------------------------------

def _streams(facts: list[Any], book: str) -> dict[str, list[dict[str, Any]]]:
    """What the service stores: per subject, each recorded fact with its decisions (as the engine)."""
    engine = Engine(book=book)
    streams: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for raw in facts:
        submission, decisions = engine.submit(raw)
        if submission.outcome == "duplicate":
            continue
        streams[fact_subject(raw)].append({
            "book": book, "seq": engine.intake.last_seq, "fact_id": submission.fact_id, "outcome":
            submission.outcome, "fact": raw, "reason": submission.reason, "digest": submission.digest,
            "rule_set": CURRENT.id, "decisions": [d.stored() for d in decisions],
        })
    return streams


@pytest.mark.parametrize("vector", VECTORS, ids=[v.stem for v in VECTORS])
def test_each_subjects_stream_replays_to_the_engines_decisions(vector: Path) -> None:
    for events in _streams(load_scenario(vector)["facts"], "b").values():
        replay = SubjectReplay(CURRENT.id, "b")
        for event in events:
            assert same_decisions(event["decisions"], replay.decide(event)), event["fact_id"]


def test_rejections_recorded_before_ids_included_the_seq_still_replay() -> None:
    from flexledger.audit.replay import legacy_rejection_id

    event = {"book": "b", "seq": 4, "fact_id": "x1", "outcome": "rejected", "fact": {"id": "x1"},
             "reason": "bad", "digest": "d" * 64, "rule_set": CURRENT.id}
    current = SubjectReplay(CURRENT.id, "b").decide({**event, "decisions": []})[0]
    legacy = {**current, "decision_id": legacy_rejection_id("b", "x1", "d" * 64)}
    assert SubjectReplay(CURRENT.id, "b").decide({**event, "decisions": [legacy]}) == [legacy]
    assert SubjectReplay(CURRENT.id, "b").decide({**event, "decisions": [current]}) == [current]
    assert current["decision_id"] != legacy["decision_id"]


def test_a_variant_rule_set_changes_decisions_and_v1_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    values = [ParameterValue(v.name, int(v.value) + 30000, v.since, "test") if
              v.name == "min_wage_monthly_fen" and v.since >= "2021-08-01" else v
              for name in WUXI_2021_26_V1.params.names() for v in WUXI_2021_26_V1.params.history(name)]
    variant = dataclasses.replace(WUXI_2021_26_V1, id="test/2", params=ParameterTable(tuple(values)))
    monkeypatch.setitem(RULE_SETS, "test/2", variant)
    streams = _streams(load_scenario(VECTORS[0])["facts"], "b")
    changed = 0
    for events in streams.values():
        v1, v2 = SubjectReplay(CURRENT.id, "b"), SubjectReplay("test/2", "b")
        for event in events:
            assert Counter(map(normal, v1.decide(event))) == Counter(map(normal, event["decisions"]))
            changed += Counter(map(normal, v2.decide(event))) != Counter(map(normal, event["decisions"]))
    assert changed


# --- operators' logs ------------------------------------------------------------------------------------

def test_service_logs_mask_identity_numbers_even_in_tracebacks() -> None:
    formatter = MaskingFormatter("%(message)s")
    try:
        raise ValueError(f'DETAIL: Failing row contains ({W}, 100000)')
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "worker %s", (W,), sys.exc_info())
    text = formatter.format(record)
    assert W not in text and "3202**********1019" in text
    assert "91320213MA1XY0001L" in formatter.format(
        logging.LogRecord("x", logging.INFO, __file__, 1, "enterprise 91320213MA1XY0001L", (), None))


def test_the_runtime_role_is_granted_select_and_insert_only_on_event_tables() -> None:
    sql = (Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "roles.sql").read_text()
    assert "GRANT SELECT, INSERT ON %I.%I TO %I" in sql
    assert "NOCREATEROLE" in sql
    branch = sql.split("IF t.relname ~ '_(events|snapshots|tracking)$' THEN", 1)[1]
    grants_on_events = branch.split("ELSIF", 1)[0]
    assert "DELETE" not in grants_on_events and "TRUNCATE" not in grants_on_events

