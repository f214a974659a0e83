"""`python -m flexledger.healthcheck`: the image's HEALTHCHECK (deploy/Dockerfile).

One image runs any of the three services; this asks `/health` on each service's port of the settings
(on the loopback: it runs inside the container) and succeeds when one answers 200, i.e. ok or degraded.
Standard library only, so that a probe every few seconds costs little.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from services.runtime.settings import Settings

TIMEOUT_S = 3.0


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=TIMEOUT_S) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):  # 503 (starting or down) included
        return False


def main() -> int:
    settings = Settings.from_env()
    ports = (settings.intake_port, settings.eligibility_port, settings.payments_port)
    return 0 if any(healthy(port) for port in ports) else 1


if __name__ == "__main__":
    sys.exit(main())
