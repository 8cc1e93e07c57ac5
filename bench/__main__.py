"""`python -m bench [module ...]`: run the named benchmark modules (default: all of them)."""
import importlib
import pkgutil
import sys
from pathlib import Path

names = sys.argv[1:] or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
for name in names:
    print(f"== bench.{name}", flush=True)
    importlib.import_module(f"bench.{name}").main()
