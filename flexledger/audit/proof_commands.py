"""`flexledger audit prove | consistency | evidence`: proofs against the signed tree heads and evidence
bundles (docs/design/audit-format.md). Registered on the audit command group by `register`.

Exit codes as every audit command: 0 as expected, 1 the proof does not verify, 2 the command could not
run (no such decision, no tree head covering it yet, unreadable ledger).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from flexledger.exits import Exit
from flexledger.output import print_json
from services.runtime.settings import Settings

CheckpointsOption = Annotated[
    Path | None,
    typer.Option("--checkpoints", help="published checkpoints (`audit checkpoints`), too"),
]
PublicKeyOption = Annotated[
    str | None,
    typer.Option("--public-key", help="public key (base64 or a file); default: the configured one"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the proof as JSON")]


def _fail(message: str, code: int = Exit.USAGE) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _heads(settings: Settings, checkpoints: Path | None, public_key: str | None) -> list[dict[str, Any]]:
    """The valid signed tree heads: recorded in the ledger, and given as published."""
    from flexledger.audit.checkpoints import load, own_public_key, public_key_from
    from flexledger.audit.proofs import recorded_tree_heads, valid_tree_heads

    key = public_key_from(public_key) if public_key else own_public_key(settings)
    published = load(checkpoints) if checkpoints else []
    return valid_tree_heads(recorded_tree_heads(settings) + published, key)



def prove_command(
    decision_id: Annotated[str, typer.Argument(help="the decision id, or any unique prefix of it")],
    book: Annotated[str | None, typer.Option("--book", help="the decision's book (default: any)")] = None,
    tree_size: Annotated[
        int | None, typer.Option("--tree-size", help="prove against this tree head (default: the latest)")
    ] = None,
    checkpoints: CheckpointsOption = None,
    public_key: PublicKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The inclusion proof of a decision's stored event in a signed tree head; exit 1 unless it verifies."""
    from flexledger.audit.lookup import Ambiguous, resolve_decision
    from flexledger.audit.proofs import NoTreeHead, prove
    from flexledger.audit.replay import locate

    settings = Settings.from_env()
    try:
        full_id = resolve_decision(settings, decision_id, book)
        located = locate(settings, full_id, book) if full_id else None
        if located is None:
            raise _fail(f"decision {decision_id} is not in the ledger", Exit.NOT_FOUND)
        decision_id = full_id or decision_id
        heads = _heads(settings, checkpoints, public_key)
        proof = prove(settings, located.row.notification_id, heads, tree_size)
    except Ambiguous as exc:
        raise _fail(str(exc)) from exc
    except NoTreeHead as exc:
        raise _fail(f"{exc} (decision {decision_id})", Exit.NOT_FOUND) from exc
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}", Exit.UNREACHABLE) from exc
    if as_json:
        print_json({"decision_id": decision_id, **proof})
    else:
        e, head = proof["entry"], proof["tree_head"]
        print(f"decision {decision_id}: stored at notification {e['notification_id']} (stream "
              f"{e['originator_id']} version {e['originator_version']}), leaf {proof['leaf_index']}")
        print(f"  leaf hash {proof['leaf_hash']}")
        print(f"  tree head: {proof['tree_size']} events, root {proof['root_hash']}, signed at "
              f"{head['signed_at']} with key {head['key_id']}")
        print(f"  inclusion proof ({len(proof['inclusion_proof'])} hashes, lowest first):")
        for step in proof["inclusion_proof"]:
            print(f"    {step}")
        print(f"included: {'yes' if proof['verified'] else 'no'}")
    if not proof["verified"]:
        raise typer.Exit(1)


def consistency_command(
    old: Annotated[int, typer.Argument(help="tree size of the earlier signed tree head")],
    new: Annotated[int, typer.Argument(help="tree size of the later signed tree head")],
    checkpoints: CheckpointsOption = None,
    public_key: PublicKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The consistency proof that the later tree head extends the earlier; exit 1 unless it verifies."""
    from flexledger.audit.proofs import NoTreeHead, choose, consistency, read_leaves

    settings = Settings.from_env()
    try:
        heads = _heads(settings, checkpoints, public_key)
        old_head, new_head = choose(heads, old), choose(heads, new)
        leaves = read_leaves(settings, int(new_head["up_to_notification_id"]), int(new_head["event_count"]))
        proof = consistency(leaves, old_head, new_head)
    except NoTreeHead as exc:
        raise _fail(str(exc), Exit.NOT_FOUND) from exc
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}", Exit.UNREACHABLE) from exc
    if as_json:
        print_json(proof)
    else:
        print(f"tree head of {old} events (root {proof['old_root']}, signed at {old_head['signed_at']})")
        print(f"  → tree head of {new} events (root {proof['new_root']}, signed at {new_head['signed_at']})")
        print(f"  consistency proof ({len(proof['consistency_proof'])} hashes):")
        for step in proof["consistency_proof"]:
            print(f"    {step}")
        print(f"consistent: {'yes' if proof['verified'] else 'no'}")
    if not proof["verified"]:
        raise typer.Exit(1)


def evidence_command(
    out: Annotated[Path, typer.Option("--out", help="the bundle file to write (JSON)")],
    decision_id: Annotated[str | None, typer.Argument(help="the decision (or --subject)")] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="every decision about this subject")
    ] = None,
    book: Annotated[str | None, typer.Option("--book", help="the book (--subject: default main)")] = None,
    identities: Annotated[
        bool, typer.Option("--identities", help="identity numbers in clear (where the deployment allows)")
    ] = False,
    checkpoints: CheckpointsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write one evidence bundle: decisions, explanations, facts, replay, chain links, the covering
    signed tree head with inclusion proofs and the public key. Check it with
    `python flexledger/audit/standalone_verify.py FILE`."""
    from flexledger.audit.evidence import NotAllowed, build, bundle_text, decisions_of
    from flexledger.audit.standalone_verify import check_bundle
    from services.runtime.keys import signing_key

    if (decision_id is None) == (subject is None):
        raise _fail("name a decision or a --subject (one of them)")
    settings = Settings.from_env()
    try:
        located = decisions_of(settings, decision_id, subject, book)
        heads = _heads(settings, checkpoints, None)
        bundle = build(settings, located, heads, seed=signing_key(settings), identities=identities)
    except NotAllowed as exc:
        raise _fail(str(exc), Exit.REFUSED) from exc
    except LookupError as exc:
        raise _fail(str(exc), Exit.NOT_FOUND) from exc
    except psycopg.Error as exc:
        raise _fail(f"cannot read the ledger: {exc}", Exit.UNREACHABLE) from exc
    out.write_text(bundle_text(bundle), encoding="utf-8")
    failures = check_bundle(bundle)
    summary = {
        "out": str(out),
        "decisions": len(bundle["decisions"]),
        "events": sum(len(s["events"]) for s in bundle["streams"]),
        "tree_size": bundle["tree_head"]["event_count"],
        "identity_numbers": bundle["identity_numbers"],
        "reproduced": all(d["replay"]["reproduced"] for d in bundle["decisions"]),
        "failures": failures,
    }
    if as_json:
        print_json(summary)
    else:
        print(f"evidence bundle written to {out}: {summary['decisions']} decisions, "
              f"{summary['events']} events, tree head of {summary['tree_size']} events, "
              f"identity numbers {summary['identity_numbers']}")
        for failure in failures:
            print(f"  fails: {failure}")
    if failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("prove")(prove_command)
    app.command("consistency")(consistency_command)
    app.command("evidence")(evidence_command)
