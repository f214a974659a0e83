"""The jars the local stack runs, fetched from Maven Central by `mvn`: the Kafka broker's (with
deploy/kafka/pom.xml) and Zipkin server's executable jar (one artifact, `ZIPKIN_ARTIFACT`)."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

from flexledger.devstack.errors import DevstackError
from flexledger.devstack.paths import KAFKA_DEPLOY_DIR, kafka_lib_dir, zipkin_jar_path

log = logging.getLogger(__name__)

POM: Path = KAFKA_DEPLOY_DIR / "pom.xml"
_STAMP = ".complete"
ZIPKIN_VERSION = "3.5.1"
ZIPKIN_ARTIFACT = f"io.zipkin:zipkin-server:{ZIPKIN_VERSION}:jar:exec"  # the self-contained server


def kafka_version() -> str:
    """The Kafka version pinned in the pom (`<kafka.version>`)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if match is None:
        raise DevstackError(f"no <kafka.version> in {POM}")
    return match.group(1).strip()


def jars_present(lib: Path | None = None) -> bool:
    lib = lib or kafka_lib_dir()
    stamp = lib / _STAMP
    return stamp.is_file() and stamp.read_text().strip() == POM.read_text().strip() and any(
        lib.glob("log4j-slf4j-impl-*.jar")
    )


def ensure_kafka_jars() -> Path:
    """Return the broker's classpath folder, running Maven once if the cache is missing or stale."""
    lib = kafka_lib_dir()
    if jars_present(lib):
        return lib
    mvn = _mvn("Kafka's jars")
    staging = lib.with_name(lib.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    log.info("fetching Kafka %s jars with Maven into %s", kafka_version(), lib)
    cmd = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]
    _run_mvn(cmd)
    (staging / _STAMP).write_text(POM.read_text())
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    return lib


def ensure_zipkin_jar() -> Path:
    """Return Zipkin server's executable jar, running Maven once if it is not cached."""
    jar = zipkin_jar_path(ZIPKIN_VERSION)
    if jar.is_file():
        return jar
    mvn = _mvn("Zipkin's jar")
    staging = jar.parent / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    log.info("fetching Zipkin server %s with Maven into %s", ZIPKIN_VERSION, jar.parent)
    _run_mvn([mvn, "-q", "-B", "dependency:copy", f"-Dartifact={ZIPKIN_ARTIFACT}",
              f"-DoutputDirectory={staging}"])
    fetched = next(staging.glob("zipkin-server-*-exec.jar"), None)
    if fetched is None:
        raise DevstackError(f"mvn fetched no zipkin-server jar into {staging}")
    fetched.rename(jar)  # whole or not at all: a half-copied jar never has the final name
    shutil.rmtree(staging, ignore_errors=True)
    return jar


def _mvn(what: str) -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DevstackError(
            f"{what}: not cached, and `mvn` is missing: run scripts/setup.sh "
            "(or `apt-get install -y maven`) and try again"
        )
    return mvn


def _run_mvn(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = result.stdout[-3000:] + result.stderr[-3000:]
        raise DevstackError(f"mvn failed ({result.returncode}):\n{output}")


def java_executable() -> str:
    java = shutil.which("java")
    if java is None:
        raise DevstackError(
            "`java` (17 or newer) is missing: run scripts/setup.sh or install openjdk-17-jre-headless"
        )
    return java
