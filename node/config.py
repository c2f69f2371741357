"""Data directory and config file (`config.toml` in the data directory).

Everything here has a default; the file only overrides. A corrupt file is a clear error
(ConfigError names the file and the problem), never a traceback.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import re
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
# What the TCP transport can listen on, and what a dial can start from (libp2p resolves the
# DNS forms itself before dialing).
LISTEN_HOST_PROTOCOLS = frozenset({"ip4", "ip6"})
DIAL_HOST_PROTOCOLS = frozenset({"ip4", "ip6", "dns", "dns4", "dns6"})
MAX_PORT = 65535
# A host name an HTTP server can bind: RFC 1123 labels (an IP literal is checked apart).
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


class ConfigError(RuntimeError):
    pass


@dataclass
class Config:
    listen: list[str] = field(default_factory=lambda: [DEFAULT_LISTEN])
    # False while `listen` is the default: a node then moves to another port if the default
    # one is taken (node/runtime.py); an address the user gave is refused when taken.
    listen_explicit: bool = False
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = True
    http: str | None = DEFAULT_HTTP
    # Python modules that register extension kinds (docs/extending.md), imported before the
    # store opens so that objects of those kinds are indexed, not kept opaque.
    extensions: list[str] = field(default_factory=list)
    # [identity] unencrypted = true: a headless node keeps its member key unencrypted on
    # purpose (node/keys; `status` then carries a warning).
    unencrypted_key: bool = False


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
            if name == "listen":
                cfg.listen_explicit = True
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
    identity = raw.get("identity", {})
    if not isinstance(identity, dict) or set(identity) - {"unencrypted"}:
        raise ConfigError(f"{path}: [identity] takes one setting, unencrypted = true|false")
    if not isinstance(identity.get("unencrypted", False), bool):
        raise ConfigError(f"{path}: identity.unencrypted must be true or false")
    cfg.unencrypted_key = identity.get("unencrypted", False)
    return cfg


def check_listen_addr(addr: str) -> str:
    """`addr` if the node can listen on it (/ip4|ip6/HOST/tcp/PORT), else ConfigError. The
    node checks every address at start, so a typo is one error, not a node that runs
    without listening."""
    names = _protocols(addr, "listen")
    if len(names) != 2 or names[0] not in LISTEN_HOST_PROTOCOLS or names[1] != "tcp":
        raise ConfigError(f"listen address {addr!r} must be /ip4/HOST/tcp/PORT or "
                          "/ip6/HOST/tcp/PORT")  # fmt: skip
    return addr


def check_bootstrap_addr(addr: str) -> str:
    """`addr` if the node can dial it (HOST/tcp/PORT/p2p/PEER_ID), else ConfigError: a bad
    one used to be logged as a warning every second for the life of the node."""
    names = _protocols(addr, "bootstrap")
    host_port = len(names) == 3 and names[0] in DIAL_HOST_PROTOCOLS and names[1] == "tcp"
    if not (host_port or names[:1] == ["dnsaddr"]) or names[-1:] != ["p2p"]:
        raise ConfigError(f"bootstrap address {addr!r} must be /ip4/HOST/tcp/PORT/p2p/PEER_ID "
                          "(or /ip6, /dns4, /dns6, /dnsaddr)")  # fmt: skip
    return addr


def check_http_addr(addr: str) -> str:
    """`addr` if it is HOST:PORT (HOST an IP address, [IPv6] or a host name; PORT 0-65535),
    else ConfigError (the same reading as node.http.app.parse_address)."""
    host, sep, port = addr.rpartition(":")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port.isascii() or not port.isdigit() or int(port) > MAX_PORT:
        raise ConfigError(f"HTTP address {addr!r} must be HOST:PORT, PORT 0-{MAX_PORT}")
    if bare and not _is_ip(bare) and not _HOSTNAME.fullmatch(bare):
        raise ConfigError(f"HTTP address {addr!r}: {bare!r} is not an IP address or host name")
    return addr


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _protocols(addr: str, what: str) -> list[str]:
    import multiaddr  # light (no libp2p); only `percolab node` needs it

    try:
        names = [p.name for p in multiaddr.Multiaddr(addr).protocols()]
    except Exception as exc:  # the parser raises several unrelated types
        raise ConfigError(f"{what} address {addr!r} is not a multiaddr ({_reason(exc)})") from exc
    if what == "bootstrap" and names[-1:] == ["p2p"]:
        from p2p.peers import ConnectError, parse_peer_addr  # the redialer's own reading

        try:
            parse_peer_addr(addr)
        except ConnectError as exc:
            raise ConfigError(f"bootstrap address {addr!r}: bad peer id") from exc
    return names


def _reason(exc: BaseException) -> str:
    """multiaddr's message without its echo of the input: "Invalid MultiAddr 'x': WHY
    (string: x)" -> WHY."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    match = re.fullmatch(r"Invalid MultiAddr '.*?': (.*?)(?: \(string: .*\))?", text)
    return match.group(1) if match else text


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
