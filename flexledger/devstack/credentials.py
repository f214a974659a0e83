"""The Kafka principals' passwords on the local stack, and the settings that connect as one of them.

Each principal of the access table (`flexledger.kafka_access`) gets a random password, generated once
into `<state_dir>/kafka/principals/<name>.password` (mode 0600, in a 0700 folder). The broker holds it
as a SCRAM-SHA-512 credential (`flexledger.devstack.kafka_admin`); `admin`'s is the static PLAIN
credential of the broker's own configuration instead (see `flexledger.devstack.kafka.write_config`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flexledger.devstack.errors import DevstackError
from flexledger.devstack.paths import state_dir
from flexledger.kafka_access import ADMIN
from services.runtime.kafka import client_security
from services.runtime.keys import write_once
from services.runtime.settings import Settings

PASSWORD_BYTES = 24  # 32 URL-safe characters: nothing a JAAS or SCRAM config line would have to quote


def principals_dir(settings: Settings) -> Path:
    path = state_dir(settings) / "kafka" / "principals"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def password_file(settings: Settings, name: str) -> Path:
    return principals_dir(settings) / f"{name}.password"


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def ensure_password(settings: Settings, name: str) -> str:
    """`name`'s password, generated on first use (race-free: two processes end up with the same one)."""
    return write_once(password_file(settings, name), new_password())


def stored_password(settings: Settings, name: str) -> str:
    path = password_file(settings, name)
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise DevstackError(
            f"no password for the Kafka principal {name!r} ({path}): `flexledger dev up` creates the "
            f"table's principals, `flexledger kafka principals add {name}` one of them"
        ) from None


def store_password(settings: Settings, name: str, password: str) -> None:
    """Replace `name`'s password file atomically (a new file, 0600, renamed over the old one)."""
    path = password_file(settings, name)
    staging = path.with_suffix(".new")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(password + "\n")
    staging.replace(path)


def forget_password(settings: Settings, name: str) -> bool:
    path = password_file(settings, name)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    return existed


def as_principal(settings: Settings, name: str) -> Settings:
    """The settings connecting as `name` with its local password (`admin` by PLAIN, the others by
    SCRAM-SHA-512). Unchanged on a broker without authentication (PLAINTEXT)."""
    if settings.kafka_security_protocol.upper() == "PLAINTEXT":
        return settings
    mechanism = "PLAIN" if name == ADMIN else "SCRAM-SHA-512"
    return settings.as_kafka_principal(name, stored_password(settings, name), mechanism)


def for_tool(settings: Settings, default_principal: str) -> Settings:
    """The settings a tool connects with: the credentials the settings name (FLEXLEDGER_KAFKA_USERNAME
    and _PASSWORD, e.g. in a deployment), else the local stack's `default_principal`."""
    if settings.kafka_username:
        return settings
    return as_principal(settings, default_principal)


def client_args(settings: Settings, name: str) -> dict[str, Any]:
    """Keyword arguments of an aiokafka client connected as `name` (tests, benchmarks):
    `AIOKafkaProducer(**client_args(settings, "admin"), acks="all")`."""
    client = as_principal(settings, name)
    return {"bootstrap_servers": client.kafka_bootstrap, **client_security(client)}
