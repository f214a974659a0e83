"""The command's conventions (docs/cli.md): one exit-status table, help for every argument and option,
`--version`, tables as TSV when piped, tools that refuse to make a development key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.table import Table

from flexledger import __version__, cli, output
from flexledger.exits import Exit
from services.runtime import keys
from services.runtime.settings import PROJECT_ROOT, Settings


def _commands(command: Any, path: tuple[str, ...] = ("flexledger",)) -> list[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        return [(path, command)]
    return [found for name, sub in subcommands.items() for found in _commands(sub, (*path, name))]


def test_every_argument_and_option_has_help() -> None:
    cli._register()
    missing = [f"{' '.join(path)} {param.name}"
               for path, command in _commands(typer.main.get_command(cli.app))
               for param in command.params if param.name != "help" and not getattr(param, "help", None)]
    assert not missing


def test_the_exit_status_table_is_the_documented_one() -> None:
    table = (PROJECT_ROOT / "docs" / "cli.md").read_text()
    assert [int(status) for status in Exit] == list(range(len(Exit)))
    for status in Exit:
        assert f"| {int(status)} |" in table


def test_version_is_printed_from_one_place() -> None:
    done = subprocess.run([sys.executable, "-m", "flexledger", "--version"], capture_output=True, text=True,
                          check=False)
    assert (done.returncode, done.stdout) == (0, f"flexledger {__version__}\n")


def test_a_piped_table_is_tab_separated_with_every_cell_whole(capsys: pytest.CaptureFixture[str]) -> None:
    table = Table("key id", "label", title="API keys (1)")
    long_id = "0123456789abcdef" * 8
    table.add_row(long_id, "[red]x[/red]\tand\nmore")
    output.print_table(table)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["# API keys (1)", "key id\tlabel", f"{long_id}\tx and; more"]


def test_a_tool_refuses_to_make_a_missing_key(tmp_path: Path) -> None:
    settings = Settings(state_dir=str(tmp_path))
    keys.refuse_new_keys()
    try:
        with pytest.raises(keys.MissingKeyError, match="FLEXLEDGER_SIGNING_KEY"):
            keys.signing_key(settings)
        assert not (tmp_path / "signing.key").exists()
    finally:
        keys.refuse_new_keys(False)
    made = keys.signing_key(settings)  # a service makes it
    keys.refuse_new_keys()
    try:
        assert keys.signing_key(settings) == made  # and a tool reads it
    finally:
        keys.refuse_new_keys(False)


def test_a_command_without_the_stack_s_keys_exits_not_set_up(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FLEXLEDGER_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-m", "flexledger", "audit", "public-key"], env=env,
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == Exit.NOT_SET_UP, done.stderr
    assert "no signing.key" in done.stderr and not done.stdout
    assert not (tmp_path / "state" / "signing.key").exists()


def test_settings_come_from_the_environment_and_a_dot_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / ".env").write_text("FLEXLEDGER_PG_PORT=6543\nFLEXLEDGER_INTAKE_PORT=1\nSOMETHING_ELSE=x\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLEXLEDGER_INTAKE_PORT", "2")  # the environment wins over .env
    settings = Settings.from_env()
    assert (settings.pg_port, settings.intake_port) == (6543, 2)
    monkeypatch.setenv("FLEXLEDGER_PG_PORT", "not a port")
    with pytest.raises(ValueError, match="FLEXLEDGER_PG_PORT"):
        Settings.from_env()


# Commands that print no data (they act, and say what they did) or print JSON always.
_NO_JSON_OPTION = {
    "demo", "scenario run",  # a narrative; scenario run prints one JSON object always
    "dev up", "dev down", "dev infra-up", "dev infra-down", "dev promote", "dev topics", "dev fetch-jars",
    "keys revoke", "kafka principals add", "kafka principals rotate", "kafka principals remove",
    "kafka acls apply", "kafka acls script", "payments bank-simulator", "admin db-roles",
}


def test_every_command_that_prints_data_takes_json() -> None:
    cli._register()
    command = typer.main.get_command(cli.app)
    without = {" ".join(path[1:]) for path, sub in _commands(command)
               if not any("--json" in getattr(param, "opts", ()) for param in sub.params)}
    assert without == _NO_JSON_OPTION
