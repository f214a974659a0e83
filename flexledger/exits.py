"""The exit statuses every `flexledger` command uses (docs/cli.md has the table), and how to fail.

Errors go to stderr, prefixed `error:`; what a command prints on stdout is only its result.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NoReturn

import typer


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # a check failed: not verified, not reproduced, a part not healthy, facts rejected
    USAGE = 2  # a bad argument or option (click's own status for usage errors)
    UNREACHABLE = 3  # a service, the broker or the database could not be reached
    REFUSED = 4  # the server answered with an error status (printed with its body)
    NOT_FOUND = 5  # the id, beneficiary or file named does not exist
    NOT_SET_UP = 6  # local state the command needs is missing: a key, a password, the stack's state dir


def fail(message: str, status: Exit) -> NoReturn:
    """Print `error: message` on stderr and exit with `status`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(int(status))
