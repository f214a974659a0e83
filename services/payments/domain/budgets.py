"""Programme budgets per fiscal year: appropriation, use, and the queue of orders awaiting budget.

An order is charged whole to its budget or not at all. Orders awaiting budget are released strictly
first-in-first-out: an order that does not fit blocks those behind it, and a new order waits behind
any already waiting, even when it would fit by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Budget:
    program: str
    fiscal_year: int
    appropriated_fen: int = 0
    used_fen: int = 0  # committed orders' current amounts (ready, in transit or settled)
    awaiting: dict[str, int] = field(default_factory=dict)  # order id -> amount, oldest first

    @property
    def available_fen(self) -> int:
        return self.appropriated_fen - self.used_fen

    @property
    def awaiting_fen(self) -> int:
        return sum(self.awaiting.values())

    def admits(self, amount_fen: int) -> bool:
        """Whether a new order of `amount_fen` may be committed now (nobody waits before it)."""
        return not self.awaiting and amount_fen <= self.available_fen

    def refusal(self, amount_fen: int) -> str:
        """Why a new order of `amount_fen` must wait."""
        if self.awaiting:
            return (
                f"{len(self.awaiting)} earlier order(s) await budget {self.program} {self.fiscal_year}"
                f" ({self.awaiting_fen} fen); released in order"
            )
        if self.appropriated_fen == 0:
            return f"no appropriation for {self.program} in fiscal year {self.fiscal_year}"
        return (
            f"budget {self.program} {self.fiscal_year} has {self.available_fen} fen of "
            f"{self.appropriated_fen} fen left; order needs {amount_fen} fen"
        )

    def releasable(self) -> list[str]:
        """The waiting orders that fit now, from the head of the queue, stopping at the first that doesn't."""
        out: list[str] = []
        left_fen = self.available_fen
        for order_id, amount_fen in self.awaiting.items():
            if amount_fen > left_fen:
                break
            out.append(order_id)
            left_fen -= amount_fen
        return out

    def check(self) -> None:
        assert 0 <= self.used_fen <= self.appropriated_fen, self
        assert all(amount > 0 for amount in self.awaiting.values()), self
