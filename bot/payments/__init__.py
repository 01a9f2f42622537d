"""Payments: the order state machine, the ledger and the providers (Stars, Stripe)."""
