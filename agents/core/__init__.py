"""Shared base for every subsystem: chain client, devnet, deployment, events, content store."""
