#!/usr/bin/env bash
# Idempotent set-up of a Debian machine for flexledger. Installs, only when missing:
#   - PostgreSQL server binaries (/usr/lib/postgresql/*/bin), a Java 17+ runtime, Maven, and Debian's
#     chromium, which tests/e2e/test_trace_viewer.py and test_console_browser.py drive (never a
#     downloaded browser), and a CJK font for the console's Chinese pages (apt-get);
#   - .venv (Python >= 3.11) with the project installed editable, '.[dev]' (again when pyproject changes);
#   - the Kafka broker's jars in .cache/kafka/lib (Maven, deploy/kafka/pom.xml), and Zipkin server's
#     executable jar in .cache/zipkin (Maven, io.zipkin:zipkin-server:3.5.1:jar:exec).
# Nothing is started: `flexledger dev up` / `infra-up` or the test fixtures start the stack.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

apt_install() {
  local sudo=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || { log "need root (or sudo) to apt-get install: $*"; exit 1; }
    sudo=(sudo)
  fi
  log "apt-get install $*"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

python_ok() { "$1" -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

find_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && python_ok "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# --- system packages, only the missing ones -------------------------------------------------------
packages=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
if ! command -v java >/dev/null; then
  if apt-cache show openjdk-17-jre-headless >/dev/null 2>&1; then
    packages+=(openjdk-17-jre-headless)
  else
    packages+=(default-jre-headless)  # 17 or newer
  fi
fi
command -v mvn >/dev/null || packages+=(maven)
[[ -x /usr/bin/chromium ]] || packages+=(chromium)
[[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || packages+=(fonts-wqy-microhei)  # the console's 中文
[[ -x .venv/bin/python ]] || find_python >/dev/null || packages+=(python3 python3-venv)
if ((${#packages[@]})); then
  apt_install "${packages[@]}"
fi

# --- virtualenv and the project -------------------------------------------------------------------
if ! { [[ -x .venv/bin/python ]] && python_ok .venv/bin/python; }; then
  python=$(find_python) || { log "no Python >= 3.11 with venv support found"; exit 1; }
  log "creating .venv with $python"
  rm -rf .venv
  "$python" -m venv .venv
fi
stamp=.venv/.flexledger-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]] || ! .venv/bin/python -c 'import flexledger' 2>/dev/null; then
  log "pip install -e '.[dev]'"
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$wanted" >"$stamp"
fi

# --- Kafka broker jars (cached in .cache/kafka/lib) and Zipkin's (.cache/zipkin) -------------------
.venv/bin/python -c 'from flexledger.devstack.jars import ensure_kafka_jars; ensure_kafka_jars()'
.venv/bin/python -c 'from flexledger.devstack.jars import ensure_zipkin_jar; ensure_zipkin_jar()'
# --- the official AsyncAPI parser (.cache/asyncapi), which tests/unit/test_asyncapi_parser.py runs ----
if command -v npm >/dev/null && [[ ! -d .cache/asyncapi/node_modules/@asyncapi/parser ]]; then
  log "npm install @asyncapi/parser into .cache/asyncapi"
  npm install --silent --no-audit --no-fund --prefix .cache/asyncapi @asyncapi/parser@3.6.6 >/dev/null
fi
log "ready"
