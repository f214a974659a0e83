"""The fixed address of an active and standby pair on the local stack: a TCP proxy that forwards each
connection to whichever instance's /health says it is the active one.

`python -m flexledger.devstack.front --listen 127.0.0.1:18081 --backend 127.0.0.1:18181 --backend
127.0.0.1:18281`. Clients keep using the service's usual port; in production a load balancer with the
same health check plays this part. It polls every instance's /health every `POLL_INTERVAL_S` and picks
the one whose `role` is `active` and status `ok` or `degraded`. A connection that arrives while none is
(the active one was just killed, the standby is still reading its books) waits up to
`WAIT_FOR_ACTIVE_S` for one, so a client sees a slow answer, not an error; a connection already open to
an instance that dies is closed, and the client retries (intake's idempotency makes that safe).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

import httpx

log = logging.getLogger("flexledger.devstack.front")
POLL_INTERVAL_S = 0.1
WAIT_FOR_ACTIVE_S = 15.0
CHUNK_BYTES = 64 * 1024
Address = tuple[str, int]


def parse_address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


class Front:
    def __init__(self, backends: list[Address]) -> None:
        self.backends = backends
        self.active: Address | None = None

    async def watch(self) -> None:
        """Keep `active` up to date."""
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                found = await self._find_active(client)
                if found != self.active:
                    log.info("active instance: %s", f"{found[0]}:{found[1]}" if found else "none")
                self.active = found
                await asyncio.sleep(POLL_INTERVAL_S)

    async def _find_active(self, client: httpx.AsyncClient) -> Address | None:
        for host, port in self.backends:
            try:
                report = (await client.get(f"http://{host}:{port}/health")).json()
            except (httpx.HTTPError, ValueError):
                continue
            if report.get("role") == "active" and report.get("status") in ("ok", "degraded"):
                return host, port
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect_to_active()
        if upstream is None:
            log.warning("no active instance for %.0fs: connection closed", WAIT_FOR_ACTIVE_S)
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _connect_to_active(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_FOR_ACTIVE_S
        while loop.time() < deadline:
            target = self.active
            if target is not None:
                try:
                    return await asyncio.open_connection(*target)
                except OSError:  # it died since the last poll
                    if self.active == target:
                        self.active = None
            await asyncio.sleep(POLL_INTERVAL_S / 2)
        return None


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side ends, then close `sink` (which ends the other direction too)."""
    try:
        while data := await source.read(CHUNK_BYTES):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()


async def serve(listen: Address, backends: list[Address]) -> None:
    front = Front(backends)
    server = await asyncio.start_server(front.handle, *listen, reuse_address=True)
    log.info("front on %s:%d for %s", *listen, ", ".join(f"{h}:{p}" for h, p in backends))
    async with server:
        await asyncio.gather(server.serve_forever(), front.watch())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=parse_address, required=True)
    parser.add_argument("--backend", type=parse_address, action="append", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s front %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.backend))


if __name__ == "__main__":
    main()
