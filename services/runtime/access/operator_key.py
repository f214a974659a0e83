"""The bootstrap operator key: what lets development, the demo, scenario runs and tests submit facts
before any key has been issued.

- `Settings.operator_key` set to a key (`flk_<key id>_<secret>`): that key.
- set to `off`: no bootstrap key (every key then comes from `flexledger keys issue`).
- empty (development): a key generated once into `<state_dir>/operator.key` (mode 0600, created
  race-free like the cipher key) and reused; intake, `flexledger submit`, the pipeline runner and the
  tests read the same file.

The bootstrap key is not an event in the key ring: it is configuration, so it cannot be revoked with
`flexledger keys revoke`; change or remove the setting (or the file) and restart intake instead.
"""

from __future__ import annotations

from pathlib import Path

from services.runtime.access.credentials import ApiKey, new_api_key, parse_api_key
from services.runtime.keys import write_once
from services.runtime.settings import Settings

DISABLED = "off"
FILE_NAME = "operator.key"


class OperatorKeyError(ValueError):
    """The configured operator key is not a key."""


def operator_key_path(settings: Settings) -> Path:
    return Path(settings.state_dir) / FILE_NAME


def _parsed(token: str, source: str) -> ApiKey:
    key = parse_api_key(token.strip())
    if key is None:
        raise OperatorKeyError(f"the operator key in {source} is not a key of the form "
                               "flk_<16 hex>_<43 base64url>")
    return key


def read_operator_key(settings: Settings) -> ApiKey | None:
    """The bootstrap operator key if there is one already (never creates it): for clients."""
    if settings.operator_key:
        if settings.operator_key == DISABLED:
            return None
        return _parsed(settings.operator_key, "FLEXLEDGER_OPERATOR_KEY")
    path = operator_key_path(settings)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    return _parsed(text, str(path))


def ensure_operator_key(settings: Settings) -> ApiKey | None:
    """The bootstrap operator key, generated into `<state_dir>/operator.key` when the setting is empty
    and the file does not exist yet: for intake itself. None when it is `off`."""
    if settings.operator_key:
        return read_operator_key(settings)
    path = operator_key_path(settings)
    return _parsed(write_once(path, new_api_key().token), str(path))
