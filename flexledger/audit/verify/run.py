"""Running `audit verify`'s checks (docs/design/audit.md, "audit verify").

Steps 1-3 (chains.py) need only each stream's own rows, so `PARTS` forked processes run them, each over
its share of the streams (a byte of the stream id picks the part), while this process checks the
checkpoints over every row (4, checkpoints.py), reads intake's and payments' logs and checks the roles
(7, roles.py); steps 5 (intake.py) and 6 (payments.py) then use the workers' merged results (intake's
log read up to date first: on a running stack the workers may have seen facts it recorded since).
"""

from __future__ import annotations

import gc
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from flexledger.audit.store import Decoder, EventTable
from flexledger.audit.verify.chains import check_streams
from flexledger.audit.verify.checkpoints import check_checkpoints
from flexledger.audit.verify.intake import check_intake, read_intake, read_recorded, read_watermarks
from flexledger.audit.verify.money import Money
from flexledger.audit.verify.payments import check_payments, read_payments
from flexledger.audit.verify.report import Books, Report
from flexledger.audit.verify.roles import check_roles
from services.runtime.settings import Settings

PARTS = 2  # processes that share the streams (the machine this is measured on has 2 cores)
_POLL_S = 0.25  # how often the parent passes the workers' progress on
_read: Any = None  # in a worker: the shared counts of events each part has read (see `_reading`)


def verify(
    settings: Settings,
    *,
    books: Books = None,
    public_key: str,
    published: list[dict[str, Any]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Every check; `published`: checkpoints as received from the topic, held to the ledger as well as
    those the ledger recorded (deleting recorded checkpoints then hides nothing). `progress` is called,
    from a thread of this process a few times a second, with how many of eligibility's events the
    stream pass has read so far."""
    report = Report()
    decoder = Decoder(settings)
    fork = multiprocessing.get_context("fork")
    read = fork.RawArray("q", PARTS)  # inherited by the forked workers, never pickled
    watermarks = read_watermarks(settings)
    with (
        _few_collections(),
        ProcessPoolExecutor(PARTS, mp_context=fork, initializer=_reading, initargs=(read,)) as pool,
        _passing_on(read, progress),
    ):
        parts = [pool.submit(_check_part, settings, books, k) for k in range(PARTS)]
        check_checkpoints(EventTable(settings, "eligibility"), decoder, public_key, published or [], report)
        intake = read_intake(settings, decoder, books, report, watermarks)
        payments = read_payments(settings, decoder, books, report)
        check_roles(settings, report)
        money = _merge(report, [part.result() for part in parts])
    if intake is not None:
        read_recorded(settings, decoder, books, intake, report)  # what intake recorded during the pass
        check_intake(intake, money, report)
    if payments is not None:
        check_payments(payments, money, report)
    return report


def _reading(read: Any) -> None:
    """A worker's start: where it counts the events its part has read."""
    global _read
    _read = read


def _check_part(settings: Settings, books: Books, k: int) -> tuple[Report, Money]:
    """Steps 1-3 over part k of the streams, in a worker, its progress counted in the shared array."""

    def count(events: int) -> None:
        _read[k] = events

    return check_streams(settings, books, (k, PARTS), progress=count)


@contextmanager
def _passing_on(read: Any, progress: Callable[[int], None] | None) -> Iterator[None]:
    """While the block runs, a thread passes the workers' summed counts on to `progress`; once more
    at the end."""
    if progress is None:
        yield
        return
    done = threading.Event()

    def poll() -> None:
        while not done.wait(_POLL_S):
            progress(sum(read))

    thread = threading.Thread(target=poll, name="verify-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        progress(sum(read))


def _merge(report: Report, parts: list[tuple[Report, Money]]) -> Money:
    """The parts' findings in one report, and their money in one account."""
    money = Money()
    for part_report, part_money in parts:
        report.merge(part_report)
        money.merge(part_money)
    report.counts["books"] = len(money.processed)
    return money


@contextmanager
def _few_collections() -> Iterator[None]:
    """The pass allocates millions of short-lived objects (freed by reference counting) while it keeps
    the parent's growing maps (intake's records, the money): at the default thresholds the cyclic
    collector traverses them over and over. Forked workers inherit the setting, and
    what is loaded already is frozen out of the collections (and of copy-on-write in the workers)."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
