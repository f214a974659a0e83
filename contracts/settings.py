"""Runtime settings every process reads from the environment (see `flexledger dev env`).

One flat table: each setting has an environment variable and a default that works on one machine
with the local stack started by `deploy/`. Services read them through `Settings.from_env()`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_controller_port: int = 19093
    pg_host: str = "127.0.0.1"
    pg_port: int = 15432
    pg_user: str = "flexledger"
    pg_password: str = "flexledger"
    pg_database: str = "flexledger"
    intake_port: int = 18081
    eligibility_port: int = 18082
    payments_port: int = 18083
    state_dir: str = str(PROJECT_ROOT / "var")
    otel_exporter_otlp_endpoint: str = ""
    otel_traces_file: str = ""
    # AES key (base64, 16/24/32 bytes) encrypting event state at rest; empty in development: a key is
    # generated once into <state_dir>/cipher.key and reused (see contracts.eventstore.cipher_key).
    cipher_key: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        """Every field `x` is read from FLEXLEDGER_X (OTEL_* keep their standard names)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.name.upper() if f.name.startswith("otel_") else f"FLEXLEDGER_{f.name.upper()}"
            raw = os.environ.get(name)
            if raw is not None:
                values[f.name] = int(raw) if f.type == "int" else raw
        return cls(**values)  # type: ignore[arg-type]

    @staticmethod
    def env_name(field_name: str) -> str:
        return field_name.upper() if field_name.startswith("otel_") else f"FLEXLEDGER_{field_name.upper()}"

    def as_env(self) -> dict[str, str]:
        return {self.env_name(k): str(v) for k, v in asdict(self).items()}

    def pg_dsn(self, database: str | None = None) -> str:
        db = database or self.pg_database
        return f"postgresql://{self.pg_user}:{self.pg_password}@{self.pg_host}:{self.pg_port}/{db}"
