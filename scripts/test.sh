#!/usr/bin/env bash
# What CI runs: set-up, then lint, types, layer rules and the whole test suite. Integration tests start their own
# Kafka broker and PostgreSQL (state in var/test, ports 29092/29093/25432, see tests/conftest.py)
# and stop them at the end. Every check runs; the script fails if any of them failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

failed=()
.venv/bin/ruff check . || failed+=(ruff)
.venv/bin/mypy flexledger contracts services || failed+=(mypy)
.venv/bin/lint-imports --no-cache || failed+=(import-linter)  # the layer rules of ARCHITECTURE.md
# pytest's own exit code, 5 ("no tests collected") included, counts as a failure.
.venv/bin/python -m pytest -q --timeout=900 "$@" || failed+=(pytest)

if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
