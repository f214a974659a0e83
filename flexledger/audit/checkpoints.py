"""Checkpoints for outside parties: read them from the topic, verify them offline with a public key.

`verify-checkpoint FILE --public-key KEY` is pure: it needs no database, no broker and no secret,
only the file (one checkpoint as JSON, a JSON array, or JSON lines, as `audit checkpoints` writes
them) and the public key. Holding the ledger to a checkpoint is `audit verify`'s job.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from contracts.topics import CHECKPOINTS
from services.eligibility.domain.checkpoint import BadKey, check, key_id, public_key_b64
from services.runtime.kafka import client_security
from services.runtime.keys import signing_key
from services.runtime.settings import Settings


def public_key_from(value: str) -> str:
    """A public key given as base64, or as the path of a file holding it."""
    path = Path(value)
    if len(value) < 200 and path.is_file():
        return path.read_text(encoding="utf-8").strip()
    return value.strip()


def own_public_key(settings: Settings) -> str:
    return public_key_b64(signing_key(settings))


def load(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        return []
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = [json.loads(line) for line in text.splitlines() if line.strip()]
    items = document if isinstance(document, list) else [document]
    if not all(isinstance(item, dict) for item in items):
        raise ValueError("a checkpoint file holds JSON objects")
    return items


def verify_file(path: Path, public_key: str) -> list[tuple[dict[str, Any], list[str]]]:
    """Each checkpoint of the file with its problems (none: it verifies)."""
    try:
        key_id(public_key)
    except BadKey:
        raise
    return [(checkpoint, check(public_key, checkpoint)) for checkpoint in load(path)]


def describe(checkpoint: dict[str, Any]) -> str:
    return (
        f"checkpoint of {checkpoint.get('ledger')} "
        f"up to notification {checkpoint.get('up_to_notification_id')} "
        f"({checkpoint.get('event_count')} events, digest {str(checkpoint.get('digest'))[:16]}…, signed at "
        f"{checkpoint.get('signed_at')} with key {checkpoint.get('key_id')})"
    )


async def read_topic(settings: Settings, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every checkpoint on the checkpoints topic so far (a throw-away consumer, no group)."""
    from aiokafka import AIOKafkaConsumer

    from flexledger.devstack.credentials import for_tool

    # As `auditor` (flexledger.kafka_access), which may read this topic and nothing else. Subscribed
    # without a group: every partition is assigned, read from the beginning.
    client = for_tool(settings, "auditor")
    consumer = AIOKafkaConsumer(CHECKPOINTS.name, bootstrap_servers=client.kafka_bootstrap,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                **client_security(client))
    await consumer.start()
    try:
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        out: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
            if asyncio.get_running_loop().time() > deadline:
                break
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(json.loads(record.value) for record in records if record.value)
        return out
    finally:
        await consumer.stop()
