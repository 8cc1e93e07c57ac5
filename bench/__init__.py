"""Benchmarks: each module has `main()` and writes bench/results/<name>.json. Run `python -m bench [names]`."""
import json
import platform
import os
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}


def write(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    print(json.dumps(data, indent=2))
    return p
