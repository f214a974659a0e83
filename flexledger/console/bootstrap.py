"""The console's composition root: the key ring (to log users in), the services' HTTP APIs, the audit
replay, proofs and evidence; wired into the pages and returned as a process
`services.runtime.process.main` can run."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from fastapi import FastAPI
from opentelemetry import trace

from flexledger.console.http import Adapters, ConsoleConfig, ReplayResult, create_http
from flexledger.console.ledger import LedgerReader
from flexledger.console.services_api import SERVICE_NAMES, ServiceName, ServicesApi
from services.runtime.access.audit import MAX_SUBJECTS_PER_READ, read_audit_key
from services.runtime.access.key_ring import KeyRingFollower
from services.runtime.access.principals import Principal
from services.runtime.access.pseudonyms import identity_numbers, pseudonym
from services.runtime.access.store import AccessApplication
from services.runtime.settings import Settings

LOCAL = "127.0.0.1"  # the services and the trace viewer of the local stack


@dataclass
class Console:
    """The console process: `start` opens the key ring and follows it; `stop` closes everything."""

    settings: Settings
    tracer_provider: trace.TracerProvider | None
    api: ServicesApi
    name: str = "console"
    http: FastAPI = field(init=False)
    keys: KeyRingFollower | None = None
    _app: AccessApplication | None = None
    _following: asyncio.Task[None] | None = None

    async def authenticate(self, authorization: str) -> Principal | None:
        return await self.keys.authenticate(authorization) if self.keys is not None else None

    async def replay(self, decision_id: str, book: str) -> ReplayResult:
        """`flexledger audit replay` of one decision, and the fact it rests on."""
        from flexledger.audit.replay import locate, replay

        def run() -> ReplayResult:
            located = locate(self.settings, decision_id, book)
            if located is None:
                return ReplayResult(None, "not found in the event store")
            replayed = replay(located)
            fact = located.event.get("fact")
            link = {name: str(located.event.get(name)) for name in ("prev_hash", "hash")}
            return ReplayResult(replayed.reproduced, replayed.problem or f"rule set {replayed.rule_set}",
                                fact if isinstance(fact, dict) else None, link)

        return await asyncio.to_thread(run)

    async def kept_dead_letters(self) -> list[dict[str, Any]]:
        from flexledger.console.dead_letter_store import kept

        return await asyncio.to_thread(kept, self.settings)

    async def record_unmasked(self, principal: Principal, page: str, book: str, shown: Any) -> None:
        """An unmasked view as a `DataRead` in the access store, like the services' reads of personal
        data: who, which page, whose data (keyed pseudonyms of the identity numbers shown)."""
        assert self._app is not None, "start the console first"
        key = read_audit_key(self.settings)
        subjects = sorted(pseudonym(key, n) for n in identity_numbers(shown))[:MAX_SUBJECTS_PER_READ]
        await asyncio.to_thread(
            self._app.record_read, key_id=principal.key_id, role=principal.role,
            enterprise=principal.enterprise, service="console",
            endpoint=f"GET /{page} (identity numbers in clear)", book=book, view="all", rows=len(subjects),
            subjects=subjects, trace_id=None)

    async def start(self) -> None:
        self._app = await asyncio.to_thread(AccessApplication, self.settings, self.tracer_provider)
        self.keys = KeyRingFollower(self._app, self.settings)
        await self.keys.open()
        self._following = asyncio.create_task(self.keys.follow(), name="key ring")

    async def stop(self) -> None:
        if self._following is not None:
            self._following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._following
        await self.api.aclose()
        if self._app is not None:
            self._app.close()


def service_urls(settings: Settings) -> dict[ServiceName, str]:
    """`console_service_urls` ("intake=URL,..."), each service not named there on 127.0.0.1."""
    urls: dict[ServiceName, str] = {
        name: f"http://{LOCAL}:{getattr(settings, f'{name}_port')}" for name in SERVICE_NAMES}
    for item in filter(None, settings.console_service_urls.split(",")):
        name, _, url = item.strip().partition("=")
        if name not in urls or not url.startswith(("http://", "https://")):
            raise ValueError(f"console_service_urls: {item!r} is not service=http(s)://host:port")
        urls[cast(ServiceName, name)] = url.rstrip("/")
    return urls


def trace_url_prefix(settings: Settings) -> str:
    """The trace viewer's page of a trace, without the trace id: by default the local Zipkin's."""
    return settings.console_trace_url or f"http://{LOCAL}:{settings.zipkin_port}/zipkin/traces/"


def bootstrap(settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> Console:
    api = ServicesApi(httpx.AsyncClient(), service_urls(settings))
    console = Console(settings, tracer_provider, api)
    config = ConsoleConfig(default_book="main", trace_url_prefix=trace_url_prefix(settings))
    adapters = Adapters(api, console.authenticate, console.replay, console.kept_dead_letters,
                        console.record_unmasked, LedgerReader(settings))
    console.http = create_http(adapters, config)
    return console
