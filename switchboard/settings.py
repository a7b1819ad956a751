"""Configuration: frozen dataclasses built by a pure ``load(env)`` (the files
it may come from: switchboard/configfiles.py).

Every value has a default suited to the local demo; secrets come from the
environment or from a file path given in the environment, never from git.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from switchboard.configfiles import ConfigError as ConfigError  # noqa: PLC0414
from switchboard.configfiles import secret_value
from switchboard.resources import CHECKOUT, in_checkout

DEFAULT_PG_PORT = 54329
DEFAULT_AMI_PORT = 5038
DEFAULT_AMI_USER = "listener"
_N = TypeVar("_N", int, float)
NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class AmiNode:
    name: str
    host: str
    port: int
    username: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class ListenerSettings:
    nodes: tuple[AmiNode, ...]
    spool_dir: Path
    spool_max_bytes: int
    spool_segment_bytes: int
    batch_max: int
    batch_delay_s: float
    frame_max_bytes: int
    ping_interval_s: float
    ping_timeout_s: float
    connect_timeout_s: float
    backoff_initial_s: float
    backoff_max_s: float
    session_filter: bool
    auth: str
    queue_logs: dict[str, Path]  # node -> its Asterisk's queue_log ("*": every node)
    reconcile_interval_s: float
    metrics_host: str
    metrics_port: int
    fsync_interval_s: float
    max_skew_s: float
    # the node's lease (a standby listener takes over when it runs out); 0: no lease
    lease_s: float = 3.0
    # a node silent this long after its connection was lost is taken as dead:
    # its calls end as cut (issue 23)
    node_lost_s: float = 10.0
    # make this listener's nodes follow every agent's login, logout and pause
    # made on any node (switchboard/ami_listener/presence.py)
    agent_sync: bool = True

    def queue_log(self, node: str) -> Path | None:
        return self.queue_logs.get(node) or self.queue_logs.get("*")


def parse_queue_logs(value: str | None) -> dict[str, Path]:
    """``SB_QUEUE_LOG``: a path (one node, or a listener on its Asterisk host),
    or ``node=path,node=path`` for several nodes whose queue_log is shipped
    here."""
    if not value or not value.strip():
        return {}
    if "=" not in value:
        return {"*": Path(value.strip())}
    out: dict[str, Path] = {}
    for part in value.split(","):
        node, sep, path = part.partition("=")
        if not sep or not node.strip() or not path.strip():
            raise ConfigError(f"SB_QUEUE_LOG={value!r}: each entry must be node=path")
        out[node.strip()] = Path(path.strip())
    return out


@dataclass(frozen=True)
class AgiSettings:
    host: str
    port: int
    allow: frozenset[str]
    db_role: str
    pool_max: int
    pool_wait_s: float
    pepper: bytes | None = field(repr=False)
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int
    default_region: str
    tries: int
    dtmf_timeout_ms: int
    shutdown_grace_s: float
    session_max_s: float
    event_loop: str
    # the audit log's anchors (switchboard/audit.py): the key's file, where the
    # checkpoints go, and how often the AGI service writes them
    audit_key_file: Path | None = None
    audit_key_explicit: bool = False
    audit_anchor_file: Path | None = None
    audit_anchor_interval_s: float = 60.0

    def require_pepper(self) -> bytes:
        if self.pepper is None:
            raise ConfigError("no PIN pepper: set SB_PIN_PEPPER_FILE to a file outside git "
                              "holding at least 32 random characters (or SB_PIN_PEPPER)")
        return self.pepper


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    database_url: str | None = field(repr=False)
    # each service's own login: SB_AGI_DATABASE_URL ... (else derived from
    # SB_DATABASE_URL with the service's role and its password file)
    service_urls: dict[str, str] = field(repr=False)
    db_secrets_dir: Path | None
    pg_port: int
    log_format: str
    log_level: str
    listener: ListenerSettings
    agi: AgiSettings


def _number(env: Mapping[str, str], name: str, default: _N, lo: _N, hi: _N, *,
            kind: Callable[[str], _N], what: str) -> _N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not {what}") from exc
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    return _number(env, name, default, lo, hi, kind=int, what="a whole number")


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    return _number(env, name, default, lo, hi, kind=float, what="a number")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(allowed)}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} must be yes/no")


def _env_key(node: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", node).upper()


def _split_address(address: str) -> tuple[str, str]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` -> (host, port or '')."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, port
    return address, ""


def parse_nodes(env: Mapping[str, str]) -> tuple[AmiNode, ...]:
    """``SB_AMI_NODES="pbx-a@127.0.0.1:5038,pbx-b@127.0.0.2"``.

    Per node, ``SB_AMI_USER_<NODE>``/``SB_AMI_SECRET_<NODE>`` override the shared
    ``SB_AMI_USER``/``SB_AMI_SECRET`` (each secret may also be ``..._FILE``).
    """
    spec = env.get("SB_AMI_NODES", "").strip()
    if not spec:
        return ()
    nodes: list[AmiNode] = []
    seen: set[str] = set()
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, at, address = item.partition("@")
        if not at:
            raise ConfigError(f"SB_AMI_NODES item {item!r} must look like name@host[:port]")
        if not NODE_NAME_RE.match(name):
            raise ConfigError(f"SB_AMI_NODES node name {name!r} must be 1-63 of [A-Za-z0-9_.-]")
        if name in seen:
            raise ConfigError(f"SB_AMI_NODES names node {name!r} twice")
        seen.add(name)
        host, port_s = _split_address(address)
        if not host:
            raise ConfigError(f"SB_AMI_NODES node {name!r} has no host")
        try:
            port = int(port_s) if port_s else DEFAULT_AMI_PORT
        except ValueError as exc:
            raise ConfigError(f"SB_AMI_NODES port {port_s!r} of node {name!r}") from exc
        if not 0 < port < 65536:
            raise ConfigError(f"SB_AMI_NODES port {port} of node {name!r} out of range")
        key = _env_key(name)
        user = env.get(f"SB_AMI_USER_{key}") or env.get("SB_AMI_USER") or DEFAULT_AMI_USER
        secret = secret_value(env, f"SB_AMI_SECRET_{key}") or secret_value(env, "SB_AMI_SECRET")
        if secret is None:
            raise ConfigError(f"no AMI secret for node {name!r}: set SB_AMI_SECRET_{key} or "
                              f"SB_AMI_SECRET (or their _FILE variants)")
        nodes.append(AmiNode(name=name, host=host, port=port, username=user, secret=secret))
    return tuple(nodes)


def _ami_address(env: Mapping[str, str], name: str) -> tuple[str, int]:
    addr = env.get(name, "127.0.0.1:5038")
    host, port_s = _split_address(addr)
    try:
        return host or "127.0.0.1", int(port_s or DEFAULT_AMI_PORT)
    except ValueError as exc:
        raise ConfigError(f"{name}={addr!r} must be host[:port]") from exc


def parse_ami_ops(env: Mapping[str, str]) -> tuple[str, int, str, str]:
    """The AMI user `switchboard dialplan deploy|rollback` reloads with:
    SB_AMI_OPS_ADDR (default 127.0.0.1:5038), SB_AMI_OPS_USER (ops),
    SB_AMI_OPS_SECRET or SB_AMI_OPS_SECRET_FILE (required)."""
    host, port = _ami_address(env, "SB_AMI_OPS_ADDR")
    secret = secret_value(env, "SB_AMI_OPS_SECRET")
    if secret is None:
        raise ConfigError("no AMI ops secret: set SB_AMI_OPS_SECRET_FILE (or "
                          "SB_AMI_OPS_SECRET) for the ops user in manager.conf")
    return host, port, env.get("SB_AMI_OPS_USER", "ops"), secret


def panel_ami_addresses(env: Mapping[str, str]) -> list[tuple[str, int]]:
    """SB_PANEL_AMI_ADDR: one node's AMI, or several (``host:port,host:port``,
    the nodes behind the front: the panel calls out through the first that
    answers)."""
    given = env.get("SB_PANEL_AMI_ADDR", "127.0.0.1:5038")
    parts = [p.strip() for p in given.split(",") if p.strip()] or ["127.0.0.1:5038"]
    if len(parts) > 16:
        raise ConfigError("SB_PANEL_AMI_ADDR: at most 16 nodes")
    return [_ami_address({"SB_PANEL_AMI_ADDR": p}, "SB_PANEL_AMI_ADDR") for p in parts]


def parse_ami_panel(env: Mapping[str, str]) -> tuple[str, int, str, str] | None:
    """The AMI user the agent panel originates with: SB_PANEL_AMI_ADDR (default
    127.0.0.1:5038; the first of several, panel_ami_addresses), SB_PANEL_AMI_USER
    (required to call out), SB_PANEL_AMI_SECRET or SB_PANEL_AMI_SECRET_FILE.
    None: no user set, the panel cannot call out."""
    user = env.get("SB_PANEL_AMI_USER")
    if not user:
        return None
    host, port = panel_ami_addresses(env)[0]
    secret = secret_value(env, "SB_PANEL_AMI_SECRET")
    if secret is None:
        raise ConfigError("SB_PANEL_AMI_USER is set but no secret: set "
                          "SB_PANEL_AMI_SECRET_FILE (or SB_PANEL_AMI_SECRET)")
    return host, port, user, secret


def _path(env: Mapping[str, str], name: str, state_dir: Path | None,
          default: str) -> Path | None:
    """A file setting: the variable, else ``default`` in the state directory (the
    local demo), else None."""
    value = env.get(name)
    if value:
        return Path(value)
    return state_dir / default if state_dir is not None else None


def parse_agi(env: Mapping[str, str], state_dir: Path | None = None) -> AgiSettings:
    listen = env.get("SB_AGI_LISTEN", "127.0.0.1:4573")
    host, port_s = _split_address(listen)
    try:
        port = int(port_s or "4573")
    except ValueError as exc:
        raise ConfigError(f"SB_AGI_LISTEN={listen!r} must be host[:port]") from exc
    if not host or not 0 <= port < 65536:
        raise ConfigError(f"SB_AGI_LISTEN={listen!r} must be host[:port]")
    allow = frozenset(a.strip() for a in env.get("SB_AGI_ALLOW", "").split(",") if a.strip())
    role = env.get("SB_AGI_DB_ROLE", "sb_agi")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ConfigError(f"SB_AGI_DB_ROLE={role!r} must be a plain lower-case role name")
    pepper_env = env
    if not env.get("SB_PIN_PEPPER") and not env.get("SB_PIN_PEPPER_FILE") and state_dir:
        made = state_dir / "pin-pepper"  # the one `make demo` makes, when it is there
        if made.is_file():
            pepper_env = {**env, "SB_PIN_PEPPER_FILE": str(made)}
    pepper_text = secret_value(pepper_env, "SB_PIN_PEPPER")
    if pepper_text is not None and len(pepper_text) < 32:
        raise ConfigError("SB_PIN_PEPPER must be at least 32 characters")
    region = env.get("SB_DEFAULT_REGION", "US").upper()
    if not re.fullmatch(r"[A-Z]{2}", region):
        raise ConfigError(f"SB_DEFAULT_REGION={region!r} must be a two-letter country code")
    return AgiSettings(
        host=host, port=port, allow=allow, db_role=role,
        pool_max=_int(env, "SB_AGI_POOL_MAX", 10, 1, 500),
        pool_wait_s=_float(env, "SB_AGI_POOL_WAIT_S", 5.0, 0.1, 120),
        pepper=pepper_text.encode() if pepper_text is not None else None,
        argon2_time_cost=_int(env, "SB_ARGON2_TIME_COST", 2, 1, 20),
        argon2_memory_kib=_int(env, "SB_ARGON2_MEMORY_KIB", 19456, 8192, 1 << 21),
        argon2_parallelism=_int(env, "SB_ARGON2_PARALLELISM", 1, 1, 16),
        default_region=region,
        tries=_int(env, "SB_VERIFY_TRIES", 3, 1, 5),
        dtmf_timeout_ms=_int(env, "SB_DTMF_TIMEOUT_MS", 6000, 1000, 30000),
        shutdown_grace_s=_float(env, "SB_AGI_SHUTDOWN_GRACE_S", 20.0, 0, 600),
        session_max_s=_float(env, "SB_AGI_SESSION_MAX_S", 180.0, 10, 3600),
        audit_key_file=_path(env, "SB_AUDIT_KEY_FILE", state_dir, "audit.key"),
        audit_key_explicit=bool(env.get("SB_AUDIT_KEY_FILE")),
        audit_anchor_file=_path(env, "SB_AUDIT_ANCHOR_FILE", state_dir, "audit-anchors.log"),
        audit_anchor_interval_s=_float(env, "SB_AUDIT_ANCHOR_INTERVAL_S", 60.0, 0.1, 86400),
        event_loop=_choice(env, "SB_EVENT_LOOP", "uvloop", ("uvloop", "asyncio")),
    )


SITE_TZ = "America/Chicago"  # the reference deployment (Nashville)


def site_tz(env: Mapping[str, str], given: str | None = None) -> str:
    """The site's time zone (SB_TZ, default America/Chicago): "today", report
    intervals and staffing are in it, daylight saving included."""
    zone = (given or env.get("SB_TZ") or SITE_TZ).strip()
    try:
        ZoneInfo(zone)
    except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ConfigError(f"unknown time zone {zone!r} (SB_TZ, --tz): use an IANA name "
                          f"such as America/Chicago") from exc
    return zone


def default_state_dir() -> Path:
    """Where the local cluster, the spool and generated secrets go when
    SB_STATE_DIR is not set: the checkout's .local (make demo), else
    /var/lib/switchboard for root, else ~/.local/state/switchboard; never a
    folder relative to where a command happens to run."""
    if in_checkout():
        return CHECKOUT / ".local"
    if os.geteuid() == 0:
        return Path("/var/lib/switchboard")
    return Path.home() / ".local" / "state" / "switchboard"


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    state_dir = Path(env.get("SB_STATE_DIR") or default_state_dir()).resolve()
    log_format = env.get("SB_LOG_FORMAT", "auto").lower()
    if log_format not in {"auto", "json", "console"}:
        raise ConfigError(f"SB_LOG_FORMAT={log_format!r} must be auto, json or console")
    log_level = env.get("SB_LOG_LEVEL", "info").lower()
    if log_level not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"SB_LOG_LEVEL={log_level!r} must be debug, info, warning or error")
    metrics = env.get("SB_METRICS_ADDR", "127.0.0.1:9468")
    m_host, _, m_port = metrics.rpartition(":")
    try:
        metrics_port = int(m_port)
    except ValueError as exc:
        raise ConfigError(f"SB_METRICS_ADDR={metrics!r} must be host:port (port 0 = off)") from exc
    listener = ListenerSettings(
        nodes=parse_nodes(env),
        spool_dir=Path(env.get("SB_SPOOL_DIR") or state_dir / "spool").resolve(),
        spool_max_bytes=_int(env, "SB_SPOOL_MAX_BYTES", 1 << 30, 1 << 20, 1 << 40),
        spool_segment_bytes=_int(env, "SB_SPOOL_SEGMENT_BYTES", 16 << 20, 1 << 16, 1 << 30),
        batch_max=_int(env, "SB_BATCH_MAX", 5000, 1, 100_000),
        batch_delay_s=_float(env, "SB_BATCH_DELAY_MS", 50, 0, 5000) / 1000,
        frame_max_bytes=_int(env, "SB_FRAME_MAX_BYTES", 64 << 10, 1024, 16 << 20),
        ping_interval_s=_float(env, "SB_PING_INTERVAL", 5.0, 0.05, 300),
        ping_timeout_s=_float(env, "SB_PING_TIMEOUT", 3.0, 0.05, 300),
        connect_timeout_s=_float(env, "SB_CONNECT_TIMEOUT", 5.0, 0.05, 300),
        backoff_initial_s=_float(env, "SB_BACKOFF_INITIAL", 0.5, 0.01, 60),
        backoff_max_s=_float(env, "SB_BACKOFF_MAX", 30.0, 0.01, 3600),
        session_filter=_bool(env, "SB_AMI_SESSION_FILTER", False),
        auth=_choice(env, "SB_AMI_AUTH", "md5", ("md5", "plain")),
        queue_logs=parse_queue_logs(env.get("SB_QUEUE_LOG")),
        reconcile_interval_s=_float(env, "SB_RECONCILE_INTERVAL_S", 60, 0.1, 86400),
        metrics_host=m_host or "127.0.0.1",
        metrics_port=metrics_port,
        fsync_interval_s=_float(env, "SB_SPOOL_FSYNC_MS", 200, 0, 60_000) / 1000,
        max_skew_s=_float(env, "SB_MAX_CLOCK_SKEW_S", 86400, 1, 10 * 366 * 86400),
        lease_s=_float(env, "SB_LISTENER_LEASE_S", 3.0, 0, 60),
        node_lost_s=_float(env, "SB_NODE_LOST_S", 10.0, 0.5, 3600),
        agent_sync=_bool(env, "SB_AGENT_SYNC", True),
    )
    for name in ("SB_DATABASE_URL", *(f"SB_{svc}_DATABASE_URL"
                                      for svc in ("AGI", "LISTENER", "REPORTS", "PANEL"))):
        url = env.get(name)
        if url and not re.match(r"^postgres(ql)?://", url):
            raise ConfigError(f"{name} must be a postgresql://user@host:port/database URL "
                              f"(got {url.split('://')[0][:20]!r}...)")
    secrets_dir = env.get("SB_DB_SECRETS_DIR")
    return Settings(
        state_dir=state_dir,
        database_url=env.get("SB_DATABASE_URL") or None,
        service_urls={svc: url for svc in ("agi", "listener", "reports", "panel", "edge",
                                            "recorder")
                      if (url := env.get(f"SB_{svc.upper()}_DATABASE_URL"))},
        db_secrets_dir=Path(secrets_dir).resolve() if secrets_dir else None,
        pg_port=_int(env, "SB_PG_PORT", DEFAULT_PG_PORT, 1024, 65535),
        log_format=log_format,
        log_level=log_level,
        listener=listener,
        agi=parse_agi(env, state_dir),
    )
