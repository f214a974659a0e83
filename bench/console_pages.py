"""How long each page of the web console takes to answer (issue 19: < 300 ms on the demo data).

Against a running stack (`flexledger dev up`, then `flexledger demo`): logs in with a key (default: the
bootstrap operator key), opens each page `--rounds` times (after one warm-up) and prints the median and
the slowest time per page, and whether the slowest is under the budget. Not a test; not run by the suite.

    .venv/bin/python bench/console_pages.py [--book main] [--rounds 20] [--key flk_...]
"""

from __future__ import annotations

import re
import statistics
import time

import httpx
import typer

from flexledger.devstack.console import console_url
from flexledger.submit import operator_key
from services.runtime.settings import Settings

BUDGET_MS = 300.0


def main(book: str = "main", rounds: int = 20, key: str = "") -> None:
    settings = Settings.from_env()
    base = console_url(settings)
    with httpx.Client(base_url=base, timeout=30) as client:
        form = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text)
        assert form is not None, "no login form"
        client.post("/login", data={"api_key": key or operator_key(settings), "next": "/",
                                    "login_csrf": form.group(1)})
        page = client.get(f"/subject?book={book}").text
        assert "/logout" in page, "login failed"
        decisions = client.get(f"http://127.0.0.1:{settings.eligibility_port}/v1/books/{book}/decisions",
                               headers={"Authorization": f"Bearer {key or operator_key(settings)}"},
                               params={"limit": 50}).json().get("decisions", [])
        paths = [f"/?book={book}", f"/payments?book={book}", f"/dead-letters?book={book}"]
        granted = next((d["decision_id"] for d in decisions if d.get("kind") == "grant"), None)
        if granted:
            paths += [f"/decision/{granted}?book={book}", f"/subject?book={book}&from={granted}",
                      f"/subject?book={book}&from={granted}&known_as_of=2023-06-30&law_as_of=2022-01-01",
                      f"/decision/{granted}/evidence?book={book}"]  # the evidence download, not a page
        typer.echo(f"{'page':60} {'median ms':>10} {'max ms':>10}  < {BUDGET_MS:.0f} ms")
        for path in paths:
            client.get(path)  # warm-up
            times_ms = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                answer = client.get(path)
                times_ms.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
            shown = re.sub(r"[0-9a-f]{16,}", "…", path)
            worst = max(times_ms)
            typer.echo(f"{shown:60} {statistics.median(times_ms):10.1f} {worst:10.1f}  "
                       f"{'yes' if worst < BUDGET_MS else 'NO'}")


if __name__ == "__main__":
    typer.run(main)
