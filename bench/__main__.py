"""`python -m bench [module ...]`: run the named benchmark modules (default: all of them).

Each module runs with its own defaults (its argv is reset); run one directly
(`python -m bench.oml_figure4 --sizes 16 64`) to pass options. Slow ones: din_rounds (~10 min at
N=100), oml_figure4, oml_check and oml_memory (SmolLM2 on CPU, minutes to tens of minutes); gpu says
"no CUDA device" and returns on a machine without one.
"""
import importlib
import pkgutil
import sys
from pathlib import Path

names = sys.argv[1:] or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
for name in names:
    print(f"== bench.{name}", flush=True)
    sys.argv = [f"bench.{name}"]
    importlib.import_module(f"bench.{name}").main()
