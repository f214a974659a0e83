"""Double-entry accounts in integer fen.

A balance is kept debit-positive: debits add, credits subtract. A posting's legs sum to zero (asserted
on construction), so the sum of all balances, the trial balance, is zero at all times.

Chart of accounts (see docs/design/payments.md):

- `finance_bureau`            debit: total appropriated to this service by the Finance Bureau
- `budget:{program}:{year}`   credit: appropriation still available to commit
- `payable:{beneficiary}`     credit: committed orders owed to the beneficiary, not yet sent to the bank
- `in_transit`                credit: disbursement entries instructed, not yet confirmed or returned
- `bank`                      credit: net cash paid out through the Finance Bureau (payments - repayments)
- `receivable:{beneficiary}`  debit: clawed-back money the beneficiary still owes
- `clawbacks:{program}:{year}` credit: total receivables raised by clawbacks
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class AccountKind(StrEnum):
    FINANCE_BUREAU = "finance_bureau"
    BUDGET = "budget"
    PAYABLE = "payable"
    IN_TRANSIT = "in_transit"
    BANK = "bank"
    RECEIVABLE = "receivable"
    CLAWBACKS = "clawbacks"


@dataclass(frozen=True, slots=True, order=True)
class Account:
    kind: AccountKind
    program: str = ""
    fiscal_year: int = 0
    beneficiary: str = ""

    def __str__(self) -> str:
        if self.kind in (AccountKind.BUDGET, AccountKind.CLAWBACKS):
            return f"{self.kind}:{self.program}:{self.fiscal_year}"
        if self.kind in (AccountKind.PAYABLE, AccountKind.RECEIVABLE):
            return f"{self.kind}:{self.beneficiary}"
        return str(self.kind)


FINANCE_BUREAU = Account(AccountKind.FINANCE_BUREAU)
IN_TRANSIT = Account(AccountKind.IN_TRANSIT)
BANK = Account(AccountKind.BANK)


def budget(program: str, fiscal_year: int) -> Account:
    return Account(AccountKind.BUDGET, program=program, fiscal_year=fiscal_year)


def clawbacks(program: str, fiscal_year: int) -> Account:
    return Account(AccountKind.CLAWBACKS, program=program, fiscal_year=fiscal_year)


def payable(beneficiary: str) -> Account:
    return Account(AccountKind.PAYABLE, beneficiary=beneficiary)


def receivable(beneficiary: str) -> Account:
    return Account(AccountKind.RECEIVABLE, beneficiary=beneficiary)


@dataclass(frozen=True, slots=True)
class Leg:
    account: Account
    amount_fen: int  # > 0 debit, < 0 credit


@dataclass(frozen=True, slots=True)
class Posting:
    """One balanced journal entry. Construction fails unless its legs sum to zero."""

    memo: str
    legs: tuple[Leg, ...]

    def __post_init__(self) -> None:
        assert len(self.legs) >= 2, f"posting {self.memo!r} has fewer than two legs"
        for leg in self.legs:
            assert type(leg.amount_fen) is int and leg.amount_fen != 0, (
                f"posting {self.memo!r}: bad leg {leg}"
            )
        assert sum(leg.amount_fen for leg in self.legs) == 0, f"posting {self.memo!r} does not balance"


def transfer(debit: Account, credit: Account, amount_fen: int, memo: str) -> Posting:
    """Debit one account and credit another with the same positive amount."""
    assert type(amount_fen) is int and amount_fen > 0, f"transfer {memo!r}: amount {amount_fen!r} fen"
    return Posting(memo, (Leg(debit, amount_fen), Leg(credit, -amount_fen)))


@dataclass(frozen=True, slots=True)
class TrialBalanceRow:
    account: Account
    debit_fen: int
    credit_fen: int


class Accounts:
    """The balance of every account of one book, changed only by balanced postings: what accountants
    call the book's general ledger (in flexledger, "ledger" is eligibility's ledger of decisions)."""

    def __init__(self) -> None:
        self._balances: dict[Account, int] = {}
        self.posting_count = 0

    def post(self, posting: Posting) -> None:
        for leg in posting.legs:
            balance = self._balances.get(leg.account, 0) + leg.amount_fen
            if balance:
                self._balances[leg.account] = balance
            else:
                self._balances.pop(leg.account, None)
        self.posting_count += 1

    def post_all(self, postings: Iterable[Posting]) -> None:
        for posting in postings:
            self.post(posting)

    def balance_fen(self, account: Account) -> int:
        """Debit-positive balance."""
        return self._balances.get(account, 0)

    def credit_balance_fen(self, account: Account) -> int:
        return -self._balances.get(account, 0)

    def balances(self) -> dict[Account, int]:
        return dict(sorted(self._balances.items()))

    def trial_balance_fen(self) -> int:
        """Sum of all balances: zero unless the accounts are corrupt."""
        return sum(self._balances.values())

    def trial_balance(self) -> list[TrialBalanceRow]:
        return [
            TrialBalanceRow(account, max(balance, 0), max(-balance, 0))
            for account, balance in sorted(self._balances.items())
        ]
