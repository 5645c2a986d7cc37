"""The payment provider port, and the built-in sandbox that records payments with no external call.

A real provider (e.g. Stripe Connect with separate charges and transfers) implements the same three
methods; the ledger records what the provider confirmed, with its reference.
"""

from __future__ import annotations

import hashlib
from typing import Protocol


class PaymentProvider(Protocol):
    name: str

    def charge(self, *, payer_id: str, amount: int, currency: str, reference: str) -> str:
        """Collect money from a buyer; returns the provider's reference."""
        ...

    def refund(self, *, payee_id: str, amount: int, currency: str, reference: str) -> str: ...

    def payout(self, *, payee_id: str, amount: int, currency: str, reference: str) -> str: ...


class SandboxProvider:
    """Accepts every payment. References are derived from ours, so retries give the same one."""

    name = "sandbox"

    @staticmethod
    def _ref(kind: str, reference: str) -> str:
        return f"sbx_{kind}_{hashlib.sha256(reference.encode()).hexdigest()[:20]}"

    def charge(self, *, payer_id: str, amount: int, currency: str, reference: str) -> str:
        return self._ref("ch", reference)

    def refund(self, *, payee_id: str, amount: int, currency: str, reference: str) -> str:
        return self._ref("re", reference)

    def payout(self, *, payee_id: str, amount: int, currency: str, reference: str) -> str:
        return self._ref("po", reference)


def provider_for(name: str) -> PaymentProvider:
    if name == "sandbox":
        return SandboxProvider()
    raise ValueError(f"unknown payment provider {name!r}")
