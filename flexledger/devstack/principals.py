"""Adding, rotating and removing a Kafka principal's credential on the local stack's broker.

A principal is a row of the access table (`flexledger.kafka_access`): its ACLs come from the table
(`kafka_admin.apply_acls`), not from these commands, so a name outside the table is refused. `admin`
is the broker's static PLAIN credential, in its configuration: it changes by restarting the broker
(see `rotate`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flexledger.devstack import credentials, kafka_admin
from flexledger.devstack.errors import DevstackError
from flexledger.kafka_access import ADMIN, principal, principals
from services.runtime.settings import Settings


def _table_principal(name: str) -> None:
    try:
        principal(name)
    except KeyError as exc:
        raise DevstackError(str(exc.args[0])) from None
    if name == ADMIN:
        raise DevstackError(
            "admin is the broker's own PLAIN credential (its server.properties), not a SCRAM user: to "
            "change it, stop the stack (`flexledger dev down`), delete "
            "<state_dir>/kafka/principals/admin.password and start it again (`flexledger dev up`)"
        )


def add(settings: Settings, name: str) -> None:
    """Give `name` its SCRAM credential (its stored password, or a new one). Idempotent."""
    _table_principal(name)
    kafka_admin.set_scram_password(settings, name, credentials.ensure_password(settings, name))
    kafka_admin.mark_removed(settings, name, False)


def rotate(settings: Settings, name: str) -> None:
    """A new password: first on the broker, then in the state dir. Connections already open stay
    authenticated; a process still holding the old password is refused at its next connection."""
    _table_principal(name)
    password = credentials.new_password()
    kafka_admin.set_scram_password(settings, name, password)
    credentials.store_password(settings, name, password)
    kafka_admin.mark_removed(settings, name, False)


def remove(settings: Settings, name: str) -> None:
    """Delete `name`'s credential on the broker and its password; `flexledger dev up` does not bring
    it back (`add` does). Its ACLs stay, granting nothing to a principal that cannot log in."""
    _table_principal(name)
    if name in kafka_admin.scram_users(settings):
        kafka_admin.delete_scram(settings, name)
    credentials.forget_password(settings, name)
    kafka_admin.mark_removed(settings, name, True)


@dataclass(frozen=True)
class PrincipalStatus:
    name: str
    who: str
    on_broker: bool  # holds a credential the broker accepts (admin: always, in the broker's config)
    password_file: bool
    removed: bool


def status(settings: Settings) -> list[PrincipalStatus]:
    users = kafka_admin.scram_users(settings)
    return [
        PrincipalStatus(p.name, p.who, p.super_user or p.name in users,
                        credentials.password_file(settings, p.name).is_file(),
                        kafka_admin.is_removed(settings, p.name))
        for p in principals()
    ]
