"""Training-ledger agents: a user's fork agent, the permissionless sealer, and the `loyal ledger` CLI."""
