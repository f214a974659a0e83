"""The console's adapter to the three services' HTTP APIs: every read with the user's own key, so the
services' policy decides; `/health` and `/metrics` are open."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

ServiceName = Literal["intake", "eligibility", "payments"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("intake", "eligibility", "payments")
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Answer:
    """A service's answer: its status (0: it did not answer) and JSON body ({} when none)."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200


class ServicesApi:
    def __init__(self, client: httpx.AsyncClient, urls: dict[ServiceName, str]) -> None:
        self.client = client
        self.urls = urls

    async def get(self, service: ServiceName, path: str, api_key: str | None = None,
                  params: dict[str, Any] | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            response = await self.client.get(f"{self.urls[service]}{path}", headers=headers, params=params,
                                             timeout=TIMEOUT_S)
        except httpx.HTTPError:
            return Answer(0, {})
        return _answer(response)

    async def post(self, service: ServiceName, path: str, api_key: str) -> Answer:
        """A command without a body (a dead letter's re-drive), with the user's key."""
        try:
            response = await self.client.post(f"{self.urls[service]}{path}", timeout=TIMEOUT_S,
                                              headers={"Authorization": f"Bearer {api_key}"})
        except httpx.HTTPError:
            return Answer(0, {})
        return _answer(response)

    async def metrics(self, service: ServiceName) -> str:
        """The service's Prometheus text ('' when it does not answer)."""
        try:
            response = await self.client.get(f"{self.urls[service]}/metrics", timeout=TIMEOUT_S)
        except httpx.HTTPError:
            return ""
        return response.text if response.status_code == 200 else ""

    async def aclose(self) -> None:
        await self.client.aclose()


def _answer(response: httpx.Response) -> Answer:
    """The status and the JSON object a service answered ({} for anything else)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    return Answer(response.status_code, body if isinstance(body, dict) else {})
