"""Named refusals of the payments core. A command that raises has changed nothing."""

from __future__ import annotations


class PaymentsError(Exception):
    """Base class: the command was refused and the book is unchanged."""


class WrongBook(PaymentsError):
    """The decision belongs to another book (e.g. a sandbox) than this one."""


class InvalidDecision(PaymentsError):
    """A money decision lacks its programme or beneficiary, or has no positive amount."""


class ClawbackExceedsLine(PaymentsError):
    """A clawback asks back more than the line's net entitlement (grants minus earlier clawbacks)."""


class AppropriationBelowUsed(PaymentsError):
    """An appropriation may not be set below what its budget already committed or paid."""


class UnknownEntry(PaymentsError):
    """A settlement names a disbursement entry this book never instructed."""


class SettlementConflict(PaymentsError):
    """A settlement contradicts the result already recorded for the same entry."""


class RepaymentExceedsReceivable(PaymentsError):
    """A repayment is larger than what the beneficiary owes."""
