"""Loyal's leaf layer: what both `agents/` (chain, daemons, CLI) and `ml/` (torch) need.

It imports neither of them: errors, configuration, the Merkle tree, atomic file writes, the
canonical tensor codec, EIP-712 typed data.
"""
