#!/usr/bin/env bash
# Set up, start the whole local stack (Kafka, PostgreSQL, intake, eligibility, payments, the web console),
# run the demo and show the stack; print the console's URL and a key to log in with.
# The stack stays up afterwards: `.venv/bin/flexledger dev down` stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
.venv/bin/flexledger dev up
rc=0
.venv/bin/flexledger demo "$@" || rc=$?
.venv/bin/flexledger dev status || true  # shown, not judged: the demo's exit status is this script's
# The web console (flexledger/console/) and an auditor key to log in with (it sees every page).
console_url=$(.venv/bin/python -c 'from flexledger.devstack.console import console_url
from services.runtime.settings import Settings
print(console_url(Settings.from_env()))')
auditor_key=$(.venv/bin/flexledger keys issue --role auditor --label "demo: web console" --json \
  | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["key"])')
echo "Web console: ${console_url}"
echo "Log in with this auditor API key: ${auditor_key}"
echo "The stack is still running; stop it with: .venv/bin/flexledger dev down"
exit "$rc"
