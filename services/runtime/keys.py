"""Keys of the audit guarantees, from `Settings` or, in development, generated once into the state dir.

- `signing_key`: the Ed25519 private key (base64 of the 32-byte seed) eligibility signs its ledger
  checkpoints with. Its public key is what outside parties verify them with
  (`flexledger audit public-key` prints it).
- `statistics_key`: the HMAC-SHA256 key of the pseudonyms on the statistics topic. Without it a
  pseudonym cannot be linked back to an identity number, even by trying every possible number.
- `facts_mac_key`, `decisions_mac_key`: the HMAC-SHA256 keys of the tags on the facts and decisions
  topics (`services.runtime.message_auth`).

Like the cipher key (`services.runtime.eventstore.cipher_key`), a development key is written once, race-free,
to `<state_dir>/<name>.key` (mode 0600) and must live as long as the data it protects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from services.runtime.settings import Settings

KEY_BYTES = 32
# The services and `flexledger dev up` make the development keys when they first start; any other
# command line tool only reads them (flexledger.cli.main turns this off): a tool that made a new key
# would print a key nobody signs with, or fail to read data the services encrypted with theirs.
_may_create_keys = True


class MissingKeyError(RuntimeError):
    """A development key a tool needs is not in the state directory."""


def refuse_new_keys(refuse: bool = True) -> None:
    """From now on, a missing development key raises `MissingKeyError` instead of being made (or, with
    `refuse=False`, is made again: the command that starts the stack owns its state dir)."""
    global _may_create_keys
    _may_create_keys = not refuse


def write_once(path: Path, secret: str) -> str:
    """`secret` written to `path` (mode 0600) unless the file exists; the secret the file holds.
    O_EXCL makes it race-free: of two processes starting at once, both end up with the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secret + "\n")
    return secret


def state_key(settings: Settings, configured: str, filename: str) -> str:
    """The configured key, else a random 32-byte key (base64) kept in `<state_dir>/<filename>`."""
    if configured:
        return configured
    path = Path(settings.state_dir) / filename
    if not _may_create_keys and not path.is_file():
        setting = filename.removesuffix(".key").replace("-", "_").upper()
        raise MissingKeyError(
            f"no {filename} in the state directory {settings.state_dir}: the services make it when they "
            f"first start. Point FLEXLEDGER_STATE_DIR at the stack's state directory, or set "
            f"FLEXLEDGER_{setting}_KEY; no new key is made here, as data may already exist under the old one")
    return write_once(Path(settings.state_dir) / filename, base64.b64encode(os.urandom(KEY_BYTES)).decode())


def signing_key(settings: Settings) -> str:
    """The checkpoint signing key: base64 of an Ed25519 private key's 32-byte seed."""
    return state_key(settings, settings.signing_key, "signing.key")


def statistics_key(settings: Settings) -> bytes:
    """The key of the statistics topic's keyed pseudonyms (HMAC-SHA256)."""
    return base64.b64decode(state_key(settings, settings.pseudonym_key, "pseudonym.key"))


def facts_mac_key(settings: Settings) -> bytes:
    """The key of the facts topic's message tags: intake tags, eligibility checks."""
    return base64.b64decode(state_key(settings, settings.facts_mac_key, "facts-mac.key"))


def decisions_mac_key(settings: Settings) -> bytes:
    """The key of the decisions topic's message tags: eligibility tags, payments checks."""
    return base64.b64decode(state_key(settings, settings.decisions_mac_key, "decisions-mac.key"))


def partition_key_secret(settings: Settings) -> bytes:
    """The key of the pseudonyms in Kafka message keys (`services.runtime.publishing.PartitionKeys`),
    derived from the cipher key: every service that shares the data's key makes the same keys."""
    cipher = base64.b64decode(state_key(settings, settings.cipher_key, "cipher.key"))
    return hmac.new(cipher, b"flexledger/kafka-partition-keys", hashlib.sha256).digest()
