"""The wheel stands alone: built from this checkout, installed into a fresh virtual environment in a
temporary directory, and run from there with no checkout in sight, as the README's 'Install from a
wheel' section does: `flexledger --version`, `scenario run` on a vector, `dev up`/`status`/`down`.

The install's state goes to $XDG_STATE_HOME/flexledger (a temporary directory); the jars are taken
from this checkout's cache (FLEXLEDGER_CACHE_DIR) instead of Maven Central again. The stack runs on
this session's test ports + 50, which no test slot uses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_SETTINGS

from services.runtime.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.e2e

VECTOR = PROJECT_ROOT / "tests" / "vectors" / "01-employment-service-difficulty.yaml"
OFFSET = 50


def _ports(settings: Settings) -> dict[str, str]:
    """The test slot's ports moved by OFFSET, as the FLEXLEDGER_* variables of the install."""
    kafka_port = int(settings.kafka_bootstrap.rsplit(":", 1)[1]) + OFFSET
    values = {
        "kafka_bootstrap": f"127.0.0.1:{kafka_port}",
        "kafka_controller_port": settings.kafka_controller_port + OFFSET,
        "pg_port": settings.pg_port + OFFSET,
        "intake_port": settings.intake_port + OFFSET,
        "eligibility_port": settings.eligibility_port + OFFSET,
        "payments_port": settings.payments_port + OFFSET,
        "zipkin_port": settings.zipkin_port + OFFSET,
    }
    return {Settings.env_name(name): str(value) for name, value in values.items()}


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """(the install's directory, its environment): a venv with only the wheel and its dependencies."""
    home = tmp_path_factory.mktemp("wheel-install")
    dist = home / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(PROJECT_ROOT)],
                   check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("flexledger-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True, timeout=300)
    subprocess.run([str(home / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=1200)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLEXLEDGER_", "OTEL_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(_ports(TEST_SETTINGS))
    env.update({
        "PATH": f"{home / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "XDG_STATE_HOME": str(home / "state"),
        "FLEXLEDGER_CACHE_DIR": str(PROJECT_ROOT / ".cache"),  # the jars setup.sh fetched
    })
    yield home, env
    _flexledger(home, env, "dev", "down")
    shutil.rmtree(home / "venv", ignore_errors=True)


def _flexledger(
    home: Path, env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(home / "venv" / "bin" / "flexledger"), *args], cwd=home, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_the_installed_command_is_not_the_checkout(install: tuple[Path, dict[str, str]]) -> None:
    home, env = install
    python = str(home / "venv" / "bin" / "python")
    where = subprocess.run([python, "-c", "import flexledger as f; print(f.__file__)"],
                           cwd=home, env=env, capture_output=True, text=True, check=True)
    assert not Path(where.stdout.strip()).is_relative_to(PROJECT_ROOT)
    version = _flexledger(home, env, "--version")
    assert (version.returncode, version.stdout.split()) == (0, ["flexledger", "0.1.0"])


def _readme_scenario() -> str:
    """The scenario the README's 'Install from a wheel' section writes (its heredoc)."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Install from a wheel", 1)[1].split("\n## ", 1)[0]
    return section.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0] + "\n"


def test_scenario_run_on_a_vector(install: tuple[Path, dict[str, str]]) -> None:
    home, env = install
    shutil.copy(VECTOR, home / VECTOR.name)
    run = _flexledger(home, env, "scenario", "run", VECTOR.name)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["decisions"]
    (home / "scenario.yaml").write_text(_readme_scenario(), encoding="utf-8")
    readme = _flexledger(home, env, "scenario", "run", "scenario.yaml")
    assert readme.returncode == 0, readme.stderr
    assert [d["kind"] for d in json.loads(readme.stdout)["decisions"]] == ["rejected"]


def test_dev_up_status_down(install: tuple[Path, dict[str, str]]) -> None:
    home, env = install
    up = _flexledger(home, env, "dev", "up", timeout=900)
    assert up.returncode == 0, up.stdout + up.stderr
    state = home / "state" / "flexledger"
    assert (state / "cipher.key").is_file()  # the install's own state dir, not site-packages/var
    status = _flexledger(home, env, "dev", "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = json.loads(status.stdout)
    assert {row["part"] for row in rows} >= {"kafka", "postgres", "intake", "eligibility", "payments"}
    assert all(row["healthy"] and row["pid"] for row in rows), rows
    key = _flexledger(home, env, "audit", "public-key")
    assert key.returncode == 0, key.stderr
    engine = json.loads(_flexledger(home, env, "scenario", "run", "scenario.yaml").stdout)["decisions"]
    piped = _flexledger(home, env, "scenario", "run", "scenario.yaml", "--via", "pipeline", timeout=300)
    assert piped.returncode == 0, piped.stderr  # the YAML `.nan` too: rejected by intake with a reason
    assert [d["kind"] for d in json.loads(piped.stdout)["decisions"]] == [d["kind"] for d in engine]
    down = _flexledger(home, env, "dev", "down", timeout=300)
    assert down.returncode == 0, down.stderr
    after = _flexledger(home, env, "dev", "status")
    assert after.returncode == 1  # nothing is up any more
