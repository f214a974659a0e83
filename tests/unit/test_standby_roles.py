"""Active and standby without a real stack: the runtime's health of a standby and of the active one
(services/runtime/service.py), and the local stack's front (flexledger/devstack/front.py) sending each
connection to the instance that says it is active, also after a switch."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
from faststream.kafka import KafkaBroker

from flexledger.devstack import front
from services.runtime.process import StartingGate
from services.runtime.service import SERVING, ServiceRuntime


def test_a_standby_is_healthy_as_standby_and_the_active_one_reports_its_role() -> None:
    role = "standby"
    runtime = ServiceRuntime("intake", KafkaBroker("127.0.0.1:1"))
    runtime.role = lambda: role
    report = runtime.health()
    assert (report["status"], report["role"]) == ("standby", "standby")
    assert report["status"] in SERVING  # /health answers 200: the standby is up
    assert report["reasons"] == ["waiting for the writer lock, which the active instance holds"]
    role, runtime.ready = "active", True
    report = runtime.health()
    assert (report["status"], report["role"]) == ("ok", "active")


async def test_a_standby_answers_other_paths_503_saying_it_waits_for_the_writer_lock() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise AssertionError("not started: the gate answers")

    role = "standby"
    gate = StartingGate(app, standby=lambda: role == "standby")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url="http://s") as client:
        standby = await client.get("/v1/books/main/orders")
        role = "starting"
        starting = await client.get("/v1/books/main/orders")
    assert (standby.status_code, starting.status_code) == (503, 503)
    assert standby.headers["retry-after"] == "1"
    assert standby.json()["detail"].startswith("standby: waiting for the writer lock")
    assert starting.json()["detail"].startswith("starting:")


def test_a_service_not_run_as_a_pair_has_no_role() -> None:
    report = ServiceRuntime("eligibility", KafkaBroker("127.0.0.1:1")).health()
    assert report["status"] == "starting" and "role" not in report


class FakeInstance:
    """An HTTP server answering /health with its role, and anything else with its name."""

    def __init__(self, name: str, role: str) -> None:
        self.name, self.role = name, role
        self.server: asyncio.Server | None = None

    async def start(self) -> front.Address:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return "127.0.0.1", self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ")[1]
        body = (json.dumps({"status": "ok" if self.role == "active" else "standby", "role": self.role})
                if path == b"/health" else self.name).encode()
        head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        writer.write(head + body)
        await writer.drain()
        writer.close()

    def stop(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_the_front_sends_each_connection_to_the_active_instance() -> None:
    a, b = FakeInstance("a", "standby"), FakeInstance("b", "active")
    proxy = front.Front([await a.start(), await b.start()])
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    watching = asyncio.create_task(proxy.watch())
    address = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/facts"
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            assert (await client.get(address)).text == "b"
            b.stop()  # the active one dies; the standby takes over
            a.role = "active"
            assert (await client.get(address, headers={"Connection": "close"})).text == "a"
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        server.close()
        a.stop()
