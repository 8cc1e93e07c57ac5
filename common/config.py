"""One configuration for every `loyal` command and daemon.

Each setting is resolved when a command runs (never at import), first match wins:

    command-line flag  >  environment variable  >  loyal.toml  >  built-in default

`loyal.toml` is the file given by `loyal --config FILE` (or `LOYAL_CONFIG`), else
`$LOYAL_HOME/loyal.toml` when it exists. It holds flat `name = value` pairs using the setting
names below (e.g. `rpc_url = "https://..."`); an unknown name is an error, so a typo never passes
silently. `SETTINGS` is the single table of what exists: README's configuration table and
`loyal config` are checked against it.

This module imports only the standard library, so anything (agents, ml, Ape scripts) may use it.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

CONFIG_FILE_NAME = "loyal.toml"


@dataclass(frozen=True)
class Setting:
    name: str  # attribute of Settings and key in loyal.toml
    env: str  # environment variable
    default: Any  # None: unset; a callable: computed from the other resolved settings
    kind: type  # str, int, float or Path
    help: str


def _home_default(_: dict) -> Path:
    return Path(".loyal")


SETTINGS: tuple[Setting, ...] = (
    Setting("rpc_url", "LOYAL_RPC_URL", "http://127.0.0.1:8545", str, "JSON-RPC endpoint of the chain"),
    Setting("home", "LOYAL_HOME", _home_default, Path,
            "local state: content store, cursors, keys, caches, devnet scratch"),
    Setting("deployments", "LOYAL_DEPLOYMENTS", lambda s: s["home"] / "deployments", Path,
            "folder of address books `<chainId>.json` (`loyal devnet`/`loyal deploy` write them)"),
    Setting("keys", "LOYAL_KEYS", lambda s: s["home"] / "keys", Path,
            "folder of named keystores (`loyal keys new NAME`)"),
    Setting("keystore", "LOYAL_KEYSTORE", None, str,
            "signer of every role: a keystore file, or a key name in the keys folder"),
    Setting("key_password_file", "LOYAL_KEY_PASSWORD_FILE", None, Path,
            "file holding the keystore password (daemons); `LOYAL_KEY_PASSWORD` (env only) also works"),
    Setting("ipfs_api", "IPFS_API", None, str, "Kubo RPC API URL; unset = the embedded store under home/store"),
    Setting("fetch_timeout", "LOYAL_FETCH_TIMEOUT", 30.0, float,
            "seconds the IPFS daemon may search for a blob it does not hold before the blob counts as unavailable"),
    Setting("log_level", "LOYAL_LOG_LEVEL", "INFO", str, "daemon log level (DEBUG, INFO, WARNING, ERROR)"),
    Setting("tx_timeout", "LOYAL_TX_TIMEOUT", 120.0, float, "seconds to wait for a transaction receipt"),
    Setting("device", "LOYAL_DEVICE", "auto", str,
            "torch device for training and inference: auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N, mps"),
    Setting("poll", "LOYAL_POLL", 1.0, float, "seconds a daemon sleeps when it has nothing to do"),
    Setting("dao_genesis", "LOYAL_DAO_GENESIS", None, str,
            "DAO genesis personnel at deploy: `0xaddr:safety|policy:1..3,...` (default: dev accounts on a dev chain)"),
    Setting("oml_platform", "LOYAL_OML_PLATFORM", None, str,
            "OML platform signer address at deploy (default: the deployer)"),
    Setting("index_db", "LOYAL_INDEX_DB", None, str,
            "database URL of the event index (`loyal index`, `loyal explorer`); unset = SQLite file "
            "`<home>/index/<chainId>.sqlite`"),
)
#: Secrets are read from the environment only, never from loyal.toml (a file others may read).
PASSWORD_ENV = "LOYAL_KEY_PASSWORD"
CONFIG_ENV = "LOYAL_CONFIG"


@dataclass(frozen=True)
class Settings:
    rpc_url: str
    home: Path
    deployments: Path
    keys: Path
    keystore: str | None
    key_password_file: Path | None
    ipfs_api: str | None
    fetch_timeout: float
    log_level: str
    tx_timeout: float
    device: str
    poll: float
    dao_genesis: str | None
    oml_platform: str | None
    index_db: str | None
    config_file: Path | None = None  # the loyal.toml that was read, if any
    sources: Mapping[str, str] = field(default_factory=dict)  # name -> "flag" | "env" | "file" | "default"

    def book_path(self, chain_id: int) -> Path:
        return self.deployments / f"{chain_id}.json"

    def key_password(self) -> str | None:
        """The keystore password from `LOYAL_KEY_PASSWORD` or `key_password_file`; None if neither."""
        if PASSWORD_ENV in os.environ:
            return os.environ[PASSWORD_ENV]
        if self.key_password_file is not None:
            try:
                return self.key_password_file.read_text().rstrip("\r\n")
            except OSError as e:
                raise ConfigError(f"cannot read key_password_file {self.key_password_file}: {e.strerror}") from None
        return None

    def shown(self) -> list[tuple[str, str, str]]:
        """(name, value, source) rows for `loyal config`."""
        return [(s.name, "" if getattr(self, s.name) is None else str(getattr(self, s.name)),
                 self.sources.get(s.name, "default")) for s in SETTINGS]


_BY_NAME = {s.name: s for s in SETTINGS}
assert set(_BY_NAME) == {f.name for f in fields(Settings)} - {"config_file", "sources"}


def _convert(s: Setting, value: Any, where: str) -> Any:
    if value is None:
        return None
    try:
        if s.kind is Path:
            return Path(os.path.expanduser(str(value)))
        if s.kind is float:
            return float(value)
        if s.kind is int:
            return int(value)
        if not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {s.name} must be a {s.kind.__name__}, got {value!r}") from None


def read_file(path: Path) -> dict[str, Any]:
    """The settings in a loyal.toml; unknown names and bad syntax are errors that name the file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r} "
                          f"(known: {', '.join(_BY_NAME)})")
    return data


def resolve(flags: Mapping[str, Any] | None = None, *, config_file: str | Path | None = None,
            env: Mapping[str, str] | None = None) -> Settings:
    """Settings from flags (None = not given) > env > config file > defaults."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    unknown = set(flags) - set(_BY_NAME)
    if unknown:
        raise ValueError(f"not settings: {sorted(unknown)}")
    env = os.environ if env is None else env
    file_path: Path | None = None
    if config_file is None and env.get(CONFIG_ENV):
        config_file = env[CONFIG_ENV]
    if config_file is not None:
        file_path = Path(config_file)
        file_values = read_file(file_path)
    else:
        home = flags.get("home") or env.get("LOYAL_HOME") or ".loyal"
        candidate = Path(home) / CONFIG_FILE_NAME
        file_values = read_file(candidate) if candidate.is_file() else {}
        file_path = candidate if file_values or candidate.is_file() else None
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:  # in table order: computed defaults may use earlier settings
        if s.name in flags:
            values[s.name], sources[s.name] = _convert(s, flags[s.name], f"--{s.name}"), "flag"
        elif env.get(s.env):
            values[s.name], sources[s.name] = _convert(s, env[s.env], f"env {s.env}"), "env"
        elif s.name in file_values:
            values[s.name], sources[s.name] = _convert(s, file_values[s.name], str(file_path)), "file"
        else:
            values[s.name] = s.default(values) if callable(s.default) else s.default
            sources[s.name] = "default"
    if values["tx_timeout"] <= 0 or values["poll"] <= 0 or values["fetch_timeout"] <= 0:
        raise ConfigError("tx_timeout, poll and fetch_timeout must be positive numbers of seconds")
    return Settings(**values, config_file=file_path, sources=sources)


_config_file: Path | None = None
_current: Settings | None = None


def use_config_file(path: str | Path | None) -> None:
    """Set by `loyal --config FILE`: the loyal.toml every later `configure`/`current` reads."""
    global _config_file, _current
    _config_file = Path(path) if path is not None else None
    _current = None


def configure(**flags: Any) -> Settings:
    """Resolve the settings for this command (its flags win) and make them the process's current ones."""
    global _current
    _current = resolve(flags, config_file=_config_file)
    return _current


def current() -> Settings:
    """The settings of the running command (`configure`); outside a command (library use, tests),
    resolved afresh from the environment and file on every call, so nothing is frozen at import."""
    if _current is not None:
        return _current
    return resolve(config_file=_config_file)


def reset() -> None:
    """Forget resolved settings (tests; a long-lived process whose environment changed)."""
    global _current, _config_file
    _current = None
    _config_file = None
