"""Data directory and config file (`config.toml` in the data directory).

Everything here has a default; the file only overrides. A corrupt file is a clear error
(ConfigError names the file and the problem), never a traceback.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

CONFIG_FILE = "config.toml"
STORE_DIR = "store"
SOCKET_FILE = "node.sock"
LOG_FILE = "node.log"
DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/4001"
DEFAULT_HTTP = "127.0.0.1:8480"


class ConfigError(RuntimeError):
    pass


@dataclass
class Config:
    listen: list[str] = field(default_factory=lambda: [DEFAULT_LISTEN])
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = True
    http: str | None = DEFAULT_HTTP
    # Python modules that register extension kinds (docs/extending.md), imported before the
    # store opens so that objects of those kinds are indexed, not kept opaque.
    extensions: list[str] = field(default_factory=list)


def resolve_data_dir(arg: str | None) -> Path:
    """--data-dir, else $PERCOLAB_HOME, else the platform's user data directory."""
    raw = arg or os.environ.get("PERCOLAB_HOME") or platformdirs.user_data_dir("percolab")
    return Path(raw).expanduser().resolve()


def load_config(data_dir: Path) -> Config:
    path = data_dir / CONFIG_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Config()
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    cfg = Config()
    node = raw.get("node", {})
    if not isinstance(node, dict):
        raise ConfigError(f"{path}: [node] must be a table")
    for name in ("listen", "bootstrap", "extensions"):
        if name in node:
            value = node[name]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                what = "module names" if name == "extensions" else "multiaddr strings"
                raise ConfigError(f"{path}: node.{name} must be a list of {what}")
            setattr(cfg, name, value)
    if "mdns" in node:
        if not isinstance(node["mdns"], bool):
            raise ConfigError(f"{path}: node.mdns must be true or false")
        cfg.mdns = node["mdns"]
    if "http" in node:
        if not isinstance(node["http"], str | bool) or node["http"] is True:
            raise ConfigError(f'{path}: node.http must be "HOST:PORT" or false')
        cfg.http = node["http"] or None
    unknown = set(node) - {"listen", "bootstrap", "mdns", "http", "extensions"}
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) node.{', node.'.join(sorted(unknown))}")
    return cfg


def load_extensions(data_dir: Path) -> list[str]:
    """Import the extension modules the data directory's config names (each registers its
    kinds when imported). Returns their names; a module that fails is a ConfigError."""
    names = load_config(data_dir).extensions
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or the module's own error at import
            raise ConfigError(
                f"{data_dir / CONFIG_FILE}: extension {name!r} did not load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    return names
