"""A real Asterisk 22 for the live tier, run from a temporary folder.

The project never builds or ships Asterisk: it uses one that is installed,
found through ``SB_ASTERISK`` (the path of the ``asterisk`` binary) or on
``PATH``.  ``LiveNode`` gives it a folder of its own (configuration, sounds,
logs, spool, AGI folder), deploys the project's ``dialplan/`` into it with the
project's own first-install command and a set of test site files, and starts
it in the foreground as a child process (stopped by its PID).

Sound files cannot be downloaded here, so every prompt the configuration can
play is made as a short placeholder (silence, 8 kHz WAV).  All addresses are
loopback: SIP on 127.0.0.1 (a free port), the carrier on 127.0.0.2, desk
phones on 127.0.0.3 and up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

from switchboard.dialplan_tools.dialcheck import DIALPLAN_DIR
from switchboard.pgcluster import free_port, port_free
from tests.helpers import CLI

ROOT = Path(__file__).resolve().parents[2]
AMI_PORT = 5038  # dialplan/manager.conf: AMI is on 127.0.0.1:5038 on every node
SYSTEMNAME = "sb-live"
DID = "6155550100"  # NANP fiction range (555-0100..0199), area code 615
CARRIER_IP = "127.0.0.2"
FRONT_IP = "127.0.0.12"  # the SIP front (Kamailio) of the two-node scenario
NODE_B_IP = "127.0.0.11"  # the second node
PHONE_BASE_IP = 3  # phones on 127.0.0.3, .4, ...


def find_asterisk() -> Path | None:
    """``SB_ASTERISK`` (must then be right), else ``asterisk`` on PATH or in sbin."""
    configured = os.environ.get("SB_ASTERISK")
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"SB_ASTERISK={configured} is not an executable file")
        return path
    found = shutil.which("asterisk") or next(
        (p for p in ("/usr/sbin/asterisk", "/usr/local/sbin/asterisk")
         if os.access(p, os.X_OK)), None)
    return Path(found) if found else None


def installed_datadir(binary: Path) -> Path | None:
    """The installation's own data folder, whose XML documentation Asterisk needs
    to start (unless it was built without it): ``SB_ASTERISK_DATADIR``, else
    found beside the binary or in the usual places; None when there is none."""
    prefix = binary.resolve().parents[1]
    candidates = [os.environ.get("SB_ASTERISK_DATADIR", ""), prefix / "var/lib/asterisk",
                  prefix / "share/asterisk", "/usr/share/asterisk", "/var/lib/asterisk"]
    for c in candidates:
        if c and (Path(c) / "documentation" / "core-en_US.xml").is_file():
            return Path(c)
    return None


def modules_dir(binary: Path) -> Path:
    """The installation's modules folder (beside the binary's prefix)."""
    return binary.resolve().parents[1] / "lib" / "asterisk" / "modules"


STIR_LOADS = ("res_curl.so", "res_stir_shaken.so", "res_pjsip_stir_shaken.so")


def asterisk_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "-V"], capture_output=True, text=True, timeout=30,
                         check=False)
    return out.stdout.strip()


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 (for SIP; pgcluster.free_port is TCP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_tls_cert(folder: Path) -> None:
    """The node's TLS certificate (self-signed, for 127.0.0.1) and its key, as a
    site keeps them in the secrets folder."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(folder / "sip.key"), "-out", str(folder / "sip.crt")],
                   check=True, capture_output=True, timeout=60)
    (folder / "sip.key").chmod(0o600)


def placeholder_sound(path: Path, ms: int = 200) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * (8 * ms))


@dataclass
class Phone:
    name: str  # endpoint and SIP user, e.g. 2001
    ip: str
    password: str
    tls: bool = False  # a TLS + SRTP phone (pjsua); else a legacy phone in clear (SIPp)


@dataclass
class LiveNode:
    binary: Path
    root: Path
    sip_port: int
    agi_port: int
    agi_port2: int = 0  # the second FastAGI server (0: a free port found at prepare)
    clear_port: int = 0  # transport-clear, the SIPp phones' (0: found at prepare)
    tls_port: int = 0  # transport-tls, the TLS phones' (0: found at prepare)
    ami_secret: str = "live-ops-secret-0123456789"
    listener_secret: str = "live-listener-secret-0123456789"
    panel_secret: str = "live-panel-secret-0123456789"
    phones: list[Phone] = field(default_factory=list)
    queue_wait: int = 6
    overflow_wait: int = 4
    proc: subprocess.Popen[bytes] | None = None
    # Asterisk verifies Identity headers (res_stir_shaken was built: it needs
    # libjwt >= 1.15.3); the test CA, SP certificate and key are under root/stir
    stir: bool = False
    # a second node (issue 23): its own loopback address for SIP and AMI, its own
    # name and entity id (two Asterisks on one host would share the MAC's)
    host: str = "127.0.0.1"
    systemname: str = SYSTEMNAME
    entityid: str = "02:00:00:00:00:0a"
    # the nodes behind the front: site/cluster.conf and site/peers.conf
    cluster: str = ""
    peers: str = ""
    spy_tone: str = "no"  # site/recording.conf SPY_TONE

    def __post_init__(self) -> None:
        # Asterisk's folders (site/node.conf's [directories]), all under root
        self.folders = {key: self.root / name for key, name in (
            ("astetcdir", "etc"), ("astvarlibdir", "lib"), ("astdbdir", "lib"),
            ("astdatadir", "data"), ("astagidir", "agi-bin"), ("astspooldir", "spool"),
            ("astrundir", "run"), ("astlogdir", "log"), ("astcachedir", "cache"))}
        self.etc = self.folders["astetcdir"]
        self.datadir = self.folders["astdatadir"]
        self.agidir = self.folders["astagidir"]
        self.logdir = self.folders["astlogdir"]
        self.site_src = self.root / "site-src"
        self.secrets = self.root / "secrets"
        self.queue_log = self.logdir / "queue_log"
        self.console_log = self.root / "asterisk.out"
        self.conf = self.etc / "asterisk.conf"

    # -- preparing the folder ----------------------------------------------------------
    def prepare(self, n_phones: int = 4, n_tls_phones: int = 1) -> None:
        self.agi_port2 = self.agi_port2 or free_port()
        self.clear_port = self.clear_port or free_udp_port()
        self.tls_port = self.tls_port or free_port()
        for d in (*self.folders.values(), self.site_src, self.secrets):
            d.mkdir(parents=True, exist_ok=True)
        installed = installed_datadir(self.binary)
        if installed is not None:
            (self.datadir / "documentation").symlink_to(installed / "documentation")
        self.stir = all((modules_dir(self.binary) / m).is_file() for m in STIR_LOADS)
        if self.stir:
            from tests.live.stir import make_certs
            self.stir_ca, self.stir_cert, self.stir_key = make_certs(self.root / "stir")
        self.phones = [Phone(str(2001 + i), f"127.0.0.{PHONE_BASE_IP + i}",
                             f"phone-{2001 + i}-secret-x7", tls=i >= n_phones)
                       for i in range(n_phones + n_tls_phones)]
        self.tls_dir = self.secrets / "tls"
        make_tls_cert(self.tls_dir)
        self._sounds()
        self._site()

    @property
    def clear_phones(self) -> list[Phone]:
        return [p for p in self.phones if not p.tls]

    @property
    def tls_phones(self) -> list[Phone]:
        return [p for p in self.phones if p.tls]

    def _sounds(self) -> None:
        """A placeholder for every core prompt (so Asterisk never misses one),
        and one music-on-hold file."""
        names = (DIALPLAN_DIR / "lint" / "sounds-en-core.txt").read_text().split()
        for name in names:
            placeholder_sound(self.datadir / "sounds" / "en" / f"{name}.wav")
        placeholder_sound(self.datadir / "moh" / "placeholder.wav", ms=2000)

    def _site(self) -> None:
        s, sec = self.site_src, self.secrets
        (s / "node.conf").write_text(
            f"; live test node\nsystemname = {self.systemname}\nentityid = {self.entityid}\n"
            "\n[directories]\n"
            + "".join(f"{key} => {folder}\n" for key, folder in self.folders.items()))
        # the carrier on UDP behind the firewall (site/edge.conf carrier_link),
        # the SIPp phones in clear (named legacy phones), pjsua over TLS
        (s / "transports.conf").write_text(
            "[transport-carrier]\ntype = transport\nprotocol = udp\n"
            f"bind = {self.host}:{self.sip_port}\n\n"
            "[transport-clear]\ntype = transport\nprotocol = udp\n"
            f"bind = {self.host}:{self.clear_port}\n\n"
            "[transport-tls]\ntype = transport\nprotocol = tls\n"
            f"bind = {self.host}:{self.tls_port}\n"
            f"cert_file = {self.tls_dir / 'sip.crt'}\npriv_key_file = {self.tls_dir / 'sip.key'}\n"
            "method = tlsv1_2\n")
        (s / "edge.conf").write_text(
            "[edge]\ncarrier_link = firewall\nsite_networks = 127.0.0.64/26\n"
            "phones_from = any\nban_after = 5\nban_window_min = 10\nban_minutes = 1\n"
            f"nft_table = sblive{os.getpid()}\n"
            f"clear_phones = {', '.join(p.name for p in self.clear_phones)}\n")
        (s / "locations.conf").write_text(
            "[loc-hq-3](!)\nset_var = IVR_E911_ELIN=+16155550190\n"
            "set_var = IVR_E911_PLACE=HQ 100 Main St Nashville TN floor 3 room 301\n")
        (s / "trunk.conf").write_text(
            "[carrier](sb-carrier)\n; SIPp sends the callers' digits as SIP INFO\n"
            "dtmf_mode = info\n"
            + ("stir_shaken_profile = sb-carrier-verify\n" if self.stir else "") + "\n"
            f"[carrier](sb-carrier-aor)\ncontact = sip:{CARRIER_IP}:5060\n\n"
            f"[carrier-identify](sb-carrier-identify)\nmatch = {CARRIER_IP}, {FRONT_IP}\n")
        # the nodes share their phones' device states (issue 23): loaded on every
        # node, idle until site/peers.conf names another node
        loads = ["res_pjsip_outbound_publish.so", "res_pjsip_publish_asterisk.so"]
        if self.stir:
            loads += list(STIR_LOADS)
        (s / "modules.conf").write_text("".join(f"load = {m}\n" for m in loads))
        self.write_cluster()
        if self.host != "127.0.0.1":
            (s / "manager-bind.conf").write_text(f"bindaddr = {self.host}\n")
        if self.stir:
            # the Identity path: Asterisk verifies, never rejects (the verdict goes
            # to the verify handler); the test CA alone is trusted, the x5u may be
            # http on a loopback port
            (self.root / "stir" / "cache").mkdir(exist_ok=True)
            (s / "stir_shaken.conf").write_text(
                "[attestation]\ntype = attestation\nglobal_disable = yes\n\n"
                f"[verification]\ntype = verification\nca_file = {self.stir_ca}\n"
                "load_system_certs = no\nfailure_action = continue\n"
                f"cert_cache_dir = {self.root / 'stir' / 'cache'}\n"
                "relax_x5u_port_scheme_restrictions = yes\n"
                "relax_x5u_path_restrictions = yes\n"
                "x5u_deny = 0.0.0.0/0.0.0.0\nx5u_permit = 127.0.0.0/255.0.0.0\n\n"
                "[sb-carrier-verify]\ntype = profile\nendpoint_behavior = verify\n")
        phones = []
        for p in self.phones:
            # a legacy phone is accepted from its own address only
            kind = "sb-phone" if p.tls else "sb-phone-clear"
            acl = "" if p.tls else f"deny = 0.0.0.0/0.0.0.0\npermit = {p.ip}/255.255.255.255\n"
            phones.append(f"[{p.name}]({kind},loc-hq-3)\nauth = {p.name}-auth\n"
                          f'aors = {p.name}\ncallerid = "Agent {p.name}" <{p.name}>\n{acl}\n'
                          f"[{p.name}](sb-phone-aor)\n")
        (s / "phones.conf").write_text("\n".join(phones)
                                       + f'\n#include "{sec / "phones.conf"}"\n')
        (sec / "phones.conf").write_text("".join(
            f"[{p.name}-auth](sb-phone-auth)\nusername = {p.name}\npassword = {p.password}\n\n"
            for p in self.phones))
        (s / "dids.conf").write_text(f"exten => {DID},1,Goto(sb-inbound,s,1)\n"
                                     f"exten => +1{DID},1,Goto(sb-inbound,s,1)\n")
        # record every queue call; the last SIPp phone is the supervisors' (709)
        (s / "recording.conf").write_text(
            "RECORD_QUEUES=all\nRECORD_ANNOUNCE=no\nRECORD_ANNOUNCE_PROMPT=\n"
            f"SPY_TONE={self.spy_tone}\n"
            f"SUPERVISOR_PHONES=PJSIP/{self.clear_phones[-1].name}\n")
        (s / "globals.conf").write_text(f"AGI_SERVER=127.0.0.1:{self.agi_port}\n"
                                        f"AGI_SERVER2=127.0.0.1:{self.agi_port2}\n"
                                        f"QUEUE_WAIT={self.queue_wait}\n"
                                        f"OVERFLOW_WAIT={self.overflow_wait}\n"
                                        "CALLER_ID_ATTEST=verstat\n"
                                        f"CARRIER_PORT={self.sip_port}\n"
                                        "CARRIER_UNPROVEN=unattested\n"
                                        "OUTBOUND_MAX_LEGS=2\n"
                                        "E911_ELIN=+16155550190\nE911_NAME=SWITCHBOARD HQ\n")
        users = (DIALPLAN_DIR / "site.example" / "manager-users.conf").read_text()
        users = users.replace("/etc/asterisk/secrets/", f"{sec}/")
        (s / "manager-users.conf").write_text(users)
        (sec / "ami-listener.conf").write_text(f"secret = {self.listener_secret}\n")
        (sec / "ami-ops.conf").write_text(f"secret = {self.ami_secret}\n")
        (sec / "ami-panel.conf").write_text(f"secret = {self.panel_secret}\n")
        for f in sec.iterdir():
            f.chmod(0o600)

    def write_cluster(self) -> None:
        """site/cluster.conf and site/peers.conf (empty: one node, no front)."""
        for name, text in (("cluster.conf", self.cluster), ("peers.conf", self.peers)):
            path = self.site_src / name
            if text:
                path.write_text(text)
            elif path.exists():
                path.unlink()

    def ops_env(self) -> dict[str, str]:
        return {"SB_AMI_OPS_ADDR": f"{self.host}:{AMI_PORT}", "SB_AMI_OPS_USER": "ops",
                "SB_AMI_OPS_SECRET": self.ami_secret}

    def switchboard(self, *args: str, env: dict[str, str] | None = None,
                    timeout: float = 120) -> subprocess.CompletedProcess[str]:
        full = {**os.environ, **self.ops_env(), **(env or {})}
        return subprocess.run([str(CLI), *args], capture_output=True, text=True,
                              timeout=timeout, env=full, check=False)

    # -- running Asterisk -----------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        """Start in the foreground (a child of this process), wait until fully booted."""
        if self.host == "127.0.0.1" and not port_free(AMI_PORT):
            raise RuntimeError(f"127.0.0.1:{AMI_PORT} is taken (another Asterisk?): the "
                               f"live tier needs it for AMI")
        out = self.console_log.open("ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "-f", "-n", "-C", str(self.conf)], stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.wait_booted(timeout)

    def wait_booted(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"Asterisk exited ({self.proc.returncode}): "
                                   f"{self.console_log.read_text()[-2000:]}")
            r = subprocess.run([str(self.binary), "-C", str(self.conf), "-rx",
                                "core waitfullybooted"], capture_output=True, text=True,
                               timeout=30, check=False)
            if r.returncode == 0 and "fully booted" in r.stdout.lower():
                return
            time.sleep(0.2)
        raise RuntimeError("Asterisk did not finish booting in time")

    def rx(self, command: str, timeout: float = 30) -> str:
        r = subprocess.run([str(self.binary), "-C", str(self.conf), "-rx", command],
                           capture_output=True, text=True, timeout=timeout, check=False)
        return r.stdout

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            self.rx("core stop now", timeout=10)
            proc.wait(10)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    # -- what Asterisk said -------------------------------------------------------------
    def problems(self) -> list[str]:
        """Every ERROR and WARNING line Asterisk wrote, in its log file and on its
        console output (which also holds what it says before its logger runs)."""
        lines: list[str] = []
        for f in (self.logdir / "messages.log", self.console_log):
            if f.exists():
                lines += [x for x in f.read_text(errors="replace").splitlines()
                          if re.search(r"\b(ERROR|WARNING)\[", x)]
        return lines
