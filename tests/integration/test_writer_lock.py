"""The writer lock's fence on the real PostgreSQL (services/runtime/writer_lock.py): an application
fenced by a lock writes only while that lock's session holds it, also after another process took it;
and a standby waits for the lock without a deadline until its holder's session ends."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from test_payments_application import AT, AT_ONCE, Source, grant

from services.payments.application import PaymentsApplication, RecordOutcome
from services.payments.config import PaymentsConfig
from services.runtime.settings import Settings
from services.runtime.writer_lock import WriterLock, WriterLockTimeout

pytestmark = pytest.mark.integration

TEST_KEY = 0x466C_7854_6573  # "FlxTes": not a service's key


async def test_a_fenced_writer_writes_only_while_its_session_holds_the_lock(infra: Settings) -> None:
    app = PaymentsApplication(infra, config=PaymentsConfig(default_appropriations={}, batch_policy=AT_ONCE))
    recorder = app.process_recorder
    events_table = f"{recorder.datastore.schema}.{recorder.events_table_name}"
    first, second = WriterLock(infra.pg_dsn(), TEST_KEY, "test"), WriterLock(infra.pg_dsn(), TEST_KEY, "test")
    source, book = Source(), f"fence-{uuid.uuid4().hex[:12]}"
    try:
        await first.acquire()
        await first.barrier(events_table)
        first.fence(recorder)
        assert app.record_decision(grant(book, 100), source.next(), AT) is RecordOutcome.RECORDED

        with pytest.raises(WriterLockTimeout):  # not a standby: gives up
            await second.acquire(timeout_s=1.0)
        taking_over = asyncio.create_task(second.acquire(timeout_s=None))  # a standby: waits
        await asyncio.sleep(1.5)
        assert not taking_over.done()
        await first.release()  # as a killed process's session ends
        await asyncio.wait_for(taking_over, 5.0)

        # The old holder's recorder is still fenced by its own (ended) session: nothing is written.
        with pytest.raises(Exception, match="fenced"):
            app.record_decision(grant(book, 200), source.next(), AT)
        second.fence(recorder)  # the new holder's fence: writes again
        assert app.record_decision(grant(book, 300), source.next(), AT) is RecordOutcome.RECORDED
    finally:
        await first.release()
        await second.release()
        app.close()
