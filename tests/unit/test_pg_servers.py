"""Several PostgreSQL servers (a primary and its standby): the settings, the DSNs psycopg and asyncpg read,
eventsourcing's environment, and the local pair's layout (`flexledger dev up --ha`), without a server."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from flexledger.devstack import postgres, postgres_ha
from flexledger.devstack.errors import DevstackError
from services.runtime.eventstore import ReadWritePostgresFactory, eventsourcing_env
from services.runtime.settings import Settings


def test_one_server_by_default_with_an_unchanged_dsn() -> None:
    settings = Settings(pg_host="db", pg_port=5432)
    assert settings.pg_servers == (("db", 5432),)
    assert settings.pg_address == "db:5432"
    assert settings.pg_dsn() == "postgresql://flexledger:flexledger@db:5432/flexledger"


def test_several_servers_in_one_dsn_that_asks_for_the_writable_one() -> None:
    settings = Settings(pg_hosts="10.0.0.1:5432, 10.0.0.2:5433")
    assert settings.pg_servers == (("10.0.0.1", 5432), ("10.0.0.2", 5433))
    dsn = settings.pg_dsn("other")
    assert dsn == ("postgresql://flexledger:flexledger@10.0.0.1:5432,10.0.0.2:5433/other"
                   "?target_session_attrs=read-write")
    params = psycopg.conninfo.conninfo_to_dict(dsn)  # libpq reads it as two hosts, two ports
    assert (params["host"], params["port"], params["target_session_attrs"]) == (
        "10.0.0.1,10.0.0.2", "5432,5433", "read-write")


def test_a_server_without_a_port_is_refused() -> None:
    with pytest.raises(ValueError, match="host:port"):
        Settings(pg_hosts="10.0.0.1")


def test_the_event_store_names_every_server_and_wants_a_writable_one() -> None:
    settings = Settings(pg_hosts="h1:5432,h2:5433", cipher_key="A" * 43 + "=")
    env = eventsourcing_env(settings, "intake")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("h1,h2", "5432,5433")
    factory = ReadWritePostgresFactory({**env, "CREATE_TABLE": "n"})
    try:
        kwargs = factory.datastore.pool.kwargs
        assert isinstance(kwargs, dict)
        assert (kwargs["host"], kwargs["port"], kwargs["target_session_attrs"]) == (
            "h1,h2", "5432,5433", "read-write")
    finally:
        factory.close()


def _local(tmp_path: Path) -> Settings:
    return Settings(pg_port=45432, state_dir=str(tmp_path))


def test_the_pair_is_two_nodes_on_consecutive_ports_that_clients_both_name(tmp_path: Path) -> None:
    settings = _local(tmp_path)
    assert not postgres_ha.enabled(settings)
    assert postgres_ha.with_standby(settings) == settings
    postgres_ha.use_standby(settings, True)
    one, two = postgres.layout(settings, 1), postgres.layout(settings, 2)
    assert (one.port, two.port) == (45432, 45433)
    assert one.data.name == "data" and two.data.name == "data-2" and one.socket_dir == two.socket_dir
    assert postgres_ha.with_standby(settings).pg_hosts == "127.0.0.1:45432,127.0.0.1:45433"
    assert postgres_ha.primary_node(settings) is None  # before initdb


def test_the_primary_is_the_node_on_the_latest_timeline(tmp_path: Path) -> None:
    settings = _local(tmp_path)
    for node in (1, 2):
        wal = postgres.layout(settings, node).data / "pg_wal"
        wal.mkdir(parents=True)
        (wal.parent / "PG_VERSION").write_text("15\n")
    (postgres.layout(settings, 2).data / "standby.signal").touch()
    assert postgres_ha.primary_node(settings) == 1
    # node 2 promoted: no standby.signal, a timeline 2 history; node 1 is a stale former primary
    (postgres.layout(settings, 2).data / "standby.signal").unlink()
    (postgres.layout(settings, 2).data / "pg_wal" / "00000002.history").write_text("1\t0/3000000\t\n")
    assert postgres_ha.primary_node(settings) == 2
    postgres_ha.use_standby(settings, True)
    with pytest.raises(DevstackError, match="promoted"):
        postgres_ha.use_standby(settings, False)  # node 1 alone would be behind node 2
