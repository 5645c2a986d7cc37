"""Milepost: milestone contracts with escrow, a double-entry ledger and a seller cash-flow forecast."""

__version__ = "0.1.0"
