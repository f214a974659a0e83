"""`flexledger audit ...`: the auditor's commands (docs/design/audit.md).

They read eligibility's event table in PostgreSQL directly (decrypting with the cipher key), never the
running services; identity numbers are shown masked. Exit codes: 0 as expected, 1 the check failed
(not reproduced, tampered, invalid), 2 the command could not run (bad input, unreachable database).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from flexledger.exits import Exit
from services.runtime.settings import Settings

app = typer.Typer(
    no_args_is_help=True, help="Audit the ledger: replay, verify, history, what-if, checkpoints."
)

BookOption = Annotated[str | None, typer.Option("--book", help="only this book (default: every book)")]


def _settings() -> Settings:
    return Settings.from_env()


def _fail(message: str, code: int = 2) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _public_key(settings: Settings, given: str | None) -> str:
    from flexledger.audit.checkpoints import own_public_key, public_key_from

    return public_key_from(given) if given else own_public_key(settings)


@app.command("replay")
def replay_command(
    decision_id: Annotated[str, typer.Argument(help="the decision id (a UUID) to replay")],
    book: BookOption = None,
) -> None:
    """Rebuild the subject's state from the stored facts before the decision, under the rule set the
    decision records, re-derive it and compare; exit 1 unless reproduced, 5 for an unknown id."""
    from flexledger.audit.history import describe_decision
    from flexledger.audit.replay import locate, replay
    from flexledger.audit.store import masked

    settings = _settings()
    try:
        located = locate(settings, decision_id, book)
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}", Exit.UNREACHABLE) from exc
    if located is None:
        raise _fail(f"decision {decision_id} is not in the ledger" + (f" of book {book}" if book else ""),
                    Exit.NOT_FOUND)
    result = replay(located)
    d, event = located.decision, located.event
    print(f"decision {d['decision_id']} ({d['rule_set']})")
    print(f"  {describe_decision(d)}")
    print(
        f"  after fact {d.get('after')} — book {event['book']}, seq {event['seq']}, about "
        f"{masked(event.get('subject'))}, recorded {event.get('timestamp')} (trace {event.get('trace_id')})"
    )
    print(
        f"  stored at notification {located.row.notification_id}, stream {located.row.originator_id} "
        f"version {located.row.version}; replayed {len(located.events) - 1} earlier facts of the stream "
        f"under {result.rule_set}"
    )
    explanation = d.get("explanation")
    if explanation:
        print(f"  explanation: {explanation.get('summary')}")
        if explanation.get("reason_zh"):
            print(f"    {explanation['reason_zh']}")
        for p in explanation.get("parameters") or []:
            print(f"    parameter {p.get('name')} = {p.get('value')} (since {p.get('since')})")
        if explanation.get("fact_ids"):
            print(f"    rests on facts {', '.join(map(str, explanation['fact_ids']))}")
    if result.problem:
        print(f"  {result.problem}")
    elif not result.reproduced:
        again = result.decision_derived
        print(
            "  re-derived: "
            + (describe_decision(again) if again else "no such decision")
            + f" (the fact now decides {len(result.derived)}: "
            + ", ".join(describe_decision(x) for x in result.derived)
            + ")"
        )
    print(f"reproduced: {'yes' if result.reproduced else 'no'}")
    if not result.reproduced:
        raise typer.Exit(1)


@app.command("verify")
def verify_command(
    book: Annotated[
        list[str] | None, typer.Option("--book", help="only these books (repeatable; default: every book)")
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key", help="checkpoint public key (base64 or a file); default: the configured key's"
        ),
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints", help="published checkpoints (from `audit checkpoints`) to hold the ledger to"
        ),
    ] = None,
    show: Annotated[int, typer.Option(help="problems to list")] = 20,
) -> None:
    """Re-derive every decision, check every hash chain and checkpoint, payments against decisions and
    the database roles; print counts; exit 1 naming the first event that fails."""
    from flexledger.audit.checkpoints import load
    from flexledger.audit.verify import verify

    settings = _settings()
    published = load(checkpoints) if checkpoints else []
    try:
        report = verify(settings, books=frozenset(book) if book else None,
                        public_key=_public_key(settings, public_key), published=published)
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}") from exc
    c = report.counts
    print(
        f"audit verify{' (books ' + ', '.join(book) + ')' if book else ''}: {c['events']} stored events, "
        f"{c['streams']} streams, "
        f"{c['facts']} facts in {c['books']} books, {c['links']} hash links, {c['decisions']} decisions "
        f"({c['re-derived']} facts re-derived), {c['checkpoints']} checkpoints, "
        f"{c['intake seqs']} intake seqs, {c['facts held to intake']} facts held to intake, "
        f"{c['payments events']} payments events on {c['payment lines']} lines, {c['event tables']} event "
        "tables' grants"
    )
    kinds = sorted((k.split(".", 1)[1], n) for k, n in c.items() if k.startswith("decisions."))
    if kinds:
        print("  decisions: " + ", ".join(f"{k} {n}" for k, n in kinds))
    for note in report.notes:
        print(f"  note: {note}")
    if report.ok:
        print("verified: yes")
        return
    problems = report.sorted_problems()
    print(f"verified: no — {len(problems)} problems; first: {problems[0]}")
    for problem in problems[:show]:
        print(f"  {problem}")
    if len(problems) > show:
        print(f"  … and {len(problems) - show} more")
    raise typer.Exit(1)


@app.command("history")
def history_command(
    subject: Annotated[str, typer.Argument(help="the identity number or credit code of the subject")],
    book: Annotated[str, typer.Option(help="the book")] = "main",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="ISO 8601 time (a date: its end, UTC): only events recorded at or before it"
        ),
    ] = None,
) -> None:
    """The facts and decisions of a worker or enterprise as they stood at a time."""
    from flexledger.audit.history import history, parse_time, render

    settings = _settings()
    try:
        moment = parse_time(as_of) if as_of else None
    except ValueError as exc:
        raise _fail(f"--as-of {as_of!r} is not an ISO 8601 time") from exc
    try:
        found = history(settings, subject, book=book, as_of=moment)
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}") from exc
    for line in render(found):
        print(line)


@app.command("what-if")
def what_if_command(
    rules: Annotated[str, typer.Option("--rules", help="rule set id, e.g. wuxi-2021-26/2")],
    book: Annotated[str, typer.Option(help="the book")] = "main",
) -> None:
    """Re-run the book's history under another rule set and list the decisions that would differ.
    Nothing is written."""
    from flexledger.audit.whatif import render, what_if

    settings = _settings()
    try:
        result = what_if(settings, rules, book=book)
    except LookupError as exc:
        raise _fail(str(exc)) from exc
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}") from exc
    for line in render(result):
        print(line)


@app.command("verify-checkpoint")
def verify_checkpoint_command(
    file: Annotated[Path, typer.Argument(help="the checkpoint file (JSON) to verify")],
    public_key: Annotated[str, typer.Option("--public-key", help="base64 Ed25519 public key, or a file")],
) -> None:
    """Verify published checkpoints offline with the ledger's public key (no database needed)."""
    from flexledger.audit.checkpoints import describe, public_key_from, verify_file
    from services.eligibility.domain.checkpoint import BadKey

    try:
        results = verify_file(file, public_key_from(public_key))
    except (OSError, ValueError, BadKey) as exc:
        raise _fail(str(exc)) from exc
    if not results:
        raise _fail(f"{file} holds no checkpoint")
    bad = 0
    for checkpoint, problems in results:
        print(f"{describe(checkpoint)}: {'valid' if not problems else 'INVALID — ' + '; '.join(problems)}")
        bad += bool(problems)
    if bad:
        raise typer.Exit(1)


@app.command("checkpoints")
def checkpoints_command(
    out: Annotated[Path | None, typer.Option("--out", help="write them here as JSON lines")] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="seconds to read the topic for")] = 10.0,
) -> None:
    """Read every checkpoint published on flexledger.audit.checkpoints.v1 (JSON lines)."""
    from flexledger.audit.checkpoints import read_topic

    found: list[dict[str, Any]] = asyncio.run(read_topic(_settings(), timeout_s))
    text = "".join(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n" for c in found)
    if out:
        out.write_text(text, encoding="utf-8")
        print(f"{len(found)} checkpoints written to {out}")
    else:
        sys.stdout.write(text)


@app.command("public-key")
def public_key_command() -> None:
    """The public key (base64) outside parties verify checkpoints with, and its key id."""
    from services.eligibility.domain.checkpoint import key_id

    key = _public_key(_settings(), None)
    print(key)
    print(f"key id {key_id(key)}", file=sys.stderr)


@app.command("db-roles")
def db_roles_command() -> None:
    """Create the runtime role, schemas and event tables, and the grants (as the owner, pg_user)."""
    from flexledger.audit.roles import provision

    settings = _settings()
    try:
        provision(settings)
    except psycopg.Error as exc:
        raise _fail(f"provisioning failed: {exc}") from exc
    print(
        f"owner {settings.pg_user}; services connect as {settings.pg_app_user or settings.pg_user} "
        "(SELECT, INSERT on event tables)"
    )
