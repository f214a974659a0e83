#!/usr/bin/env bash
# Set up, start the whole local stack (Kafka, PostgreSQL, intake, eligibility, payments), run the demo
# and show the stack. The stack stays up afterwards: `.venv/bin/flexledger dev down` stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
.venv/bin/flexledger dev up
rc=0
.venv/bin/flexledger demo "$@" || rc=$?
.venv/bin/flexledger dev status || true  # shown, not judged: the demo's exit status is this script's
echo "The stack is still running; stop it with: .venv/bin/flexledger dev down"
exit "$rc"
