"""Engine throughput on a city-scale timeline (issue 3 item 9): facts/s, decisions/s and peak RSS.

Pushes the facts of `bench/generate.py` through `flexledger.engine.Engine` (intake checks, rules and
ledger: the code the services run) on one core, and times the engine only: facts are generated in
chunks of 1,000 outside the timed sections. Each run is its own process, so its peak RSS (getrusage
ru_maxrss) is its own. facts/s is by the wall clock; "per CPU s" divides by the process's CPU time in the
same sections, which other load on a shared machine disturbs less.

Two garbage-collector settings are measured: `default` (CPython as it starts) and `freeze` (gc.freeze()
after every chunk, as a long-running service does once its state is loaded). The ledger's state is a
large, long-lived, acyclic object graph; CPython's full collections traverse all of it again and again,
which costs time in proportion to the state, not to the fact. With `freeze` what is left is the
engine's own work per fact.

    python bench/engine_bench.py                     # 100,000 workers, 12 months; 10k and 30k to compare
    python bench/engine_bench.py --workers 200000 --months 24 --scaling 20000,60000 --gc freeze
    python bench/engine_bench.py --single --workers 10000 --months 12 --gc default   # one run, JSON
    python bench/engine_bench.py --single --workers 20000 --profile                  # cProfile, top 25
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate import generate_facts  # noqa: E402

from flexledger.engine import Engine  # noqa: E402

CHUNK = 1_000
COLUMNS = ("workers", "gc", "platforms", "months", "facts", "accepted", "rejected", "duplicates", "decisions",
           "engine_s", "facts_per_s", "facts_per_cpu_s", "decisions_per_s", "gc_collections", "peak_rss_mb")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_once(workers: int, months: int, platforms: int | None, seed: int, limit: int | None, gc_mode: str,
             profile: bool = False) -> dict[str, Any]:
    """One city through one engine: counts, engine-only timings and peak RSS."""
    facts = generate_facts(workers=workers, platforms=platforms, months=months, seed=seed)
    if limit is not None:
        facts = islice(facts, limit)
    engine = Engine()
    submit = engine.submit
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    n_facts = 0
    engine_s = engine_cpu_s = 0.0
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    collections_before = sum(s["collections"] for s in gc.get_stats())
    started = time.perf_counter()
    while chunk := list(islice(facts, CHUNK)):
        if profiler is not None:
            profiler.enable()
        t0, c0 = time.perf_counter(), time.process_time()
        for raw in chunk:  # the counting is timed too: a little pessimistic, holds no results
            submission, decisions = submit(raw)
            outcomes[submission.outcome] += 1
            for decision in decisions:
                kinds[decision.kind] += 1
        engine_s += time.perf_counter() - t0
        engine_cpu_s += time.process_time() - c0
        if profiler is not None:
            profiler.disable()
        n_facts += len(chunk)
        if gc_mode == "freeze":
            gc.freeze()
    wall_s = time.perf_counter() - started
    if profiler is not None:
        import pstats

        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    n_decisions = sum(kinds.values())
    return {
        "workers": workers, "gc": gc_mode, "platforms": len(engine.intake.registry.enterprises),
        "months": months, "seed": seed, "facts": n_facts, "accepted": outcomes["accepted"],
        "rejected": outcomes["rejected"], "duplicates": outcomes["duplicate"], "decisions": n_decisions,
        "kinds": dict(sorted(kinds.items())),
        "engine_s": round(engine_s, 1), "engine_cpu_s": round(engine_cpu_s, 1), "wall_s": round(wall_s, 1),
        "facts_per_s": round(n_facts / engine_s), "facts_per_cpu_s": round(n_facts / engine_cpu_s),
        "decisions_per_s": round(n_decisions / engine_s),
        "gc_collections": sum(s["collections"] for s in gc.get_stats()) - collections_before,
        "peak_rss_mb": round(peak_rss_mb()),
    }


def in_process(args: argparse.Namespace, workers: int, gc_mode: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--single", "--workers", str(workers), "--months", str(args.months),
               "--seed", str(args.seed), "--gc", gc_mode]
    if args.platforms:
        command += ["--platforms", str(args.platforms)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ)
    return json.loads(done.stdout)


def table(results: list[dict[str, Any]]) -> str:
    rows = [COLUMNS, *[tuple(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in COLUMNS)
                       for r in results]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12, help="reported months, 12..36")
    parser.add_argument("--platforms", type=int, default=None, help="3..10; default: drawn from the seed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="stop after this many facts")
    parser.add_argument("--scaling", default="10000,30000", help="smaller populations, comma-separated")
    parser.add_argument("--gc", choices=("default", "freeze", "both"), default="both")
    parser.add_argument("--single", action="store_true", help="one run in this process; print one JSON line")
    parser.add_argument("--profile", action="store_true", help="with --single: cProfile the engine (stderr)")
    args = parser.parse_args()
    if args.single:
        mode = "default" if args.gc == "both" else args.gc
        print(json.dumps(run_once(args.workers, args.months, args.platforms, args.seed, args.limit, mode,
                                  args.profile)))
        return
    print(f"python {platform.python_version()} on {platform.machine()}, one core, engine only "
          "(flexledger.engine.Engine: intake checks + rules + ledger); "
          f"seed {args.seed}, {args.months} months; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
          flush=True)
    sizes = sorted({*(int(s) for s in args.scaling.split(",") if s), args.workers})
    modes = ("default", "freeze") if args.gc == "both" else (args.gc,)
    results = []
    for mode in modes:
        for workers in sizes:
            r = in_process(args, workers, mode)
            results.append(r)
            print(f"  {workers:,} workers, gc {mode}: {r['facts']:,} facts in {r['engine_s']} s -> "
                  f"{r['facts_per_s']:,} facts/s ({r['facts_per_cpu_s']:,} per CPU s), "
                  f"{r['decisions_per_s']:,} decisions/s, peak RSS {r['peak_rss_mb']:,} MB; {r['kinds']}",
                  flush=True)
    print()
    print(table(results))
    main_run = next(r for r in results if r["workers"] == args.workers)
    if main_run["facts"] < 1_000_000:
        print(f"\nnote: the main run pushed {main_run['facts']:,} facts (< 1,000,000): "
              "raise --workers or --months")


if __name__ == "__main__":
    main()
