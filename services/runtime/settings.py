"""Runtime settings every process reads from the environment (see `flexledger dev env`).

One flat table: each setting has an environment variable and a default that works on one machine
with the local stack started by `deploy/`. Services read them through `Settings.from_env()`, which
parses the environment (and a `.env` file in the working directory) with pydantic-settings.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import Field, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.messages import BOOK_PATTERN, valid_book

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A source checkout (pyproject.toml beside the packages) keeps its state in ./var and its downloads in
# ./.cache; an installed wheel (PROJECT_ROOT is then site-packages) in the XDG directories instead.
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file()


def default_state_dir() -> str:
    """./var in a checkout, else $XDG_STATE_HOME/flexledger (~/.local/state/flexledger)."""
    if IN_CHECKOUT:
        return str(PROJECT_ROOT / "var")
    return str(Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "flexledger")


def default_cache_dir() -> str:
    """./.cache in a checkout, else $XDG_CACHE_HOME/flexledger (~/.cache/flexledger)."""
    if IN_CHECKOUT:
        return str(PROJECT_ROOT / ".cache")
    return str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flexledger")


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_controller_port: int = 19093
    pg_host: str = "127.0.0.1"
    pg_port: int = 15432
    # Several PostgreSQL servers, "host:port,host:port" (a primary and its standbys, in any order): every
    # connection tries them in turn and keeps the one that accepts writes (target_session_attrs=read-write),
    # so the services follow a promoted standby. Empty: the one server pg_host:pg_port.
    pg_hosts: str = ""
    pg_user: str = "flexledger"
    pg_password: str = "flexledger"
    pg_database: str = "flexledger"
    intake_port: int = 18081
    eligibility_port: int = 18082
    payments_port: int = 18083
    console_port: int = 18084  # the web console (flexledger/console/, issue 19)
    # Where the console finds the services ("intake=http://intake:18081,eligibility=...,payments=..."),
    # empty: 127.0.0.1 and their ports; and the trace viewer's page of a trace (the trace id appended),
    # empty: the local stack's Zipkin (flexledger/devstack/zipkin.py).
    console_service_urls: str = ""
    console_trace_url: str = ""
    state_dir: str = field(default_factory=default_state_dir)
    # Downloads the local stack reuses (Kafka's and Zipkin's jars, flexledger/devstack/jars.py): point
    # several checkouts or installs at one to fetch them once.
    cache_dir: str = field(default_factory=default_cache_dir)
    otel_exporter_otlp_endpoint: str = ""
    otel_traces_file: str = ""
    # Zipkin's span API (http://host:9411/api/v2/spans); `flexledger dev up` starts a Zipkin on
    # `zipkin_port` and sets this for the services it starts when no other export is configured.
    otel_exporter_zipkin_endpoint: str = ""
    zipkin_port: int = 19411
    # A service that exports spans starts at most this many new traces a second, 0: every one
    # (services/runtime/trace_sampling.py); OTEL_TRACES_SAMPLER, when set, chooses instead.
    traces_per_s: int = 20
    # A service's log lines on stderr (services/runtime/logs.py): json, text, or auto (text on a
    # terminal, JSON otherwise, e.g. the local stack's log files).
    log_format: str = "auto"
    # AES key (base64, 16/24/32 bytes) encrypting event state at rest; empty in development: a key is
    # generated once into <state_dir>/cipher.key and reused (see services.runtime.eventstore.cipher_key).
    cipher_key: str = ""
    # Audit (docs/design/audit.md). The role the three services connect as: SELECT and INSERT on the
    # event tables, never UPDATE or DELETE (`flexledger admin db-roles`, run as `pg_user`, the owner,
    # creates it); empty: the services connect as `pg_user`.
    pg_app_user: str = "flexledger_app"
    pg_app_password: str = "flexledger_app"
    # Ed25519 private key (base64 of the 32-byte seed) signing eligibility's ledger checkpoints; empty in
    # development: generated once into <state_dir>/signing.key (services.runtime.keys.signing_key).
    signing_key: str = ""
    # Seconds between two checkpoints of the ledger (one is signed only when the ledger grew).
    checkpoint_interval_s: int = 60
    # 1: `flexledger audit evidence --identities` may write identity numbers in clear (an auditor entitled
    # to them); 0: evidence bundles always mask them.
    audit_identities_allowed: int = 0
    # HMAC-SHA256 key (base64) of the pseudonyms on the statistics topic; empty in development: generated
    # once into <state_dir>/pseudonym.key (services.runtime.keys.statistics_key).
    pseudonym_key: str = ""
    # Payments (services/payments/config.py): the appropriation a fresh budget (programme, fiscal year)
    # starts with, "" for none (production: every order waits until Finance appropriates), else
    # "program=fen,...", "*" for any other programme; and the disbursement batching policy: a batch
    # when this many orders are ready, or when the oldest has waited this many seconds (-1: by count only).
    payments_default_appropriations: str = ""
    payments_batch_max_entries: int = 500
    payments_batch_max_wait_s: int = 2
    # Orders (and lines) a payments book keeps in memory besides those of lines with something open (an
    # order not yet paid, a claim not yet recovered); the least recently reached idle lines beyond it are
    # spilled to PostgreSQL and read back when reached (services/payments/domain/spill.py).
    payments_book_orders_in_memory: int = 5_000
    # The bootstrap operator API key, accepted by all three services (flk_<16 hex>_<43 base64url>);
    # empty in development: one is generated once into <state_dir>/operator.key
    # (services.runtime.access.operator_key); `off` disables it. Operator keys submit every fact type and
    # read every book: keep it like a password.
    operator_key: str = ""
    # Intake's limits (docs/design/intake-auth.md): rows and bytes of one bulk request, the per-key rate
    # (a token bucket: burst, and facts per second refilled; a bulk request costs its rows), and the
    # time a request may take to send its body or wait for its turn.
    intake_max_bulk_rows: int = 10_000
    intake_max_bulk_bytes: int = 16 * 1024 * 1024
    intake_rate_burst: int = 20_000
    intake_rate_per_s: int = 5_000
    intake_request_timeout_s: int = 30
    # How far a fact's `at` may be later than the time intake received it (the senders' clock skew);
    # later facts are refused (services/intake/domain/clock_skew.py).
    intake_max_clock_skew_s: int = 300
    # Bounded memory (issue 15.1, docs/design/scale.md): the fact ids intake keeps in front of its event
    # store (over all books; older ones are read from the store), and the MB of subject states
    # eligibility keeps in memory (a miss reads the subject's snapshot and the events after it).
    intake_fact_ids_cached: int = 20_000
    eligibility_cache_mb: int = 256
    # Kafka static group membership (KIP-345): this process's stable name in its consumer groups. A
    # restarted process with the same name takes its partitions back at once, without a rebalance
    # (else the group waits for the dead member's session to expire). Must be unique per process:
    # empty (dynamic membership) unless each replica gets its own (devstack names each instance).
    kafka_instance_id: str = ""
    # Who this process is on Kafka (docs/design/kafka-trust.md). The broker authenticates every client
    # (PLAINTEXT only for a broker without authentication, e.g. a throw-away test container) and its
    # ACLs decide what each principal may read and write. The local stack (`flexledger dev`) gives each
    # service its own principal and a password generated once into <state_dir>/kafka/principals/;
    # SASL_SSL (compose) checks the broker's certificate against `kafka_ca_file` (PEM).
    kafka_security_protocol: str = "SASL_PLAINTEXT"  # PLAINTEXT | SASL_PLAINTEXT | SASL_SSL
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"  # SCRAM-SHA-512 | PLAIN (the broker's `admin` only)
    kafka_username: str = ""
    kafka_password: str = field(default="", repr=False)
    kafka_ca_file: str = ""
    # Tags on service-to-service messages (services/runtime/message_auth.py, docs/design/kafka-trust.md):
    # HMAC-SHA256 keys (base64, at least 16 bytes) with which intake tags the facts it publishes and
    # eligibility the decisions, checked by eligibility and payments before they believe a message.
    # Empty in development: generated once into <state_dir>/facts-mac.key and <state_dir>/decisions-mac.key.
    facts_mac_key: str = field(default="", repr=False)
    decisions_mac_key: str = field(default="", repr=False)
    # The city's production books, comma-separated: their messages go on the `flexledger.` topics that
    # Finance, Statistics, tax and auditors subscribe to. Every other book (`scenario run --via pipeline`'s
    # scenario-<hex>, tests, probes) is a sandbox book, published on the `sandbox.` twins, which no
    # outside subscriber may read (contracts.topics.topic_for, docs/design/kafka-trust.md).
    production_books: str = "main"
    # Operations (services/runtime/health.py, services/runtime/metrics.py): a service is `degraded` when a
    # consumer's lag stays above `health_lag_max_messages` for `health_lag_for_s` seconds, or a consumer
    # or log follower makes no progress for `health_stall_s` seconds while work waits; the watch samples
    # every `health_interval_s` seconds. Eligibility's checkpoint is overdue after
    # `health_checkpoint_overdue_s` seconds of a grown ledger without one (0: 3 × checkpoint_interval_s).
    # `metrics_http` 0 stops counting HTTP requests (the benchmark's comparison); /metrics stays.
    health_lag_max_messages: int = 10_000
    health_lag_for_s: int = 60
    health_stall_s: int = 30
    health_interval_s: int = 2
    health_checkpoint_overdue_s: int = 0
    metrics_http: int = 1
    # The address the services' HTTP servers listen on: the loopback by default; 0.0.0.0 in containers,
    # where Prometheus scrapes /metrics from another container (deploy/compose.yaml).
    http_host: str = "127.0.0.1"
    # Active and standby (docs/design/services.md): 1 lets intake or payments start as a standby, which
    # waits for its service's writer lock without a deadline (healthy as `standby` meanwhile), takes
    # over when the active instance's database session ends, and exits when it loses the lock itself.
    standby: int = 0

    def __post_init__(self) -> None:
        production_book_set(self.production_books)  # refuse a bad list before anything starts
        _ = self.pg_servers  # likewise a bad list of PostgreSQL servers

    @property
    def production_book_set(self) -> frozenset[str]:
        """`production_books` as a set of book names."""
        return production_book_set(self.production_books)

    @classmethod
    def from_env(cls) -> Settings:
        """Every field `x` is read from FLEXLEDGER_X (OTEL_* keep their standard names), from the
        environment or else a `.env` file in the working directory, and checked against its type
        (pydantic-settings); a field not given keeps its default."""
        given = _env_reader()().model_dump(exclude_unset=True)
        return cls(**given)

    @staticmethod
    def env_name(field_name: str) -> str:
        return field_name.upper() if field_name.startswith("otel_") else f"FLEXLEDGER_{field_name.upper()}"

    def as_env(self) -> dict[str, str]:
        return {self.env_name(k): str(v) for k, v in asdict(self).items()}

    def for_service(self) -> Settings:
        """The settings a service process runs with: connected as the runtime role `pg_app_user`, which
        cannot UPDATE or DELETE event tables (unchanged when `pg_app_user` is empty)."""
        if not self.pg_app_user:
            return self
        return replace(self, pg_user=self.pg_app_user, pg_password=self.pg_app_password)

    def as_kafka_principal(self, username: str, password: str, mechanism: str = "SCRAM-SHA-512") -> Settings:
        """These settings, connecting to Kafka as `username` (several services in one process, or a
        tool, each with its own principal)."""
        return replace(self, kafka_username=username, kafka_password=password, kafka_sasl_mechanism=mechanism)

    @property
    def is_app_role(self) -> bool:
        """True when these settings connect as the runtime role (a service process)."""
        return bool(self.pg_app_user) and self.pg_user == self.pg_app_user

    @property
    def pg_servers(self) -> tuple[tuple[str, int], ...]:
        """(host, port) of every PostgreSQL server: `pg_hosts`, else pg_host:pg_port."""
        if not self.pg_hosts.strip():
            return ((self.pg_host, self.pg_port),)
        return tuple(pg_server(item) for item in self.pg_hosts.split(",") if item.strip())

    @property
    def pg_address(self) -> str:
        """The servers as an operator reads them: "127.0.0.1:15432" or "h1:5432,h2:5432"."""
        return ",".join(f"{host}:{port}" for host, port in self.pg_servers)

    def pg_dsn(self, database: str | None = None) -> str:
        """A libpq URI that psycopg and asyncpg both read; with several servers, it names them all and
        asks for the one that accepts writes."""
        db = database or self.pg_database
        servers = self.pg_servers
        dsn = f"postgresql://{self.pg_user}:{self.pg_password}@{self.pg_address}/{db}"
        return dsn + "?target_session_attrs=read-write" if len(servers) > 1 else dsn


def pg_server(text: str) -> tuple[str, int]:
    """("h1", 5432) from "h1:5432" (an item of FLEXLEDGER_PG_HOSTS); the port is required."""
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"FLEXLEDGER_PG_HOSTS item {text!r}: write host:port, e.g. 127.0.0.1:5432")
    return host, int(port)


class _FromEnv(BaseSettings):
    # The environment wins over `.env`; other variables in either are none of ours.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True, validate_default=False)


@cache
def _env_reader() -> type[BaseSettings]:
    """A pydantic-settings model of `Settings`' fields, each read from its environment name. Settings
    stays a frozen dataclass (`dataclasses.replace` and `fields` work on it); this only parses."""
    hints = get_type_hints(Settings)
    definitions: dict[str, Any] = {
        f.name: (hints[f.name], Field(default=None, validation_alias=Settings.env_name(f.name)))
        for f in fields(Settings)
    }
    return create_model("SettingsFromEnv", __base__=_FromEnv, **definitions)


def production_book_set(text: str) -> frozenset[str]:
    """The book names of a FLEXLEDGER_PRODUCTION_BOOKS value ("main", "main,north"): at least one,
    each a valid book name."""
    books = [name.strip() for name in text.split(",")]
    bad = [name for name in books if not valid_book(name)]
    if bad:
        raise ValueError(f"FLEXLEDGER_PRODUCTION_BOOKS {text!r}: {', '.join(map(repr, bad))} is not a book "
                         f"name ({BOOK_PATTERN}); name the production books, comma-separated")
    return frozenset(books)
