"""A participant's own training client: `loyal din participant --client module:attr`.

`spec` is `package.module:attr` (importable: installed, or on PYTHONPATH) or `path/to/file.py:attr`;
`attr` may be dotted (`module:Class.factory`). What it names:

- a Flower `NumPyClient` instance, used as is; or
- a callable returning one (a factory, a NumPyClient subclass, or a Flower `client_fn`): called
  with Flower's `Context` if it takes an argument, else with none. `context.node_config` holds
  `device` (`cpu`, `cuda`, ...: what `--device` resolved to; train there), `task-id`, and, when
  `--shard/--shards` are given, `partition-id`/`num-partitions` (the keys Flower's own examples
  read). A `client_fn` that returns `NumPyClient.to_client()` works too (it is unwrapped).

The client's `fit(parameters, config)` contract is in `ml/din/client.py`: it gets the global model
in the task's layout and returns trained parameters in the same layout; `fit_update` checks that
every round and names the client when it does not. The built-in digits client (`DinClient` on
`--shard i --shards n` of the shared split) stays the default.

Every failure to load (no such module or attribute, an import that raises, a factory that raises
or returns something else than a NumPyClient) is one `ConfigError` line naming the spec.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from flwr.app import Context, RecordDict
from flwr.client import NumPyClient

from common.errors import ConfigError


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _import(spec: str, module: str):
    if module.endswith(".py") or "/" in module:
        path = Path(module).expanduser()
        if not path.is_file():
            raise ConfigError(f"--client {spec}: no such file {path}")
        name = f"loyal_din_client_{abs(hash(str(path.resolve())))}"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        if mod_spec is None or mod_spec.loader is None:
            raise ConfigError(f"--client {spec}: {path} is not a Python module")
        mod = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = mod
        try:
            mod_spec.loader.exec_module(mod)
        except Exception as e:
            del sys.modules[name]
            raise ConfigError(f"--client {spec}: importing {path} raised {_one_line(e)}") from e
        return mod
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise ConfigError(f"--client {spec}: no module named {e.name!r} (install it or add its folder "
                              "to PYTHONPATH, or give path/to/file.py:attr)") from None
        raise ConfigError(f"--client {spec}: importing {module} raised {_one_line(e)}") from e
    except Exception as e:
        raise ConfigError(f"--client {spec}: importing {module} raised {_one_line(e)}") from e


def resolve(spec: str) -> Any:
    """The object `spec` (`module:attr`) names."""
    module, sep, attr = spec.strip().rpartition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"--client {spec!r}: expected module:attr (e.g. mypkg.train:client_fn) "
                          "or path/to/file.py:attr")
    obj = _import(spec, module)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"--client {spec}: {module} has no attribute {attr!r}") from None
    return obj


def context(device: str, task: int, shard: int | None = None, shards: int | None = None) -> Context:
    """The Flower Context handed to a client factory (see the module docstring for its keys)."""
    node_config: dict[str, bool | float | int | str] = {"device": device, "task-id": task}
    if shard is not None and shards is not None:
        node_config.update({"partition-id": shard, "num-partitions": shards})
    return Context(run_id=task, node_id=0, node_config=node_config, state=RecordDict(), run_config={})


def _unwrap(obj: Any) -> Any:
    """`NumPyClient.to_client()` wraps the NumPyClient; give the NumPyClient back."""
    inner = getattr(obj, "numpy_client", None)
    return inner if isinstance(inner, NumPyClient) else obj


def _takes_an_argument(fn: Any) -> bool:
    """Whether `fn` needs a positional argument (a Flower client_fn does: the Context)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
               for p in params)


def load_client(spec: str, ctx: Context) -> NumPyClient:
    """The NumPyClient `spec` names (an instance, or what its factory returns for `ctx`)."""
    obj = _unwrap(resolve(spec))
    if isinstance(obj, NumPyClient):
        return obj
    if not callable(obj):
        raise ConfigError(f"--client {spec}: is a {type(obj).__name__}, not a Flower NumPyClient or a "
                          "factory returning one")
    try:
        made = obj(ctx) if _takes_an_argument(obj) else obj()
    except Exception as e:
        raise ConfigError(f"--client {spec}: calling it raised {_one_line(e)}") from e
    made = _unwrap(made)
    if not isinstance(made, NumPyClient):
        raise ConfigError(f"--client {spec}: returned a {type(made).__name__}, not a Flower NumPyClient")
    return made
