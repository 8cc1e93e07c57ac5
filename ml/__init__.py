"""Loyal's ML: local training and aggregation (DIN), fingerprinting (OML), per-user forks (ledger)."""
