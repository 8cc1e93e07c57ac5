"""Per-user model forks as LoRA adapters, trained one interaction at a time, recorded as ops."""
