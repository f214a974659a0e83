"""`flexledger submit FILE --key KEY`: upload a file of facts to intake's bulk endpoint.

FILE is JSON Lines (`.jsonl`, `.ndjson`: one fact per line), CSV of `monthly_report` facts (`.csv`,
header `id,at,enterprise,worker,month,income_fen,hours,district`), or a scenario (`.yaml`, `.yml`:
its `facts:` list). Rows go in chunks to `POST {url}/v1/facts/bulk`; the summary counts accepted,
duplicate and rejected rows, and `--rejected-out` receives one JSON line per rejected row with its
row number, line, fact id, outcome, status and reason.

Row numbers are 1-based positions among the file's facts (blank lines and a CSV header not
counted); `line` is the line in the file (absent for YAML). Resending a file is safe: the fact id is
the idempotency key, so rows already accepted come back as duplicates. For the same reason a chunk
is retried after a dropped connection or a 502/503/504 (a few times), and after 429 as the server's
Retry-After says.

Without --key (or FLEXLEDGER_API_KEY), the bootstrap operator key is used: FLEXLEDGER_OPERATOR_KEY,
else the one intake generated into <state_dir>/operator.key (development, demo, tests).

Exit status: 0 all rows accepted or duplicates; 1 some rows rejected; 2 FILE, --url, --rejected-out
or the key cannot be used; 3 the server cannot be reached or refused a request as a whole (401,
413, ...).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from contracts.messages import BOOK_HTTP_HEADER
from flexledger import output
from flexledger.exits import Exit
from flexledger.scenario_file import ScenarioError, load_scenario
from services.runtime.settings import Settings

BULK_PATH = "/v1/facts/bulk"
DEFAULT_CHUNK_ROWS = 1_000
MAX_CHUNK_ROWS = 10_000  # intake's default rows per bulk request
MAX_CHUNK_BYTES = 8 * 1024 * 1024  # below intake's default bulk body limit (16 MiB)
MAX_RATE_LIMIT_WAITS = 8
MAX_RETRY_AFTER_S = 60.0
TRANSPORT_RETRIES = 3
REQUEST_TIMEOUT_S = 120.0

# flexledger/exits.py: a file or option problem is a usage error; the server's error statuses and
# unusable answers are refusals; a missing API key, a missing set-up.
EXIT_OK, EXIT_REJECTED, EXIT_FILE = Exit.OK, Exit.FAILED, Exit.USAGE
EXIT_UNREACHABLE, EXIT_SERVER, EXIT_NO_KEY = Exit.UNREACHABLE, Exit.REFUSED, Exit.NOT_SET_UP

_JSONL = "application/x-ndjson"
_CSV = "text/csv"
_BOM = b"\xef\xbb\xbf"


class SubmitError(Exception):
    """The upload cannot go on; `exit_code` is one of the EXIT_ statuses above."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ---- reading the file ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    row: int  # 1-based position among the file's facts
    line: int | None  # 1-based line in the file; None for YAML
    payload: bytes | None  # the line to send; None when it could not be prepared
    problem: str | None = None  # why not


@dataclass(frozen=True, slots=True)
class Upload:
    media_type: str
    header: bytes | None  # CSV header, repeated at the top of every chunk
    entries: list[Entry]


def read_upload(path: Path) -> Upload:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return _read_yaml(path)
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise SubmitError(f"{path}: cannot tell the format; use .jsonl, .ndjson, .csv, .yaml or .yml",
                          EXIT_FILE)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubmitError(f"{path}: {exc.strerror or exc}", EXIT_FILE) from None
    data = data.removeprefix(_BOM)
    lines = [(number, line.removesuffix(b"\r"))
             for number, line in enumerate(data.split(b"\n"), start=1) if line.strip(b" \t\r")]
    if suffix != ".csv":
        return Upload(_JSONL, None, _entries(lines))
    if not lines:
        raise SubmitError(f"{path}: the CSV file is empty; its first line must name the columns", EXIT_FILE)
    (_, header), body = lines[0], lines[1:]
    return Upload(_CSV, header, _entries(body))


def _entries(lines: list[tuple[int, bytes]]) -> list[Entry]:
    return [Entry(row, number, line) for row, (number, line) in enumerate(lines, start=1)]


def _read_yaml(path: Path) -> Upload:
    try:
        facts = load_scenario(path)["facts"]
    except ScenarioError as exc:
        raise SubmitError(str(exc), EXIT_FILE) from None
    entries = []
    for row, fact in enumerate(facts, start=1):
        try:
            text = json.dumps(fact, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            payload = text.encode("utf-8")
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
            entries.append(Entry(row, None, None, f"cannot be sent as JSON: {exc}"))
            continue
        entries.append(Entry(row, None, payload))
    return Upload(_JSONL, None, entries)


def chunks(
    entries: list[Entry], chunk_rows: int, max_chunk_bytes: int = MAX_CHUNK_BYTES
) -> Iterator[list[Entry]]:
    """Sendable entries in order, at most `chunk_rows` and about `max_chunk_bytes` per chunk."""
    chunk: list[Entry] = []
    size = 0
    for entry in entries:
        if entry.payload is None:
            continue
        if chunk and (len(chunk) >= chunk_rows or size + len(entry.payload) + 1 > max_chunk_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += len(entry.payload) + 1
    if chunk:
        yield chunk


# ---- talking to intake --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowResult:
    entry: Entry
    outcome: str  # accepted | duplicate | rejected | conflict (anything else counts as rejected)
    status: int | None
    fact_id: str | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"row": self.entry.row, "line": self.entry.line, "fact_id": self.fact_id,
                "outcome": self.outcome, "status": self.status, "reason": self.reason}


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        for name in ("reason", "detail", "message", "error"):
            if body.get(name):
                return str(body[name])[:300]
    return str(body)[:300]


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(response.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


def post_chunk(
    client: httpx.Client, upload: Upload, chunk: list[Entry], *, key: str, book: str,
    sleep: Callable[[float], None] = time.sleep,
) -> list[RowResult]:
    """Send one chunk; its rows' results, in the chunk's order. SubmitError when intake refuses it."""
    lines = ([upload.header] if upload.header is not None else []) + [entry.payload or b"" for entry in chunk]
    body = b"\n".join(lines) + b"\n"
    headers = {"Authorization": f"Bearer {key}", BOOK_HTTP_HEADER: book, "Content-Type": upload.media_type}
    rate_waits = transport_failures = 0
    while True:
        try:
            response = client.post(BULK_PATH, content=body, headers=headers)
        except httpx.TransportError as exc:
            transport_failures += 1
            if transport_failures > TRANSPORT_RETRIES:
                raise SubmitError(f"cannot reach intake at {client.base_url}: {exc}",
                                  EXIT_UNREACHABLE) from None
            sleep(2.0 ** (transport_failures - 1))
            continue
        if response.status_code == 429 and rate_waits < MAX_RATE_LIMIT_WAITS:
            rate_waits += 1
            sleep(_retry_after_s(response))
            continue
        if response.status_code in (502, 503, 504) and transport_failures < TRANSPORT_RETRIES:
            transport_failures += 1
            sleep(2.0 ** (transport_failures - 1))
            continue
        break
    if response.status_code == 401:
        raise SubmitError(f"intake refused the key (401): {_error_text(response)}", EXIT_SERVER)
    if response.status_code == 413:
        raise SubmitError(f"intake refused a chunk of {len(chunk)} rows as too large (413): "
                          f"{_error_text(response)}; try a smaller --chunk-rows", EXIT_SERVER)
    if response.status_code not in (200, 201, 207):
        raise SubmitError(f"intake answered {response.status_code}: {_error_text(response)}", EXIT_SERVER)
    return _row_results(response, chunk)


def _row_results(response: httpx.Response, chunk: list[Entry]) -> list[RowResult]:
    try:
        results = response.json()["results"]
        assert isinstance(results, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise SubmitError(f"intake answered {response.status_code} without a list of results",
                          EXIT_SERVER) from None
    by_entry: dict[int, RowResult] = {}
    for item in results:
        row = item.get("row") if isinstance(item, dict) else None
        if not isinstance(row, int) or isinstance(row, bool) or not 1 <= row <= len(chunk):
            continue
        status = item.get("status")
        fact_id, reason = item.get("fact_id"), item.get("reason")
        by_entry[row - 1] = RowResult(
            chunk[row - 1], str(item.get("outcome")), status if isinstance(status, int) else None,
            fact_id if isinstance(fact_id, str) else None, reason if isinstance(reason, str) else None,
        )
    missing = "intake returned no result for this row"
    return [by_entry.get(index) or RowResult(entry, "rejected", None, None, missing)
            for index, entry in enumerate(chunk)]


# ---- the command --------------------------------------------------------------------------------


@dataclass
class Summary:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    conflicts: int = 0  # also counted in rejected
    elapsed_s: float = 0.0
    first_rejections: list[RowResult] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.accepted + self.duplicates + self.rejected

    def to_json(self, rows_in_file: int) -> dict[str, Any]:
        return {"rows_in_file": rows_in_file, "rows": self.rows, "accepted": self.accepted,
                "duplicates": self.duplicates, "rejected": self.rejected, "conflicts": self.conflicts,
                "elapsed_s": round(self.elapsed_s, 3),
                "first_rejections": [result.to_json() for result in self.first_rejections]}

    def add(self, result: RowResult) -> None:
        if result.outcome == "accepted":
            self.accepted += 1
        elif result.outcome == "duplicate":
            self.duplicates += 1
        else:
            self.rejected += 1
            self.conflicts += result.outcome == "conflict"
            if len(self.first_rejections) < 5:
                self.first_rejections.append(result)


def default_url() -> str:
    return f"http://127.0.0.1:{Settings.from_env().intake_port}"


def caller_key(settings: Settings) -> str:
    """The key a command calls a service with: FLEXLEDGER_API_KEY (e.g. a finance key), else the
    bootstrap operator key; exits 6 when there is neither."""
    import os

    from flexledger.exits import fail

    given = os.environ.get("FLEXLEDGER_API_KEY")
    if given:
        return given
    try:
        return operator_key(settings)
    except SubmitError as exc:
        fail(str(exc), Exit.NOT_SET_UP)


def operator_key(settings: Settings | None = None) -> str:
    """The bootstrap operator key intake accepts: FLEXLEDGER_OPERATOR_KEY, else the key intake generated
    into <state_dir>/operator.key. SubmitError (exit 2) when there is none."""
    from services.runtime.access.operator_key import OperatorKeyError, operator_key_path, read_operator_key

    settings = settings or Settings.from_env()
    try:
        key = read_operator_key(settings)
    except OperatorKeyError as exc:
        raise SubmitError(str(exc), EXIT_FILE) from None
    if key is None:
        where = ("FLEXLEDGER_OPERATOR_KEY is off" if settings.operator_key
                 else f"{operator_key_path(settings)} does not exist (intake creates it when it starts)")
        raise SubmitError(f"no API key: give --key or FLEXLEDGER_API_KEY ({where})", EXIT_NO_KEY)
    return key.token


def run_submit(
    file: Path, *, key: str, url: str | None = None, book: str = "main", rejected_out: Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS, console: Console | None = None,
    transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic, summary: Summary | None = None, as_json: bool = False,
) -> int:
    """Upload FILE and print the summary; the exit status. `transport` lets tests put a stand-in
    server in place of the network; `summary`, when given, receives the counts. Without a `console`
    the summary goes to stdout, the progress bar and errors to stderr."""
    errors = console or Console(stderr=True)
    console = console or Console()
    summary = summary if summary is not None else Summary()
    try:
        upload = read_upload(file)
        base_url = _base_url(url)
        out = _open_out(rejected_out)
    except SubmitError as exc:
        _print_error(errors, exc)
        return exc.exit_code
    started_s = clock()
    error: SubmitError | None = None
    try:
        with (
            httpx.Client(base_url=base_url, transport=transport, timeout=REQUEST_TIMEOUT_S) as client,
            _progress(errors) as progress,
        ):
            task = progress.add_task(f"{file.name} → {book}", total=len(upload.entries))
            for entry in upload.entries:
                if entry.payload is None:
                    _record(RowResult(entry, "rejected", None, None, entry.problem), summary, out)
                    progress.advance(task)
            for chunk in chunks(upload.entries, chunk_rows):
                for result in post_chunk(client, upload, chunk, key=key, book=book, sleep=sleep):
                    _record(result, summary, out)
                progress.advance(task, len(chunk))
    except SubmitError as exc:
        error = exc
    finally:
        if out is not None:
            out.close()
    summary.elapsed_s = clock() - started_s
    if as_json:
        output.print_json(summary.to_json(len(upload.entries)))
    else:
        _print_summary(console, summary, upload, rejected_out)
    if error is not None:
        _print_error(errors, error)
        return error.exit_code
    return EXIT_REJECTED if summary.rejected else EXIT_OK


def _print_error(console: Console, error: SubmitError) -> None:
    console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)


def _base_url(url: str | None) -> str:
    try:
        base_url = url or default_url()
        parsed = httpx.URL(base_url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise SubmitError(f"intake URL: {exc}", EXIT_FILE) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise SubmitError(f"intake URL {base_url!r} is not an http(s) URL", EXIT_FILE)
    return base_url


def _open_out(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise SubmitError(f"--rejected-out {path}: {exc.strerror or exc}", EXIT_FILE) from None


def _record(result: RowResult, summary: Summary, out: IO[str] | None) -> None:
    summary.add(result)
    if out is not None and result.outcome not in ("accepted", "duplicate"):
        out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                    TimeRemainingColumn(), console=console)


def _print_summary(console: Console, summary: Summary, upload: Upload, rejected_out: Path | None) -> None:
    rate = summary.rows / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
    conflicts = f" (of which {summary.conflicts} id conflicts)" if summary.conflicts else ""
    console.print(f"{summary.rows} of {len(upload.entries)} rows: {summary.accepted} accepted, "
                  f"{summary.duplicates} duplicates, {summary.rejected} rejected{conflicts} "
                  f"in {summary.elapsed_s:.1f} s ({rate:,.0f} rows/s)", highlight=False)
    for result in summary.first_rejections:
        where = f"row {result.entry.row}" + (f" (line {result.entry.line})" if result.entry.line else "")
        console.print(f"  {where} {result.fact_id or ''}: {result.reason}", highlight=False, markup=False)
    if summary.rejected > len(summary.first_rejections):
        hint = f"all in {rejected_out}" if rejected_out else "use --rejected-out FILE to keep them all"
        console.print(f"  … {summary.rejected - len(summary.first_rejections)} more rejected rows ({hint})",
                      highlight=False, markup=False)
    elif summary.rejected and rejected_out:
        console.print(f"  rejected rows written to {rejected_out}", highlight=False, markup=False)


_FILE = typer.Argument(..., help="facts to submit: .jsonl/.ndjson, .csv (monthly_report) or a scenario .yaml")
_KEY = typer.Option(None, "--key", envvar="FLEXLEDGER_API_KEY", show_default=False,
                    help="API key flk_...; better passed as FLEXLEDGER_API_KEY than on the command line "
                         "(default: the bootstrap operator key, FLEXLEDGER_OPERATOR_KEY or "
                         "<state_dir>/operator.key)")
_URL = typer.Option(None, "--url", envvar="FLEXLEDGER_INTAKE_URL",
                    help="intake's base URL (default: http://127.0.0.1 on FLEXLEDGER_INTAKE_PORT, 18081)")
_BOOK = typer.Option("main", "--book", help="the book to submit into (X-Flexledger-Book)")
_REJECTED_OUT = typer.Option(None, "--rejected-out", help="write rejected rows here, one JSON object a line")
_JSON = typer.Option(False, "--json", help="print the summary as one JSON object")
_CHUNK_ROWS = typer.Option(DEFAULT_CHUNK_ROWS, "--chunk-rows", min=1, max=MAX_CHUNK_ROWS,
                           help="rows per bulk request")


def submit(
    file: Path = _FILE,
    key: str | None = _KEY,
    url: str | None = _URL,
    book: str = _BOOK,
    rejected_out: Path | None = _REJECTED_OUT,
    chunk_rows: int = _CHUNK_ROWS,
    as_json: bool = _JSON,
) -> None:
    """Upload a file of facts to intake, with a progress bar and a summary of accepted, duplicate and
    rejected rows. Exit 0: nothing rejected; 1: some rows rejected; 2: file problem; 3: intake cannot be
    reached; 4: intake refused a request (its status is printed); 6: no API key."""
    if key is None:
        try:
            key = operator_key()
        except SubmitError as exc:
            _print_error(Console(stderr=True), exc)
            raise typer.Exit(exc.exit_code) from None
    code = run_submit(file, key=key, url=url, book=book, rejected_out=rejected_out, chunk_rows=chunk_rows,
                      as_json=as_json)
    sys.stderr.flush()
    raise typer.Exit(code)
