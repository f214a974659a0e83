"""The pure core of payments: double-entry accounts, budgets, orders, recovery and disbursement.

No I/O, no clock, no randomness: every time is passed in, every change is an event folded by
`PaymentsBook.apply`, and replaying the events rebuilds the book. See docs/design/payments.md.
"""

from services.payments.domain.accounts import Account, AccountKind, Accounts, Posting, TrialBalanceRow
from services.payments.domain.batching import (
    MAX_BATCH_ENTRIES,
    BankRule,
    BatchPolicy,
    DisbursementEntry,
    SettlementOutcome,
    SettlementResult,
    simulate_bank,
)
from services.payments.domain.book import PaymentsBook
from services.payments.domain.errors import (
    AppropriationBelowUsed,
    ClawbackExceedsLine,
    InvalidDecision,
    PaymentsError,
    RepaymentExceedsReceivable,
    SettlementConflict,
    UnknownEntry,
    WrongBook,
)
from services.payments.domain.events import PaymentsEvent
from services.payments.domain.lines import Line, fiscal_year
from services.payments.domain.orders import OrderState, PaymentOrder
from services.payments.domain.postings import postings_for
from services.payments.domain.reconcile import reconcile
from services.payments.domain.report import (
    BeneficiaryBalance,
    ProgrammeTotals,
    RunningTotals,
    beneficiary_balance,
    beneficiary_balances,
    programme_totals,
)

__all__ = [
    "MAX_BATCH_ENTRIES",
    "Account",
    "AccountKind",
    "Accounts",
    "AppropriationBelowUsed",
    "BankRule",
    "BatchPolicy",
    "BeneficiaryBalance",
    "ClawbackExceedsLine",
    "DisbursementEntry",
    "InvalidDecision",
    "Line",
    "OrderState",
    "PaymentOrder",
    "PaymentsBook",
    "PaymentsError",
    "PaymentsEvent",
    "Posting",
    "ProgrammeTotals",
    "RepaymentExceedsReceivable",
    "RunningTotals",
    "SettlementConflict",
    "SettlementOutcome",
    "SettlementResult",
    "TrialBalanceRow",
    "UnknownEntry",
    "WrongBook",
    "beneficiary_balance",
    "beneficiary_balances",
    "fiscal_year",
    "postings_for",
    "programme_totals",
    "reconcile",
    "simulate_bank",
]
