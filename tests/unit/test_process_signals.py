"""A service process stopped by SIGTERM runs its `stop()` (the broker first, then the rest) before it
exits: uvicorn's habit of raising the caught signal again must not end the process first."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, os, signal, socket
    from services.runtime.process import serve

    class Service:
        name = "signal-test"
        async def start(self): pass
        async def stop(self): print("stopped", flush=True)
        async def http(self, scope, receive, send): pass

    async def main():
        with socket.socket() as probe:  # a free port
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        asyncio.get_running_loop().call_later(1.0, os.kill, os.getpid(), signal.SIGTERM)
        await serve(Service(), port)

    asyncio.run(main())
    print("exited", flush=True)
""")


def test_sigterm_stops_the_service_before_the_process_exits() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["stopped", "exited"], done.stdout + done.stderr
    assert done.returncode == 0
