"""The health watch's judgement (services/runtime/health.py), on fake consumers: lag, no progress while
messages wait, lag above the limit for too long, dead letters since the last look; and what the
consumer middleware records (services/runtime/metrics.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from services.runtime import metrics
from services.runtime.health import HealthLimits, HealthWatch
from services.runtime.metrics import ConsumerProgress, dead_letter_reason, retry_operation

TOPIC = "flexledger.intake.facts.v1"
TP = TopicPartition(TOPIC, 3)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


class FakeConsumer:
    def __init__(self, highwater: int) -> None:
        self.highwaters = {TP: highwater}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)


def _watch(service: str, **limits: Any) -> HealthWatch:
    return HealthWatch(service, broker=None, progress=ConsumerProgress(),  # type: ignore[arg-type]
                       limits=HealthLimits(**limits))


def _judge(watch: HealthWatch, consumer: FakeConsumer, now: float) -> list[str]:
    return watch._partition(now, "eligibility", consumer, TP)


def test_a_consumer_that_handles_nothing_while_messages_wait_is_reported_after_the_stall_time() -> None:
    watch = _watch("health-test-stall", stall_s=30)
    watch.progress.receive((Record(TOPIC, 3, 100),))  # a batch handed over, not finished
    consumer = FakeConsumer(highwater=150)
    assert _judge(watch, consumer, now=0) == []
    assert _judge(watch, consumer, now=29) == []
    [reason] = _judge(watch, consumer, now=31)
    assert reason == f"consumer eligibility on {TOPIC}[3]: no progress for 31 s with 50 messages waiting"
    watch.progress.record((Record(TOPIC, 3, 100), Record(TOPIC, 3, 101)))  # it moved
    assert _judge(watch, consumer, now=32) == []


def test_a_consumer_with_nothing_waiting_is_never_stalled() -> None:
    watch = _watch("health-test-idle", stall_s=1)
    watch.progress.record((Record(TOPIC, 3, 9),))
    consumer = FakeConsumer(highwater=10)
    assert [_judge(watch, consumer, now=t) for t in (0, 5, 50)] == [[], [], []]


def test_lag_above_the_limit_is_a_reason_only_after_it_lasted() -> None:
    watch = _watch("health-test-lag", lag_max_messages=100, lag_for_s=60, stall_s=10_000)
    consumer = FakeConsumer(highwater=1_000)
    offset = 0
    for now in (0, 30, 59):
        offset += 1
        watch.progress.record((Record(TOPIC, 3, offset),))  # progressing, but far behind
        assert _judge(watch, consumer, now) == []
    watch.progress.record((Record(TOPIC, 3, offset + 1),))
    expected = f"consumer eligibility on {TOPIC}[3]: lag 995 above 100 for 61 s"
    assert _judge(watch, consumer, now=61) == [expected]
    watch.progress.record((Record(TOPIC, 3, 950),))
    assert _judge(watch, consumer, now=62) == []


def test_lag_is_exported_per_group_and_partition() -> None:
    watch = _watch("health-test-gauge")
    watch.progress.record((Record(TOPIC, 3, 41),))
    _judge(watch, FakeConsumer(highwater=50), now=0)
    lag = metrics.CONSUMER_LAG.labels("health-test-gauge", "eligibility", TOPIC, "3")
    assert lag._value.get() == 8


def test_dead_letters_are_reported_once_per_look() -> None:
    watch = _watch("health-test-dead-letters")
    assert watch.dead_letters_since_last_look() == 0
    metrics.DEAD_LETTERS.labels("health-test-dead-letters", TOPIC, "invalid").inc(3)
    assert watch.dead_letters_since_last_look() == 3
    assert watch.dead_letters_since_last_look() == 0


def test_labels_hold_kinds_never_the_text() -> None:
    assert dead_letter_reason("no flexledger_mac header: not published by ...") == "not_authentic"
    unknown = "not a FactMessageV1: unknown schema_version 2 (this consumer reads 1)"
    assert dead_letter_reason(unknown) == "unknown_schema_version"
    assert dead_letter_reason("a settlement of book b belongs on x, not on y") == "wrong_topic"
    assert dead_letter_reason("not a FactMessageV1: fact.worker: value is not valid") == "invalid"
    assert retry_operation("processing 12 facts from main/41") == "processing"
    assert retry_operation("dead-lettering t[0]@5") == "dead-lettering"
