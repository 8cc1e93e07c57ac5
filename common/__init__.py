"""Loyal's leaf layer: what both `agents/` (chain, daemons, CLI) and `ml/` (torch) need.

It imports neither of them. One module per thing: `errors` (the LoyalError hierarchy), `config`
(settings: flag > env > loyal.toml > default), `units` (LOYAL amounts), `files` (atomic writes),
`merkle` (the one Merkle tree, OpenZeppelin's StandardMerkleTree), `tensors` (the canonical tensor
codec), `typed_data` (EIP-712 typed data). `config`, `units` and `typed_data` use only the standard
library, so the Ape scripts can import them.
"""
