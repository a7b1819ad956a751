"""A private PostgreSQL cluster on loopback, started from the server binaries.

Used by ``make setup``/``make demo`` (under ``.local/pg``) and by the test suite
(a throw-away cluster in a temporary folder).  ``initdb`` and ``pg_ctl`` refuse to
run as root, so when we are root the server runs as the ``postgres`` account that
Debian's package creates.  Only the standard library is used here.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from switchboard.configfiles import generated_secret

MIN_MAJOR = 15


class ClusterError(RuntimeError):
    """The local cluster could not be created, started or stopped."""


def find_bindir() -> Path:
    """Newest ``/usr/lib/postgresql/N/bin`` with N >= 15, or ``pg_config --bindir``."""
    candidates: list[tuple[int, Path]] = []
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        for child in base.iterdir():
            if child.name.isdigit() and (child / "bin" / "initdb").exists():
                candidates.append((int(child.name), child / "bin"))
    pg_config = shutil.which("pg_config")
    if pg_config and not candidates:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if (bindir / "initdb").exists():
            ver = subprocess.run([str(bindir / "initdb"), "--version"], capture_output=True,
                                 text=True, check=False).stdout.split()[-1]
            candidates.append((int(ver.split(".")[0]), bindir))
    good = sorted(c for c in candidates if c[0] >= MIN_MAJOR)
    if not good:
        raise ClusterError(
            "PostgreSQL server binaries (15 or newer) not found. On Debian run "
            "'apt-get install postgresql' (make setup does this when run as root); "
            "elsewhere install the server package or set SB_DATABASE_URL to an existing server."
        )
    return good[-1][1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (TIME_WAIT leftovers do not count: the
    server binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class LocalCluster:
    """A cluster whose files live under ``root`` (data/, run/, log, passwords)."""

    root: Path
    port: int
    database: str = "switchboard"
    app_user: str = "switchboard"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def rundir(self) -> Path:
        return self.root / "run"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def _secret(self, name: str) -> str:
        return generated_secret(self.root / name)[0]

    @property
    def superuser_password(self) -> str:
        return self._secret("superuser.password")

    @property
    def app_password(self) -> str:
        return self._secret("app.password")

    def superuser_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.superuser_password}@127.0.0.1:{self.port}/{database}"

    def app_url(self) -> str:
        return (f"postgresql://{self.app_user}:{self.app_password}@127.0.0.1:{self.port}/"
                f"{self.database}")

    # -- running the server binaries -------------------------------------------------
    def _run_as_server_user(self, argv: list[str], *, check: bool = True
                            ) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} failed ({proc.returncode}): "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def _chown_to_server_user(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ClusterError("running as root but there is no 'postgres' account to run "
                               "the server as; install Debian's postgresql package") from exc
        for p in paths:
            os.chown(p, pw.pw_uid, pw.pw_gid)

    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster (idempotent)."""
        if self.initialised():
            return
        bindir = find_bindir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.datadir.mkdir(mode=0o700, exist_ok=True)
        self.rundir.mkdir(exist_ok=True)
        pwfile = self.root / ".initdb.pw"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        self._chown_to_server_user(self.datadir, self.rundir, pwfile)
        if os.geteuid() == 0:
            probe = self._run_as_server_user(["test", "-w", str(self.datadir)], check=False)
            if probe.returncode != 0:
                raise ClusterError(f"the postgres account cannot reach {self.datadir}: give "
                                   "its parent folders o+x or set SB_STATE_DIR elsewhere")
        try:
            self._run_as_server_user([
                str(bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                f"--pwfile={pwfile}", "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                "--no-instructions",
            ])
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# switchboard local cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.rundir}'\n"
                "max_connections = 100\n"
                "shared_buffers = 128MB\n"
                "synchronous_commit = on\n"
                "timezone = 'UTC'\n"
                # a failing statement's text and a constraint's DETAIL (key values:
                # a caller's number, a case reference) stay out of the server log
                "log_min_error_statement = panic\n"
                "log_error_verbosity = terse\n"
            )

    def running(self) -> bool:
        if not self.initialised():
            return False
        proc = self._run_as_server_user([str(find_bindir() / "pg_ctl"), "-D", str(self.datadir),
                                         "status"], check=False)
        return proc.returncode == 0

    def start(self) -> None:
        if self.running():
            return
        if not port_free(self.port):
            raise ClusterError(
                f"127.0.0.1:{self.port} is already in use (another switchboard checkout or "
                "PostgreSQL?): set SB_PG_PORT to a free port, or SB_DATABASE_URL")
        if not self.logfile.exists():
            # the server's log: its owner's alone (it names roles and statements)
            fd = os.open(self.logfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            self._chown_to_server_user(self.logfile)
        self.logfile.chmod(0o600)
        self._run_as_server_user([str(find_bindir() / "pg_ctl"), "-D", str(self.datadir),
                                  "-l", str(self.logfile), "-w", "-t", "60",
                                  "-o", f"-p {self.port}", "start"])

    def stop(self, mode: str = "fast") -> None:
        if not self.running():
            return
        self._run_as_server_user([str(find_bindir() / "pg_ctl"), "-D", str(self.datadir),
                                  "-m", mode, "-w", "-t", "60", "stop"])

    def destroy(self) -> None:
        with contextlib.suppress(ClusterError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
