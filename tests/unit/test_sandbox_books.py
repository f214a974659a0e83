"""Sandbox books have topics of their own: the catalogue's twins, the routing function, the setting that
names the production books, and payments refusing a settlement on the other side's topic."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from contracts.messages import SettlementResultV1, SettlementV1
from contracts.topics import (
    ALL_TOPICS,
    BOOK_TOPICS,
    CHECKPOINTS,
    DEAD_LETTERS,
    DECISIONS,
    FACTS,
    ORDERS,
    SANDBOX_DECISIONS,
    SANDBOX_SETTLEMENTS,
    SANDBOX_TOPICS,
    SETTLEMENTS,
    sandbox_twin,
    topic_for,
)
from services.payments.entrypoints.kafka import settlement_decoder
from services.runtime.consuming import PoisonMessage
from services.runtime.settings import Settings, production_book_set

PRODUCTION = frozenset({"main"})


def test_a_production_book_goes_on_the_production_topic_every_other_book_on_its_twin() -> None:
    assert topic_for(FACTS, "main", PRODUCTION) == FACTS
    assert topic_for(DECISIONS, "scenario-0f3a", PRODUCTION) == SANDBOX_DECISIONS
    assert topic_for(ORDERS, "test-1", PRODUCTION).name == "sandbox.flexledger.payments.orders.v1"
    assert topic_for(ORDERS, "north", {"main", "north"}) == ORDERS
    assert topic_for(ORDERS, "main", frozenset()) == sandbox_twin(ORDERS)  # no production book: all sandbox
    for topic in (CHECKPOINTS, DEAD_LETTERS):  # not split by book, whatever the book
        with pytest.raises(ValueError, match="not split by book"):
            topic_for(topic, "main", PRODUCTION)


def test_every_topic_that_carries_a_book_has_one_provisioned_twin() -> None:
    assert {t.name for t in SANDBOX_TOPICS} == {f"sandbox.{t.name}" for t in BOOK_TOPICS}
    for topic in BOOK_TOPICS:
        twin = sandbox_twin(topic)
        assert (twin.partitions, twin.key, twin.producer) == (topic.partitions, topic.key, topic.producer)
        assert twin in ALL_TOPICS and topic in ALL_TOPICS
    assert sandbox_twin(SETTLEMENTS) == SANDBOX_SETTLEMENTS
    assert len({t.name for t in ALL_TOPICS}) == len(ALL_TOPICS)


def test_the_production_books_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().production_book_set == {"main"}
    assert production_book_set("main, north") == {"main", "north"}
    monkeypatch.setenv("FLEXLEDGER_PRODUCTION_BOOKS", "main,city-2")
    assert Settings.from_env().production_book_set == {"main", "city-2"}
    for bad in ("", "main,", "Main", "main/north", "main;north"):
        with pytest.raises(ValueError, match="FLEXLEDGER_PRODUCTION_BOOKS"):
            Settings(production_books=bad)


class _DeadLetters:
    def __init__(self) -> None:
        self.kept: list[tuple[Any, str]] = []

    async def keep(self, record: Any, reason: str) -> None:
        self.kept.append((record, reason))


def _settlement_on(topic: str, book: str) -> Any:
    body = SettlementV1(
        book=book, batch_id="B-1", settlement_id="S-1", settled_at=datetime(2024, 6, 1, tzinfo=UTC),
        results=[SettlementResultV1(entry_id="E-1", outcome="paid", confirmation="C-1")],
    ).model_dump_json().encode()
    record = SimpleNamespace(topic=topic, partition=0, offset=7, key=b"B-1", value=body, headers=[])
    return SimpleNamespace(body=body, raw_message=record)


@pytest.mark.parametrize(("topic", "book", "believed"), [
    (SETTLEMENTS.name, "main", True),
    (SANDBOX_SETTLEMENTS.name, "scenario-0f3a", True),
    (SANDBOX_SETTLEMENTS.name, "main", False),  # the sandbox bank settling a production batch
    (SETTLEMENTS.name, "scenario-0f3a", False),  # Finance settling a sandbox batch
])
async def test_payments_applies_a_settlement_only_from_its_books_topic(
    topic: str, book: str, believed: bool
) -> None:
    dead_letters = _DeadLetters()
    decode = settlement_decoder(PRODUCTION, dead_letters)  # type: ignore[arg-type]
    message = _settlement_on(topic, book)
    if believed:
        assert (await decode(message))["book"] == book
        assert dead_letters.kept == []
        return
    with pytest.raises(PoisonMessage, match="belongs on"):
        await decode(message)
    [(record, reason)] = dead_letters.kept
    assert record is message.raw_message and f"book {book} belongs on" in reason
