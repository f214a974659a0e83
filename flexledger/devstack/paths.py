"""Where each part of the development stack keeps its pid file, log and data."""

from __future__ import annotations

from pathlib import Path

from flexledger.resources import deploy_path
from services.runtime.settings import PROJECT_ROOT, Settings

REPO_ROOT: Path = PROJECT_ROOT
KAFKA_DEPLOY_DIR: Path = deploy_path("kafka")


def state_dir(settings: Settings) -> Path:
    path = Path(settings.state_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def logs_dir(settings: Settings) -> Path:
    path = state_dir(settings) / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir(settings: Settings) -> Path:
    path = state_dir(settings) / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file(settings: Settings, part: str) -> Path:
    return logs_dir(settings) / f"{part}.log"


def pid_file(settings: Settings, part: str) -> Path:
    return run_dir(settings) / f"{part}.pid"


def cache_dir() -> Path:
    """Where fetched jars are kept: FLEXLEDGER_CACHE_DIR (`.cache/` in a checkout, git-ignored)."""
    return Path(Settings.from_env().cache_dir).resolve()


def kafka_lib_dir() -> Path:
    """The broker's classpath, fetched by Maven."""
    return cache_dir() / "kafka" / "lib"


def zipkin_jar_path(version: str) -> Path:
    """Zipkin server's executable jar, fetched by Maven."""
    path = cache_dir() / "zipkin"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"zipkin-server-{version}-exec.jar"
