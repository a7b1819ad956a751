"""systemd units for the four services (``switchboard systemd install|remove|show``).

Each service runs as a system user of its own (the web apps share one), in the
group ``switchboard`` that may read /etc/switchboard; ``Type=notify`` (the
service says READY=1 once it serves, switchboard.loop.notify), restarted on
failure, and confined: no new privileges, a read-only system, private /tmp and
devices, no home, no capabilities, only IP and Unix sockets, its state in its
own StateDirectory.  Settings come from /etc/switchboard/switchboard.env
(SB_CONFIG), as for every command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from switchboard.files import replace_file

GROUP = "switchboard"
CONFIG = "/etc/switchboard/switchboard.env"
UNIT_DIR = Path("/etc/systemd/system")


@dataclass(frozen=True)
class Unit:
    name: str
    command: str
    user: str
    description: str

    @property
    def state(self) -> str:
        return self.name  # /var/lib/<name>, made by systemd (StateDirectory)


UNITS = (
    Unit("switchboard-agi", "agi-server", "sb-agi",
         "switchboard FastAGI server: caller verification and case lookups"),
    Unit("switchboard-listener", "ami-listener", "sb-listener",
         "switchboard AMI listener: queue and agent events into PostgreSQL"),
    Unit("switchboard-wallboard", "wallboard", "sb-web", "switchboard live wall board"),
    Unit("switchboard-panel", "panel", "sb-web", "switchboard agent panel"),
)

HARDENING = """NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
UMask=0077"""


def render(unit: Unit, bin_dir: Path, config: str = CONFIG) -> str:
    return f"""# {unit.name}.service: made by `switchboard systemd install`; change it with a
# drop-in (systemctl edit {unit.name}), not here: the next install rewrites it.
[Unit]
Description={unit.description}
After=network-online.target postgresql.service
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
User={unit.user}
Group={unit.user}
SupplementaryGroups={GROUP}
ExecStart={bin_dir / 'switchboard'} {unit.command}
Environment=SB_CONFIG={config}
Environment=SB_STATE_DIR=/var/lib/{unit.state}
Environment=SB_LOG_FORMAT=json
StateDirectory={unit.state}
StateDirectoryMode=0700
Restart=on-failure
RestartSec=2
TimeoutStartSec=60
TimeoutStopSec=40
{HARDENING}

[Install]
WantedBy=multi-user.target
"""


class SystemdError(Exception):
    """What the operator must fix; the message says what."""


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def _run(*args: str) -> None:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemdError(f"{' '.join(args)}: {(proc.stderr or proc.stdout).strip()[:300]}")


def _ensure_users() -> list[str]:
    made = []
    if shutil.which("getent") is None or shutil.which("useradd") is None:
        raise SystemdError("getent and useradd are needed to make the service users")
    if subprocess.run(["getent", "group", GROUP], capture_output=True, check=False
                      ).returncode != 0:
        _run("groupadd", "--system", GROUP)
        made.append(f"group {GROUP}")
    for user in sorted({u.user for u in UNITS}):
        if subprocess.run(["getent", "passwd", user], capture_output=True, check=False
                          ).returncode != 0:
            _run("useradd", "--system", "--user-group", "--no-create-home",
                 "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                 "--groups", GROUP, user)
            made.append(f"user {user}")
    return made


def install(*, bin_dir: Path | None = None, unit_dir: Path = UNIT_DIR, dry_run: bool = False,
            users: bool = True, say: object = print) -> int:
    """Write the four units (and make the users); reload systemd when it runs.
    Enabling and starting is the operator's: systemctl enable --now ..."""
    out = say if callable(say) else print
    bin_dir = bin_dir or Path(sys.executable).parent
    if not (bin_dir / "switchboard").is_file():
        raise SystemdError(f"{bin_dir / 'switchboard'} is not there: give --bin")
    if not dry_run and os.geteuid() != 0:
        raise SystemdError("run it as root (it writes to /etc/systemd/system and makes users)")
    if users and not dry_run:
        for made in _ensure_users():
            out(f"made {made}")
    for unit in UNITS:
        path = unit_dir / f"{unit.name}.service"
        text = render(unit, bin_dir)
        if dry_run:
            out(f"--- {path}\n{text}")
            continue
        unit_dir.mkdir(parents=True, exist_ok=True)
        replace_file(path, text.encode(), uid=os.geteuid(), gid=os.getegid(), mode=0o644)
        out(f"wrote {path}")
    if not dry_run and _systemd_running() and unit_dir == UNIT_DIR:
        _run("systemctl", "daemon-reload")
        out("systemd reloaded; start them with: systemctl enable --now "
            + " ".join(u.name for u in UNITS))
    return 0


def remove(*, unit_dir: Path = UNIT_DIR, say: object = print) -> int:
    """Stop and disable the units (when systemd runs) and delete them; the
    users, /etc/switchboard and /var/lib/switchboard-* are left for the operator."""
    out = say if callable(say) else print
    if os.geteuid() != 0:
        raise SystemdError("run it as root")
    running = _systemd_running() and unit_dir == UNIT_DIR
    for unit in UNITS:
        path = unit_dir / f"{unit.name}.service"
        if running:
            subprocess.run(["systemctl", "disable", "--now", f"{unit.name}.service"],
                           capture_output=True, check=False)
        if path.exists():
            path.unlink()
            out(f"removed {path}")
    if running:
        _run("systemctl", "daemon-reload")
    out("left in place: the users (sb-agi, sb-listener, sb-web), /etc/switchboard and "
        "/var/lib/switchboard-*")
    return 0
