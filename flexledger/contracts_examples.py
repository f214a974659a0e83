"""`python -m flexledger.contracts_examples`: capture the AsyncAPI document's examples from a running stack.

After `flexledger dev up` and `flexledger demo`, reads one record of each published topic (as `admin`)
and writes it, with every identity number masked (`contracts.identifiers.mask_identifiers`), to
`contracts/examples/<message name>.json`; `python -m flexledger.contracts_gen` then puts them into
`contracts/asyncapi.json`. Run it again when a message changes shape (the AsyncAPI parser test fails on
an example that no longer matches its schema).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.identifiers import mask_identifiers
from contracts.topics import ALL_TOPICS
from flexledger.asyncapi_details import EXAMPLES_DIR, MESSAGES
from services.runtime.message_auth import MAC_HEADER

Wanted = Callable[[dict[str, Any]], bool]
# Which record of a topic shows the most (the first that matches; else the topic's first record).
PREFERRED: dict[str, Wanted] = {
    "flexledger.eligibility.decisions.v1": lambda data: data.get("kind") == "grant",
    "flexledger.payments.order-events.v1": lambda data: data.get("change") == "batched",
}
# Further examples of a topic, each in `<message name>.<variant>.json`: variant -> which record.
VARIANTS: dict[str, dict[str, Wanted]] = {
    "flexledger.eligibility.decisions.v1": {"clawback": lambda data: data.get("kind") == "clawback"},
}


def _any(data: dict[str, Any]) -> bool:
    return True


async def _first(
    client: dict[str, Any], topic: str, wanted: Wanted, limit: int = 5000
) -> tuple[Any, dict[str, Any]] | None:
    consumer = AIOKafkaConsumer(**client, enable_auto_commit=False)
    await consumer.start()
    try:
        count = next(t.partitions for t in ALL_TOPICS if t.name == topic)
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        fallback = None
        seen = 0
        while seen < limit and [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    seen += 1
                    data = json.loads(mask_identifiers((record.value or b"").decode()))
                    fallback = fallback or (record, data)
                    if wanted(data):
                        return record, data
        return fallback
    finally:
        await consumer.stop()


def example(topic: str, record: Any, data: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    headers = {name: mask_identifiers(value.decode()) for name, value in record.headers
               if value is not None and name != MAC_HEADER}  # the tag is of the unmasked value
    key = mask_identifiers(record.key.decode()) if record.key else None
    return {"name": f"{MESSAGES[topic].name}{suffix.replace('.', '-')}-demo",
            "summary": f"A record of {topic} from `flexledger demo` (identity numbers masked); key {key}",
            "headers": headers, "payload": data}


async def capture() -> list[str]:
    from flexledger.devstack.credentials import client_args
    from services.runtime.settings import Settings

    client = client_args(Settings.from_env(), "admin")
    EXAMPLES_DIR.mkdir(exist_ok=True)
    written = []
    for topic, message in MESSAGES.items():
        if message.ce_type is None or message.schema == "DeadLetterV1":
            continue  # agency feeds and dead letters: nothing a demo publishes
        variants = {f".{name}": which for name, which in VARIANTS.get(topic, {}).items()}
        wanted = {"": PREFERRED.get(topic, _any), **variants}
        for suffix, which in wanted.items():
            found = await _first(client, topic, which)
            if found is None:
                continue
            path = EXAMPLES_DIR / f"{message.name}{suffix}.json"
            text = json.dumps(example(topic, *found, suffix), indent=2, sort_keys=True, ensure_ascii=False)
            path.write_text(text + "\n", encoding="utf-8")
            written.append(str(path))
    return written


if __name__ == "__main__":
    for written_path in asyncio.run(capture()):
        print(written_path)
    sys.exit(0)
