"""Live calls benchmark (issue 23): the whole flow on a real Asterisk 22 (the
live tier's: SB_ASTERISK), SIPp callers and agents, the production agi-server
and ami-listener, a PostgreSQL of its own; Kamailio's dispatcher as the front.

Each caller: INVITE from the carrier's address, the greeting, agency, officer
and PIN keyed (verified in full: the agency's registered line), a case number
(the lookup), the queue, an agent's phone rings and answers, they talk, the
agent hangs up.  A level is N such calls started over RAMP seconds, each
talking TALK seconds, so that all N are up at once.  A level passes when every
call ends answered by an agent (SIPp and the database agree) and, with AGI,
the server's slowest step has a p99 under 50 ms (agi_call_done busy_max_ms).

  concurrent_one_node   the highest passing level, straight from the carrier
  concurrent_no_agi     the same with a FastAGI stub in place of the AGI service:
                        the same dialogue with Asterisk (the caller's entries
                        read with GET DATA, the handlers' variables set) and
                        none of the work (no database, no argon2id, no audit):
                        what the verification and lookup cost
  agi_ratio             the first over the second
  agi_p99_ms            p99 over calls of the AGI server's slowest step (from
                        Asterisk's reply to the server's next command), without
                        the PIN's argon2id itself (slow on purpose: OWASP's
                        19 MiB, t=2; its own p99 is argon2_p99_ms), at the
                        highest passing level
  front_ratio           the highest passing level through the front (one node
                        behind it) over concurrent_one_node
  spread_min_share      two nodes behind the front, 100 calls: the smaller
                        node's share
  failover_first_answer_s  the same load; node A SIGKILLed mid-load: seconds
                        from the kill to the first new call answered by B

Concurrency is measured, not assumed: the most carrier channels up at once,
from the Newchannel and Hangup events the listener stored.  Two nodes on one
2-core machine share its cores: the per-node figure is what docs/architecture.md
scales from.  Prints a line per level, then one JSON line (the last line).
Usage: SB_ASTERISK=... python bench/live_calls.py [--levels 100,150,...] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from switchboard import db
from switchboard.console.front_cli import render_peers
from switchboard.dialplan_tools.front import kamailio_binary, parse_cluster, write_front
from switchboard.pgcluster import free_port
from tests.conftest import make_cluster
from tests.live import sipp
from tests.live.calls import national
from tests.live.conftest import _seed
from tests.live.harness import (
    AGENCY,
    CASE_NORMAL,
    OFFICERS,
    PEPPER,
    PIN,
    REGISTERED,
    Service,
    skip_reason,
)
from tests.live.node import (
    CARRIER_IP,
    DID,
    FRONT_IP,
    NODE_B_IP,
    SYSTEMNAME,
    LiveNode,
    find_asterisk,
    free_udp_port,
)

AGENT_IP = "127.0.0.3"  # every bench agent's phone answers from this address
NODE_B = "sb-live-b"
P99_LIMIT_MS = 50.0


# --- scenarios -------------------------------------------------------------------

def caller_scenario(officer_digits: int = 4) -> str:
    """The caller as tests/live/sipp.Caller, with the caller ID ([field0]) and
    the officer's digits ([field1]...) from SIPp's injection file."""
    digits = [(2500, f"{AGENCY}#")]
    officer = "".join(f"[field{i + 1}]" for i in range(officer_digits))
    digits += [(1000, officer + "#"), (1000, f"{PIN}#"), (2200, f"{CASE_NORMAL}#")]
    base = sipp.Caller("[field0]", (), 120_000, DID, name="BENCH",
                       verstat="TN-Validation-Passed-A")
    text = base.scenario()
    # the digit INFOs go before the wait for the BYE
    infos = []
    cseq = 2
    for pause, group in digits:
        keys = re.findall(r"\[field\d+\]|.", group)
        for j, key in enumerate(keys):
            infos.append(f'<pause milliseconds="{pause if j == 0 else 120}"/>')
            infos.append('<send retrans="500">' + sipp._msg(
                "INFO [next_url] SIP/2.0\n"
                "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n[routes]\n"
                f"From: <sip:[field0]@[local_ip]:[local_port];user=phone>;"
                f"tag=[pid]SIPpTag00[call_number]\nTo: <sip:{DID}@[remote_ip]:[remote_port]>"
                f"[peer_tag_param]\nCSeq: {cseq} INFO\nCall-ID: [call_id]\n"
                "Contact: <sip:[field0]@[local_ip]:[local_port]>\nMax-Forwards: 70\n"
                "Content-Type: application/dtmf-relay\nContent-Length: [len]\n\n"
                f"Signal={key}\nDuration=100") + "</send>")
            infos.append('<recv response="200"/>')
            cseq += 1
    marker = '<recv request="BYE"'
    at = text.index(marker)
    text = text[:at] + "\n".join(infos) + "\n" + text[at:]
    return text.replace(f'CSeq: {2} BYE', f"CSeq: {cseq} BYE")


def agents_scenario() -> str:
    """Each 'call' registers one agent ([field0]; [field1] holds its
    [authentication ...] keyword) and stays registered."""
    common = ("From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]\n"
              "To: <sip:[field0]@[remote_ip]>\nCall-ID: [call_id]\n"
              "Contact: <sip:[field0]@[local_ip]:[local_port]>\nMax-Forwards: 70\n"
              "Expires: 3600")
    reg = ("REGISTER sip:[remote_ip]:[remote_port] SIP/2.0\n"
           "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n")
    return "\n".join([
        '<?xml version="1.0" encoding="ISO-8859-1" ?>', '<scenario name="agents">',
        '<send retrans="500">' + sipp._msg(f"{reg}{common}\nCSeq: 1 REGISTER\n"
                                           "Content-Length: 0") + "</send>",
        '<recv response="401" auth="true"/>',
        '<send retrans="500">' + sipp._msg(
            f"{reg}{common}\nCSeq: 2 REGISTER\n"
            "[field1]\nContent-Length: 0")
        + "</send>",
        '<recv response="200"/>', '<pause milliseconds="86400000"/>', "</scenario>", ""])


# --- a FastAGI stub: the handlers' variables, set at once ---------------------------

STUB_SETS = {"verify": {"SB_VERIFIED": "full", "SB_AGENCY": AGENCY, "SB_OFFICER": "1001",
                        "SB_CALLER_ID": "attested-a"},
             "lookup": {"SB_LOOKUP": "found", "SB_CASE_REF": "C0000000000A1",
                        "SB_CASE_PRIORITY": "normal"},
             "callback": {"SB_CALLBACK": "stored"}}


# the caller's entries each handler reads (agency, officer, PIN; the case number)
STUB_READS = {"verify": 3, "lookup": 1}


async def stub_agi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The handlers' dialogue with Asterisk (the same GET DATAs, so that calls
    take as long), without their work: no database, no argon2id, no audit."""
    env = {}
    while True:
        line = (await reader.readline()).decode(errors="replace").strip()
        if not line:
            break
        key, _, value = line.partition(": ")
        env[key] = value
    script = env.get("agi_network_script", "").strip("/").split("/")[0]
    commands = ["GET DATA beep 8000 12"] * STUB_READS.get(script, 0)
    commands += [f'SET VARIABLE {name} "{value}"'
                 for name, value in STUB_SETS.get(script, {}).items()]
    for command in commands:
        writer.write(f"{command}\n".encode())
        await writer.drain()
        reply = await reader.readline()
        while reply.startswith(b"HANGUP"):
            reply = await reader.readline()
        if not reply or reply.startswith(b"511"):
            break
    writer.close()


# --- the bench ---------------------------------------------------------------------

def p99_of(values: list[float]) -> float:
    if len(values) >= 2:
        return statistics.quantiles(values, n=100)[98]
    return values[0] if values else 0.0


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="sb-bench-live-", dir="/tmp"))
        self.root.chmod(0o755)
        self.procs: list[Any] = []
        self.stop_fns: list[Any] = []
        self.sipp_dir = self.root / "sipp"
        self.level_no = 0
        self.kam: subprocess.Popen[bytes] | None = None

    # -- set-up ---------------------------------------------------------------
    def setup(self) -> None:
        binary = find_asterisk()
        assert binary is not None
        self.cluster = make_cluster("sb-bench-pg-")
        self.stop_fns.append(self.cluster.destroy)
        self.db_url = self.cluster.app_url()
        asyncio.run(db.migrate(self.db_url))
        key = self.root / "audit.key"
        key.write_text("bench audit key 0123456789abcdefghijklmnopqrstuvwxyz\n")
        key.chmod(0o600)
        _seed(self.db_url, key)
        asyncio.run(self._more_officers())
        pepper = self.root / "pepper"
        pepper.write_text(PEPPER + "\n")
        pepper.chmod(0o600)
        self.a = LiveNode(binary, self.root / "a", free_udp_port(), free_port(),
                          queue_wait=600)
        self.a.prepare(n_phones=1, n_tls_phones=0)
        self._bench_phones(self.a)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root),
                    "LANG": "C.UTF-8", "SB_DATABASE_URL": self.db_url,
                    "SB_DB_SECRETS_DIR": str(self.cluster.root),
                    "SB_STATE_DIR": str(self.root / "state"),
                    "SB_PIN_PEPPER_FILE": str(pepper), "SB_DEFAULT_REGION": "US",
                    "SB_AUDIT_KEY_FILE": str(key),
                    "SB_AUDIT_ANCHOR_FILE": str(self.root / "anchors.log"),
                    "SB_LOG_FORMAT": "json", "SB_AGI_LISTEN": f"127.0.0.1:{self.a.agi_port}",
                    "SB_AMI_NODES": f"{SYSTEMNAME}@127.0.0.1:5038", "SB_AMI_USER": "listener",
                    "SB_AMI_SECRET": self.a.listener_secret, "SB_METRICS_ADDR": "127.0.0.1:0",
                    "SB_QUEUE_LOG": str(self.a.queue_log), "SB_NODE_LOST_S": "2"}
        r = self.a.switchboard("agi", "install", "--agidir", str(self.a.agidir), "--config",
                               str(self.root / "agi.conf"), "--group", "root", env=self.env)
        assert r.returncode == 0, r.stderr
        self._deploy(self.a, first=True)
        self.a.start()
        self.stop_fns.append(self.a.stop)
        r = self.a.switchboard("dialplan", "confirm", "--confdir", str(self.a.etc),
                               env=self.env)
        assert r.returncode == 0, r.stdout + r.stderr
        self.agi = Service("agi-server", ["agi-server"], self.env, self.root / "agi.log")
        self.listener = Service("ami-listener", ["ami-listener"], self.env,
                                self.root / "listener.log")
        self.agi.start()
        self.stop_fns.append(self.agi.stop)
        self.listener.start()
        self.stop_fns.append(self.listener.stop)
        self._agents(self.a, f"127.0.0.1:{self.a.clear_port}", "agents-a")

    async def _more_officers(self) -> None:
        """One officer per concurrent caller (attempts in flight count against the
        officer: many on one would lock it)."""
        from switchboard import auditlog
        from switchboard.admin import ops
        from switchboard.agi.app import make_hasher
        from switchboard.settings import parse_agi
        settings = parse_agi({"SB_PIN_PEPPER": PEPPER, "SB_AUDIT_KEY_FILE":
                              str(self.root / "audit.key")})
        hasher = make_hasher(settings)
        conn = await asyncpg.connect(self.db_url, server_settings=auditlog.session_settings(
            auditlog.settings_key(settings)))
        try:
            for n in range(2001, 2001 + self.args.max_level):
                await ops.officer_add(conn, AGENCY, str(n), f"Bench officer {n} (FAKE)")
                await ops.officer_set_pin(conn, hasher, AGENCY, str(n), PIN)
        finally:
            await conn.close()
        self.officers = [str(n) for n in range(2001, 2001 + self.args.max_level)] + OFFICERS

    def _bench_phones(self, node: LiveNode) -> None:
        """The bench's agents: ``--agents`` legacy phones, all answering from
        AGENT_IP (one SIPp process registers them all)."""
        names = [str(3001 + i) for i in range(self.args.agents)]
        node.bench_agents = [(n, f"agent-{n}-secret-x7") for n in names]  # type: ignore[attr-defined]
        s, sec = node.site_src, node.secrets
        (s / "phones.conf").write_text("".join(
            f"[{n}](sb-phone-clear,loc-hq-3)\nauth = {n}-auth\naors = {n}\n"
            f'callerid = "Agent {n}" <{n}>\ndeny = 0.0.0.0/0.0.0.0\n'
            f"permit = {AGENT_IP}/255.255.255.255\n\n[{n}](sb-phone-aor)\n\n" for n in names)
            + f'#include "{sec / "phones.conf"}"\n')
        (sec / "phones.conf").write_text("".join(
            f"[{n}-auth](sb-phone-auth)\nusername = {n}\npassword = {p}\n\n"
            for n, p in node.bench_agents))  # type: ignore[attr-defined]
        edge = (s / "edge.conf").read_text()
        (s / "edge.conf").write_text(re.sub(r"clear_phones = .*", "clear_phones = "
                                            + ", ".join(names), edge))

    def _deploy(self, node: LiveNode, *, first: bool) -> None:
        r = node.switchboard("dialplan", "deploy", "--confdir", str(node.etc), "--site",
                             str(node.site_src), *(["--first-install"] if first else []),
                             env=self.env)
        assert r.returncode == 0, r.stdout + r.stderr

    def _agents(self, node: LiveNode, target: str, tag: str) -> None:
        agents = node.bench_agents  # type: ignore[attr-defined]
        inf = self.root / f"{tag}.csv"
        # SIPp evaluates a keyword in an injected field: the credentials
        inf.write_text("SEQUENTIAL\n" + "".join(
            f"{n};[authentication username={n} password={p}]\n" for n, p in agents))
        ooc = sipp.answering("bench agent", "agent", "ag", 300, self.args.talk_s * 1000,
                             "agent_hangs_up")
        proc = sipp.Sipp(tag, self.sipp_dir, AGENT_IP, target, agents_scenario(), ooc,
                         calls=len(agents), limit=len(agents),
                         extra=("-inf", str(inf), "-r", "50"))
        proc.start()
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = node.rx("pjsip show contacts")
            if shown.count(f"@{AGENT_IP}:") >= len(agents):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"agents did not register on {node.systemname}")
        for n, _ in agents:
            for q in ("intake", "priority", "overflow"):
                node.rx(f"queue add member PJSIP/{n} to {q}")

    # -- one level --------------------------------------------------------------
    def level(self, n: int, target: str, *, agi: bool, nodes: tuple[str, ...] = (SYSTEMNAME,)
              ) -> dict[str, Any]:
        self.level_no += 1
        tag = f"level{self.level_no}-{n}"
        inf = self.root / f"{tag}.csv"
        rows = []
        for i in range(n):
            number = national(REGISTERED[i % len(REGISTERED)])
            officer = self.officers[i % len(self.officers)]
            rows.append(";".join([number, *officer]))
        inf.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")
        mark = len(self.agi.log_text()) if agi else 0
        since = time.time()
        rate = max(1.0, n / self.args.ramp_s)
        proc = sipp.Sipp(tag, self.sipp_dir, CARRIER_IP, target, caller_scenario(),
                         calls=n, limit=n, extra=("-inf", str(inf), "-r", f"{rate:.2f}",
                                                  "-rp", "1000"))
        proc.start()
        rc = asyncio.run(proc.wait(self.args.ramp_s + self.args.talk_s + 240))
        time.sleep(2.0)  # the listener commits the last events
        db = asyncio.run(self._level_rows(since, nodes))
        busy, pin = [], []
        if agi:
            for line in self.agi.log_text()[mark:].splitlines():
                if '"agi_call_done"' in line:
                    done = json.loads(line)
                    if done.get("busy_max_ms") is not None:
                        busy.append(float(done["busy_max_ms"]))
                    if done.get("argon2_ms"):
                        pin.append(float(done["argon2_ms"]))
        p99, pin_p99 = p99_of(busy), p99_of(pin)
        ok = (rc == 0 and db["answered"] == n and db["calls"] == n
              and (not agi or p99 < P99_LIMIT_MS))
        out = {"level": n, "ok": ok, "sipp_rc": rc, "calls": db["calls"],
               "answered": db["answered"], "peak_concurrent": db["peak"],
               "per_node": db["per_node"], "agi_p99_ms": round(p99, 2) if agi else None,
               "argon2_p99_ms": round(pin_p99, 2) if agi else None}
        print(json.dumps(out), flush=True)
        return out

    async def _level_rows(self, since: float, nodes: tuple[str, ...]) -> dict[str, Any]:
        conn = await asyncpg.connect(self.db_url)
        try:
            ev = await conn.fetch(
                "SELECT node, event, event_time FROM ami_event WHERE event IN ('Newchannel',"
                " 'Hangup') AND event_time >= to_timestamp($1) AND node = ANY($2::text[])"
                " AND fields->>'Channel' LIKE 'PJSIP/carrier-%' ORDER BY event_time",
                since - 1, list(nodes))
            calls = await conn.fetch(
                "SELECT node, outcome, answered_at FROM queue_call WHERE entered_at >="
                " to_timestamp($1) AND node = ANY($2::text[])", since - 1, list(nodes))
        finally:
            await conn.close()
        live = peak = 0
        for r in ev:
            live += 1 if r["event"] == "Newchannel" else -1
            peak = max(peak, live)
        per_node: dict[str, int] = {}
        for r in calls:
            per_node[r["node"]] = per_node.get(r["node"], 0) + 1
        return {"calls": len(calls), "peak": peak, "per_node": per_node,
                "answered": sum(1 for r in calls if r["outcome"] == "answered"
                                and r["answered_at"] is not None)}

    def search(self, target: str, *, agi: bool) -> tuple[int, dict[str, Any]]:
        """The highest passing level's peak concurrency, and that level's line."""
        best, best_line = 0, {}
        for n in self.args.levels:
            r = self.level(n, target, agi=agi)
            if not r["ok"]:
                break
            best, best_line = r["peak_concurrent"], r
        return best, best_line

    # -- AGI off: the stub on the AGI port ----------------------------------------
    def agi_stub(self) -> Any:
        self.agi.stop()
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(stub_agi, "127.0.0.1",
                                                              self.a.agi_port))
        import threading
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        def stop() -> None:
            loop.call_soon_threadsafe(server.close)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            self.agi.start()
        return stop

    # -- the front and a second node ------------------------------------------------
    def front(self, nodes: list[LiveNode]) -> str:
        port = getattr(self, "front_port", 0) or free_port()
        self.front_port = port
        text = (f"[front]\nlisten = {FRONT_IP}:{port}\ncarrier = {CARRIER_IP}\nprobe_s = 1\n"
                "node_timeout_ms = 800\n\n" + "".join(
                    f"[{n.systemname}]\nsip = {n.host}:{n.sip_port}\nami = {n.host}:5038\n\n"
                    for n in nodes))
        (self.root / "cluster.conf").write_text(text)
        cluster, found = parse_cluster(self.root / "cluster.conf")
        assert cluster is not None and not found, found
        self.cluster_text, self.cluster_conf = text, cluster
        if self.kam is not None:
            self._stop_kamailio()
        out = self.root / "front"
        write_front(cluster, out)
        (out / "run").mkdir(exist_ok=True)
        with (self.root / "kamailio.log").open("ab") as log:
            self.kam = subprocess.Popen(
                [str(kamailio_binary()), "-f", str(out / "kamailio.cfg"), "-DD", "-E", "-m",
                 "256", "-M", "16", "-Y", str(out / "run")], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        time.sleep(2.5)  # the first probes answered
        return f"{FRONT_IP}:{port}"

    def _stop_kamailio(self) -> None:
        kam, self.kam = self.kam, None
        if kam is not None and kam.poll() is None:
            os.killpg(kam.pid, signal.SIGTERM)
            kam.wait(10)

    def node_b(self) -> LiveNode:
        a = self.a
        b = LiveNode(a.binary, self.root / "b", a.sip_port, a.agi_port, agi_port2=a.agi_port2,
                     clear_port=a.clear_port, tls_port=a.tls_port, host=NODE_B_IP,
                     systemname=NODE_B, entityid="02:00:00:00:00:0b", queue_wait=600)
        self.front([a, b])
        b.cluster, b.peers = self.cluster_text, render_peers(self.cluster_conf, NODE_B)
        b.prepare(n_phones=1, n_tls_phones=0)
        self._bench_phones(b)
        self._deploy(b, first=True)
        b.start()
        self.stop_fns.append(b.stop)
        a.cluster, a.peers = self.cluster_text, render_peers(self.cluster_conf, SYSTEMNAME)
        a.write_cluster()
        self._deploy(a, first=False)
        env_b = {**self.env, "SB_AMI_NODES": f"{NODE_B}@{NODE_B_IP}:5038",
                 "SB_AMI_SECRET": b.listener_secret, "SB_QUEUE_LOG": str(b.queue_log),
                 "SB_STATE_DIR": str(self.root / "state-b")}
        self.listener_b = Service("ami-listener-b", ["ami-listener"], env_b,
                                  self.root / "listener-b.log")
        self.listener_b.start()
        self.stop_fns.append(self.listener_b.stop)
        self._agents(b, f"{NODE_B_IP}:{b.clear_port}", "agents-b")
        self.b = b
        return b

    def failover(self, target: str, n: int) -> float:
        """n calls through the front; node A SIGKILLed halfway through the ramp."""
        tag = "failover"
        inf = self.root / f"{tag}.csv"
        inf.write_text("SEQUENTIAL\n" + "\n".join(
            ";".join([national(REGISTERED[i % len(REGISTERED)]),
                      *self.officers[i % len(self.officers)]]) for i in range(n)) + "\n")
        rate = max(1.0, n / self.args.ramp_s)
        proc = sipp.Sipp(tag, self.sipp_dir, CARRIER_IP, target, caller_scenario(),
                         calls=n, limit=n, extra=("-inf", str(inf), "-r", f"{rate:.2f}",
                                                  "-rp", "1000"))
        proc.start()
        time.sleep(self.args.ramp_s / 2)
        killed = time.time()
        assert self.a.proc is not None
        os.killpg(self.a.proc.pid, signal.SIGKILL)
        self.a.proc.wait(10)
        asyncio.run(proc.wait(self.args.ramp_s + self.args.talk_s + 240))
        time.sleep(2.0)

        async def first() -> float:
            conn = await asyncpg.connect(self.db_url)
            try:
                t = await conn.fetchval(
                    "SELECT min(e.event_time) FROM ami_event e WHERE e.node = $1"
                    " AND e.event = 'UserEvent' AND e.fields->>'UserEvent' = 'SBStep'"
                    " AND e.fields->>'Step' = 'answered' AND e.event_time > to_timestamp($2)"
                    " AND EXISTS (SELECT 1 FROM ami_event c WHERE c.uniqueid = e.uniqueid"
                    " AND c.event = 'Newchannel' AND c.event_time > to_timestamp($2))",
                    NODE_B, killed)
            finally:
                await conn.close()
            return float(t.timestamp() - killed) if t is not None else float("nan")
        return asyncio.run(first())

    def close(self) -> None:
        for p in self.procs:
            p.kill()
        if self.kam is not None:
            self._stop_kamailio()
        for stop in reversed(self.stop_fns):
            try:
                stop()
            except Exception as exc:  # every process is stopped, whatever failed
                print(f"stop {stop}: {exc!r}", file=sys.stderr)
        if self.args.keep:
            print(f"files kept in {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.rmtree(self.cluster.root.parent, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="50,100,150,200,250,300",
                    help="concurrent calls to try, in order; a search stops at the first "
                    "level that fails")
    ap.add_argument("--ramp-s", type=float, default=20.0, help="seconds to start a level")
    ap.add_argument("--talk-s", type=int, default=25, help="seconds each agent talks")
    ap.add_argument("--agents", type=int, default=0,
                    help="agents per node (default: the highest level)")
    ap.add_argument("--quick", action="store_true", help="levels 50,100 only")
    ap.add_argument("--keep", action="store_true", help="keep the files (logs, SIPp traces)")
    ap.add_argument("--parts", default="direct,no-agi,front,nodes",
                    help="which parts to run (a part not run prints null for its keys)")
    args = ap.parse_args()
    args.levels = [50, 100] if args.quick else [int(x) for x in args.levels.split(",")]
    args.max_level = max(args.levels)
    args.agents = args.agents or args.max_level
    reason = skip_reason()
    if reason or kamailio_binary() is None:
        print(reason or "no Kamailio (apt-get install kamailio)", file=sys.stderr)
        return 2
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Asterisk's channels and RTP sockets: as many descriptors as the host allows
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bench = Bench(args)
    try:
        bench.setup()
        parts = set(args.parts.split(","))
        direct = f"127.0.0.1:{bench.a.sip_port}"
        one, no_agi, through = 0, 0, 0
        one_line: dict[str, Any] = {}
        share: float | None = None
        failover_s: float | None = None
        if "direct" in parts:
            one, one_line = bench.search(direct, agi=True)
        if "no-agi" in parts:
            stop_stub = bench.agi_stub()
            try:
                no_agi, _ = bench.search(direct, agi=False)
            finally:
                stop_stub()
        if "front" in parts:
            front = bench.front([bench.a])
            through, _ = bench.search(front, agi=True)
        if "nodes" in parts:
            bench.node_b()
            spread = bench.level(100, f"{FRONT_IP}:{bench.front_port}", agi=True,
                                 nodes=(SYSTEMNAME, NODE_B))
            counts = sorted(spread["per_node"].get(x, 0) for x in (SYSTEMNAME, NODE_B))
            share = counts[0] / max(1, sum(counts))
            failover_s = bench.failover(f"{FRONT_IP}:{bench.front_port}", 100)
    finally:
        bench.close()
    print(json.dumps({
        "concurrent_one_node": one, "concurrent_no_agi": no_agi,
        "agi_ratio": round(one / no_agi, 3) if no_agi else None,
        "agi_p99_ms": one_line.get("agi_p99_ms"),
        "argon2_p99_ms": one_line.get("argon2_p99_ms"),
        "front_ratio": round(through / one, 3) if one else None,
        "spread_min_share": round(share, 3) if share is not None else None,
        "failover_first_answer_s": round(failover_s, 2) if failover_s is not None else None,
        "top_level_passed": {"direct": one == max(args.levels),
                             "no_agi": no_agi == max(args.levels)}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
