"""`services`: the three services running as processes (`python -m services.<name>`) on `infra`;
`intake`: intake alone (a module may override it with settings of its own).

Module-scoped: each module gets freshly started services running the code under test, and leaves
none behind (the end-to-end test runs them in-process on the same ports and consumer groups).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from intake_support import start_intake_only, stop_intake

from services.runtime.settings import Settings


def stop_services(settings: Settings) -> None:
    from flexledger import devstack

    for name in reversed(devstack.SERVICES):
        devstack.stop_service(name, settings)


@pytest.fixture(scope="module")
def services(infra: Settings) -> Iterator[Settings]:
    from flexledger import devstack

    stop_services(infra)  # services left by a developer run the code they were started with
    try:
        for name in devstack.SERVICES:
            devstack.start_service(name, infra, timeout=90)
        yield infra
    finally:
        stop_services(infra)


@pytest.fixture(scope="module")
def intake(infra: Settings) -> Iterator[Settings]:
    start_intake_only(infra)
    try:
        yield infra
    finally:
        stop_intake(infra)
