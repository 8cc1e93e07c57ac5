"""Loyal's off-chain side: chain client, content store, protocol agents and the `loyal` CLI."""
