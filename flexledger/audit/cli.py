"""`flexledger audit ...`: the auditor's commands (docs/design/audit.md).

They read eligibility's event table in PostgreSQL directly (decrypting with the cipher key), never the
running services; identity numbers are shown masked, ids in full. Every command takes `--json`. Exit
codes: 0 as expected, 1 the check failed (not reproduced, tampered, invalid), 2 usage (bad input, an
unknown or ambiguous id), 3 the database could not be reached. Writing commands are elsewhere
(`flexledger admin db-roles`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from flexledger.audit.proof_commands import register as register_proof_commands
from flexledger.exits import Exit
from flexledger.output import print_json
from services.runtime.settings import Settings

app = typer.Typer(
    no_args_is_help=True,
    help="Audit the ledger: replay, lookup, verify, history, what-if, checkpoints (read only).",
)
register_proof_commands(app)  # prove, consistency, evidence

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
# Exit codes (the CLI's convention): 0 as expected, 1 the check failed (not reproduced, tampered,
# invalid), 2 usage (bad input, an unknown id), 3 the ledger could not be reached.
FAILED, USAGE, UNREACHABLE, NOT_FOUND = Exit.FAILED, Exit.USAGE, Exit.UNREACHABLE, Exit.NOT_FOUND
BookOption = Annotated[str | None, typer.Option("--book", help="only this book (default: every book)")]
LangOption = Annotated[str, typer.Option("--lang", help="language of reasons and facts: zh or en")]


def _settings() -> Settings:
    return Settings.from_env()


def _fail(message: str, code: int = USAGE) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _lang(lang: str) -> str:
    from flexledger.audit.show import LANGS

    if lang not in LANGS:
        raise _fail(f"--lang {lang!r}: one of {', '.join(LANGS)}")
    return lang



def _public_key(settings: Settings, given: str | None) -> str:
    from flexledger.audit.checkpoints import own_public_key, public_key_from

    return public_key_from(given) if given else own_public_key(settings)


@app.command("replay")
def replay_command(
    decision_id: Annotated[str, typer.Argument(help="the decision id, or any unique prefix of it")],
    book: BookOption = None,
    lang: LangOption = "en",
    as_json: JsonOption = False,
) -> None:
    """Rebuild the subject's state from the stored facts before the decision, under the rule set the
    decision records, re-derive it and compare; show the facts it rests on; exit 1 unless reproduced."""
    from flexledger.audit.lookup import resolve_decision
    from flexledger.audit.replay import as_json as replay_json
    from flexledger.audit.replay import locate, render, replay

    settings, lang = _settings(), _lang(lang)
    try:
        full_id = resolve_decision(settings, decision_id, book)
        located = locate(settings, full_id, book) if full_id else None
    except LookupError as exc:
        raise _fail(str(exc)) from exc
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}", UNREACHABLE) from exc
    if located is None:
        raise _fail(f"decision {decision_id} is not in the ledger" + (f" of book {book}" if book else ""),
                    NOT_FOUND)
    result = replay(located)
    if as_json:
        print_json(replay_json(located, result))
    else:
        for line in render(located, result, lang):
            print(line)
    if not result.reproduced:
        raise typer.Exit(FAILED)


@app.command("lookup")
def lookup_command(
    given: Annotated[str, typer.Argument(
        help="a payment order id, disbursement entry id, bank confirmation or decision id (or a unique "
        "prefix of an id)")],
    as_json: JsonOption = False,
) -> None:
    """Find the decision a payment order, a disbursement entry or a bank confirmation came from; then
    `audit replay` it."""
    from flexledger.audit.lookup import Ambiguous, trail

    try:
        found = trail(_settings(), given)
    except Ambiguous as exc:
        raise _fail(str(exc)) from exc
    except LookupError as exc:
        raise _fail(str(exc), NOT_FOUND) from exc
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}", UNREACHABLE) from exc
    if as_json:
        print_json({"given": found.given, "steps": found.steps, "decision_id": found.decision_id})
        return
    for step in found.steps:
        details = ", ".join(f"{k} {v}" for k, v in step.items() if k not in ("kind", "id") and v is not None)
        print(f"{step['kind']} {step['id']}" + (f" ({details})" if details else ""))
    print(f"replay it: flexledger audit replay {found.decision_id}")


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
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress",
                     help="a progress bar on stderr (default: on a terminal, and not with --json)"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-derive every decision, check every hash chain and checkpoint, payments against decisions and
    the database roles; print counts; exit 1 naming the first event that fails. A progress bar runs on
    stderr meanwhile (on a terminal, or with --progress)."""
    from flexledger.audit.checkpoints import load
    from flexledger.audit.verify import verify

    settings = _settings()
    published = load(checkpoints) if checkpoints else []
    if progress is None:
        progress = sys.stderr.isatty() and not as_json
    try:
        key = _public_key(settings, public_key)
        with _progress_bar("audit verify", settings, progress) as bar:
            report = verify(settings, books=frozenset(book) if book else None, public_key=key,
                            published=published, progress=bar)
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}", UNREACHABLE) from exc
    if as_json:
        print_json({"verified": report.ok, "books": book, "counts": dict(report.counts),
                     "notes": report.notes, "problems": [str(p) for p in report.sorted_problems()]})
    else:
        _print_verify(report, book, show)
    if not report.ok:
        raise typer.Exit(FAILED)


def _ledger_events(settings: Settings) -> int | None:
    """About how many events eligibility's log holds (what the stream pass reads), None when unknown."""
    try:
        with psycopg.connect(settings.pg_dsn(), connect_timeout=10) as conn:
            found = conn.execute("SELECT max(notification_id) FROM eligibility.eligibility_events").fetchone()
            return int(found[0]) if found and found[0] is not None else None
    except psycopg.Error:
        return None


@contextmanager
def _progress_bar(what: str, settings: Settings, shown: bool) -> Iterator[Callable[[int], None] | None]:
    """The callback that draws the pass's progress on stderr (None: not shown); the line is cleared at
    the end."""
    if not shown:
        yield None
        return
    from flexledger.audit.progress import ProgressBar

    bar = ProgressBar(what, _ledger_events(settings), sys.stderr)
    try:
        yield bar.update
    finally:
        bar.close()


def _print_verify(report: Any, book: list[str] | None, show: int) -> None:
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
    lang: LangOption = "en",
    as_json: JsonOption = False,
) -> None:
    """The facts (their contents, masked) and decisions of a worker or enterprise as they stood at a
    time."""
    from flexledger.audit.history import as_json as history_json
    from flexledger.audit.history import history, parse_time, render

    settings, lang = _settings(), _lang(lang)
    try:
        moment = parse_time(as_of) if as_of else None
    except ValueError as exc:
        raise _fail(f"--as-of {as_of!r} is not an ISO 8601 time") from exc
    try:
        found = history(settings, subject, book=book, as_of=moment)
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}", UNREACHABLE) from exc
    if as_json:
        print_json(history_json(found))
        return
    for line in render(found, lang):
        print(line)


@app.command("what-if", epilog=(
    "Examples: `flexledger audit what-if --set social_insurance_rate=1/2@2023-01-01` (halve the social "
    "insurance rate from 2023); `flexledger audit what-if --parameters docs/reforms/"
    "training-rate-2024.yaml --json`; `flexledger audit what-if --rules wuxi-2021-26/1` (the recorded "
    "rules: no difference). Parameter names, units and values: "
    "services/eligibility/domain/rule_sets/wuxi-2021-26-1.yaml."
))
def what_if_command(
    rules: Annotated[
        str | None, typer.Option("--rules", help="rule set id (default: the current one, wuxi-2021-26/1)")
    ] = None,
    changes: Annotated[
        list[str] | None,
        typer.Option("--set", help="NAME=VALUE or NAME=VALUE@YYYY-MM-DD: the parameter's value from "
                     "that date on (repeatable; a ratio as a/b)"),
    ] = None,
    parameters: Annotated[
        Path | None,
        typer.Option("--parameters", help="a YAML parameter file (the rule set's format); each parameter "
                     "it holds replaces that parameter's history"),
    ] = None,
    book: Annotated[str, typer.Option(help="the book")] = "main",
    as_json: JsonOption = False,
) -> None:
    """Replay the book's recorded facts under another rule set or changed parameters (a reform); list
    the decisions that would differ and the money difference per programme and fiscal year. Nothing is
    written."""
    from flexledger.audit.whatif import as_json as whatif_json
    from flexledger.audit.whatif import reformed, render, what_if
    from services.eligibility.domain.parameters import ParameterError

    settings = _settings()
    try:
        chosen = reformed(rules, changes or (), parameters)
        result = what_if(settings, chosen, book=book)
    except (LookupError, ParameterError) as exc:
        raise _fail(str(exc)) from exc
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}", UNREACHABLE) from exc
    if as_json:
        print_json(whatif_json(result))
        return
    for line in render(result):
        print(line)


@app.command("verify-checkpoint")
def verify_checkpoint_command(
    file: Annotated[Path, typer.Argument(help="the checkpoint file (JSON) to verify")],
    public_key: Annotated[str, typer.Option("--public-key", help="base64 Ed25519 public key, or a file")],
    as_json: JsonOption = False,
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
    bad = sum(bool(problems) for _, problems in results)
    if as_json:
        print_json([{"checkpoint": describe(c), "valid": not problems, "problems": problems}
                     for c, problems in results])
    else:
        for checkpoint, problems in results:
            verdict = "valid" if not problems else "INVALID — " + "; ".join(problems)
            print(f"{describe(checkpoint)}: {verdict}")
    if bad:
        raise typer.Exit(FAILED)


@app.command("checkpoints")
def checkpoints_command(
    out: Annotated[Path | None, typer.Option("--out", help="write them here as JSON lines")] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="seconds to wait for the records")] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Read every checkpoint published on flexledger.audit.checkpoints.v1 (JSON lines; `--json`: one
    JSON array)."""
    from flexledger.audit.checkpoints import read_topic

    found: list[dict[str, Any]] = asyncio.run(read_topic(_settings(), timeout_s))
    text = "".join(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n" for c in found)
    if out:
        out.write_text(text, encoding="utf-8")
        if as_json:
            print_json({"written": len(found), "file": str(out)})
        else:
            print(f"{len(found)} checkpoints written to {out}")
    elif as_json:
        print_json(found)
    else:
        sys.stdout.write(text)


@app.command("public-key")
def public_key_command(as_json: JsonOption = False) -> None:
    """The public key (base64) outside parties verify checkpoints with, and its key id."""
    from services.eligibility.domain.checkpoint import key_id

    key = _public_key(_settings(), None)
    if as_json:
        print_json({"public_key": key, "key_id": key_id(key)})
        return
    print(key)
    print(f"key id {key_id(key)}", file=sys.stderr)
